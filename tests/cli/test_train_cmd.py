"""``cemnet train`` / ``cemnet export`` / ``cemnet calibrate`` end to end on a tiny corpus."""

from __future__ import annotations

import sys
from pathlib import Path

from typer.testing import CliRunner

from cemnet_cli.main import app
from cemnet_core.errors import ConfigError, InputError, WeightsError
from cemnet_core.release import load_release

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from corpus import make_corpus

runner = CliRunner()
TINY = ["--set", "preset=tiny", "--set", "loop.tensorboard=false", "--set", "loop.progress=false"]


def test_train_resume_and_export(tmp_path: Path) -> None:
    data = make_corpus(tmp_path / "data", inner_lips=True)
    run = tmp_path / "run"
    base = ["train", "a2m", "--data", str(data), "--run", str(run), "--device", "cpu"]
    first = runner.invoke(app, [*base, *TINY, "--steps", "4"])
    assert first.exit_code == 0, first.output
    assert "finished at step 4" in first.stdout
    assert 'stage = "a2m"' in (run / "config.toml").read_text()
    torchrun_style = ["train", "a2m", "--data", str(data), "--run-dir", str(run), "--device", "cpu"]
    again = runner.invoke(app, [*torchrun_style, "--resume", "--steps", "6"])  # the alias torchrun leaves us
    assert again.exit_code == 0, again.output
    assert "finished at step 6" in again.stdout
    exported = runner.invoke(app, ["export", str(run), str(tmp_path / "release")])
    assert exported.exit_code == 0, exported.output
    assert load_release(tmp_path / "release" / "audio_to_mouth").kind == "audio_to_mouth"
    calibrated = runner.invoke(app, ["calibrate", str(tmp_path / "release"), "--data", str(data)])
    assert calibrated.exit_code == 0, calibrated.output
    gain = load_release(tmp_path / "release" / "audio_to_mouth").config["motion_gain"]
    assert f"motion_gain = {gain}" in calibrated.stdout and gain > 0
    assert "speech_lufs = None" in calibrated.stdout  # not asked for
    leveled = runner.invoke(
        app, ["calibrate", str(tmp_path / "release"), "--data", str(data), "--speech-level"]
    )
    assert leveled.exit_code == 0 and "speech_lufs = None" in leveled.stdout  # the corpus's audio is silent
    for folder in (tmp_path / "release" / "audio_to_mouth", tmp_path / "release"):  # no renderer to render
        rendered = runner.invoke(app, ["calibrate", str(folder), "--data", str(data), "--rendered"])
        assert rendered.exit_code in (ConfigError.exit_code, WeightsError.exit_code), rendered.output
        assert "Traceback" not in rendered.output and (
            "bundle" in rendered.stderr or "renderer/" in rendered.stderr
        )
    assert load_release(tmp_path / "release" / "audio_to_mouth").config["motion_gain"] == gain  # untouched


def test_user_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    base = ["train", "a2m", "--data", str(tmp_path), "--run", str(tmp_path / "run")]
    typo = runner.invoke(app, [*base, "--set", "loop.step=3"])
    assert typo.exit_code == ConfigError.exit_code and "did you mean 'steps'" in typo.stderr
    unknown = runner.invoke(app, ["train", "nope", "--data", str(tmp_path), "--run", str(tmp_path / "r")])
    assert unknown.exit_code == ConfigError.exit_code and "a2m" in unknown.stderr
    missing = runner.invoke(app, [*base, "--resume"])
    assert missing.exit_code == InputError.exit_code and "no config.toml" in missing.stderr
