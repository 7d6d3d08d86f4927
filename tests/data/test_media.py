"""Media I/O through ffmpeg: probing, streamed decoding of real clips, writers, and the error paths."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cemnet_core.data import media
from cemnet_core.errors import InputError, MediaError, OutputError

HDTF = "video/sadtalker__WDA_KatieHill_000.mp4"  # 512x512, 25 fps, mpeg4 part 2, stereo AAC
STYLETALK_30FPS = "video/styletalk__feifeili_clip3.mp4"  # 256x256, 30 fps h264, 7 s
SILENT = "video_silent/dreamtalk__M030_front_neutral_level1_001.mp4"
WAV = "audio/vcc__ESD_sad.wav"  # 16 kHz mono, 2.48 s


def _best_correlation(reference: np.ndarray, other: np.ndarray, max_lag: int = 3000) -> float:
    """Highest Pearson correlation over integer lags (lossy codecs may shift the signal by a few ms)."""
    best = -1.0
    for lag in range(-max_lag, max_lag + 1, 1):
        a = reference[max(0, lag) :]
        b = other[max(0, -lag) :]
        n = min(len(a), len(b))
        if n < len(reference) // 2:
            continue
        best = max(best, float(np.corrcoef(a[:n], b[:n])[0, 1]))
        if best > 0.99:
            break
    return best


def _ffmpeg(*args: str) -> None:
    subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args], check=True)


def _moving_frames(count: int, height: int, width: int) -> np.ndarray:
    """Smooth frames whose brightness ramps over time, so frame order survives lossy coding."""
    y, x = np.mgrid[0:height, 0:width]
    frames = np.empty((count, height, width, 3), dtype=np.uint8)  # (T, H, W, 3)
    for t in range(count):
        base = (x * 2 + y + t * 6) % 256
        frames[t, ..., 0] = base
        frames[t, ..., 1] = 255 - base
        frames[t, ..., 2] = (t * 6) % 256
    return frames


def _tone(seconds: float, sample_rate: int = 16000) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


# ---------------------------------------------------------------- probing and decoding real clips


def test_probe_real_clips(real_data: Path) -> None:
    info = media.probe(real_data / HDTF)
    assert (info.width, info.height, info.fps) == (512, 512, 25.0)
    assert info.video_codec == "mpeg4" and info.audio_codec == "aac"
    assert info.has_audio and info.channels == 2 and info.sample_rate == 16000
    assert info.duration == pytest.approx(8.0, abs=0.05)
    wav = media.probe(real_data / WAV)
    assert not wav.has_video and wav.has_audio and wav.duration == pytest.approx(2.48, abs=0.01)
    silent = media.probe(real_data / SILENT)
    assert silent.has_video and not silent.has_audio


def test_iter_video_frames_mpeg4_part2_in_chunks(real_data: Path) -> None:
    chunks = list(media.iter_video_frames(real_data / HDTF, chunk_frames=32))
    assert all(chunk.shape[1:] == (512, 512, 3) and chunk.dtype == np.uint8 for chunk in chunks)
    assert [len(chunk) for chunk in chunks[:-1]] == [32] * (len(chunks) - 1)
    assert sum(len(chunk) for chunk in chunks) == 200  # 8 s at 25 fps
    assert 20 < float(chunks[0].mean()) < 235  # a real picture, not a blank frame


def test_30fps_clip_is_resampled_to_25fps(real_data: Path) -> None:
    path = real_data / STYLETALK_30FPS
    native = media.read_video(path, fps=None, size=(32, 32))
    info = media.probe(path)
    assert info.fps == 30.0
    video_seconds = len(native) / info.fps
    resampled = sum(len(chunk) for chunk in media.iter_video_frames(path, size=(32, 32)))
    assert abs(resampled - video_seconds * 25) <= 1
    assert abs(resampled - info.duration * 25) <= 2  # container duration also counts the audio's tail


def test_resize_and_early_stop(real_data: Path) -> None:
    frames = media.iter_video_frames(real_data / HDTF, chunk_frames=4, size=(96, 64))
    first = next(frames)
    assert first.shape == (4, 64, 96, 3)
    frames.close()  # stops ffmpeg; no error, no hang


def test_load_audio_from_wav_and_video_track(real_data: Path) -> None:
    audio = media.load_audio(real_data / WAV)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 2.48 * 16000) <= 16000 / 25
    assert 0.01 < float(np.abs(audio).max()) <= 1.0
    half = media.load_audio(real_data / WAV, sample_rate=8000)
    assert abs(len(half) - len(audio) / 2) <= 2
    track = media.load_audio(real_data / HDTF)  # stereo AAC -> mono 16 kHz
    assert abs(len(track) - 8.0 * 16000) <= 16000 / 25 and float(np.abs(track).std()) > 1e-3
    chunks = list(media.iter_audio(real_data / HDTF, chunk_samples=16000))
    assert np.array_equal(np.concatenate(chunks), track)


@pytest.mark.parametrize(("suffix", "codec"), [(".m4a", "aac"), (".mp3", "libmp3lame")])
def test_load_audio_from_compressed_copies(real_data: Path, tmp_path: Path, suffix: str, codec: str) -> None:
    reference = media.load_audio(real_data / WAV)
    compressed = tmp_path / f"speech{suffix}"
    _ffmpeg("-i", str(real_data / WAV), "-c:a", codec, "-b:a", "128k", str(compressed))
    decoded = media.load_audio(compressed)
    assert abs(len(decoded) - len(reference)) <= 2048  # codec padding only
    assert _best_correlation(reference, decoded) > 0.95


def test_read_real_image(real_data: Path) -> None:
    image = media.read_image(real_data / "image/edtalk__leijun.png")
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8


# ---------------------------------------------------------------- still images


def test_read_image_applies_exif_rotation(tmp_path: Path) -> None:
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0)  # left half red
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)
    shown = media.read_image(path)
    assert shown.shape == (40, 20, 3)
    assert shown[5, 10, 0] > 200 and shown[35, 10, 0] < 60  # red half is now on top


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "I;16", "P"])
def test_read_image_converts_modes(tmp_path: Path, mode: str) -> None:
    gray = np.tile(np.linspace(0, 255, 32, dtype=np.uint8), (16, 1))  # (16, 32) ramp
    if mode == "I;16":
        image = Image.fromarray(gray.astype(np.uint16) * 257)  # mode I;16
        path = tmp_path / "deep.png"
    elif mode == "CMYK":
        image = Image.fromarray(np.stack([gray] * 3, axis=2)).convert("CMYK")
        path = tmp_path / "print.jpg"
    elif mode == "RGBA":
        rgba = np.stack([gray, gray, gray, np.full_like(gray, 255)], axis=2)
        rgba[:, :4, 3] = 0  # transparent left border
        image = Image.fromarray(rgba, mode="RGBA")
        path = tmp_path / "alpha.png"
    else:
        image = Image.fromarray(gray).convert(mode)
        path = tmp_path / f"{mode}.png"
    image.save(path)
    result = media.read_image(path)
    assert result.shape == (16, 32, 3) and result.dtype == np.uint8
    if mode == "RGBA":
        assert (result[:, :4] == 255).all()  # composited onto white
        assert abs(int(result[0, 20, 0]) - int(gray[0, 20])) <= 1
    else:
        assert np.abs(result[..., 0].astype(int) - gray).max() <= 6  # JPEG (CMYK) is lossy


# ---------------------------------------------------------------- writers


@pytest.mark.parametrize("suffix", [".wav", ".m4a"])
def test_write_audio_round_trip(tmp_path: Path, suffix: str) -> None:
    tone = _tone(1.5)
    path = media.write_audio(tmp_path / f"tone{suffix}", tone)
    back = media.load_audio(path)
    assert abs(len(back) - len(tone)) <= 1024
    if suffix == ".wav":
        assert np.abs(back[: len(tone)] - tone).max() < 1e-3
    assert _best_correlation(tone, back) > 0.99
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"tone{suffix}"]  # no temp left


def test_write_audio_rejects_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="suffix"):
        media.write_audio(tmp_path / "tone.xyz", _tone(0.1))


def test_video_round_trip_with_audio_and_metadata(tmp_path: Path) -> None:
    frames = _moving_frames(25, 48, 64)
    tone = _tone(1.0)
    path = media.write_video(tmp_path / "out.mp4", frames, audio=tone, metadata={"cemnet_provenance": "test"})
    info = media.probe(path)
    assert info.video_codec == "h264" and info.audio_codec == "aac" and (info.width, info.height) == (64, 48)
    assert info.metadata.get("cemnet_provenance") == "test"
    assert abs(info.duration - 1.0) <= 1 / 25 + 0.03  # AAC frame granularity
    back = media.read_video(path)
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 6
    order = [int(np.argmin([np.abs(b.astype(int) - f.astype(int)).mean() for f in frames])) for b in back]
    assert order == list(range(25))
    assert _best_correlation(tone, media.load_audio(path)) > 0.98
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_video_round_trip_keeps_the_colours(tmp_path: Path) -> None:
    """No brightness shift through H.264 (swscale's fast YUV -> RGB made frames about 1.2 levels darker)."""
    y, x = np.mgrid[0:128, 0:128]
    image = np.stack([60 + x // 2, 40 + y // 3, 30 + (x + y) // 6], axis=-1).astype(np.uint8)  # a skin ramp
    with media.VideoWriter(tmp_path / "still.mp4", 25) as writer:
        writer.write(np.repeat(image[None], 5, axis=0))
    decoded = media.read_video(tmp_path / "still.mp4")[2].astype(np.float64)
    bias = (decoded - image).reshape(-1, 3).mean(axis=0)
    assert np.abs(bias).max() < 0.5, bias


def test_video_shorter_than_audio_is_padded(tmp_path: Path) -> None:
    frames = _moving_frames(10, 32, 32)
    path = media.write_video(tmp_path / "padded.mp4", frames, audio=_tone(1.2))
    back = media.read_video(path)
    assert abs(len(back) - 30) <= 1
    assert np.abs(back[-1].astype(int) - frames[-1].astype(int)).mean() < 6  # last frame repeated


def test_video_longer_than_audio_is_cut_and_audio_from_file(tmp_path: Path) -> None:
    audio_path = media.write_audio(tmp_path / "voice.wav", _tone(0.8))
    path = media.write_video(tmp_path / "cut.mp4", _moving_frames(50, 32, 32), audio=audio_path)
    assert abs(len(media.read_video(path)) - 20) <= 1
    assert abs(media.probe(path).duration - 0.8) <= 1 / 25 + 0.03


def test_odd_dimensions_are_padded_to_even(tmp_path: Path) -> None:
    path = media.write_video(tmp_path / "odd.mp4", _moving_frames(5, 31, 45))
    info = media.probe(path)
    assert (info.width, info.height) == (46, 32) and not info.has_audio


def test_writer_streams_chunks(tmp_path: Path) -> None:
    frames = _moving_frames(12, 32, 48)
    with media.VideoWriter(tmp_path / "chunks.mp4", fps=25) as writer:
        for start in range(0, 12, 5):
            writer.write(frames[start : start + 5])
        writer.write(frames[0])  # a single (H, W, 3) frame
    assert len(media.read_video(tmp_path / "chunks.mp4")) == 13


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_writer_leaves_nothing_on_error(tmp_path: Path, error: type[BaseException]) -> None:
    target = tmp_path / "never.mp4"
    with pytest.raises(error), media.VideoWriter(target, audio=_tone(1.0)) as writer:
        writer.write(_moving_frames(5, 32, 32))
        raise error()
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_wrong_frames(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\(n, H, W, 3\) uint8"), media.VideoWriter(tmp_path / "x.mp4") as w:
        w.write(np.zeros((2, 8, 8, 3), dtype=np.float32))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="x264 preset 'quick'"):
        media.VideoWriter(tmp_path / "x.mp4", preset="quick")


def test_unwritable_folder_is_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="a_file"):
        media.write_video(blocker / "out.mp4", _moving_frames(2, 16, 16))
    with pytest.raises(OutputError, match="a_file"):
        media.write_audio(blocker / "out.wav", _tone(0.1))


# ---------------------------------------------------------------- bad inputs


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="not found"):
        media.probe(tmp_path / "nothing.mp4")
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(MediaError, match="empty"):
        media.read_video(empty)
    with pytest.raises(MediaError, match="empty"):
        media.read_image(empty)


def test_random_bytes_are_rejected(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(MediaError, match=r"junk\.mp4"):
        media.read_video(junk)
    with pytest.raises(MediaError, match=r"junk\.mp4"):
        media.load_audio(junk)
    picture = tmp_path / "junk.png"
    picture.write_bytes(junk.read_bytes())
    with pytest.raises(MediaError, match=r"junk\.png"):
        media.read_image(picture)


@pytest.mark.parametrize("clip", [HDTF, "video/styletalk__feifeili_clip3.mp4"])
def test_truncated_videos_are_rejected(real_data: Path, tmp_path: Path, clip: str) -> None:
    data = (real_data / clip).read_bytes()  # HDTF: index at the end; StyleTalk: index first (faststart)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="truncated"):
        for _ in media.iter_video_frames(truncated, size=(32, 32)):
            pass


def test_missing_streams(real_data: Path) -> None:
    with pytest.raises(MediaError, match="no audio stream"):
        media.load_audio(real_data / SILENT)
    with pytest.raises(MediaError, match="no video stream"):
        media.read_video(real_data / WAV)
    with pytest.raises(MediaError, match="no audio stream"):
        media.VideoWriter(Path("unused.mp4"), audio=real_data / SILENT)
