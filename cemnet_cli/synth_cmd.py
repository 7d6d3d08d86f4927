"""``cemnet synth DST``: make the procedural MEAD-layout corpus (DESIGN section 9)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cemnet_cli.options import FLAG
from cemnet_cli.progress import count_bar
from cemnet_core.contracts import EMOTIONS
from cemnet_core.data.synthetic import SynthConfig, plan, synth
from cemnet_core.errors import ConfigError


def _parse_list(text: str, what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ConfigError(f"--{what} is empty; give a comma-separated list")
    return items


def synth_command(
    dst: Annotated[Path, typer.Argument(help="Output folder (MEAD layout + synth.json).")],
    speakers: Annotated[int, typer.Option("--speakers", help="Number of speakers.")] = 4,
    sentences: Annotated[int, typer.Option("--sentences", help="Sentences per speaker and emotion.")] = 3,
    emotions: Annotated[
        str, typer.Option("--emotions", help=f"all, or a list from {','.join(EMOTIONS)}.")
    ] = "all",
    levels: Annotated[
        str, typer.Option("--levels", help="Emotion levels, e.g. 1,2,3 (neutral: 1 only).")
    ] = "1,2,3",
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed; the same seed gives the same corpus.")
    ] = 0,
    size: Annotated[int, typer.Option("--size", help="Frame size in pixels (even).")] = 256,
    workers: Annotated[int, typer.Option("--workers", "-j", help="Worker processes (0: one per CPU).")] = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", metavar=FLAG, help="Write into a non-empty DST.")
    ] = False,
) -> None:
    """Make talking faces with true landmarks: speakers x emotions x levels x sentences clips."""
    chosen = EMOTIONS if emotions.strip() == "all" else tuple(_parse_list(emotions, "emotions"))
    try:
        level_values = tuple(int(level) for level in _parse_list(levels, "levels"))
    except ValueError as exc:
        raise ConfigError(f"--levels must be integers like 1,2,3, got {levels!r}") from exc
    config = SynthConfig(
        speakers=speakers, sentences=sentences, emotions=chosen, levels=level_values, seed=seed, size=size
    )
    started = time.perf_counter()
    with count_bar("synth", "clips") as progress:
        manifest = synth(config, dst, workers=workers or None, overwrite=overwrite, progress=progress)
    seconds = time.perf_counter() - started
    Console().print(
        f"{len(plan(config, dst))} clips in {seconds:.1f} s; corpus in {dst}, labels in {manifest}",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add ``synth`` to the ``cemnet`` app."""
    app.command("synth")(synth_command)
