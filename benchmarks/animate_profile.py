"""Where generation time goes: ``CEMNetPipeline.animate`` part by part, against the renderer alone.

    CEMNET_WEIGHTS_DIR=../shared/assets .venv/bin/python benchmarks/animate_profile.py \
        --real-data ../shared/data/real [--size paper] [--frames 100] [--batches 1,2,4,8,16] [--threads 2] \
        [--weights default]

Randomly initialised release folders of every stage at ``--size`` (or the trained ``--weights``); the
references are a real portrait and the audio real speech. For each renderer batch size it runs ``animate``
over ``--frames`` frames (the one inference path of generate and eval: Audio2Mouth, AEE, EBM, sketches,
renderer; no paste-back, watermark or encoding) and prints frames/s with the time in each part, beside the
renderer alone on the same inputs at the same batch (the ceiling for this design), in the same process. A
photo's repeated references reach the renderer once (``ReferenceSet.for_renderer``), in both. The
first call of each kind is a warm-up, not timed. Last, the renderer's landmark prior (thin-plate splines,
``models/landmark_warp.py``) at batch 2: one spline system per reference against one per frame shared by the N
references (what the renderer does).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from generate_throughput import SPEECH, make_bundle

from cemnet_core.contracts import ALL, MOUTH, POSE
from cemnet_core.data import media
from cemnet_core.data.audio import log_mel
from cemnet_core.data.images import to_images
from cemnet_core.data.landmarks import select
from cemnet_core.data.mel_stream import MelArray
from cemnet_core.generate import GenerateConfig
from cemnet_core.identity import IdentityEncoder, mean_identity
from cemnet_core.pipeline import CEMNetPipeline
from cemnet_core.references import choose_references, load_references

PORTRAIT = "image/sadtalker__people_0.png"
TIMES: dict[str, float] = defaultdict(float)


@contextlib.contextmanager
def timed(name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        TIMES[name] += time.perf_counter() - started


def instrument(pipeline: CEMNetPipeline) -> None:
    """Time each part of the pipeline through wrappers on its methods and sub-models (this process only)."""
    for name in ("audio_to_mouth", "emotion_memory", "renderer"):
        module = getattr(pipeline, name)
        forward = module.forward

        def wrapped(*args, _forward=forward, _name=name, **kwargs):  # type: ignore[no-untyped-def]
            with timed(_name):
                return _forward(*args, **kwargs)

        module.forward = wrapped  # type: ignore[method-assign]
    for name in ("target_emotion", "sketches"):
        method = getattr(pipeline, name)

        def wrapped_method(*args, _method=method, _name=name, **kwargs):  # type: ignore[no-untyped-def]
            with timed(_name):
                return _method(*args, **kwargs)

        setattr(pipeline, name, wrapped_method)


def time_prior_solves(pipeline: CEMNetPipeline, ref_landmarks: torch.Tensor, targets: torch.Tensor) -> None:
    """Spline prior of 2-frame batches: N separate solves per frame vs one shared solve (same process)."""
    from cemnet_core.models.landmark_warp import tps_flow
    from cemnet_core.models.renderer import PRIOR_POINTS

    config, points = pipeline.renderer.config, list(PRIOR_POINTS)
    if not config.motion_prior:
        return
    prior = int(config.image_size * config.prior_scale)
    N = ref_landmarks.shape[0]
    B = min(2, len(targets))
    source = ref_landmarks[None, :, points].expand(B, N, len(points), 2).float()  # (B, N, P, 2)
    target = targets[:B, points].float()  # (B, P, 2)
    separate_target = target[:, None].expand(B, N, len(points), 2).reshape(B * N, len(points), 2)
    separate_source, size, smooth = (
        source.reshape(B * N, len(points), 2),
        (prior, prior),
        config.prior_regularization,
    )
    calls = {
        "separate": lambda: tps_flow(separate_source, separate_target, size, smooth),
        "shared": lambda: tps_flow(source, target, size, smooth),
    }
    seconds = {}
    for name, call in calls.items():
        call()
        started, repeats = time.perf_counter(), 50
        for _ in range(repeats):
            flows = call()
        seconds[name] = (time.perf_counter() - started) / (repeats * B)
        print(
            f"landmark prior, {name} solves ({N} references): {seconds[name] * 1e3:.2f} ms/frame", flush=True
        )
    difference = (calls["separate"]().reshape(B, N, 2, prior, prior) - flows).abs().max()
    print(
        f"landmark prior: shared / separate time = {seconds['shared'] / seconds['separate']:.2f}; "
        f"flows differ by <= {float(difference):.1e} grid units"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--real-data", type=Path, required=True)
    parser.add_argument("--size", default="paper", choices=("tiny", "paper"))
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--batches", default="1,2,4,8,16")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--weights", default=None, help="a trained bundle instead of random ones ('default')")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}, size {args.size}, {args.frames} frames")
    if args.weights:
        from cemnet_core.bundle import resolve_bundle

        pipeline = CEMNetPipeline.from_bundle(
            resolve_bundle(None if args.weights == "default" else args.weights)
        )
    else:
        with tempfile.TemporaryDirectory() as tmp:
            pipeline = CEMNetPipeline.from_bundle(make_bundle(Path(tmp) / "bundle", args.size), "cpu")
    refs = load_references(args.real_data / PORTRAIT, GenerateConfig())
    size, n = pipeline.image_size, args.frames
    normalised = refs.normalised
    chosen = choose_references(select(normalised, MOUTH), pipeline.num_refs)
    identity = mean_identity(IdentityEncoder().embed_batch(refs.frames[:1], landmarks=refs.landmarks[:1]))
    speech = media.load_audio(args.real_data / SPEECH)
    mel = MelArray(log_mel(np.resize(speech, n * 640).astype(np.float32)))
    pose = np.repeat(select(normalised[:1], POSE), n, axis=0)  # (n, 78, 2)
    targets = np.repeat(refs.crops([0], size), n, axis=0)  # (n, S, S, 3)
    references = pipeline.references(refs.crops(chosen, size), select(normalised[chosen], ALL), identity)
    instrument(pipeline)

    def measure(batch: int) -> tuple[float, float, str, np.ndarray]:
        """(animate frames/s, renderer-alone frames/s, the parts' shares, the frames) at one batch size."""
        warm = pipeline.window * -(-2 * batch // pipeline.window)  # whole windows, two renderer batches
        pipeline.animate(references, mel, pose[:warm], targets[:warm], total=n, batch_size=batch)
        TIMES.clear()
        started = time.perf_counter()
        animation = pipeline.animate(references, mel, pose, targets, batch_size=batch)
        elapsed = time.perf_counter() - started
        names = ("renderer", "audio_to_mouth", "target_emotion", "emotion_memory", "sketches")
        parts = {name: TIMES[name] for name in names}
        parts["other"] = elapsed - sum(parts.values())
        TIMES.clear()
        images, sketches, marks, counts = references.for_renderer()  # what animate renders from
        for b0 in range(0, n, batch):  # the renderer alone on the same inputs: the ceiling
            b1 = min(b0 + batch, n)
            landmarks, crops = animation.landmarks[b0:b1], to_images(targets[b0:b1])
            pipeline.render(images, sketches, marks, landmarks, crops, counts)
        shares = ", ".join(f"{k} {v / elapsed:.0%}" for k, v in parts.items())
        return n / elapsed, n / TIMES["renderer"], shares, animation.frames

    formats = {"NCHW": torch.contiguous_format, "channels-last": torch.channels_last}
    for batch in (int(b) for b in args.batches.split(",")):
        results = {}
        for name, memory_format in formats.items():
            pipeline.renderer.to(memory_format=memory_format)
            results[name] = measure(batch)
            fps, alone, shares, _ = results[name]
            print(f"batch {batch:>2} {name:>13}: animate {fps:6.2f} frames/s, renderer alone {alone:6.2f} "
                  f"(animate / alone {fps / alone:.2f}); {shares}", flush=True)  # fmt: skip
        (base, *_, frames_a), (fast, *_, frames_b) = results.values()
        levels = int(np.abs(frames_a.astype(int) - frames_b).max())
        ratio = fast / base
        print(f"batch {batch:>2}: channels-last / NCHW = {ratio:.2f}x; frames differ by <= {levels} level(s)")
    flat = references.landmarks.reshape(-1, *references.landmarks.shape[-2:])  # (N, 135, 2)
    time_prior_solves(pipeline, flat, flat.roll(1, dims=0))  # each reference driven to another's landmarks


if __name__ == "__main__":
    main()
