"""``cemnet synth`` end to end through Typer's runner, on a tiny corpus."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from cemnet_cli import synth_cmd
from cemnet_core.errors import ConfigError, OutputError


def _app() -> typer.Typer:
    app = typer.Typer()
    synth_cmd.register(app)
    app.command("noop")(lambda: None)  # a second command keeps `synth` a subcommand, as in the cemnet app
    return app


ARGS = [
    "--speakers",
    "1",
    "--sentences",
    "1",
    "--emotions",
    "happy,neutral",
    "--levels",
    "1",
    "--size",
    "64",
    "--workers",
    "1",
]


def test_synth_command_makes_the_corpus_and_refuses_to_overwrite(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(_app(), ["synth", str(tmp_path / "corpus"), *ARGS])
    assert result.exit_code == 0, result.output
    assert "2 clips" in result.output
    manifest = json.loads((tmp_path / "corpus" / "synth.json").read_text())
    assert {clip["emotion"] for clip in manifest["clips"]} == {"happy", "neutral"}
    assert (tmp_path / "corpus" / "M001" / "video" / "front" / "happy" / "level_1" / "001.mp4").is_file()

    again = runner.invoke(_app(), ["synth", str(tmp_path / "corpus"), *ARGS])
    assert isinstance(again.exception, OutputError) and "--overwrite" in str(again.exception)
    forced = runner.invoke(_app(), ["synth", str(tmp_path / "corpus"), *ARGS, "--overwrite", "--seed", "3"])
    assert forced.exit_code == 0, forced.output
    assert json.loads((tmp_path / "corpus" / "synth.json").read_text())["seed"] == 3


def test_synth_command_rejects_bad_options(tmp_path: Path) -> None:
    runner = CliRunner()
    bad_level = runner.invoke(_app(), ["synth", str(tmp_path / "x"), "--levels", "one"])
    assert isinstance(bad_level.exception, ConfigError)
    bad_emotion = runner.invoke(_app(), ["synth", str(tmp_path / "x"), "--emotions", "joy"])
    assert isinstance(bad_emotion.exception, ConfigError) and "angry" in str(bad_emotion.exception)
    assert not (tmp_path / "x").exists()
