"""``cemnet detect VIDEO [VIDEO...]``: was this video made by cemnet? (metadata tag + invisible watermark)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cemnet_cli.options import FLAG
from cemnet_core.watermark import WatermarkConfig, detect_watermark


def detect_command(
    videos: Annotated[list[Path], typer.Argument(help="Video files to check.", show_default=False)],
    as_json: Annotated[
        bool, typer.Option("--json", metavar=FLAG, help="Print one JSON object per video instead.")
    ] = False,
    max_frames: Annotated[
        int, typer.Option("--max-frames", help="Frames averaged per video (0: all).", min=0)
    ] = 500,
) -> None:
    """Report, for each video, its provenance tag, watermark z-score and the verdict (exit code 0)."""
    config = WatermarkConfig()
    results = [(video, detect_watermark(video, config, max_frames=max_frames or None)) for video in videos]
    console = Console()
    if as_json:
        for video, detection in results:
            record = {"file": str(video), **detection.to_dict(), "made_by_cemnet": detection.made_by_cemnet}
            typer.echo(json.dumps(record))
        return
    table = Table(title=f"cemnet provenance (watermark threshold z >= {config.threshold})")
    for column in ("file", "metadata tag", "watermark z", "frames", "verdict"):
        table.add_column(column, justify="right" if column in ("watermark z", "frames") else "left")
    for video, detection in results:
        if detection.marked:
            verdict = "[bold red]made by cemnet[/] (watermark)"
        elif detection.metadata_tag:
            verdict = "[yellow]tagged as cemnet[/] (no watermark)"
        else:
            verdict = "[green]no cemnet mark[/]"
        table.add_row(
            str(video),
            "yes" if detection.metadata_tag else "no",
            f"{detection.z_score:.1f}",
            str(detection.frames_used),
            verdict,
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``detect`` to the ``cemnet`` app."""
    app.command("detect")(detect_command)
