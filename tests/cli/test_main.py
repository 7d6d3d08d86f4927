"""The ``cemnet`` app shell: version, one-line errors with exit codes, Ctrl-C, ``--debug``."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from cemnet_cli.main import app, guard_commands, main
from cemnet_core import __version__
from cemnet_core.errors import CemnetError, MediaError, WeightsError

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"cemnet {__version__}"


def test_user_error_is_one_line_with_its_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CEMNET_DEBUG", raising=False)
    result = runner.invoke(app, ["weights", "path", "nope.x"])
    assert result.exit_code == WeightsError.exit_code == 4
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown weights 'nope.x'")
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_debug_flag_and_env_show_the_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CEMNET_DEBUG", raising=False)
    result = runner.invoke(app, ["--debug", "weights", "path", "nope.x"])
    assert isinstance(result.exception, WeightsError)  # raised through, so a traceback is shown
    again = runner.invoke(app, ["weights", "path", "nope.x"])
    assert again.exit_code == 4 and isinstance(again.exception, SystemExit)  # --debug does not stick
    monkeypatch.setenv("CEMNET_DEBUG", "1")
    assert isinstance(runner.invoke(app, ["weights", "path", "nope.x"]).exception, WeightsError)


def test_main_entry_point_exits_with_the_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CEMNET_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["weights", "path", "nope.x"])
    assert exit_info.value.code == 4
    assert capsys.readouterr().err.count("\n") == 1


def _app_raising(error: BaseException) -> typer.Typer:
    """A one-command app (as command modules build them) guarded the way main.py guards its commands."""
    demo = typer.Typer()

    @demo.command()
    def work(count: int = 1) -> None:
        """Raise the given error."""
        raise error

    @demo.command()
    def other() -> None:
        """Second command so that Typer keeps subcommand names."""

    guard_commands(demo)
    guard_commands(demo)  # idempotent
    return demo


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CEMNET_DEBUG", raising=False)
    result = runner.invoke(_app_raising(KeyboardInterrupt()), ["work", "--count", "2"])
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines() == ["interrupted: stopped by Ctrl-C; finished work was kept."]


def test_messages_are_printed_literally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CEMNET_DEBUG", raising=False)
    result = runner.invoke(_app_raising(MediaError("[video] a.mp4: has no audio stream")), ["work"])
    assert result.exit_code == MediaError.exit_code
    assert result.stderr.strip() == "error: [video] a.mp4: has no audio stream"  # no rich markup eaten


def test_programming_errors_keep_their_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CEMNET_DEBUG", raising=False)
    result = runner.invoke(_app_raising(ValueError("mouth: expected (B, T, 57, 2)")), ["work"])
    assert isinstance(result.exception, ValueError) and not isinstance(result.exception, CemnetError)


def test_count_bar_logs_plain_lines_where_no_bar_can_be_drawn() -> None:
    import io

    from rich.console import Console

    from cemnet_cli.progress import count_bar

    stream = io.StringIO()
    with count_bar("eval", "clips", console=Console(file=stream, width=100)) as progress:
        for done in range(1, 21):
            progress(done, 20)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11 and lines[0].startswith("eval: 1/20, ") and lines[-1].startswith("eval: 20/20, ")
    assert all(" clips/s, " in line for line in lines)
    quiet = io.StringIO()
    with count_bar("generate", "frames", console=Console(file=quiet), terminal_only=True) as progress:
        progress(5, 5)
    assert quiet.getvalue() == ""


def test_train_bar_logs_a_last_line_where_no_bar_can_be_drawn() -> None:
    import io

    from rich.console import Console

    from cemnet_cli.progress import train_bar
    from cemnet_core.train.loop import TrainProgress

    stream = io.StringIO()
    with train_bar(Console(file=stream, width=100)) as progress:
        for step in range(1, 6):
            progress(TrainProgress(step, 5, {"loss": 0.5 / step}, 10.0))
    assert stream.getvalue().splitlines() == ["train: 5/5, loss 0.1, 10.00 it/s"]  # no minute has passed
