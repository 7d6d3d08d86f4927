"""``cemnet eval``: the Table II protocol (Sec. IV-D) on a processed corpus with a weights bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cemnet_cli.options import DataOption, DeviceOption
from cemnet_cli.progress import count_bar
from cemnet_cli.weights_cmd import local_weights
from cemnet_core.errors import ConfigError


def eval_command(
    data: DataOption,
    weights: Annotated[
        str,
        typer.Option(
            "--weights",
            help="Weights bundle written by `cemnet export`, or on the Hub: hf://OWNER/REPO[@REVISION].",
        ),
    ],
    setting: Annotated[
        str, typer.Option("--setting", help="cross-emotion, neutral-base, both (those two) or self.")
    ] = "both",
    runs: Annotated[
        int, typer.Option("--runs", help="Seeds (pairings) to average over (the paper: 5).", min=1)
    ] = 5,
    ablate: Annotated[
        list[str] | None, typer.Option("--ablate", help="Also run without a module: aee or ebm (repeatable).")
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Targets: test, val, train or all.")] = "test",
    max_clips: Annotated[
        int | None, typer.Option("--max-clips", help="Evaluate only the first N targets.", min=1)
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for results.json/.csv and the figure.")
    ] = Path("eval_results"),
    device: DeviceOption = None,
    landmarks: Annotated[
        str,
        typer.Option("--landmarks", help="predicted, or truth: render from the true mouth (renderer only)."),
    ] = "predicted",
) -> None:
    """Score CEM-Net (and its ablations, the baselines and the ground truth) as in Table II."""
    from cemnet_core.eval.protocol import ALL_SETTINGS, LANDMARK_SOURCES, SETTINGS
    from cemnet_core.eval.report import evaluate_and_report

    if setting not in (*ALL_SETTINGS, "both"):
        raise ConfigError(f"--setting must be one of {', '.join(ALL_SETTINGS)} or both, got {setting!r}")
    if landmarks not in LANDMARK_SOURCES:
        raise ConfigError(f"--landmarks must be one of {', '.join(LANDMARK_SOURCES)}, got {landmarks!r}")
    settings = SETTINGS if setting == "both" else (setting,)
    weights = local_weights(weights) or weights
    with count_bar("eval") as progress:
        result, table, paths = evaluate_and_report(
            data, weights, out, settings, runs, tuple(ablate or ()), split, max_clips, device, progress,
            landmarks,
        )  # fmt: skip
    console = Console()
    console.print(table)
    console.print(f"{len(result.rows)} clip scores; " + ", ".join(f"{k}: {v}" for k, v in paths.items()),
                  highlight=False, soft_wrap=True)  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add ``eval`` to the ``cemnet`` app."""
    app.command("eval")(eval_command)
