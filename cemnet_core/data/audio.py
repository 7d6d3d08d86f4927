"""The mel front end shared by training and generation (DESIGN section 2; paper Sec. III-A, III-B).

Audio2Mouth (Sec. III-A) sees, for each video frame, a 0.2 s window of a log-mel spectrogram; the Audio
Emotion Enhancement encoders (Sec. III-B) read longer mel segments of the same spectrogram. The front end
follows Wav2Lip's ``hparams.py`` / ``audio.py`` so that numbers are comparable with that family of models:

- 16 kHz mono float32 input, pre-emphasis ``y[n] = x[n] - 0.97 x[n-1]``;
- STFT magnitude (``power=1``), n_fft 800, Hann window 800, hop 200, centred with reflect padding
  -> 80 mel frames per second, ``MEL_PER_FRAME = 3.2`` per 25 fps video frame;
- 80 Slaney-normalised mel bins on the Slaney mel scale between 55 and 7600 Hz (librosa's defaults);
- ``db = 20 * log10(max(1e-5, mel)) - 20`` (``ref_level_db = 20``);
- ``S = clip(8 * (db + 100) / 100 - 4, -4, 4)`` (``min_level_db = -100``, symmetric, ``max_abs_value = 4``).

The window constants (``MEL_PER_FRAME``, ``MEL_WINDOW``, ``MEL_BINS``) are contracts shared with the models:
:mod:`cemnet_core.contracts`.

**Speech level (not in the paper; off unless a release sets it).** The log-mel is absolute (dB against a
fixed reference), so the same speech recorded quieter gives Audio2Mouth other features. A release that
carries the loudness of its training speech (``AudioToMouthConfig.speech_lufs``, the median of its training
clips: ``cemnet calibrate --speech-level``) has the driving audio scaled to it before the mel
(:func:`driving_mel`, :func:`level_gain`; ITU-R BS.1770 gated loudness, :func:`loudness`, by
``torchaudio.functional.loudness``); only the features change, the video keeps the audio as given.
``speech_lufs = None`` (the paper; the default) takes the audio's level as it is.

Why it is off by default (measured 2026-12-08 on the starter, its gain recalibrated at the level: 1.75, level
-16.3 LUFS; mouth opening p95 - p5 on the six portraits of ``benchmarks/portrait_generate.py``, without ->
with the level): ESD neutral speech (-32 LUFS) 0.066-0.226 (4 of 6 >= 0.12) -> 0.164-0.239 (6 of 6), ESD
happy (-28) 0.146-0.215 -> 0.172-0.245, broadcast speech (-14) 0.170-0.305 -> 0.163-0.290, but ESD sad (-30)
0.075-0.191 (4 of 6) -> 0.031-0.130 (2 of 6): raised to speech level, the quiet sad recording's pauses and
breath seem to move the mouth and narrow its range. On the 14 held-out test clips with their own audio
(-23 LUFS median; ``benchmarks/a2m_articulation.py``, one photo) the opening went 0.233 -> 0.302 against
the truth's 0.270, the correlation 0.32 -> 0.31 and M-LMD 2.73 -> 2.85 px: no gain where the truth is known.

Shapes: ``S`` mel frames, ``F = 80`` mel bins, ``T`` video frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torchaudio

from cemnet_core.configs import config_from_dict, config_to_dict
from cemnet_core.contracts import MEL_BINS, MEL_PER_FRAME, MEL_WINDOW, SAMPLE_RATE


@dataclass(frozen=True)
class MelConfig:
    """Parameters of the log-mel front end; the defaults are DESIGN section 2 (Wav2Lip's hparams)."""

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 800
    win_length: int = 800
    hop_length: int = 200
    n_mels: int = MEL_BINS
    f_min: float = 55.0
    f_max: float = 7600.0
    preemphasis: float = 0.97
    ref_level_db: float = 20.0
    min_level_db: float = -100.0
    max_abs_value: float = 4.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the fields (:func:`~cemnet_core.configs.config_to_dict`)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> MelConfig:
        """Inverse of :meth:`to_dict`, type-checked; ``ConfigError`` naming unknown keys."""
        return config_from_dict(cls, values)


_TRANSFORMS: dict[MelConfig, torchaudio.transforms.MelSpectrogram] = {}


def _mel_transform(config: MelConfig) -> torchaudio.transforms.MelSpectrogram:
    if config not in _TRANSFORMS:
        _TRANSFORMS[config] = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            win_length=config.win_length,
            hop_length=config.hop_length,
            f_min=config.f_min,
            f_max=config.f_max,
            n_mels=config.n_mels,
            power=1.0,
            center=True,
            pad_mode="reflect",
            norm="slaney",
            mel_scale="slaney",
        )
    return _TRANSFORMS[config]


def log_mel(audio: np.ndarray, config: MelConfig = MelConfig()) -> np.ndarray:
    """Normalised log-mel spectrogram of 16 kHz mono audio.

    audio: ``(samples,)`` float32 in [-1, 1] (int16 is rescaled).
    Returns ``(S, 80)`` float32 in ``[-max_abs_value, max_abs_value]`` with ``S = 1 + samples // hop``;
    empty audio gives ``(0, 80)``.
    """
    wave = np.asarray(audio)
    if wave.ndim != 1:
        raise ValueError(f"log_mel: expected audio of shape (samples,), got {wave.shape}")
    if wave.dtype == np.int16:
        wave = wave.astype(np.float32) / 32768.0
    wave = wave.astype(np.float32, copy=False)
    if wave.shape[0] == 0:
        return np.zeros((0, config.n_mels), dtype=np.float32)
    if wave.shape[0] <= config.n_fft // 2:  # reflect padding needs more samples than half a window
        wave = np.pad(wave, (0, config.n_fft // 2 + 1 - wave.shape[0]))
    signal = torch.from_numpy(wave)
    emphasised = torch.cat([signal[:1], signal[1:] - config.preemphasis * signal[:-1]])
    with torch.no_grad():
        mel = _mel_transform(config)(emphasised)  # (F, S)
    db = 20.0 * torch.log10(torch.clamp(mel, min=1e-5)) - config.ref_level_db
    scale = 2.0 * config.max_abs_value
    normalised = scale * (db - config.min_level_db) / (-config.min_level_db) - config.max_abs_value
    normalised = torch.clamp(normalised, -config.max_abs_value, config.max_abs_value)
    return normalised.T.contiguous().numpy().astype(np.float32)  # (S, F)


def mel_window_start(t: int) -> int:
    """First mel frame of video frame ``t``'s window: the window is centred on the frame's middle."""
    return int(np.floor(MEL_PER_FRAME * t + MEL_PER_FRAME / 2 + 0.5)) - MEL_WINDOW // 2


def mel_window(mel: np.ndarray, t: int) -> np.ndarray:
    """The ``(16, 80)`` mel window that video frame ``t`` sees.

    mel: ``(S, F)``. The window starts at ``round(3.2 t + 1.6) - 8``; indices outside ``[0, S)`` repeat the
    edge frame (edge padding), so the first and last frames of a clip get full windows too.
    """
    mel = np.asarray(mel)
    if mel.ndim != 2 or mel.shape[0] == 0:
        raise ValueError(f"mel_window: expected a non-empty mel of shape (S, F), got {mel.shape}")
    indices = np.clip(np.arange(MEL_WINDOW) + mel_window_start(t), 0, mel.shape[0] - 1)
    return mel[indices]


def mel_windows(mel: np.ndarray, num_frames: int) -> np.ndarray:
    """Mel windows of video frames ``0 .. num_frames-1``: ``(S, F) -> (T, 16, F)``."""
    mel = np.asarray(mel)
    if mel.ndim != 2 or mel.shape[0] == 0:
        raise ValueError(f"mel_windows: expected a non-empty mel of shape (S, F), got {mel.shape}")
    if num_frames < 0:
        raise ValueError(f"mel_windows: num_frames must be >= 0, got {num_frames}")
    starts = np.array([mel_window_start(t) for t in range(num_frames)], dtype=np.int64)  # (T,)
    indices = np.clip(starts[:, None] + np.arange(MEL_WINDOW)[None, :], 0, mel.shape[0] - 1)  # (T, 16)
    return mel[indices]  # (T, 16, F)


LOUDNESS_BLOCK = 0.4  # s: one gating block of ITU-R BS.1770; shorter audio has no loudness
MAX_LEVEL_DB = 30.0  # the most a level correction amplifies or attenuates


def loudness(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float | None:
    """Gated integrated loudness in LUFS (ITU-R BS.1770-4, ``torchaudio.functional.loudness``).

    audio: ``(samples,)`` float in [-1, 1] (int16 is rescaled). None when the audio is shorter than one
    gating block (0.4 s) or has no block above the absolute gate (-70 LUFS: silence).
    """
    wave = np.asarray(audio)
    if wave.ndim != 1:
        raise ValueError(f"loudness: expected audio of shape (samples,), got {wave.shape}")
    scale = 1 / 32768.0 if wave.dtype == np.int16 else 1.0
    if wave.shape[0] < round(LOUDNESS_BLOCK * sample_rate):
        return None
    signal = torch.from_numpy(wave.astype(np.float32) * np.float32(scale))[None]
    value = float(torchaudio.functional.loudness(signal, sample_rate))
    return value if np.isfinite(value) else None


def level_gain(lufs: float | None, target_lufs: float | None) -> float:
    """Linear amplitude gain that takes speech at ``lufs`` to ``target_lufs`` (module docstring).

    1 when either is None (no target, or audio without a loudness); the correction is clamped to
    +-``MAX_LEVEL_DB`` so that near-silence is not raised to speech level.
    """
    if lufs is None or target_lufs is None:
        return 1.0
    return float(10.0 ** (np.clip(target_lufs - lufs, -MAX_LEVEL_DB, MAX_LEVEL_DB) / 20.0))


def driving_mel(
    audio: np.ndarray,
    target_lufs: float | None,
    mel: np.ndarray | None = None,
    config: MelConfig = MelConfig(),
) -> np.ndarray:
    """The log-mel of driving ``audio`` at the model's speech level ``target_lufs`` (module docstring).

    ``mel``: the clip's stored :func:`log_mel` of the same audio, returned as it is when no level applies
    (``target_lufs`` None, or a gain of 1). Returns ``(S, 80)`` float32.
    """
    if target_lufs is None and mel is not None:  # the default: no loudness to measure
        return mel
    gain = level_gain(loudness(audio, config.sample_rate), target_lufs)
    if gain == 1.0 and mel is not None:
        return mel
    wave = np.asarray(audio)
    wave = wave.astype(np.float32) / 32768.0 if wave.dtype == np.int16 else wave.astype(np.float32)
    return log_mel(wave * np.float32(gain), config)
