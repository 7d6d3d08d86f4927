"""generate: references + audio -> mp4, on tiny random release folders, real portraits and real speech."""

from __future__ import annotations

import dataclasses
import os
import resource
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_pipeline import save_tiny_bundle

from cemnet_core.data import media
from cemnet_core.data.mel_stream import MelStream
from cemnet_core.data.synthetic import sample_speaker
from cemnet_core.data.synthetic_face import (
    Expression,
    HeadPose,
    background_image,
    build_rig,
    draw_face,
    face_landmarks,
)
from cemnet_core.errors import ConfigError, Interrupted, MediaError, NoFaceError, OutputError, WeightsError
from cemnet_core.generate import (
    GenerateConfig,
    generate,
    ping_pong,
    scan_audio,
    speech_loudness,
)
from cemnet_core.pipeline import CEMNetPipeline
from cemnet_core.watermark import detect_watermark, has_provenance_tag

PORTRAIT = "image/sadtalker__people_0.png"  # 474x474 real photo
SPEECH = "audio/vcc__ESD_sad.wav"  # 2.48 s, 16 kHz
VIDEO = "video_silent/dreamtalk__M030_front_neutral_level1_001.mp4"  # 256x256 MEAD clip
CONFIG = GenerateConfig(device="cpu", chunk_frames=24, batch_size=8)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_bundle(tmp_path_factory.mktemp("weights") / "bundle")


@pytest.fixture(scope="module")
def pipeline(bundle: Path) -> CEMNetPipeline:
    return CEMNetPipeline.from_bundle(bundle, "cpu")


@pytest.fixture
def speech(real_data: Path, tmp_path: Path) -> Path:
    """Real speech cut to 2 s."""
    path = tmp_path / "speech.wav"
    media.write_audio(path, media.load_audio(real_data / SPEECH)[:32000])
    return path


@pytest.fixture
def short_speech(real_data: Path, tmp_path: Path) -> Path:
    """Real speech cut to 0.8 s (20 frames): keeps the tests that are about other things fast."""
    path = tmp_path / "speech.wav"
    media.write_audio(path, media.load_audio(real_data / SPEECH)[:12800])
    return path


def _procedural_face(size: int = 256) -> np.ndarray:
    speaker = sample_speaker(seed=3, index=0)
    one = np.zeros(1)
    pose = HeadPose(one, one, one, np.zeros((1, 2)))
    rig = build_rig(speaker.shape)
    points = face_landmarks(rig, Expression(), one * 0.3, one * 0.0, one + 1.0, pose, size, speaker.scale)[0]
    return draw_face(points, speaker.palette, background_image(speaker.palette, size))


def _check_output(path: Path, seconds: float) -> None:
    info = media.probe(path)
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert abs(info.duration - seconds) <= 1 / 25 + 1e-6
    assert has_provenance_tag(info.metadata)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files left


# ---------------------------------------------------------------- pure parts


def test_ping_pong_is_smooth() -> None:
    assert [ping_pong(t, 3) for t in range(8)] == [0, 1, 2, 1, 0, 1, 2, 1]
    assert ping_pong(7, 1) == 0


def test_scan_audio_refuses_silent_short_and_corrupt(tmp_path: Path) -> None:
    zeros, quiet, short, corrupt = (tmp_path / f"{n}.wav" for n in ("zeros", "quiet", "short", "corrupt"))
    media.write_audio(zeros, np.zeros(16000, np.float32))
    media.write_audio(quiet, (np.random.default_rng(0).standard_normal(16000) * 1e-4).astype(np.float32))
    media.write_audio(short, (np.random.default_rng(0).standard_normal(1600) * 0.1).astype(np.float32))
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk" * 10)
    with pytest.raises(MediaError, match="silent"):
        scan_audio(zeros)
    with pytest.raises(MediaError, match="silent"):
        scan_audio(quiet)
    with pytest.raises(MediaError, match=r"0\.10 s"):
        scan_audio(short)
    with pytest.raises(MediaError):
        scan_audio(corrupt)


def test_speech_loudness_measures_the_driving_audio(short_speech: Path, tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.wav"
    media.write_audio(quiet, media.load_audio(short_speech) * np.float32(0.1))
    level, quieter = speech_loudness(short_speech), speech_loudness(quiet)
    assert level is not None and quieter == pytest.approx(level - 20, abs=0.1)


@pytest.mark.real
def test_the_speech_level_applies_to_the_features_not_to_the_video(
    weights_dir: Path,
    short_speech: Path,
    pipeline: CEMNetPipeline,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = tmp_path / "face.png"
    Image.fromarray(_procedural_face()).save(image)
    quiet = tmp_path / "quiet.wav"
    media.write_audio(quiet, media.load_audio(short_speech) * np.float32(0.3))  # the same speech, -10.5 dB
    seen: list[np.ndarray] = []

    class Recording(MelStream):  # the mel rows generate hands the models
        def rows(self, lo: int, hi: int) -> np.ndarray:
            seen.append(super().rows(lo, hi))
            return seen[-1]

    monkeypatch.setattr("cemnet_core.generate.MelStream", Recording)
    a2m, mels = pipeline.audio_to_mouth, {}
    kept = a2m.config
    try:
        for level in (None, -16.0):
            a2m.config = dataclasses.replace(kept, speech_lufs=level)
            for name, audio in (("as recorded", short_speech), ("quiet", quiet)):
                seen.clear()
                generate(image, audio, tmp_path / f"{name}_{level}.mp4", config=CONFIG, pipeline=pipeline)
                mels[level, name] = np.concatenate(seen)
    finally:
        a2m.config = kept
    apart = {
        level: np.abs(mels[level, "as recorded"] - mels[level, "quiet"]).mean() for level in (None, -16.0)
    }
    assert apart[None] > 0.3  # as given, the quieter recording gives the models other features
    assert apart[-16.0] < apart[None] / 5  # at the release's level, (nearly) the same ones
    sound = media.load_audio(tmp_path / "quiet_-16.0.mp4")  # the video keeps the audio as given
    assert np.abs(sound).max() < 0.5 * np.abs(media.load_audio(tmp_path / "as recorded_-16.0.mp4")).max()


# ---------------------------------------------------------------- references


@pytest.mark.real
def test_generate_real_portrait_from_bundle(
    weights_dir: Path, real_data: Path, speech: Path, bundle: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "talk.mp4"
    out.parent.mkdir()
    seen: list[tuple[int, int]] = []
    result = generate(
        real_data / PORTRAIT,
        speech,
        out,
        bundle,
        CONFIG,
        progress=lambda done, total: seen.append((done, total)),
    )
    _check_output(out, 2.0)
    assert result.frames == 50 and seen[-1] == (50, 50) and len(seen) == 3
    frames = media.read_video(out)
    assert frames.shape == (50, 474, 474, 3)
    assert detect_watermark(out).marked


@pytest.mark.real
def test_generate_procedural_face_chunked_equals_one_shot(
    weights_dir: Path, short_speech: Path, pipeline: CEMNetPipeline, tmp_path: Path
) -> None:
    image = tmp_path / "face.png"
    Image.fromarray(_procedural_face()).save(image)
    outputs = []
    for chunk, overlap in ((6, True), (200, True), (6, False)):
        out = tmp_path / f"chunk{chunk}_{overlap}.mp4"
        config = GenerateConfig(device="cpu", chunk_frames=chunk, intensity=1.5, overlap=overlap)
        generate(image, short_speech, out, config=config, pipeline=pipeline)
        _check_output(out, 0.8)
        outputs.append(media.read_video(out).astype(np.int16))
    assert np.abs(outputs[0] - outputs[1]).max() <= 2  # same frames; only the encoder may differ
    np.testing.assert_array_equal(outputs[0], outputs[2])  # the worker thread changes nothing


@pytest.mark.real
def test_generate_video_reference_with_pose_video(
    weights_dir: Path, real_data: Path, short_speech: Path, pipeline: CEMNetPipeline, tmp_path: Path
) -> None:
    out = tmp_path / "talk.mp4"
    config = GenerateConfig(device="cpu", max_reference_frames=12)
    result = generate(
        real_data / VIDEO, short_speech, out, config=config, pipeline=pipeline, pose_video=real_data / VIDEO
    )
    _check_output(out, 0.8)
    assert result.references == 12
    assert media.probe(out).width == 256


# ---------------------------------------------------------------- failures leave nothing behind


@pytest.mark.real
def test_bad_weights_and_outputs(
    weights_dir: Path, real_data: Path, short_speech: Path, bundle: Path, tmp_path: Path
) -> None:
    portrait = real_data / PORTRAIT
    with pytest.raises(WeightsError, match="no weights folder"):
        generate(portrait, short_speech, tmp_path / "a.mp4", tmp_path / "missing", CONFIG)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="does not exist"):
        generate(portrait, short_speech, blocker / "out.mp4", bundle, CONFIG)
    with pytest.raises(OutputError, match="is a folder"):
        generate(portrait, short_speech, tmp_path, bundle, CONFIG)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "speech.wav"]
    with pytest.raises(ConfigError, match="mouth gain"):
        GenerateConfig(mouth_gain=10.0)
    with pytest.raises(ConfigError, match="encoder preset 'quick'; use one of ultrafast"):
        GenerateConfig(encoder_preset="quick")
    pipeline = CEMNetPipeline.from_bundle(bundle, "cpu")
    with pytest.raises(ConfigError, match="from_bundle"):
        generate(portrait, short_speech, tmp_path / "b.mp4", config=GenerateConfig(mouth_gain=2.0),
                 pipeline=pipeline)  # fmt: skip


@pytest.mark.real
@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_output_folder(
    weights_dir: Path, real_data: Path, short_speech: Path, bundle: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="read-only"):
            generate(real_data / PORTRAIT, short_speech, folder / "out.mp4", bundle, CONFIG)
    finally:
        folder.chmod(0o755)


@pytest.mark.real
def test_disk_full_raises_output_error_and_leaves_no_file(
    weights_dir: Path, real_data: Path, short_speech: Path, pipeline: CEMNetPipeline, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    # A file-size limit makes ffmpeg's writes fail with EFBIG, as on a full disk; SIGXFSZ must be ignored
    # (inherited by the ffmpeg child) so that the write fails instead of killing the process.
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8_000, hard))
    try:
        with pytest.raises(OutputError, match=r"talk\.mp4"):
            generate(real_data / PORTRAIT, short_speech, out / "talk.mp4", config=CONFIG, pipeline=pipeline)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_handler)
    assert list(out.iterdir()) == []


@pytest.mark.real
def test_ctrl_c_removes_the_partial_output(
    weights_dir: Path, real_data: Path, short_speech: Path, pipeline: CEMNetPipeline, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()

    def press_ctrl_c(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(Interrupted, match="not written"):
        generate(
            real_data / PORTRAIT,
            short_speech,
            out / "talk.mp4",
            config=CONFIG,
            pipeline=pipeline,
            progress=press_ctrl_c,
        )
    assert list(out.iterdir()) == []


@pytest.mark.real
def test_bad_audio_and_references_write_nothing(
    weights_dir: Path, real_data: Path, pipeline: CEMNetPipeline, tmp_path: Path
) -> None:
    silent = tmp_path / "silent.wav"
    media.write_audio(silent, np.zeros(32000, np.float32))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MediaError, match="silent"):
        generate(real_data / PORTRAIT, silent, out / "a.mp4", config=CONFIG, pipeline=pipeline)
    blank = tmp_path / "blank.png"
    Image.new("RGB", (128, 128)).save(blank)
    with pytest.raises(NoFaceError):
        generate(blank, real_data / SPEECH, out / "a.mp4", config=CONFIG, pipeline=pipeline)
    assert list(out.iterdir()) == []
