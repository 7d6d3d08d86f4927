"""Face-landmark throughput of preprocessing: VIDEO-mode tracking vs a per-frame IMAGE-mode baseline.

Runs both on the same frames of every real clip (``$CEMNET_REAL_DATA/video``), decoding excluded, and prints
frames/s of each and their ratio. Usage::

    CEMNET_WEIGHTS_DIR=../shared/assets CEMNET_REAL_DATA=../shared/data/real \\
        .venv/bin/python benchmarks/preprocess_throughput.py [--frames 100]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from cemnet_core.data.faces import FaceConfig, FaceTracker, _create_landmarker, _to_mp_image, landmarker_path
from cemnet_core.data.media import iter_video_frames


def first_frames(path: Path, count: int) -> np.ndarray:
    """The first ``count`` frames at 25 fps: ``(T, H, W, 3)`` uint8."""
    chunks, total = [], 0
    for chunk in iter_video_frames(path, chunk_frames=32):
        chunks.append(chunk)
        total += len(chunk)
        if total >= count:
            break
    return np.concatenate(chunks)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100, help="frames per clip")
    args = parser.parse_args()
    videos = sorted(Path(os.environ["CEMNET_REAL_DATA"], "video").glob("*.mp4"))
    model = landmarker_path()
    config = FaceConfig()
    totals = {"video": 0.0, "image": 0.0}
    frames_total = 0
    print(f"{'clip':45s} {'size':>9s} {'VIDEO f/s':>10s} {'IMAGE f/s':>10s} {'ratio':>6s}")
    for video in videos:
        frames = first_frames(video, args.frames)
        with FaceTracker(model, config) as tracker:
            start = time.perf_counter()
            tracker.track(frames)
            tracked = time.perf_counter() - start
        landmarker = _create_landmarker(model, config, video=False)
        start = time.perf_counter()
        for frame in frames:
            landmarker.detect(_to_mp_image(frame, config.max_side)[0])
        baseline = time.perf_counter() - start
        landmarker.close()
        totals["video"] += tracked
        totals["image"] += baseline
        frames_total += len(frames)
        size = f"{frames.shape[2]}x{frames.shape[1]}"
        print(f"{video.stem:45s} {size:>9s} {len(frames) / tracked:10.1f} {len(frames) / baseline:10.1f} "
              f"{baseline / tracked:6.2f}")
    print(f"all {frames_total} frames: pipeline (VIDEO mode) {frames_total / totals['video']:.1f} frames/s, "
          f"baseline (IMAGE mode) {frames_total / totals['image']:.1f} frames/s, "
          f"ratio {totals['image'] / totals['video']:.2f}x")


if __name__ == "__main__":
    main()
