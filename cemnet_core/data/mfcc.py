"""SyncNet's audio front end: python_speech_features' MFCC, as syncnet_python feeds it (LipSync, Sec. IV-D).

SyncNet v2 (:mod:`cemnet_core.models.syncnet`) reads windows of 20 MFCC frames (0.2 s, 13 coefficients) for
each 5-frame lip window; the LipSync metric (:mod:`cemnet_core.eval.lipsync`) and the lip-sync expert's
training items (:mod:`cemnet_core.data.sync_dataset`) both compute them here.

:func:`mfcc` rebuilds ``python_speech_features.mfcc`` with its defaults: 25 ms rectangular frames every
10 ms, pre-emphasis 0.97, 512-point power spectrum, 26 triangular mel filters on integer FFT bins, log,
orthonormal DCT-II (``scipy.fft.dct``, as python_speech_features uses scipy's), 13 coefficients, sinusoidal
lifter 22, c0 replaced by the log frame energy. It works in float64 on int16-scaled samples, as
syncnet_python feeds it the int16 wav, and matches python_speech_features 0.6 to 1e-12. torchaudio's ``MFCC``
transform is not used because its continuous-frequency mel filters differ from python_speech_features'
integer-bin filters.

Shapes: ``(samples,)`` audio at 16 kHz -> ``(M, 13)`` MFCC frames, 100 per second.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import torch
import torch.nn.functional as F

from cemnet_core.contracts import MFCC_COEFFICIENTS, SAMPLE_RATE

NUM_FILTERS = 26
NFFT = 512
PREEMPHASIS = 0.97
CEPSTRAL_LIFTER = 22


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(
    num_filters: int = NUM_FILTERS, nfft: int = NFFT, sample_rate: int = SAMPLE_RATE
) -> torch.Tensor:
    """python_speech_features' triangular filters on integer FFT bins: (num_filters, nfft//2 + 1) float64."""
    mel_points = torch.linspace(
        0.0,
        float(_hz_to_mel(torch.tensor(sample_rate / 2.0, dtype=torch.float64))),
        num_filters + 2,
        dtype=torch.float64,
    )
    bins = torch.floor((nfft + 1) * _mel_to_hz(mel_points) / sample_rate)
    bank = torch.zeros(num_filters, nfft // 2 + 1, dtype=torch.float64)
    for j in range(num_filters):
        left, centre, right = (float(b) for b in bins[j : j + 3])
        for i in range(int(left), int(centre)):
            bank[j, i] = (i - left) / (centre - left)
        for i in range(int(centre), int(right)):
            bank[j, i] = (right - i) / (right - centre)
    return bank


def dct_matrix(num_coefficients: int, num_filters: int) -> torch.Tensor:
    """Orthonormal DCT-II as a matrix, ``x @ dct_matrix(k, n) == scipy.fft.dct(x, norm="ortho")[..., :k]``.

    Returns (num_filters, num_coefficients) float64: the same matrix as
    ``torchaudio.functional.create_dct(..., norm="ortho")``, in float64 because torchaudio's float32 one
    moves the coefficients by up to 1e-4 from python_speech_features'.
    """
    identity = np.eye(num_filters, dtype=np.float64)
    basis = scipy.fft.dct(identity, type=2, norm="ortho", axis=-1)  # row i: DCT of the unit vector e_i
    return torch.from_numpy(np.ascontiguousarray(basis[:, :num_coefficients]))


def mfcc(audio: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """MFCC as python_speech_features.mfcc on the int16 version of ``audio``.

    audio: (samples,) float in [-1, 1] at 16 kHz -> (num_frames, 13) float64 with
    ``num_frames = 1 + ceil((samples - 400) / 160)`` (one frame if shorter than 400 samples).
    """
    if audio.dim() != 1:
        raise ValueError(f"audio must be (samples,), got {tuple(audio.shape)}")
    frame_length = round(0.025 * sample_rate)
    frame_step = round(0.01 * sample_rate)
    # syncnet_python reads a pcm_s16le wav: the features see int16 amplitudes.
    signal = torch.round(audio.double() * 32768.0).clamp(-32768.0, 32767.0)
    signal = torch.cat([signal[:1], signal[1:] - PREEMPHASIS * signal[:-1]])  # pre-emphasis
    samples = signal.shape[0]
    num_frames = 1 if samples <= frame_length else 1 + math.ceil((samples - frame_length) / frame_step)
    padded_length = (num_frames - 1) * frame_step + frame_length
    signal = F.pad(signal, (0, padded_length - samples))
    frames = signal.unfold(0, frame_length, frame_step)  # (num_frames, 400), rectangular window
    power = torch.fft.rfft(frames, n=NFFT).abs() ** 2 / NFFT  # (num_frames, 257)
    eps = torch.finfo(torch.float64).eps
    energy = power.sum(dim=1)
    energy = torch.where(energy == 0, torch.full_like(energy, eps), energy)
    filtered = power @ mel_filterbank(NUM_FILTERS, NFFT, sample_rate).T  # (num_frames, 26)
    filtered = torch.where(filtered == 0, torch.full_like(filtered, eps), filtered)
    cepstra = torch.log(filtered) @ dct_matrix(MFCC_COEFFICIENTS, NUM_FILTERS)  # (num_frames, 13)
    lifter = 1.0 + (CEPSTRAL_LIFTER / 2.0) * torch.sin(
        math.pi * torch.arange(MFCC_COEFFICIENTS, dtype=torch.float64) / CEPSTRAL_LIFTER
    )
    cepstra = cepstra * lifter
    cepstra[:, 0] = torch.log(energy)
    return cepstra
