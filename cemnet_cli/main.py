"""The ``cemnet`` command: assembles the Typer app from one module per command group.

Core functions raise :class:`cemnet_core.errors.CemnetError`; every command is wrapped by
:func:`report_errors`, which prints that one message and exits with the error's code (also under
``typer.testing.CliRunner``); Ctrl-C prints one line and exits 130. ``--debug`` (or ``CEMNET_DEBUG=1``) shows
the traceback instead.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from cemnet_cli.options import FLAG
from cemnet_core import __version__
from cemnet_core.errors import CemnetError, Interrupted

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="cemnet",
    help="CEM-Net: emotional talking-face generation that follows the audio's emotion, "
    "even when the reference images show another one.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)
_state = {"debug": False}  # set by --debug on each invocation


def debug_enabled() -> bool:
    """True when tracebacks should be shown (``--debug`` on this invocation, or ``CEMNET_DEBUG=1``)."""
    return _state["debug"] or os.environ.get("CEMNET_DEBUG", "") not in ("", "0")


def print_error(exc: CemnetError) -> None:
    """Print a user error as one line on stderr (Ctrl-C as ``interrupted: ...``)."""
    label = "[yellow]interrupted[/]" if isinstance(exc, Interrupted) else "[bold red]error[/]"
    err_console.print(f"{label}: {escape(str(exc))}", highlight=False, soft_wrap=True)


def _report(exc: CemnetError | KeyboardInterrupt) -> int:
    """Print the one line for a user error or a Ctrl-C; returns the exit code (the caller exits with it)."""
    if isinstance(exc, KeyboardInterrupt):
        err_console.print("[yellow]interrupted[/]: stopped by Ctrl-C; finished work was kept.")
        return Interrupted.exit_code
    print_error(exc)
    return exc.exit_code


def report_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command: CemnetError -> one line + its exit code; Ctrl-C -> one line + 130 (unless --debug)."""
    if getattr(command, "__cemnet_guarded__", False):
        return command

    @functools.wraps(command)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (CemnetError, KeyboardInterrupt) as exc:
            if debug_enabled():
                raise
            raise typer.Exit(_report(exc)) from None

    guarded.__cemnet_guarded__ = True  # type: ignore[attr-defined]
    return guarded


def guard_commands(typer_app: typer.Typer) -> None:
    """Apply :func:`report_errors` to every command of ``typer_app`` and of its sub-groups (idempotent)."""
    for info in typer_app.registered_commands:
        if info.callback is not None:
            info.callback = report_errors(info.callback)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            guard_commands(group.typer_instance)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cemnet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", metavar=FLAG, callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", metavar=FLAG, help="Show full tracebacks on errors.")
    ] = False,
) -> None:
    _state["debug"] = debug


# Command groups register themselves here, one line each (keep the list sorted).
from cemnet_cli import demo_cmd  # noqa: E402, I001
from cemnet_cli import detect_cmd  # noqa: E402
from cemnet_cli import eval_cmd  # noqa: E402
from cemnet_cli import generate_cmd  # noqa: E402
from cemnet_cli import models_cmd  # noqa: E402
from cemnet_cli import preprocess_cmd  # noqa: E402
from cemnet_cli import synth_cmd  # noqa: E402
from cemnet_cli import train_cmd  # noqa: E402
from cemnet_cli import weights_cmd  # noqa: E402

demo_cmd.register(app)
detect_cmd.register(app)
eval_cmd.register(app)
generate_cmd.register(app)
models_cmd.register(app)
preprocess_cmd.register(app)
synth_cmd.register(app)
train_cmd.register(app)
weights_cmd.register(app)

guard_commands(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``cemnet`` script."""
    if "--debug" in (argv if argv is not None else sys.argv[1:]):
        _state["debug"] = True
    try:
        app(args=argv, standalone_mode=True)
    except (CemnetError, KeyboardInterrupt) as exc:  # outside a command (while importing or parsing)
        if debug_enabled():
            raise
        sys.exit(_report(exc))


if __name__ == "__main__":
    main()
