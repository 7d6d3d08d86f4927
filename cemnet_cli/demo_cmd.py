"""``cemnet demo [--out DIR] [--quick]``: the end-to-end demo on a procedural corpus (cemnet_core.demo)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cemnet_cli.options import FLAG, DeviceOption
from cemnet_cli.progress import ConsoleDemoLog, step_bars
from cemnet_core.demo import run_demo
from cemnet_core.demo_config import DemoConfig


def demo_command(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Demo folder (corpus, data, runs, weights, eval, demo.mp4).")
    ] = Path("demo_out"),
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", metavar=FLAG, help="The smallest sizes (a couple of minutes; what the tests run)."
        ),
    ] = False,
    device: DeviceOption = None,
) -> None:
    """Make a corpus, preprocess it, train every stage briefly, evaluate, and render a video.

    Rerunning with the same --out skips the finished steps.
    """
    preset = DemoConfig.quick() if quick else DemoConfig.default()
    config = dataclasses.replace(preset, device=device)
    console = Console()
    with step_bars() as progress:
        result = run_demo(out, config, ConsoleDemoLog(console), progress)
    console.rule("[bold]demo finished", align="left")
    console.print(f"video:   {result.video}", highlight=False, soft_wrap=True)
    console.print(f"metrics: {result.metrics}", highlight=False, soft_wrap=True)
    console.print(f"weights: {result.weights} (cemnet generate --weights {result.weights})", highlight=False,
                  soft_wrap=True)  # fmt: skip
    console.print(f"took {result.seconds['total']:.0f} s; step times in {result.out / 'demo.json'}",
                  highlight=False, soft_wrap=True)  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the ``cemnet`` app."""
    app.command("demo")(demo_command)
