"""``cemnet weights list|pull|verify|path`` end to end with CliRunner on the shared assets; ``weights push``
and ``--weights hf://...`` against the local fake Hub."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fake_hub import FakeHub
from typer.testing import CliRunner

from cemnet_cli.main import app
from cemnet_core import weights
from cemnet_core.bundle import WEIGHT_BUNDLE_LAYOUT, load_bundle, resolve_bundle

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
    assert "ok cemnet.starter: " in result.stdout  # the shipped starter release, checked by its digest
    assert "5 verified, 0 bad" in result.stdout


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
    assert "4 verified, 1 bad" in result.stdout


def test_list_shows_every_entry_and_its_state(weights_dir: Path) -> None:
    args = ["weights", "list", "--weights-dir", str(weights_dir)]
    result = runner.invoke(app, args, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for name in weights.registry():
        assert name in result.stdout
    assert result.stdout.count(" yes ") == 5 and "no pinned sha256" in result.stdout


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


def _bundle_listing() -> list[str]:
    return [
        f"{names[0]}/{name}"
        for _, names in WEIGHT_BUNDLE_LAYOUT.values()
        for name in ("checksums.json", "config.json", "model.safetensors")
    ]


def test_push_dry_run_lists_exactly_the_files_and_sends_nothing(tiny_bundle: Path) -> None:
    result = runner.invoke(app, ["weights", "push", str(tiny_bundle), "cemnet/tiny", "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[:-1] == _bundle_listing()
    assert lines[-1] == "15 files would be uploaded to cemnet/tiny (dry run: nothing sent)"


def test_push_refuses_an_invalid_bundle_before_uploading(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    damaged = bundle / "emotion_memory" / "model.safetensors"
    data = bytearray(damaged.read_bytes())
    data[-1] ^= 1
    damaged.write_bytes(bytes(data))
    result = runner.invoke(app, ["weights", "push", str(bundle), "cemnet/tiny"])
    assert result.exit_code == 4 and str(damaged) in result.stderr
    shutil.rmtree(bundle / "renderer")
    result = runner.invoke(app, ["weights", "push", str(bundle), "cemnet/tiny", "--dry-run"])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 4 and len(lines) == 1 and "has no renderer/ release folder" in lines[0]
    bad = runner.invoke(app, ["weights", "push", str(tiny_bundle), "not-a-repo"])
    assert bad.exit_code == 2 and "write OWNER/REPO" in bad.stderr


def test_push_then_download_round_trip(
    tiny_bundle: Path, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")  # the fake Hub takes any token
    result = runner.invoke(app, ["weights", "push", str(tiny_bundle), "me/cemnet", "--private"])
    assert result.exit_code == 0, result.output
    assert fake_hub.created == [{"name": "cemnet", "organization": "me", "visibility": "private"}]
    commit = fake_hub.branches["me/cemnet"]["main"]
    assert result.stdout.strip().splitlines()[-1] == f"pushed 15 files: use --weights hf://me/cemnet@{commit}"
    assert sorted(fake_hub.commits[commit]) == sorted(_bundle_listing())
    folder = resolve_bundle(f"hf://me/cemnet@{commit}")
    assert set(load_bundle(folder)) == set(WEIGHT_BUNDLE_LAYOUT)  # every release loads from the download
    for name in _bundle_listing():
        assert (folder / name).read_bytes() == (tiny_bundle / name).read_bytes()


def _generate_args(tmp_path: Path, weights: str) -> list[str]:
    return ["generate", "--ref", str(tmp_path), "--audio", str(tmp_path / "a.wav"), "--weights", weights]


def test_generate_and_eval_refuse_a_malformed_hub_name_in_one_line(tmp_path: Path) -> None:
    for command in (
        _generate_args(tmp_path, "hf://only-owner"),
        ["eval", "--data", str(tmp_path), "--weights", "hf://a/b@"],
    ):
        result = runner.invoke(app, command)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1, result.output
        assert "is not a Hub weights bundle; write hf://OWNER/REPO" in lines[0]


def test_offline_generate_with_a_cold_cache_says_what_to_do(tmp_path: Path) -> None:
    result = runner.invoke(app, _generate_args(tmp_path, "hf://a/b"))
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 4 and len(lines) == 1 and "HF_HUB_OFFLINE is set; unset" in lines[0]


def test_show_prints_the_starter_model_card_and_a_file_entry() -> None:
    result = runner.invoke(app, ["weights", "show"])
    assert result.exit_code == 0, result.output
    assert "# CEM-Net starter release" in result.stdout and "## What it cannot do" in result.stdout
    result = runner.invoke(app, ["weights", "show", "dlib.shape_predictor_5"])
    assert result.exit_code == 0 and "licence CC0-1.0" in result.stdout


def test_a_registry_bundle_name_is_resolved_for_every_command() -> None:
    from cemnet_cli.weights_cmd import local_weights

    assert Path(local_weights("cemnet.starter") or "").name == "starter"
    assert local_weights("runs/release") == "runs/release" and local_weights(None) is None
