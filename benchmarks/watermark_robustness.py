"""Robustness and false alarms of the provenance watermark (cemnet_core/watermark.py).

Marks a segment of each clip (the real videos of ``real_data``, or the mp4 files of a ``cemnet synth`` corpus
with ``--corpus``), writes it as ``cemnet generate`` would (H.264 CRF 18, provenance tags), then attacks it
with ffmpeg and runs the detector:

    reencode   H.264 CRF 23 at half size, container tags stripped
    crop       a few pixels cropped off unevenly (4 left, 2 right, 2 top, 4 bottom), then as ``reencode``

It prints the PSNR of marked vs original frames, the detection rate and z-scores per attack, and the
false-positive rate with z-scores on every real video of ``real_data`` (video/ and video_silent/), unmarked.

    .venv/bin/python benchmarks/watermark_robustness.py [--real-data ../shared/data/real] [--corpus DIR]
        [--frames 50] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from cemnet_core.data.media import ffmpeg_exe, iter_video_frames, write_video
from cemnet_core.watermark import (
    WatermarkConfig,
    crop_hypotheses,
    detect_watermark,
    embed_watermark,
    false_positive_bound,
    provenance_metadata,
    psnr,
)


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def attack(source: Path, target: Path, width: int, height: int, crop: bool) -> Path:
    """Re-encode ``source`` at CRF 23, half size (after a small uneven crop when ``crop``), tags stripped."""
    filters = []
    if crop:
        filters.append(f"crop={width - 6}:{height - 6}:4:2")
        width, height = width - 6, height - 6
    filters.append(f"scale={_even(width / 2)}:{_even(height / 2)}")
    subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-i",
            str(source),
            "-vf",
            ",".join(filters),
            "-c:v",
            "libx264",
            "-crf",
            "23",
            "-map_metadata",
            "-1",
            str(target),
        ],
        check=True,
    )
    return target


def _summary(name: str, z_scores: list[float], detected: list[bool]) -> None:
    values = np.array(z_scores)
    print(
        f"{name:<10} detected {sum(detected)}/{len(detected)} ({100 * np.mean(detected):.1f} %)   "
        f"z min {values.min():.1f}  median {np.median(values):.1f}  max {values.max():.1f}"
    )


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--real-data", type=Path, default=Path(os.environ.get("CEMNET_REAL_DATA", "../shared/data/real"))
    )
    parser.add_argument("--corpus", type=Path, default=None, help="mark the mp4 files of this folder instead")
    parser.add_argument("--frames", type=int, default=50, help="frames per marked segment")
    parser.add_argument("--limit", type=int, default=0, help="at most this many clips to mark (0: all)")
    args = parser.parse_args()
    config = WatermarkConfig()
    real = [
        path
        for folder in ("video", "video_silent")
        for path in sorted((args.real_data / folder).glob("*.mp4"))
    ]
    sources = sorted(args.corpus.rglob("*.mp4")) if args.corpus else real
    if args.limit:
        sources = sources[: args.limit]
    print(
        f"watermark: key {config.key!r}, grid {config.grid}, threshold z >= {config.threshold}; "
        f"{len(sources)} clips x {args.frames} frames"
    )
    results: dict[str, tuple[list[float], list[bool]]] = {"reencode": ([], []), "crop": ([], [])}
    psnrs = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        for index, source in enumerate(sources):
            frames = next(iter_video_frames(source, chunk_frames=args.frames))  # (n, H, W, 3)
            marked = embed_watermark(frames, frame_offset=0, config=config)
            psnrs.append(psnr(frames, marked))
            written = write_video(folder / f"{index}.mp4", marked, metadata=provenance_metadata())
            height, width = frames.shape[1:3]
            line = f"{source.name:<52} {width}x{height} PSNR {psnrs[-1]:.1f} dB"
            for name in results:
                attacked = attack(written, folder / f"{index}_{name}.mp4", width, height, crop=name == "crop")
                detection = detect_watermark(attacked, config)
                results[name][0].append(detection.z_score)
                results[name][1].append(detection.marked)
                line += f"  {name} z {detection.z_score:5.1f}"
            print(line, flush=True)
        marking_seconds = time.perf_counter() - started
        print(f"\nPSNR marked vs original: min {min(psnrs):.1f} dB, mean {np.mean(psnrs):.1f} dB")
        for name, (z_scores, detected) in results.items():
            _summary(name, z_scores, detected)
        print(f"({marking_seconds:.0f} s for marking, encoding, attacking and detecting)\n")

    null_z = []
    false_alarms = []
    for path in real:
        detection = detect_watermark(path, config)
        null_z.append(detection.z_score)
        false_alarms.append(detection.marked)
        print(
            f"unmarked {path.parent.name}/{path.name:<52} z {detection.z_score:5.2f} frames "
            f"{detection.frames_used}{'  FALSE ALARM' if detection.marked else ''}"
        )
    values = np.array(null_z)
    print(
        f"\nfalse positives on unmarked real videos: {sum(false_alarms)}/{len(false_alarms)}; z mean "
        f"{values.mean():.2f}, std {values.std():.2f}, max {values.max():.2f}"
    )
    bound = false_positive_bound(config.threshold, len(crop_hypotheses(config)))
    print(
        f"Hoeffding bound on the false-positive rate per video at z >= {config.threshold} with "
        f"{len(crop_hypotheses(config))} crop hypotheses: {bound:.1e}"
    )


if __name__ == "__main__":
    main()
