"""Does ``cemnet detect`` recognise what ``cemnet generate`` wrote, before and after re-encoding?

    .venv/bin/python benchmarks/detect_generated.py [--real-data ../shared/data/real] [--corpus DIR]
        [--weights DIR] [--count 20] [--seed 0] [--keep DIR]

1. References, varied: procedural faces of a small ``cemnet synth`` corpus (made in a temporary folder unless
   ``--corpus`` names one), used either as the clip's video or as one frame of it saved as PNG, and the real
   portraits of ``real_data/image``. About 2 in 5 videos use a procedural face, the rest a real portrait.
2. Driving audio: real speech of ``real_data/audio``, a random 2-4 s cut of a random file (seeded).
3. :func:`~cemnet_core.generate.generate` writes each video (H.264 CRF 18, watermark, provenance tags). The
   weights are a randomly initialised tiny bundle unless ``--weights`` is given: the watermark is added to the
   final frames after rendering and does not depend on the weights, so untrained models measure it as well.
4. Each video is re-encoded with H.264 CRF 23 at half size, container tags stripped (imageio-ffmpeg's
   ffmpeg).
5. :func:`~cemnet_core.watermark.detect_watermark` runs on the originals, the re-encoded copies and every real
   video of ``real_data`` (video/ and video_silent/, never marked): detection rates, false-positive rate and
   the z-score ranges are printed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from generate_throughput import make_bundle  # benchmarks/ is on sys.path when this file runs as a script
from PIL import Image
from watermark_robustness import attack

from cemnet_core.contracts import SAMPLE_RATE
from cemnet_core.data import media
from cemnet_core.data.synthetic import SynthConfig, synth
from cemnet_core.generate import GenerateConfig, generate
from cemnet_core.pipeline import CEMNetPipeline
from cemnet_core.watermark import (
    Detection,
    WatermarkConfig,
    crop_hypotheses,
    detect_watermark,
    false_positive_bound,
)

SYNTH = SynthConfig(speakers=3, sentences=1, emotions=("angry", "happy", "sad"), levels=(3,))
MIN_SECONDS, MAX_SECONDS = 2.0, 4.0
MIN_CUT_RMS_DB = -40.0  # a cut quieter than this (a pause) is drawn again


@dataclass(frozen=True)
class Job:
    """One generated video: its reference (image or video), what kind it is, and its driving speech cut."""

    ref: Path
    kind: str  # "synth-frame", "synth-video" or "real-image"
    speech: Path
    start: float  # seconds into ``speech``
    seconds: float


def reencode_half(source: Path, target: Path) -> Path:
    """H.264 CRF 23 at half size, tags stripped: the attack of the robustness benchmark."""
    info = media.probe(source)
    return attack(source, target, info.width, info.height, crop=False)


def synthetic_references(corpus: Path, folder: Path) -> list[tuple[Path, str]]:
    """(reference, kind) pairs of a synth corpus: each clip's video, and its first frame saved as PNG."""
    videos = sorted(corpus.rglob("*.mp4"))
    if not videos:
        raise SystemExit(f"{corpus} holds no mp4 clips; give a `cemnet synth` folder or leave out --corpus")
    refs = []
    for index, video in enumerate(videos):
        frame = next(media.iter_video_frames(video, chunk_frames=1))[0]  # (H, W, 3) uint8
        image = folder / f"synth_{index:02d}.png"
        Image.fromarray(frame).save(image)
        refs.extend([(image, "synth-frame"), (video, "synth-video")])
    return refs


def plan_jobs(synthetic: list[tuple[Path, str]], real_data: Path, count: int, seed: int) -> list[Job]:
    """``count`` jobs: 2/5 procedural references (frames and videos alternating), 3/5 real portraits."""
    rng = np.random.default_rng(seed)
    portraits = sorted((real_data / "image").iterdir())
    speeches = sorted((real_data / "audio").glob("*.wav"))
    num_synth = min(len(synthetic), round(count * 2 / 5))
    synth_order = rng.permutation(len(synthetic) // 2)  # clip indices; frame/video alternate over them
    refs = [synthetic[2 * int(clip) + i % 2] for i, clip in enumerate(np.resize(synth_order, num_synth))]
    portrait_order = np.resize(rng.permutation(len(portraits)), count - num_synth)
    refs += [(portraits[i], "real-image") for i in portrait_order]
    jobs = []
    for ref, kind in refs:
        speech = speeches[int(rng.integers(len(speeches)))]
        duration = media.probe(speech).duration
        seconds = min(float(rng.uniform(MIN_SECONDS, MAX_SECONDS)), duration)
        jobs.append(Job(ref, kind, speech, float(rng.uniform(0.0, duration - seconds)), seconds))
    return jobs


def cut_speech(job: Job, path: Path, rng: np.random.Generator) -> Path:
    """The job's cut of its speech file as a 16 kHz wav; a cut that is mostly a pause is moved."""
    speech = media.load_audio(job.speech)
    length = round(job.seconds * SAMPLE_RATE)
    start = round(job.start * SAMPLE_RATE)
    for _ in range(20):
        cut = speech[start : start + length]
        if 10 * np.log10(float(np.mean(cut.astype(np.float64) ** 2)) + 1e-20) >= MIN_CUT_RMS_DB:
            break
        start = int(rng.integers(0, max(1, len(speech) - length)))
    media.write_audio(path, cut)
    return path


def _z_range(name: str, detections: list[Detection]) -> str:
    z = np.array([d.z_score for d in detections])
    hits = sum(d.marked for d in detections)
    return (
        f"{name:<28} watermark found {hits}/{len(detections)} ({100 * hits / len(detections):.1f} %)   "
        f"z min {z.min():.1f}  median {np.median(z):.1f}  max {z.max():.1f}   "
        f"metadata tag {sum(d.metadata_tag for d in detections)}/{len(detections)}"
    )


def main() -> None:
    """Run the benchmark and print its figures."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument(
        "--real-data", type=Path, default=Path(os.environ.get("CEMNET_REAL_DATA", "../shared/data/real"))
    )
    parser.add_argument("--corpus", type=Path, default=None, help="`cemnet synth` folder (default: make one)")
    parser.add_argument("--weights", type=Path, default=None, help="weights bundle (default: tiny random)")
    parser.add_argument("--count", type=int, default=20, help="videos to generate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="copy the generated videos into this folder")
    args = parser.parse_args()
    watermark = WatermarkConfig()
    config = GenerateConfig(device="cpu")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as temp_name:
        temp = Path(temp_name)
        corpus = args.corpus
        if corpus is None:
            corpus = temp / "synth"
            synth(SYNTH, corpus, workers=min(2, os.cpu_count() or 1))
        bundle = args.weights or make_bundle(temp / "bundle", "tiny")
        pipeline = CEMNetPipeline.from_bundle(bundle, "cpu")
        jobs = plan_jobs(synthetic_references(corpus, temp), args.real_data, args.count, args.seed)
        print(
            f"{len(jobs)} videos, weights {'random tiny bundle' if args.weights is None else bundle}; "
            f"watermark key {watermark.key!r}, threshold z >= {watermark.threshold}",
            flush=True,
        )
        originals, copies = [], []
        rng = np.random.default_rng(args.seed + 1)
        for index, job in enumerate(jobs):
            audio = cut_speech(job, temp / f"speech_{index:02d}.wav", rng)
            out = temp / f"gen_{index:02d}.mp4"
            result = generate(job.ref, audio, out, config=config, pipeline=pipeline)
            small = reencode_half(out, temp / f"gen_{index:02d}_crf23_half.mp4")
            originals.append(detect_watermark(out, watermark))
            copies.append(detect_watermark(small, watermark))
            info, small_info = media.probe(out), media.probe(small)
            print(
                f"{index:2d} {job.kind:<11} {job.ref.name:<34} {job.speech.name:<32} "
                f"{result.duration:4.2f} s "
                f"{info.width}x{info.height} -> {small_info.width}x{small_info.height}   "
                f"z {originals[-1].z_score:5.1f} -> {copies[-1].z_score:5.1f}",
                flush=True,
            )
            if args.keep is not None:
                args.keep.mkdir(parents=True, exist_ok=True)
                for path in (out, small):
                    (args.keep / path.name).write_bytes(path.read_bytes())
        generated_seconds = time.perf_counter() - started

    real = [
        path
        for folder in ("video", "video_silent")
        for path in sorted((args.real_data / folder).glob("*.mp4"))
    ]
    unmarked = [detect_watermark(path, watermark) for path in real]
    for path, detection in zip(real, unmarked, strict=True):
        alarm = "  FALSE ALARM" if detection.marked else ""
        print(
            f"real {path.parent.name}/{path.name:<52} z {detection.z_score:5.2f}  frames "
            f"{detection.frames_used}{alarm}"
        )

    print(
        f"\n({generated_seconds:.0f} s to synthesise, generate, re-encode and detect; "
        f"{time.perf_counter() - started:.0f} s in all)"
    )
    print(_z_range("generated, as written", originals))
    print(_z_range("generated, CRF 23 half size", copies))
    for kind in ("synth-frame", "synth-video", "real-image"):
        subset = [d for d, job in zip(copies, jobs, strict=True) if job.kind == kind]
        if subset:
            print(_z_range(f"  re-encoded, {kind}", subset))
    z = np.array([d.z_score for d in unmarked])
    alarms = sum(d.marked for d in unmarked)
    print(
        f"real videos (unmarked): false positives {alarms}/{len(unmarked)} "
        f"({100 * alarms / len(unmarked):.1f} %)   z min {z.min():.2f}  mean {z.mean():.2f}  "
        f"max {z.max():.2f}   metadata tag {sum(d.metadata_tag for d in unmarked)}/{len(unmarked)}"
    )
    hypotheses = len(crop_hypotheses(watermark))
    print(
        f"Hoeffding bound per unmarked video at z >= {watermark.threshold} with {hypotheses} crop "
        f"hypotheses: {false_positive_bound(watermark.threshold, hypotheses):.1e}"
    )


if __name__ == "__main__":
    main()
