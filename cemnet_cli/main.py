"""The ``cemnet`` command: assembles the Typer app from one module per command group.

Core functions raise :class:`cemnet_core.errors.CemnetError`; :func:`main` prints that one message and exits
non-zero. ``--debug`` (or ``CEMNET_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.console import Console

from cemnet_core import __version__
from cemnet_core.errors import CemnetError, Interrupted

app = typer.Typer(
    name="cemnet",
    help="CEM-Net: emotional talking-face generation that follows the audio's emotion, "
    "even when the reference images show another one.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cemnet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    if debug:
        os.environ["CEMNET_DEBUG"] = "1"


# Command groups register themselves here, one line each (keep the list sorted).
from cemnet_cli import weights_cmd  # noqa: E402

weights_cmd.register(app)


def _debug() -> bool:
    return os.environ.get("CEMNET_DEBUG", "") not in ("", "0") or "--debug" in sys.argv


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``cemnet`` script."""
    try:
        app(args=argv, standalone_mode=True)
    except KeyboardInterrupt:
        if _debug():
            raise
        err_console.print("[yellow]interrupted[/]: stopped by Ctrl-C; finished work was kept.")
        sys.exit(Interrupted.exit_code)
    except CemnetError as exc:
        if _debug():
            raise
        err_console.print(f"[bold red]error[/]: {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
