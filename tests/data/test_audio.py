"""Tests of the mel front end (cemnet_core/data/audio.py)."""

from __future__ import annotations

import numpy as np
import pytest

from cemnet_core.contracts import MEL_PER_FRAME, MEL_WINDOW
from cemnet_core.data.audio import (
    MAX_LEVEL_DB,
    MelConfig,
    driving_mel,
    level_gain,
    log_mel,
    loudness,
    mel_window,
    mel_window_start,
    mel_windows,
)

SR = 16000


def _tone_burst(total_s: float, start_s: float, length_s: float, freq: float = 1000.0) -> np.ndarray:
    audio = np.zeros(int(total_s * SR), dtype=np.float32)
    start, length = int(start_s * SR), int(length_s * SR)
    t = np.arange(length) / SR
    audio[start : start + length] = 0.5 * np.sin(2 * np.pi * freq * t)
    return audio


def test_log_mel_shape_rate_and_range() -> None:
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(2 * SR)).astype(np.float32)
    mel = log_mel(audio)
    assert mel.shape == (1 + 2 * SR // 200, 80)  # 80 mel frames per second
    assert mel.dtype == np.float32
    assert mel.min() >= -4.0 and mel.max() <= 4.0
    assert mel.max() > 0.0  # white noise at -20 dBFS sits well above the floor


def test_log_mel_silence_is_floor_and_int16_matches_float() -> None:
    assert np.all(log_mel(np.zeros(SR, dtype=np.float32)) == -4.0)
    rng = np.random.default_rng(1)
    ints = (rng.standard_normal(SR) * 3000).astype(np.int16)
    np.testing.assert_allclose(log_mel(ints), log_mel(ints.astype(np.float32) / 32768.0), atol=1e-5)


def test_log_mel_formula_matches_numpy_reference() -> None:
    """The documented formula, computed by hand from the torchaudio filter bank, gives the same numbers."""
    import torch
    import torchaudio

    config = MelConfig()
    rng = np.random.default_rng(2)
    audio = (0.2 * rng.standard_normal(SR // 2)).astype(np.float32)
    emphasised = np.concatenate([audio[:1], audio[1:] - 0.97 * audio[:-1]])
    padded = np.pad(emphasised, (400, 400), mode="reflect")
    window = np.hanning(801)[:800]  # periodic Hann
    frames = np.stack([padded[i : i + 800] * window for i in range(0, len(padded) - 800 + 1, 200)])
    magnitude = np.abs(np.fft.rfft(frames, axis=1))  # (S, 401)
    fbank = torchaudio.functional.melscale_fbanks(
        401, 55.0, 7600.0, 80, SR, norm="slaney", mel_scale="slaney"
    )
    mel = magnitude @ fbank.to(torch.float64).numpy()
    db = 20 * np.log10(np.maximum(1e-5, mel)) - 20
    expected = np.clip(8 * (db + 100) / 100 - 4, -4, 4)
    np.testing.assert_allclose(log_mel(audio, config), expected, atol=2e-3)


def test_log_mel_rejects_wrong_shape_and_handles_empty() -> None:
    with pytest.raises(ValueError, match=r"\(samples,\)"):
        log_mel(np.zeros((2, 100), dtype=np.float32))
    assert log_mel(np.zeros(0, dtype=np.float32)).shape == (0, 80)


def test_mel_config_round_trip() -> None:
    config = MelConfig(f_min=60.0)
    assert MelConfig.from_dict(config.to_dict()) == config


def test_mel_window_start_formula() -> None:
    assert MEL_PER_FRAME == 3.2 and MEL_WINDOW == 16
    assert [mel_window_start(t) for t in range(4)] == [-6, -3, 0, 3]  # round(1.6)=2, round(4.8)=5, ...
    assert mel_window_start(10) == round(3.2 * 10 + 1.6) - 8


def test_mel_windows_shape_edges_and_agreement() -> None:
    mel = np.arange(50 * 80, dtype=np.float32).reshape(50, 80)
    windows = mel_windows(mel, 20)
    assert windows.shape == (20, 16, 80)
    for t in (0, 7, 19):
        np.testing.assert_array_equal(windows[t], mel_window(mel, t))
    np.testing.assert_array_equal(windows[0, :6], np.repeat(mel[:1], 6, axis=0))  # edge padded at the start
    late = mel_window(mel, 20)  # start 58 > S: all rows are the last frame
    np.testing.assert_array_equal(late, np.repeat(mel[-1:], 16, axis=0))
    with pytest.raises(ValueError):
        mel_windows(np.zeros((0, 80), dtype=np.float32), 3)


@pytest.mark.parametrize("frame", [5, 12, 30])
def test_tone_burst_at_frame_lands_in_its_window(frame: int) -> None:
    """A 40 ms burst placed exactly at video frame ``frame`` is loudest in that frame's window."""
    audio = _tone_burst(total_s=2.0, start_s=frame / 25, length_s=0.04)
    windows = mel_windows(log_mel(audio), 50)  # (T, 16, 80)
    energy = windows.max(axis=(1, 2))  # loudest bin per window
    centre_energy = windows[:, 6:10].max(axis=(1, 2))  # the middle 4 mel frames of each window
    assert energy[frame] > -3.0
    assert int(np.argmax(centre_energy)) == frame
    far = [t for t in range(50) if abs(t - frame) > 3]
    assert np.all(energy[far] <= -3.5)  # burst invisible in windows that do not cover it


# ---------------------------------------------------------------- speech level


def test_loudness_follows_the_gain_and_level_gain_reaches_the_target() -> None:
    rng = np.random.default_rng(0)
    speechlike = (0.1 * rng.standard_normal(2 * SR)).astype(np.float32)
    base = loudness(speechlike)
    assert base is not None and -40 < base < 0
    assert loudness(speechlike * np.float32(0.1)) == pytest.approx(base - 20, abs=0.05)  # 20 dB quieter
    gain = level_gain(base, -30.0)
    assert loudness(speechlike * np.float32(gain)) == pytest.approx(-30.0, abs=0.05)
    int16 = (speechlike * 32767).astype(np.int16)  # int16 is rescaled, as log_mel does
    assert loudness(int16) == pytest.approx(base, abs=0.05)


def test_no_loudness_means_no_level_change() -> None:
    assert loudness(np.zeros(SR, np.float32)) is None  # silence: no block above the absolute gate
    assert loudness(np.full(int(0.3 * SR), 0.1, np.float32)) is None  # shorter than one 0.4 s block
    assert level_gain(None, -16.0) == 1.0 and level_gain(-20.0, None) == 1.0
    assert level_gain(-100.0, -16.0) == pytest.approx(10 ** (MAX_LEVEL_DB / 20))  # clamped


def test_driving_mel_gives_the_same_features_at_any_recording_level() -> None:
    audio = _tone_burst(1.0, 0.2, 0.5) * np.float32(0.3)
    stored = log_mel(audio)
    assert driving_mel(audio, None, stored) is stored  # no level: the clip's own mel, untouched
    quiet = driving_mel(audio * np.float32(0.1), -15.0)
    loud = driving_mel(audio, -15.0, stored)
    np.testing.assert_allclose(quiet, loud, atol=1e-3)
    assert np.abs(loud - stored).max() > 0.1  # the level did change the features
    assert np.abs(log_mel(audio * np.float32(0.1)) - stored).max() > 0.5  # as the raw level would
