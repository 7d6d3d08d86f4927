"""``cemnet models``: a table of every registered kind with parameters and GFLOPs per frame."""

from __future__ import annotations

from typer.testing import CliRunner

from cemnet_cli.main import app
from cemnet_core.models import MODEL_KINDS, build_model

runner = CliRunner()


def test_models_lists_every_kind_with_its_parameter_count() -> None:
    result = runner.invoke(app, ["models", "--preset", "tiny"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "tiny preset" in result.stdout
    for kind, (config_cls, _) in MODEL_KINDS.items():
        params = sum(p.numel() for p in build_model(kind, config_cls.tiny().to_dict()).parameters())
        row = next(line for line in result.stdout.splitlines() if f" {kind} " in line)
        assert f"{params:,}" in row


def test_unknown_preset_is_refused() -> None:
    result = runner.invoke(app, ["models", "--preset", "huge"])
    assert result.exit_code == 2
    assert "huge" in result.output
