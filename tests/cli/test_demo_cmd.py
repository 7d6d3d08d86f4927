"""``cemnet demo`` through the real app: options and one-line refusals (full run: tests/test_demo.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cemnet_cli.main import app
from cemnet_core.demo import CONFIG_FILE
from cemnet_core.demo_config import DemoConfig
from cemnet_core.errors import ConfigError

runner = CliRunner()


def test_demo_help_lists_its_options() -> None:
    result = runner.invoke(app, ["demo", "--help"])
    assert result.exit_code == 0
    assert "--out" in result.stdout and "--quick" in result.stdout


def test_demo_refuses_a_folder_of_other_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CEMNET_DEBUG", raising=False)
    (tmp_path / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["demo", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == ConfigError.exit_code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not empty and holds no demo" in lines[0]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


def test_demo_quick_and_default_are_different_demos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CEMNET_DEBUG", raising=False)
    (tmp_path / CONFIG_FILE).write_text(json.dumps(DemoConfig.quick().to_dict()))
    result = runner.invoke(app, ["demo", "--out", str(tmp_path)])  # the default sizes, not --quick
    assert result.exit_code == ConfigError.exit_code
    assert "other settings" in result.stderr
