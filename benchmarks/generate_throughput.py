"""Benchmark of ``cemnet generate``: frames/s (model loading excluded) and peak memory vs audio length.

    CEMNET_WEIGHTS_DIR=../shared/assets .venv/bin/python benchmarks/generate_throughput.py \
        --real-data ../shared/data/real [--seconds 4] [--short 10] [--long 300] [--sizes tiny,paper]

1. Throughput: randomly initialised release folders of every stage at ``tiny`` and ``paper`` sizes, a real
   portrait, real speech looped to ``--seconds``; frames/s as :func:`generate` reports it (from the first
   chunk on, after the weights are loaded).
2. Memory: peak resident memory (VmHWM) of a fresh process generating ``--short`` and ``--long`` seconds
   with the tiny bundle; the ratio long/short should stay <= 1.2 (the audio is streamed in chunks).

``--ref`` (under ``--real-data``; default a portrait) is the reference photo or video.
``--weights BUNDLE`` (a folder, ``hf://`` or ``default``: what ``cemnet generate`` uses without
``--weights``, the shipped starter) instead times that trained bundle on ``--short`` and ``--long`` seconds
of audio, each in a fresh process: frames/s end to end (references + audio to the written mp4, model
loading included) and as ``generate`` reports it (from the first chunk on), with ``GenerateConfig.overlap``
and, as the baseline of the same run, without; then the renderer alone on random inputs (the model's
ceiling), with N distinct references (video references) and with one photo counted N times (what generate
renders for a photo, ``ReferenceSet.for_renderer``). ``--json FILE`` writes the overlapped end-to-end
figures (the starter's model card reads them).

``--presets`` (with ``--weights``) instead encodes the frames ``generate`` writes for ``--short`` seconds with
each libx264 preset: encoder CPU ms per frame, PSNR of the decoded frames to the raw ones, file size, and the
watermark's z-score (``GenerateConfig.encoder_preset`` is chosen from these).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

PORTRAIT = "image/sadtalker__people_0.png"
SPEECH = "audio/styletalk__feifeili_clip1.wav"


def make_bundle(folder: Path, size: str) -> Path:
    """One random release per stage, widths matched between AEE/image emotion and the EBM."""
    from cemnet_core.bundle import WEIGHT_BUNDLE_LAYOUT
    from cemnet_core.models.audio_to_mouth import AudioToMouth, AudioToMouthConfig
    from cemnet_core.models.emotion_enhancement import EmotionEnhancer, EmotionEnhancerConfig
    from cemnet_core.models.emotion_memory import EmotionBridgingMemory, EmotionBridgingMemoryConfig
    from cemnet_core.models.image_emotion import ImageEmotionExtractor, MiniXceptionConfig
    from cemnet_core.models.renderer import FaceRenderer, RendererConfig
    from cemnet_core.release import save_release

    torch.manual_seed(0)
    preset = {"tiny": "tiny", "paper": "paper"}[size]
    aee = getattr(EmotionEnhancerConfig, preset)()
    image = getattr(MiniXceptionConfig, preset)()
    ebm = getattr(EmotionBridgingMemoryConfig, preset)()
    ebm = EmotionBridgingMemoryConfig.from_dict(
        {**ebm.to_dict(), "target_emotion_dim": aee.emotion_dim, "source_emotion_dim": image.feature_dim}
    )
    models = {
        "audio_to_mouth": AudioToMouth(getattr(AudioToMouthConfig, preset)()),
        "emotion_enhancer": EmotionEnhancer(aee),
        "image_emotion": ImageEmotionExtractor(image),
        "emotion_memory": EmotionBridgingMemory(ebm),
        "renderer": FaceRenderer(getattr(RendererConfig, preset)()),
    }
    for role, model in models.items():
        kind, names = WEIGHT_BUNDLE_LAYOUT[role]
        save_release(folder / names[0], model, kind, model.config)
    return folder


def looped_speech(real_data: Path, seconds: float, path: Path) -> Path:
    """Real speech repeated to ``seconds``, written as a 16 kHz wav."""
    from cemnet_core.contracts import SAMPLE_RATE
    from cemnet_core.data import media

    speech = media.load_audio(real_data / SPEECH)
    samples = int(seconds * SAMPLE_RATE)
    media.write_audio(path, np.resize(speech, samples).astype(np.float32))
    return path


def run_once(
    bundle: Path | str | None, ref: Path, audio: Path, out: Path, overlap: bool = True
) -> dict[str, float]:
    """Generate once in this process; frames/s and this process's peak memory."""
    from cemnet_core.generate import GenerateConfig, generate

    started = time.perf_counter()
    result = generate(ref, audio, out, bundle, GenerateConfig(device="cpu", overlap=overlap))
    return {
        "frames": result.frames,
        "frames_per_second": result.frames_per_second,
        "wall_s": time.perf_counter() - started,
        "peak_rss_mib": peak_rss_mib(),
    }


def _child(
    args: argparse.Namespace, bundle: str, ref: Path, audio: Path, out: Path, overlap: bool = True
) -> dict[str, float]:
    """run_once in a fresh process (its own peak memory, no warm caches)."""
    child = [sys.executable, __file__, "--real-data", str(args.real_data), "--child", bundle, str(ref),
             str(audio), str(out)] + ([] if overlap else ["--sequential"])  # fmt: skip
    output = subprocess.run(child, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def renderer_ceiling(weights: str, seconds: float = 5.0, photo: bool = False) -> tuple[float, int]:
    """Frames/s of the bundle's renderer alone (random inputs, the CPU's default batch, channels-last as
    ``from_bundle`` runs it): the most ``generate`` can reach with this model, whatever the rest costs.
    ``photo``: one reference counted N times (a photo), else N distinct ones."""
    from cemnet_core.bundle import resolve_bundle
    from cemnet_core.pipeline import CEMNetPipeline, render_batch

    pipeline = CEMNetPipeline.from_bundle(resolve_bundle(None if weights == "default" else weights), "cpu")
    renderer, batch = pipeline.renderer, render_batch(torch.device("cpu"))
    inputs = [x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x
              for x in renderer.example_inputs(batch)]  # fmt: skip
    if photo:  # (images, sketches, target sketch, masked target, ref landmarks, target landmarks, counts)
        N = inputs[0].shape[1]
        inputs = [inputs[0][:, :1], inputs[1][:, :1], *inputs[2:4], inputs[4][:, :1], inputs[5]]
        inputs.append(torch.tensor([float(N)]))
    with torch.inference_mode():
        renderer(*inputs)
        began, frames = time.perf_counter(), 0
        while time.perf_counter() - began < seconds:
            renderer(*inputs)
            frames += batch
    return frames / (time.perf_counter() - began), batch


def time_bundle(args: argparse.Namespace, ref: Path) -> None:
    """``--weights``: frames/s of a trained bundle on ``--short`` and ``--long`` seconds of speech, with
    chunks finished in a worker thread (the default) and, as the baseline, one after the other."""
    figures = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for seconds in (args.short, args.long):
            audio = looped_speech(args.real_data, seconds, tmp / f"audio_{seconds:g}.wav")
            rates = {}
            for overlap in (False, True):
                run = _child(args, args.weights, ref, audio, tmp / "out.mp4", overlap)
                rates[overlap] = run["frames"] / run["wall_s"]
                print(f"{args.weights}: {seconds:g} s audio, {run['frames']} frames, "
                      f"{'overlapped' if overlap else 'sequential'}: {rates[overlap]:.1f} frames/s end to end"
                      f" (wall {run['wall_s']:.1f} s, model loading included), "
                      f"{run['frames_per_second']:.1f} frames/s from the first chunk, peak RSS "
                      f"{run['peak_rss_mib']:.0f} MiB", flush=True)  # fmt: skip
            print(f"  overlapped / sequential = {rates[True] / rates[False]:.2f}", flush=True)
            figures[f"{seconds:g} s audio"] = rates[True]
    for photo, label in ((False, "5 distinct references"), (True, "one photo counted 5 times")):
        ceiling, batch = renderer_ceiling(args.weights, photo=photo)
        print(f"renderer alone (batch {batch}, random inputs, {label}): {ceiling:.1f} frames/s, the ceiling "
              "of this model", flush=True)  # fmt: skip
        figures[f"renderer alone, {label}"] = ceiling
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")


def compare_presets(args: argparse.Namespace, ref: Path) -> None:
    """``--presets``: the frames generate writes for ``--short`` seconds, encoded with each x264 preset."""
    from skimage.metrics import peak_signal_noise_ratio

    from cemnet_core.data import media
    from cemnet_core.generate import GenerateConfig, generate
    from cemnet_core.watermark import detect_watermark

    raw: list[np.ndarray] = []
    write = media.VideoWriter.write

    def keep(writer: media.VideoWriter, frames: np.ndarray) -> None:  # the frames generate encodes
        raw.append(np.array(frames))
        write(writer, frames)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        audio = looped_speech(args.real_data, args.short, tmp / "audio.wav")
        weights = None if args.weights == "default" else args.weights
        with mock.patch.object(media.VideoWriter, "write", keep):  # undone even if generate fails
            generate(ref, audio, tmp / "generated.mp4", weights, GenerateConfig(device="cpu", overlap=False))
        frames = np.concatenate(raw)
        height, width = frames.shape[1:3]
        for preset in ("medium", "fast", "faster", "veryfast", "superfast"):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            path = media.write_video(tmp / f"{preset}.mp4", frames, preset=preset)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            decoded = np.concatenate(list(media.iter_video_frames(path)))[:, :height, :width]
            psnr = np.mean([peak_signal_noise_ratio(a, b) for a, b in zip(frames, decoded, strict=True)])
            z = detect_watermark(path).z_score
            print(f"{preset:>9}: {1000 * cpu / len(frames):.1f} encoder CPU ms/frame, {psnr:.2f} dB to the "
                  f"raw frames, {path.stat().st_size / 1024:.0f} KiB, watermark z {z:.1f} "
                  f"({len(frames)} frames {width}x{height})", flush=True)  # fmt: skip


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux keeps that across fork + exec, so a
    child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--real-data", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=4.0, help="audio length of the throughput runs")
    parser.add_argument("--short", type=float, default=10.0)
    parser.add_argument("--long", type=float, default=300.0)
    parser.add_argument("--sizes", default="tiny,paper")
    parser.add_argument("--weights", default=None, help="time this trained bundle instead ('default')")
    parser.add_argument("--json", type=Path, default=None, help="with --weights: write the figures here")
    parser.add_argument("--presets", action="store_true", help="with --weights: compare x264 presets")
    parser.add_argument("--ref", default=PORTRAIT, help="reference photo or video, under --real-data")
    parser.add_argument("--child", nargs=4, metavar=("BUNDLE", "REF", "AUDIO", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--sequential", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        bundle, *paths = args.child
        weights = None if bundle == "default" else bundle
        figures = run_once(weights, *(Path(p) for p in paths), overlap=not args.sequential)
        print(json.dumps(figures))
        return
    ref = args.real_data / args.ref
    if args.weights:
        (compare_presets if args.presets else time_bundle)(args, ref)
        return
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for size in args.sizes.split(","):
            bundle = make_bundle(tmp / f"bundle_{size}", size)
            audio = looped_speech(args.real_data, args.seconds, tmp / "throughput.wav")
            figures = run_once(bundle, ref, audio, tmp / f"{size}.mp4")
            print(
                f"{size:>5}: {figures['frames']} frames, {figures['frames_per_second']:.2f} frames/s "
                f"(model load excluded), wall {figures['wall_s']:.1f} s",
                flush=True,
            )
        bundle = tmp / "bundle_tiny"
        if not bundle.exists():
            make_bundle(bundle, "tiny")
        peaks = {}
        for seconds in (args.short, args.long):
            audio = looped_speech(args.real_data, seconds, tmp / f"audio_{seconds:g}.wav")
            figures = _child(args, str(bundle), ref, audio, tmp / "memory.mp4")
            peaks[seconds] = figures["peak_rss_mib"]
            print(
                f"memory: {seconds:g} s audio -> peak RSS {figures['peak_rss_mib']:.0f} MiB "
                f"({figures['frames_per_second']:.1f} frames/s)",
                flush=True,
            )
        print(
            f"memory ratio {args.long:g} s / {args.short:g} s = {peaks[args.long] / peaks[args.short]:.3f} "
            "(goal <= 1.2)"
        )


if __name__ == "__main__":
    main()
