"""``cemnet weights list|pull|verify|path``: the pretrained files of ``weights.toml`` (core: weights.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from cemnet_cli.options import FLAG, WeightsDirOption
from cemnet_core import weights
from cemnet_core.errors import ChecksumError

weights_app = typer.Typer(
    help="Pretrained files: list, download (pull), verify, locate.", no_args_is_help=True
)
console = Console()


def _size(count: int) -> str:
    if not count:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return str(count)


@weights_app.command("list")
def list_command(weights_dir: WeightsDirOption = None) -> None:
    """Show every registered file: size, source, whether a copy is present and passes its sha256."""
    table = Table(title="weights.toml")
    table.add_column("name", no_wrap=True)
    table.add_column("size", no_wrap=True, justify="right")
    table.add_column("source", overflow="fold")
    table.add_column("cached", overflow="fold")
    table.add_column("verified")
    for name in weights.registry():
        state = weights.status(name, weights_dir)
        verified = {True: "[green]yes[/]", False: "[red]NO[/]", None: "-"}[state.verified]
        if not state.entry.pinned:
            verified = "[yellow]no pinned sha256[/]"
        table.add_row(
            name,
            _size(state.entry.size),
            state.entry.source,
            str(state.path) if state.path else "no",
            verified,
        )
    console.print(table)


@weights_app.command("pull")
def pull_command(
    names: Annotated[list[str] | None, typer.Argument(help="Names to fetch (default: all pinned).")] = None,
    weights_dir: WeightsDirOption = None,
) -> None:
    """Download (or find locally) and verify registered files."""
    chosen = names or [name for name, entry in weights.registry().items() if entry.pinned]
    skipped = [] if names else [name for name, entry in weights.registry().items() if not entry.pinned]
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        for name in chosen:
            task = progress.add_task(name, total=None)

            def advance(done: int, total: int | None, task: int = task) -> None:
                progress.update(task, completed=done, total=total)

            path = weights.resolve(name, weights_dir=weights_dir, progress=advance)
            size = path.stat().st_size
            progress.update(task, completed=size, total=size)
            progress.console.print(f"[green]ok[/] {name}: {path}", highlight=False, soft_wrap=True)
    for name in skipped:
        console.print(
            f"[yellow]skipped[/] {name}: no pinned sha256 in weights.toml", highlight=False, soft_wrap=True
        )


@weights_app.command("verify")
def verify_command(weights_dir: WeightsDirOption = None) -> None:
    """Check the sha256 of every registered file found locally; exit non-zero naming any bad file."""
    verified, absent, bad = [], [], []
    for name in weights.registry():
        state = weights.status(name, weights_dir)
        if state.verified:
            verified.append(name)
            console.print(f"[green]ok[/] {name}: {state.path}", highlight=False, soft_wrap=True)
        elif state.verified is False:
            bad.append(state)
            console.print(f"[red]BAD[/] {name}: {state.path}", highlight=False, soft_wrap=True)
        else:
            absent.append(name)
    console.print(
        f"{len(verified)} verified, {len(bad)} bad, {len(absent)} not present"
        + (f" ({', '.join(absent)})" if absent else ""),
        highlight=False,
        soft_wrap=True,
    )
    if bad:
        files = ", ".join(str(state.path) for state in bad)
        raise ChecksumError(
            f"{len(bad)} file(s) fail their sha256: {files}; delete them and run `cemnet weights pull`"
        )


@weights_app.command("path")
def path_command(
    name: Annotated[str, typer.Argument(help="Registered name, e.g. mediapipe.face_landmarker.")],
    weights_dir: WeightsDirOption = None,
    download: Annotated[
        bool, typer.Option("--download", metavar=FLAG, help="Fetch the file if it is not local.")
    ] = False,
) -> None:
    """Print the local, verified path of one registered file."""
    typer.echo(str(weights.resolve(name, weights_dir=weights_dir, download=download)))


def register(app: typer.Typer) -> None:
    """Add the ``weights`` command group to the ``cemnet`` app."""
    app.add_typer(weights_app, name="weights")
