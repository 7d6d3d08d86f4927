"""``cemnet preprocess mead|lrs2|folder SRC DST``: turn a corpus into processed clips (DESIGN section 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cemnet_cli.options import FLAG
from cemnet_cli.progress import count_bar
from cemnet_core.data.faces import FaceConfig
from cemnet_core.data.tracking import ENGINES
from cemnet_core.errors import InputError
from cemnet_core.preprocess import LANDMARK_SOURCES, PreprocessOptions, parse_shard, preprocess

Workers = Annotated[int, typer.Option("--workers", "-j", help="Worker processes (one landmarker each).")]
Shard = Annotated[str, typer.Option("--shard", help="Process only shard i of n (i/n, numbered from 0).")]
Landmarks = Annotated[
    str, typer.Option("--landmarks", help=f"Landmarks: {' or '.join(LANDMARK_SOURCES)} (true: synth corpus).")
]
Engine = Annotated[
    str,
    typer.Option(
        "--engine",
        help="How MediaPipe's landmark model runs: litert (own tracking, faster) or mediapipe (its graph).",
    ),
]
Preview = Annotated[
    bool, typer.Option("--preview", metavar=FLAG, help="Write PNGs of a few crops with landmarks.")
]
AllowSilent = Annotated[
    bool,
    typer.Option(
        "--allow-silent", metavar=FLAG, help="Keep video-only clips (empty audio, mel) instead of failing."
    ),
]


def preprocess_command(
    layout: Annotated[str, typer.Argument(help="Corpus layout: mead, lrs2 or folder.")],
    src: Annotated[Path, typer.Argument(help="Corpus root folder.")],
    dst: Annotated[Path, typer.Argument(help="Output folder (clips, manifest.jsonl, failures.jsonl).")],
    workers: Workers = 1,
    shard: Shard = "0/1",
    landmarks: Landmarks = "mediapipe",
    engine: Engine = "litert",
    preview: Preview = False,
    allow_silent: AllowSilent = False,
) -> None:
    """Decode, track faces, crop to 128x128, compute mels and write one clip file per source clip."""
    if engine not in ENGINES:
        raise InputError(f"--engine {engine!r}: use one of {', '.join(ENGINES)}")
    face = FaceConfig(engine=engine)
    options = PreprocessOptions(landmarks=landmarks, allow_silent=allow_silent, preview=preview, face=face)
    with count_bar("preprocess", "clips", digits=2, transient=False) as progress:
        summary = preprocess(
            layout, src, dst, workers=workers, shard=parse_shard(shard), options=options, progress=progress
        )
    console = Console()
    for clip_id, ratio in sorted(summary.face_ratios.items()):
        console.print(f"  {clip_id}: face found on {ratio:.1%} of frames", highlight=False, soft_wrap=True)
    for clip_id, reason in sorted(summary.failures.items()):
        first_line = reason.splitlines()[0] if reason else ""
        console.print(f"  [red]failed[/] {clip_id}: {first_line}", highlight=False, soft_wrap=True)
    rate = summary.frames / summary.seconds if summary.seconds else 0.0
    console.print(
        f"{summary.processed} processed, {summary.skipped} skipped (already done), {summary.failed} failed "
        f"of {summary.total}; {summary.frames} frames in {summary.seconds:.1f} s ({rate:.1f} frames/s); "
        f"mean face ratio {summary.mean_face_ratio:.1%}; output in {dst}",
        highlight=False,
        soft_wrap=True,
    )
    if summary.failed:
        console.print(f"see {dst / 'failures.jsonl'} for the reasons", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``preprocess`` to the ``cemnet`` app."""
    app.command("preprocess")(preprocess_command)
