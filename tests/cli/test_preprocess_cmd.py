"""End-to-end test of ``cemnet preprocess`` (cemnet_cli/preprocess_cmd.py) with Typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cemnet_cli.main import app
from cemnet_core.data.media import load_audio, read_video, write_video
from cemnet_core.errors import InputError


def test_preprocess_folder_with_two_workers_and_preview(
    weights_dir: Path, real_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CEMNET_WEIGHTS_DIR", str(weights_dir))
    source = real_data / "video/styletalk__feifeili_clip3.mp4"
    for index in range(2):
        start = 30 * index  # two different 1 s cuts, so two different source hashes
        write_video(
            tmp_path / f"src/cut{index}.mp4",
            read_video(source)[start : start + 25],
            audio=load_audio(source)[start * 640 : (start + 25) * 640],
        )
    (tmp_path / "src/broken.mp4").write_bytes(b"not a video")
    dst = tmp_path / "out"
    args = ["preprocess", "folder", str(tmp_path / "src"), str(dst)]
    result = CliRunner().invoke(app, [*args, "--workers", "2", "--preview"])
    assert result.exit_code == 0, result.output
    assert "2 processed, 0 skipped (already done), 1 failed of 3" in result.output
    assert "cut0: face found on 100.0% of frames" in result.output
    lines = [json.loads(line) for line in (dst / "manifest.jsonl").read_text().splitlines()]
    assert sorted(line["clip_id"] for line in lines) == ["cut0", "cut1"]
    assert len(list((dst / "preview").glob("*.png"))) == 6

    again = CliRunner().invoke(app, [*args, "--shard", "0/1"])
    assert again.exit_code == 0 and "0 processed, 2 skipped" in again.output


def test_preprocess_bad_shard_is_an_input_error(tmp_path: Path) -> None:
    args = ["preprocess", "folder", str(tmp_path), str(tmp_path / "o"), "--shard", "2/2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == InputError.exit_code  # one line on stderr, no traceback
    assert "--shard '2/2'" in result.output and "Traceback" not in result.output


def test_preprocess_unknown_engine_is_an_input_error(tmp_path: Path) -> None:
    args = ["preprocess", "folder", str(tmp_path), str(tmp_path / "o"), "--engine", "onnx"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == InputError.exit_code
    assert (
        "--engine 'onnx': use one of litert, mediapipe" in result.output and "Traceback" not in result.output
    )


def test_preprocess_with_the_mediapipe_engine(
    weights_dir: Path, real_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CEMNET_WEIGHTS_DIR", str(weights_dir))
    source = real_data / "video/styletalk__feifeili_clip3.mp4"
    write_video(tmp_path / "src/cut.mp4", read_video(source)[:20], audio=load_audio(source)[: 20 * 640])
    dst = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["preprocess", "folder", str(tmp_path / "src"), str(dst), "--engine", "mediapipe"]
    )
    assert result.exit_code == 0, result.output
    (line,) = [json.loads(line) for line in (dst / "manifest.jsonl").read_text().splitlines()]
    assert line["face_ratio"] == 1.0
