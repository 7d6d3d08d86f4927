"""LSE-C / LSE-D scoring as syncnet_python's SyncNetInstance.evaluate (cemnet_core/eval/lipsync.py)."""

from __future__ import annotations

import math

import pytest
import torch

from cemnet_core.eval.lipsync import evaluate_sync, sync_scores
from cemnet_core.models.syncnet import SyncNet, SyncNetConfig


@pytest.fixture
def model() -> SyncNet:
    return SyncNet(SyncNetConfig.tiny())


def _calc_pdist_loop(video: torch.Tensor, audio: torch.Tensor, vshift: int) -> torch.Tensor:
    """syncnet_python's ``calc_pdist``, written as its loop, for comparison."""
    window = 2 * vshift + 1
    padded = torch.nn.functional.pad(audio, (0, 0, vshift, vshift))
    rows = [
        torch.nn.functional.pairwise_distance(video[[i], :].repeat(window, 1), padded[i : i + window, :])
        for i in range(len(video))
    ]
    return torch.stack(rows)


def test_scores_on_random_embeddings_follow_syncnet_python() -> None:
    video, audio = torch.randn(40, 16), torch.randn(40, 16)
    scores = sync_scores(video, audio)
    assert scores.distances.shape == (40, 31)
    assert scores.mean_distances.shape == (31,)
    expected = _calc_pdist_loop(video, audio, 15)
    torch.testing.assert_close(scores.distances, expected)
    mean = expected.mean(dim=0)
    assert scores.lse_d == pytest.approx(float(mean.min()), rel=1e-6)
    assert scores.lse_c == pytest.approx(float(mean.median() - mean.min()), rel=1e-5, abs=1e-6)
    assert scores.offset == 15 - int(mean.argmin())


def test_scores_find_a_known_offset() -> None:
    base = torch.randn(43, 32)
    video, audio = base[:40], base[3:]  # audio[m] = video[m + 3]: audio leads by 3 frames
    scores = sync_scores(video, audio)
    assert scores.offset == 3
    assert scores.lse_c > 1.0
    in_sync = sync_scores(video, video)
    assert in_sync.offset == 0 and in_sync.lse_d < 1e-3


def test_scores_reject_mismatched_embeddings() -> None:
    with pytest.raises(ValueError, match=r"\(W, D\)"):
        sync_scores(torch.randn(4, 8), torch.randn(5, 8))


def test_evaluate_sync_uses_syncnet_python_windows(model: SyncNet) -> None:
    frames = torch.randint(0, 256, (12, 96, 96, 3), dtype=torch.uint8)
    audio = torch.randn(11 * 640 + 100) * 0.1  # audio covers 11 frames: min_length 11
    model.train()
    scores = evaluate_sync(model, frames, audio, batch_size=4)
    assert model.training  # mode restored
    assert scores.distances.shape == (11 - 5, 31)
    assert math.isfinite(scores.lse_c) and math.isfinite(scores.lse_d)
    with pytest.raises(ValueError, match="at least 6"):
        evaluate_sync(model, frames[:5], audio)
