"""Bad input and interruptions at the CLI (issue #15): one clear line, a non-zero exit, nothing lost.

Every file is made by the test. Ctrl-C and third-party log lines (written by native code to fd 2, which
``CliRunner`` does not see) are checked on a ``cemnet`` child process; the rest through ``CliRunner``.
``benchmarks/reliability.py`` runs the whole list of 25 cases.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner, Result

from cemnet_cli.main import app
from cemnet_core.data import media
from cemnet_core.generate import GenerateConfig, load_references
from cemnet_core.release import CHECKSUMS_FILE
from cemnet_core.weights import sha256_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from corpus import make_corpus

PORTRAIT = "image/sadtalker__people_0.png"
SPEECH = "audio/vcc__ESD_happy.wav"
VIDEO = "video/styletalk__feifeili_clip3.mp4"
TINY = ["--set", "preset=tiny", "--set", "loop.tensorboard=false", "--set", "loop.progress=false"]
runner = CliRunner()


def one_line_error(result: Result, code: int, needle: str) -> str:
    """The single stderr line of a refusal, checked for the usual noise."""
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(("error: ", "interrupted: ")), result.stderr
    for noise in ("Traceback", "@ 0x", "\x1b[", "weights_only"):
        assert noise not in result.stderr, result.stderr
    assert needle in lines[0], lines[0]
    return lines[0]


def cemnet(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``cemnet ARGS`` in a child process (native code's stderr included)."""
    command = [sys.executable, "-m", "cemnet_cli.main", *args]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def umask_027() -> object:
    """Run the test under umask 027: files must come out 0640, not mkstemp's 0600 (nor 0644)."""
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def _generate(bundle: Path, ref: Path | str, audio: Path | str, out: Path | str, *extra: str) -> Result:
    args = ["--ref", str(ref), "--audio", str(audio), "--out", str(out), "--weights", str(bundle)]
    return runner.invoke(app, ["generate", *args, "--device", "cpu", "--batch-size", "8", *extra])


# ---------------------------------------------------------------- 1. corrupt media, disk full


@pytest.mark.real
def test_corrupt_media_and_text_files_are_one_line_that_says_what_to_do(
    weights_dir: Path, real_data: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    data = bytearray((real_data / SPEECH).read_bytes())
    data[:300] = bytes(300)
    (tmp_path / "corrupt.wav").write_bytes(bytes(data))
    (tmp_path / "notes.txt").write_text("shopping list: eggs, milk\n")
    shutil.copy(tmp_path / "notes.txt", tmp_path / "notes.png")
    portrait, speech, out = real_data / PORTRAIT, real_data / SPEECH, tmp_path / "out.mp4"
    corrupt = _generate(tiny_bundle, portrait, tmp_path / "corrupt.wav", out)
    assert "corrupt.wav: not a readable audio or video file" in one_line_error(corrupt, 2, "convert it")
    one_line_error(_generate(tiny_bundle, tmp_path / "notes.txt", speech, out), 2, "give --ref a photo")
    one_line_error(_generate(tiny_bundle, tmp_path / "notes.png", speech, out), 2, "give a JPEG or PNG photo")
    one_line_error(_generate(tiny_bundle, portrait, tmp_path / "notes.txt", out), 2, "convert it")
    assert not out.exists() and not list(tmp_path.glob(".*tmp*"))


@pytest.fixture
def full_disk(tmp_path: Path) -> object:
    """A 1 MB tmpfs filled to the last byte (needs root to mount); yields its path."""
    full = tmp_path / "full"
    full.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(full)]).returncode
    ):
        pytest.skip("a full disk is a small tmpfs here, which needs root to mount")
    try:
        with (
            open(full / "filler", "wb", buffering=0) as filler,
            pytest.raises(OSError, match="No space left"),
        ):
            while True:
                filler.write(bytes(4096))
        yield full
    finally:
        subprocess.run(["umount", str(full)])


@pytest.mark.real
def test_a_full_disk_is_one_line_and_leaves_nothing(
    weights_dir: Path, real_data: Path, tiny_bundle: Path, full_disk: Path
) -> None:
    result = _generate(tiny_bundle, real_data / PORTRAIT, real_data / SPEECH, full_disk / "out.mp4")
    line = one_line_error(result, 5, "the disk is full; free some space or write to another disk")
    assert str(full_disk / "out.mp4") in line
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]  # no partial video, no temp file


def test_clips_and_checkpoints_on_a_full_disk_are_one_line(tmp_path: Path, full_disk: Path) -> None:
    (full_disk / "filler").write_bytes(bytes(200_000))  # room for folders and small files, not for data
    data = make_corpus(tmp_path / "data")
    train = ["train", "a2m", "--data", str(data), "--run", str(full_disk / "run"), *TINY, "--steps", "2"]
    one_line_error(runner.invoke(app, train), 5, "the disk is full")
    corpus = tmp_path / "mead"
    made = runner.invoke(app, ["synth", str(corpus), "--speakers", "1", "--sentences", "1", "--emotions",
                               "neutral", "--levels", "1", "--size", "128", "-j", "1"])  # fmt: skip
    assert made.exit_code == 0, made.output
    args = ["preprocess", "mead", str(corpus), str(full_disk / "data"), "--landmarks", "true"]
    one_line_error(runner.invoke(app, args), 5, "cannot write clip")
    assert not [p for p in full_disk.rglob("*") if p.is_file() and p.name.startswith(".")]  # no temp files


# ---------------------------------------------------------------- 2. two faces


@pytest.mark.real
def test_two_faces_animate_the_largest_and_say_so(
    weights_dir: Path, real_data: Path, tiny_bundle: Path, tmp_path: Path, umask_027: object
) -> None:
    import cv2

    portrait = media.read_image(real_data / PORTRAIT)  # (474, 474, 3)
    canvas = np.full((474, 474 + 237, 3), 255, np.uint8)
    canvas[:, :474] = portrait
    canvas[:237, 474:] = cv2.resize(portrait, (237, 237), interpolation=cv2.INTER_AREA)  # smaller, right
    ref = tmp_path / "two.png"
    cv2.imwrite(str(ref), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    folder = tmp_path / ("a folder whose name is long enough to make the success line pass 80 columns" * 2)
    folder.mkdir()
    out = folder / "two.mp4"
    result = _generate(tiny_bundle, ref, real_data / SPEECH, out)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines() == [
        "warning: two.png: 2 faces found; animating the largest (left of the picture, about 180 px wide); "
        "to animate another, crop the picture to that face and pass the crop as --ref"
    ]
    with pytest.warns(UserWarning, match="2 faces found"):
        refs = load_references(ref, GenerateConfig())
    assert refs.landmarks[0, :, 0].mean() < 474  # the landmarks come from the left (large) face
    assert str(out) in result.stdout.strip().splitlines()[-1]  # the success line is not wrapped at 80
    assert out.stat().st_mode & 0o777 == 0o640  # 7. the umask's mode, not mkstemp's 0600


# ---------------------------------------------------------------- 3. release checksums


@pytest.mark.real
def test_generate_refuses_a_release_damaged_after_export(
    weights_dir: Path, real_data: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_bundle, damaged)
    model = damaged / "renderer" / "model.safetensors"
    data = bytearray(model.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = bytes(255 - x for x in data[middle : middle + 4096])  # 4 KB flipped
    model.write_bytes(bytes(data))
    result = _generate(damaged, real_data / PORTRAIT, real_data / SPEECH, tmp_path / "out.mp4")
    line = one_line_error(result, 4, "renderer/model.safetensors does not match the sha256")
    assert "export it again" in line and not (tmp_path / "out.mp4").exists()


# ---------------------------------------------------------------- 4. export of a bad checkpoint + run config


def test_export_writes_checksums_and_refuses_pickled_or_unreadable_checkpoints(
    tmp_path: Path, umask_027: object
) -> None:
    data, run = make_corpus(tmp_path / "data"), tmp_path / "run"
    trained = runner.invoke(
        app, ["train", "a2m", "--data", str(data), "--run", str(run), *TINY, "--steps", "1"]
    )
    assert trained.exit_code == 0, trained.output
    exported = runner.invoke(app, ["export", str(run), str(tmp_path / "release")])
    assert exported.exit_code == 0, exported.output
    release = tmp_path / "release" / "audio_to_mouth"
    files = json.loads((release / CHECKSUMS_FILE).read_text())["files"]
    assert files["model.safetensors"]["sha256"] == sha256_file(release / "model.safetensors")
    written = [run / "config.toml", run / "checkpoints" / "last.pt", *release.iterdir()]
    assert {oct(path.stat().st_mode & 0o777) for path in written} == {"0o640"}  # 7. umask 027

    last = run / "checkpoints" / "last.pt"
    torch.save({"version": 1, "models": torch.nn.Linear(2, 2)}, last)  # pickled Python objects
    for path in run.glob("checkpoints/best.pt"):
        path.unlink()
    pickled = runner.invoke(app, ["export", str(run), str(tmp_path / "again")])
    assert "holds pickled Python objects" in one_line_error(pickled, 2, str(last))
    last.write_bytes(b"\x00not a checkpoint" * 40)
    unreadable = runner.invoke(app, ["export", str(run), str(tmp_path / "again")])
    one_line_error(unreadable, 2, "cannot be read (truncated, corrupt or not a PyTorch file)")
    assert not (tmp_path / "again").exists()


def test_a_runs_own_config_starts_a_new_run_of_its_stage(tmp_path: Path) -> None:
    data, first = make_corpus(tmp_path / "data"), tmp_path / "first"
    base = ["--data", str(data), "--device", "cpu"]
    assert (
        runner.invoke(app, ["train", "a2m", *base, "--run", str(first), *TINY, "--steps", "1"]).exit_code == 0
    )
    config = str(first / "config.toml")  # holds stage = "a2m" beside the resolved values
    again = runner.invoke(app, ["train", "a2m", *base, "--run", str(tmp_path / "second"), "--config", config])
    assert again.exit_code == 0, again.output
    other = runner.invoke(app, ["train", "aee", *base, "--run", str(tmp_path / "third"), "--config", config])
    one_line_error(other, 2, "is for the 'a2m' stage, not 'aee'")


# ---------------------------------------------------------------- 5, 6. Ctrl-C with workers, log noise


def _interrupt(args: list[str], cwd: Path, ready: object) -> tuple[int, str]:
    """Start ``cemnet ARGS``, SIGINT its process group (as a terminal's Ctrl-C) once ``ready()``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cemnet_cli.main", *args],
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # pytest may run with it ignored
    )
    started = time.monotonic()
    while not ready() and process.poll() is None and time.monotonic() - started < 300:  # type: ignore[operator]
        time.sleep(0.05)
    assert process.poll() is None, "finished before Ctrl-C"
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


@pytest.mark.real
@pytest.mark.slow
def test_ctrl_c_with_workers_records_every_clip_written_and_logs_stay_quiet(
    weights_dir: Path, real_data: Path, tmp_path: Path
) -> None:
    frames, audio = media.read_video(real_data / VIDEO), media.load_audio(real_data / VIDEO)
    for index in range(4):  # labels from a MEAD-style name with a tag after the sentence number
        start = 20 * index
        media.write_video(
            tmp_path / f"src/M030_front_happy_level3_00{index}_1080p.mp4",
            frames[start : start + 50],
            audio=audio[start * 640 : (start + 50) * 640],
        )
    dst = tmp_path / "out"
    clips = lambda: sorted(p.name for p in (dst / "clips").glob("*.clip.safetensors"))  # noqa: E731
    args = ["preprocess", "folder", "src", "out", "--workers", "2"]
    code, stderr = _interrupt(args, tmp_path, lambda: bool(clips()))
    assert code == 130 and stderr.strip().splitlines()[-1].startswith("interrupted: stopped by Ctrl-C; the ")
    assert len(stderr.strip().splitlines()) == 1, stderr  # no worker tracebacks, no LiteRT lines
    time.sleep(3.0)  # a worker that carried on after Ctrl-C would write its clip now
    records = [json.loads(line) for line in (dst / "manifest.jsonl").read_text().splitlines()]
    assert sorted(f"{r['clip_id']}.clip.safetensors" for r in records) == clips()  # nothing unrecorded
    assert not list(dst.rglob(".*tmp*"))
    assert {(r["emotion"], r["level"]) for r in records} == {("happy", "3")}
    again = cemnet(*args, cwd=tmp_path)
    assert f"{4 - len(records)} processed, {len(records)} skipped (already done)" in again.stdout
    assert again.returncode == 0 and again.stderr == ""  # 6. not one LiteRT/absl line, workers included


@pytest.mark.real
def test_generate_from_a_video_reference_prints_no_log_noise(
    weights_dir: Path, real_data: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    ref = media.write_video(tmp_path / "ref.mp4", media.read_video(real_data / VIDEO)[:10])
    args = [
        "--ref",
        str(ref),
        "--audio",
        str(real_data / SPEECH),
        "--out",
        "out.mp4",
        "--weights",
        str(tiny_bundle),
    ]
    result = cemnet("generate", *args, "--device", "cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.real
def test_preprocess_with_the_mediapipe_engine_prints_no_log_noise(
    weights_dir: Path, real_data: Path, tmp_path: Path
) -> None:
    frames, audio = media.read_video(real_data / VIDEO)[:20], media.load_audio(real_data / VIDEO)[: 20 * 640]
    media.write_video(tmp_path / "src" / "cut.mp4", frames, audio=audio)
    result = cemnet("preprocess", "folder", "src", "out", "--engine", "mediapipe", cwd=tmp_path)
    assert result.returncode == 0 and "1 processed" in result.stdout, result.stderr
    assert result.stderr == ""


# ---------------------------------------------------------------- small items


def test_truncated_audio_with_a_decodable_video_is_kept_with_allow_silent(tmp_path: Path) -> None:
    corpus = tmp_path / "mead"
    made = runner.invoke(app, ["synth", str(corpus), "--speakers", "1", "--sentences", "1", "--emotions",
                               "neutral", "--levels", "1", "--size", "128", "-j", "1"])  # fmt: skip
    assert made.exit_code == 0, made.output
    (sound,) = corpus.glob("*/audio/**/*.m4a")
    sound.write_bytes(sound.read_bytes()[: sound.stat().st_size // 2])  # the audio file is cut short
    strict = runner.invoke(
        app, ["preprocess", "mead", str(corpus), str(tmp_path / "a"), "--landmarks", "true"]
    )
    assert strict.exit_code == 0 and "1 failed" in strict.stdout and "--allow-silent" in strict.stdout
    args = ["preprocess", "mead", str(corpus), str(tmp_path / "b"), "--landmarks", "true", "--allow-silent"]
    kept = runner.invoke(app, args)
    assert kept.exit_code == 0 and "1 processed" in kept.stdout, kept.output
    (record,) = [json.loads(line) for line in (tmp_path / "b" / "manifest.jsonl").read_text().splitlines()]
    assert any("audio not decodable" in note for note in record["notes"])


def test_switches_show_no_value_type_in_help() -> None:
    result = runner.invoke(app, ["preprocess", "--help"], env={"COLUMNS": "120"})
    for switch in ("--preview", "--allow-silent"):
        (line,) = [line for line in result.stdout.splitlines() if f" {switch} " in line]
        assert "<bool>" not in line, line  # a switch takes no value: `--preview`, not `--preview true`


def test_models_table_keeps_its_names_and_headers_at_80_columns() -> None:
    result = runner.invoke(app, ["models", "--preset", "tiny"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    for text in ("trainable", "GFLOPs/frame", "patch_discriminator", "EmotionBridgingMemory"):
        assert text in result.stdout
    assert "…" not in result.stdout
