"""``cemnet generate``: a talking-face video of a reference face saying an audio file (core: generate.py)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from cemnet_cli.options import BatchSizeOption, DeviceOption, OutputOption
from cemnet_cli.progress import count_bar
from cemnet_cli.weights_cmd import local_weights
from cemnet_core.contracts import EMOTIONS, VIDEO_FPS
from cemnet_core.generate import GenerateConfig, generate


def generate_command(
    ref: Annotated[Path, typer.Option("--ref", help="Reference face: an image, an image folder or a video.")],
    audio: Annotated[Path, typer.Option("--audio", help="Driving speech: any audio file or video.")],
    out: OutputOption = None,
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights",
            help="Weights folder from `cemnet export`, the name of one under CEMNET_WEIGHTS_DIR "
            "(default: cemnet), or a Hub bundle hf://OWNER/REPO[@REVISION].",
            show_default=False,
        ),
    ] = None,
    emotion: Annotated[
        str, typer.Option("--emotion", help=f"auto (follow the audio) or one of {', '.join(EMOTIONS)}.")
    ] = "auto",
    intensity: Annotated[
        float, typer.Option("--intensity", help="Scale of the emotional mouth change (0 none, 1 as trained).")
    ] = 1.0,
    mouth_gain: Annotated[
        float | None,
        typer.Option(
            "--mouth-gain",
            help="Scale of the lip motion (default: the weights' calibrated one).",
            show_default=False,
        ),
    ] = None,
    pose_video: Annotated[
        Path | None, typer.Option("--pose-video", help="Video whose head motion the face follows.")
    ] = None,
    device: DeviceOption = None,
    batch_size: BatchSizeOption = None,
    fps: Annotated[
        float, typer.Option("--fps", help="Output frame rate (the models run at 25).")
    ] = VIDEO_FPS,
    encoder_preset: Annotated[
        str,
        typer.Option(
            "--encoder-preset", help="libx264 speed preset of the mp4 (slower: smaller file, same CRF 18)."
        ),
    ] = GenerateConfig.encoder_preset,
) -> None:
    """Make REF say AUDIO, with the emotion of the voice (or --emotion), as an H.264 + AAC mp4."""
    config = GenerateConfig(
        emotion=emotion, intensity=intensity, fps=fps, batch_size=batch_size, device=device,
        mouth_gain=mouth_gain, encoder_preset=encoder_preset,
    )  # fmt: skip
    target = out if out is not None else Path(f"{audio.stem}_talking.mp4")
    weights = local_weights(weights)
    err = Console(stderr=True)
    bar = count_bar("generate", "frames", console=err, rate_from_first_report=True, terminal_only=True)
    with bar as report, warnings.catch_warnings():  # core's warnings come back in result.skipped
        warnings.simplefilter("ignore", UserWarning)
        result = generate(ref, audio, target, weights, config, pose_video=pose_video, progress=report)
    for warning in result.skipped:
        err.print(f"[yellow]warning[/]: {escape(warning)}", highlight=False, soft_wrap=True)
    Console().print(
        f"{result.path}: {result.frames} frames ({result.duration:.2f} s) at "
        f"{result.frames_per_second:.1f} frames/s from {result.references} reference frame(s)",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add ``generate`` to the ``cemnet`` app."""
    app.command("generate")(generate_command)
