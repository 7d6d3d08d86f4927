"""Face-landmark throughput of preprocessing: the pipeline's tracker vs a per-frame IMAGE-mode baseline.

On the first ``--frames`` frames (25 fps) of every real clip (``$CEMNET_REAL_DATA/video``), decoded once
beforehand (decoding is not timed), each repeat times, interleaved so that they share the machine's load
(the order rotates from repeat to repeat):

- pipeline: :class:`~cemnet_core.data.tracking.FaceTracker` as ``preprocess`` runs it (engine ``litert``:
  the mesh network through LiteRT with MediaPipe's tracking rules, one interpreter thread, chunks of 32
  frames, a multi-face check every ``check_every`` frames);
- pipeline 2 threads: the same with a 2-thread interpreter (what one worker gets on a 2-CPU machine);
- mediapipe: the same tracker with engine ``mediapipe`` (MediaPipe's VIDEO-mode graph, a ``num_faces = 1``
  landmarker + the same multi-face checks: the pipeline of the previous release);
- baseline: what a naive tool does, ``FaceLandmarker.detect`` in IMAGE mode on every full frame (face
  detector + landmark network per frame, ``num_faces = 1``, its cheapest setting), landmarks converted
  from mediapipe's result objects;
- parallel: the pipeline on ``--streams`` clips at once (threads, one tracker each; mediapipe runs outside
  the GIL), one interpreter thread each and OpenCV single-threaded, as ``cemnet preprocess --workers N``
  does with processes.

It prints frames/s (wall clock) and CPU ms per frame (all threads of the process; steadier than wall
clock on a shared machine) per repeat, then the median and range of each, how far the pipeline's
landmarks are from the baseline's and from the mediapipe tracker's (mean point distance in % of the
face box side) and the landmark jitter of each (mean second difference over time, same unit; lower is
steadier). Usage::

    CEMNET_WEIGHTS_DIR=../shared/assets CEMNET_REAL_DATA=../shared/data/real \\
        .venv/bin/python benchmarks/preprocess_throughput.py [--frames 100] [--repeats 3] [--streams 2]

Measured with the defaults on the 2-core machine with nothing else running (load average 1.1 from the
system itself), 14 clips, 1400 frames (256x256 and 512x512), median [range] of 3 repeats::

    pipeline            271.68 [252.60-280.94] frames/s   4.27 [4.13-4.57] CPU ms/frame
    pipeline 2 threads  418.10 [363.86-419.39] frames/s   4.36 [4.32-5.13] CPU ms/frame
    mediapipe           184.29 [176.00-188.59] frames/s   5.61 [5.47-5.88] CPU ms/frame
    baseline            150.51 [147.05-161.09] frames/s   6.84 [6.38-7.01] CPU ms/frame
    parallel x2         500.54 [470.14-506.64] frames/s   3.96 [3.85-4.12] CPU ms/frame
    pipeline / baseline: 1.72 [1.69-1.87]x frames/s (same repeat), 1.53x CPU per frame
    pipeline 2 threads / baseline: 2.60 [2.42-2.84]x frames/s
    mediapipe / baseline: 1.20 [1.17-1.22]x frames/s
    parallel x2 / baseline: 3.20 [3.15-3.33]x frames/s (same repeat), 1.70x CPU per frame
    landmarks pipeline vs mediapipe: mean distance 0.09% of the face box side (vs baseline 0.79%)
    jitter: pipeline 0.581, mediapipe 0.581, baseline 0.862

The run before it gave parallel x2 3.29 [3.10-3.33]x; before OpenCV was made single-threaded in the
parallel streams (its warp threads spun against the other stream), two runs gave 3.05 and 2.98x.
The mesh network itself takes about 3.2 ms per frame; warping its 256x256 input out of the frame 0.2 ms;
the multi-face checks (MediaPipe's detector every 10 frames) about 0.15 ms: on 2 cores the pipeline is
close to what this network allows.
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from cemnet_core.contracts import ALL, N_LANDMARKS
from cemnet_core.data.faces import FaceConfig, _create_landmarker, _to_mp_image, landmarker_path
from cemnet_core.data.media import iter_video_frames
from cemnet_core.data.tracking import FaceTracker

CHUNK = 32  # frames per chunk, as media.iter_video_frames yields them to the pipeline
Timing = tuple[float, float]  # (wall seconds, CPU seconds)


def first_frames(path: Path, count: int) -> np.ndarray:
    """The first ``count`` frames at 25 fps: ``(T, H, W, 3)`` uint8."""
    chunks, total = [], 0
    for chunk in iter_video_frames(path, chunk_frames=CHUNK):
        chunks.append(chunk)
        total += len(chunk)
        if total >= count:
            break
    return np.concatenate(chunks)[:count]


def timed(run: Callable[[], list[np.ndarray]]) -> tuple[Timing, list[np.ndarray]]:
    """``run()`` with its wall and process CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = run()
    return (time.perf_counter() - wall, time.process_time() - cpu), out


def pipeline(clips: list[np.ndarray], model: Path, config: FaceConfig) -> list[np.ndarray]:
    """Landmarks ``(T, 478, 2)`` per clip from the pipeline's tracker, fed in chunks."""
    out = []
    with FaceTracker(model, config) as tracker:
        for frames in clips:
            tracker.reset()
            parts = [tracker.track(frames[start : start + CHUNK]) for start in range(0, len(frames), CHUNK)]
            out.append(np.concatenate([part.landmarks for part in parts]))
    return out


def per_frame(clips: list[np.ndarray], model: Path, config: FaceConfig) -> list[np.ndarray]:
    """Landmarks ``(T, 478, 2)`` of the largest face per frame from one landmarker call per frame,
    converted through mediapipe's public result objects (NaN where no face)."""
    out = []
    for frames in clips:
        height, width = frames.shape[1:3]
        landmarker = _create_landmarker(model, config, video=False)
        points = np.full((len(frames), N_LANDMARKS, 2), np.nan, np.float32)  # (T, K, 2)
        for t, frame in enumerate(frames):
            image = _to_mp_image(frame, 0)[0]
            result = landmarker.detect(image)
            faces = [np.array([(p.x, p.y) for p in face], np.float32) for face in result.face_landmarks]
            if faces:
                points[t] = max(faces, key=lambda f: float(np.ptp(f, axis=0).max())) * (width, height)
        landmarker.close()
        out.append(points)
    return out


def parallel(clips: list[np.ndarray], model: Path, config: FaceConfig, streams: int) -> list[np.ndarray]:
    """The pipeline on ``streams`` clips at a time (threads, one tracker each; longest clips first)."""
    todo: queue.Queue[int] = queue.Queue()
    for index in sorted(range(len(clips)), key=lambda i: -clips[i].nbytes):
        todo.put(index)
    out: list[np.ndarray] = [np.empty(0)] * len(clips)

    def work() -> None:
        with FaceTracker(model, config) as tracker:
            while True:
                try:
                    index = todo.get_nowait()
                except queue.Empty:
                    return
                tracker.reset()
                frames = clips[index]
                parts = [tracker.track(frames[s : s + CHUNK]) for s in range(0, len(frames), CHUNK)]
                out[index] = np.concatenate([part.landmarks for part in parts])

    threads = [threading.Thread(target=work) for _ in range(streams)]
    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # as in preprocess's worker processes
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        cv2.setNumThreads(opencv_threads)
    return out


def deviation(points: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """Mean distance between corresponding points, in % of the reference face's ``ALL`` box side."""
    values = []
    for ours, theirs in zip(points, reference, strict=True):
        both = np.isfinite(ours).all(axis=(1, 2)) & np.isfinite(theirs).all(axis=(1, 2))
        group = theirs[both][:, list(ALL)]
        side = np.ptp(group, axis=1).max(axis=1)  # (T',)
        values.append(np.linalg.norm(ours[both] - theirs[both], axis=2).mean(axis=1) / side)
    return 100.0 * float(np.concatenate(values).mean())


def jitter(points: list[np.ndarray]) -> float:
    """Mean frame-to-frame acceleration of the points (second difference over time), in % of the face's
    ``ALL`` box side, over runs of three frames with a face: landmark noise on talking-head clips."""
    values = []
    for clip in points:
        second = clip[2:] - 2 * clip[1:-1] + clip[:-2]  # (T-2, K, 2), NaN where a frame has no face
        side = np.ptp(clip[1:-1][:, list(ALL)], axis=1).max(axis=1)  # (T-2,)
        ok = np.isfinite(second).all(axis=(1, 2))
        values.append(np.linalg.norm(second[ok], axis=2).mean(axis=1) / side[ok])
    return 100.0 * float(np.concatenate(values).mean())


def spread(values: list[float]) -> str:
    """``median [min-max]``."""
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100, help="frames per clip")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of every variant")
    parser.add_argument("--streams", type=int, default=2, help="clips tracked at once in the parallel run")
    parser.add_argument(
        "--check-every",
        type=int,
        default=FaceConfig().check_every,
        help="frames between multi-face checks (FaceConfig.check_every)",
    )
    args = parser.parse_args()
    videos = sorted(Path(os.environ["CEMNET_REAL_DATA"], "video").glob("*.mp4"))
    model = landmarker_path()
    config = FaceConfig(check_every=args.check_every, threads=1)
    clips = [first_frames(video, args.frames) for video in videos]
    count = sum(len(frames) for frames in clips)
    sizes = sorted({f"{frames.shape[2]}x{frames.shape[1]}" for frames in clips})
    print(
        f"{len(clips)} clips, {count} frames ({', '.join(sizes)}), {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    two_threads = replace(config, threads=2)
    mediapipe = replace(config, engine="mediapipe")
    variants: dict[str, Callable[[], list[np.ndarray]]] = {
        "pipeline": lambda: pipeline(clips, model, config),
        "pipeline 2 threads": lambda: pipeline(clips, model, two_threads),
        "mediapipe": lambda: pipeline(clips, model, mediapipe),
        "baseline": lambda: per_frame(clips, model, FaceConfig(num_faces=1)),
        f"parallel x{args.streams}": lambda: parallel(clips, model, config, args.streams),
    }
    fps: dict[str, list[float]] = {name: [] for name in variants}
    cpu_ms: dict[str, list[float]] = {name: [] for name in variants}
    points: dict[str, list[np.ndarray]] = {}
    names = list(variants)
    warm = [clips[0][:CHUNK]]  # first use of mediapipe (library load, page cache) is not timed
    pipeline(warm, model, config), per_frame(warm, model, FaceConfig(num_faces=1))
    for repeat in range(args.repeats):
        cells = []
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:  # rotate: no order bias
            (wall, cpu), points[name] = timed(variants[name])
            fps[name].append(count / wall)
            cpu_ms[name].append(1000.0 * cpu / count)
            cells.append(f"{name} {count / wall:6.1f} f/s {1000.0 * cpu / count:5.2f} ms CPU")
        print(f"repeat {repeat + 1}: " + " | ".join(cells))
    print(
        f"\nmedian [range] over {args.repeats} repeats, {count} frames, load average "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    for name in variants:
        print(f"  {name:12s} {spread(fps[name]):>22s} frames/s   {spread(cpu_ms[name]):>22s} CPU ms/frame")
    base = "baseline"
    for name in variants:
        if name != base:
            ratios = [a / b for a, b in zip(fps[name], fps[base], strict=True)]
            cpu_ratios = [b / a for a, b in zip(cpu_ms[name], cpu_ms[base], strict=True)]
            print(
                f"  {name} / baseline: {spread(ratios)}x frames/s (same repeat), "
                f"{spread(cpu_ratios)}x CPU per frame"
            )
    for name, reference in (("pipeline", "baseline"), ("mediapipe", "baseline"), ("pipeline", "mediapipe")):
        print(
            f"  landmarks {name} vs {reference}: mean distance "
            f"{deviation(points[name], points[reference]):.2f}% of the face box side"
        )
    print(
        "  jitter (mean second difference, % of the face box side): "
        + ", ".join(f"{name} {jitter(points[name]):.3f}" for name in ("pipeline", "mediapipe", "baseline"))
    )


if __name__ == "__main__":
    main()
