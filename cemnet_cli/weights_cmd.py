"""``cemnet weights list|pull|verify|path|show``: the pretrained files and weights bundles of
``weights.toml`` (core: weights.py; the starter release is a bundle entry); ``cemnet weights push``: a
weights bundle to the Hub (core: bundle.py, hub.py)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
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
from cemnet_core.bundle import MODEL_CARD, bundle_names, push_bundle, resolve_bundle
from cemnet_core.errors import ChecksumError
from cemnet_core.hub import UnpinnedBundleWarning, is_hub_name

weights_app = typer.Typer(
    help="Pretrained files and weights bundles: list, download (pull), verify, locate, show a model card; "
    "publish a weights bundle (push).",
    no_args_is_help=True,
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
    """Show every registered file and bundle: size, source, whether a copy is present and passes its check."""
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

            if weights.get_entry(name).bundle:  # a folder: shipped, or a Hub bundle fetched as --weights does
                path = resolve_bundle(name)
                progress.update(task, completed=1, total=1)
                progress.console.print(f"[green]ok[/] {name}: {path}", highlight=False, soft_wrap=True)
                continue
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


@weights_app.command("show")
def show_command(
    name: Annotated[
        str, typer.Argument(help="A bundle or file of weights.toml, or a weights folder / hf:// bundle.")
    ] = "cemnet.starter",
) -> None:
    """Print a weights bundle's model card (training data, licences, figures, limits), or a file's entry."""
    if name in weights.registry() and not weights.get_entry(name).bundle:
        entry = weights.get_entry(name)
        sha256 = entry.sha256 or "(not pinned)"
        typer.echo(f"{name}: {entry.filename}, {_size(entry.size)}, licence {entry.licence}\n"
                   f"source: {entry.source}\nsha256: {sha256}\n{entry.purpose}")  # fmt: skip
        return
    folder = resolve_bundle(local_weights(name))
    card = folder / MODEL_CARD
    if not card.is_file():
        typer.echo(f"{folder} has no model card ({MODEL_CARD}); its release folders hold config.json files")
        return
    typer.echo(card.read_text(encoding="utf-8"))


@weights_app.command("push")
def push_command(
    bundle: Annotated[Path, typer.Argument(help="Weights bundle folder (what `cemnet export` wrote).")],
    repo: Annotated[str, typer.Argument(help="Hub model repo OWNER/REPO (created if missing).")],
    revision: Annotated[
        str | None, typer.Option("--revision", help="Branch to commit to (default: the repo's main branch).")
    ] = None,
    private: Annotated[
        bool, typer.Option("--private", metavar=FLAG, help="Create the repo private (if it is new).")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", metavar=FLAG, help="Check the bundle and list its files; send nothing."),
    ] = False,
) -> None:
    """Publish a weights bundle as a Hub model repo, after checking every role and every checksum."""
    files, pushed = push_bundle(bundle, repo, revision=revision, private=private, dry_run=dry_run)
    for name in files:
        typer.echo(name)
    if pushed is None:
        typer.echo(f"{len(files)} files would be uploaded to {repo} (dry run: nothing sent)")
    else:
        typer.echo(f"pushed {len(files)} files: use --weights {pushed}")


def local_weights(weights_name: str | None) -> str | None:
    """A command's ``--weights`` as given, or for a Hub bundle (``hf://...``) its checked local snapshot, or
    for a bundle of ``weights.toml`` (``cemnet.starter``) its checked folder.

    An unpinned Hub bundle's warning is printed as one line (other warnings of the download are dropped).
    """
    if weights_name is None:
        return None
    if not is_hub_name(weights_name):
        registered = weights_name in bundle_names() and not Path(weights_name).is_dir()
        return str(resolve_bundle(weights_name)) if registered else weights_name
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnpinnedBundleWarning)
        folder = resolve_bundle(weights_name)
    for warning in caught:
        if issubclass(warning.category, UnpinnedBundleWarning):
            Console(stderr=True).print(
                f"[yellow]warning[/]: {escape(str(warning.message))}", highlight=False, soft_wrap=True
            )
    return str(folder)


def register(app: typer.Typer) -> None:
    """Add the ``weights`` command group to the ``cemnet`` app."""
    app.add_typer(weights_app, name="weights")
