"""``cemnet generate`` end to end through Typer's runner: tiny random release folders, a real portrait."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cemnet_cli.main import app
from cemnet_core.data import media
from cemnet_core.errors import ConfigError, MediaError, NoFaceError, WeightsError

PORTRAIT = "image/sadtalker__people_0.png"
SPEECH = "audio/vcc__ESD_happy.wav"


@pytest.fixture
def bundle(tiny_bundle: Path) -> Path:
    """One tiny random release per stage, as `cemnet export` lays them out (tests/cli/conftest.py)."""
    return tiny_bundle


@pytest.mark.real
def test_generate_command_writes_a_playable_video(
    weights_dir: Path, real_data: Path, bundle: Path, tmp_path: Path
) -> None:
    speech = tmp_path / "speech.m4a"  # any audio format
    media.write_audio(speech, media.load_audio(real_data / SPEECH)[:20000])  # 1.25 s
    out = tmp_path / "talk.mp4"
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "--ref",
            str(real_data / PORTRAIT),
            "--audio",
            str(speech),
            "--out",
            str(out),
            "--weights",
            str(bundle),
            "--emotion",
            "happy",
            "--intensity",
            "0.5",
            "--mouth-gain",
            "1.5",
            "--device",
            "cpu",
            "--batch-size",
            "4",
            "--encoder-preset",
            "fast",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "frames/s" in result.stdout and str(out) in result.stdout.replace("\n", "")
    info = media.probe(out)
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert abs(info.duration - media.probe(speech).duration) <= 1 / 25 + 0.03  # AAC priming can add ~20 ms


@pytest.mark.real
def test_generate_command_user_errors_are_one_line(
    weights_dir: Path, real_data: Path, bundle: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    portrait = str(real_data / PORTRAIT)
    silent = tmp_path / "silent.wav"
    media.write_audio(silent, np.zeros(16000, np.float32))
    blank = tmp_path / "blank"
    blank.mkdir()
    cases = [
        (["--ref", portrait, "--audio", str(silent), "--weights", str(bundle)], MediaError, "silent"),
        (
            ["--ref", str(blank), "--audio", str(real_data / SPEECH), "--weights", str(bundle)],
            NoFaceError,
            "holds no images",
        ),
        (
            ["--ref", portrait, "--audio", str(real_data / SPEECH), "--weights", str(tmp_path / "none")],
            WeightsError,
            "no weights folder",
        ),
        (
            ["--ref", portrait, "--audio", str(real_data / SPEECH), "--emotion", "bored"],
            ConfigError,
            "unknown emotion",
        ),
        (["--ref", portrait, "--audio", str(real_data / SPEECH), "--fps", "30"], ConfigError, "--fps 25"),
        (
            ["--ref", portrait, "--audio", str(real_data / SPEECH), "--mouth-gain", "9"],
            ConfigError,
            "mouth gain",
        ),
        (
            ["--ref", portrait, "--audio", str(real_data / SPEECH), "--encoder-preset", "quick"],
            ConfigError,
            "unknown encoder preset",
        ),
    ]
    for args, error, message in cases:
        result = runner.invoke(app, ["generate", *args, "--out", str(tmp_path / "x.mp4")])
        assert result.exit_code == error.exit_code, result.output
        assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x.mp4").exists()
