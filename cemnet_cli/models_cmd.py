"""``cemnet models [--preset paper|tiny]``: every registered model kind with its size and cost.

Core: :func:`cemnet_core.models.profile.profile_kinds`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cemnet_core.models.profile import profile_kinds


class PresetChoice(StrEnum):
    """Config presets every model kind offers."""

    paper = "paper"
    tiny = "tiny"


def models_command(
    preset: Annotated[
        PresetChoice, typer.Option("--preset", help="paper: the paper's sizes; tiny: the test sizes.")
    ] = PresetChoice.paper,
) -> None:
    """List every model kind with parameters and GFLOPs per generated frame (batch 1, eval mode)."""
    profiles = profile_kinds(preset.value)
    table = Table(title=f"CEM-Net models ({preset.value} preset)")
    table.add_column("kind", no_wrap=True)
    table.add_column("class", no_wrap=True)
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("trainable", justify="right", no_wrap=True)
    table.add_column("GFLOPs/frame", justify="right", no_wrap=True)
    for p in profiles:
        gflops = "n/a" if p.gflops_per_frame is None else f"{p.gflops_per_frame:.4g}"
        table.add_row(p.kind, p.model_class, f"{p.params:,}", f"{p.trainable_params:,}", gflops)
    console = Console()
    natural = console.measure(table, options=console.options.update(width=1000)).maximum
    if natural > console.width:  # a pipe or a narrow terminal: wrap lines rather than cut names and headers
        console = Console(width=natural)
    console.print(table)
    console.print(
        "GFLOPs: FlopCounterMode (2 per multiply-add), one batch-1 forward / frames it covers.",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add ``cemnet models`` to ``app``."""
    app.command("models")(models_command)
