"""python_speech_features' MFCC as syncnet_python feeds it (cemnet_core/data/mfcc.py)."""

from __future__ import annotations

import math

import torch
import torchaudio

from cemnet_core.data.mfcc import dct_matrix, mfcc

# python_speech_features 0.6 ``mfcc(int16 signal, 16000)[3]`` for the signal of ``_reference_signal``.
PSF_FRAME_3 = [
    21.6147833987, 34.0173677448, -32.1998489627, -24.2608956425, 7.9289938905, 7.8990485765,
    -27.3232349694, -35.5684041908, -7.4975007758, 16.5988133672, 19.1300455757, 18.0275316683,
    17.622523749,
]  # fmt: skip


def _reference_signal() -> torch.Tensor:
    t = torch.arange(1600, dtype=torch.float64) / 16000
    chirp = 0.5 * torch.sin(2 * math.pi * 440 * t) + 0.25 * torch.sin(2 * math.pi * 1500 * t * t * 10)
    return chirp.float()


def test_mfcc_matches_python_speech_features_reference_values() -> None:
    coefficients = mfcc(_reference_signal())
    assert coefficients.shape == (9, 13)  # 1 + ceil((1600 - 400) / 160) frames
    torch.testing.assert_close(
        coefficients[3], torch.tensor(PSF_FRAME_3, dtype=torch.float64), rtol=0, atol=1e-6
    )


def test_mfcc_frame_count_and_dct_matrix() -> None:
    for samples, frames in ((100, 1), (400, 1), (401, 2), (16000, 99)):
        assert mfcc(torch.zeros(samples)).shape == (frames, 13)
    assert torch.isfinite(mfcc(torch.zeros(800))).all()  # silence: log of eps, as python_speech_features
    torch.testing.assert_close(dct_matrix(13, 26).float(), torchaudio.functional.create_dct(13, 26, "ortho"))
