"""``cemnet weights list|pull|verify|path`` end to end with CliRunner on the shared assets."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cemnet_cli.main import app
from cemnet_core import weights

runner = CliRunner()
SHARED_ASSETS = (
    "mediapipe.face_landmarker",
    "fer2013.mini_xception",
    "dlib.face_recognition_resnet_v1",
    "dlib.shape_predictor_5",
)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test here may reach the network or a real user cache."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub_cache"))
    monkeypatch.setenv("CEMNET_CACHE", str(tmp_path / "cemnet_cache"))
    monkeypatch.delenv("CEMNET_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("CEMNET_DEBUG", raising=False)


def test_verify_reports_the_shared_assets(weights_dir: Path) -> None:
    result = runner.invoke(app, ["weights", "verify", "--weights-dir", str(weights_dir)])
    assert result.exit_code == 0, result.output
    for name in SHARED_ASSETS:
        assert f"ok {name}: {weights_dir / weights.get_entry(name).filename}" in result.stdout
    assert "4 verified, 0 bad" in result.stdout


def test_verify_names_a_file_with_one_changed_byte(weights_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "assets"
    folder.mkdir()
    for name in SHARED_ASSETS:
        filename = weights.get_entry(name).filename
        os.symlink(weights_dir / filename, folder / filename)
    bad = folder / weights.get_entry("dlib.shape_predictor_5").filename
    bad.unlink()
    shutil.copyfile(weights_dir / bad.name, bad)
    with bad.open("r+b") as handle:
        handle.seek(1000)
        value = handle.read(1)[0]
        handle.seek(1000)
        handle.write(bytes([value ^ 1]))
    result = runner.invoke(app, ["weights", "verify", "--weights-dir", str(folder)])
    assert result.exit_code == 4
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "Traceback" not in result.output
    assert "3 verified, 1 bad" in result.stdout


def test_list_shows_every_entry_and_its_state(weights_dir: Path) -> None:
    args = ["weights", "list", "--weights-dir", str(weights_dir)]
    result = runner.invoke(app, args, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for name in weights.registry():
        assert name in result.stdout
    assert result.stdout.count(" yes ") == 4 and "no pinned sha256" in result.stdout


def test_path_and_pull_use_the_local_folder(weights_dir: Path) -> None:
    local = ["--weights-dir", str(weights_dir)]
    result = runner.invoke(app, ["weights", "path", "fer2013.mini_xception", *local])
    assert result.exit_code == 0 and result.stdout.strip() == str(weights_dir / "fer2013_mini_xception.hdf5")
    pulled = runner.invoke(app, ["weights", "pull", "dlib.shape_predictor_5", *local])
    assert pulled.exit_code == 0 and "ok dlib.shape_predictor_5" in pulled.stdout


def test_offline_pull_of_a_missing_file_says_how_to_get_it(tmp_path: Path) -> None:
    result = runner.invoke(app, ["weights", "pull", "vgg19.imagenet", "--weights-dir", str(tmp_path)])
    assert result.exit_code == 4
    assert "HF_HUB_OFFLINE" in result.stderr and "--weights-dir" in result.stderr
    refused = runner.invoke(app, ["weights", "path", "syncnet.v2"])
    assert refused.exit_code == 4 and "no pinned sha256" in refused.stderr
