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
