"""DTW alignment of mel sequences (cemnet_core/data/alignment.py)."""

from __future__ import annotations

import numpy as np
import pytest

from cemnet_core.data.alignment import dtw_path, frame_distances, warp_to


def _utterance(frames: int, seed: int = 0) -> np.ndarray:
    """A smooth random mel-like sequence (S, 80): distinct frames, slowly varying."""
    rng = np.random.default_rng(seed)
    anchors = rng.uniform(-4, 4, size=(frames // 8 + 2, 80))
    positions = np.linspace(0, anchors.shape[0] - 1, frames)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, anchors.shape[0] - 1)
    weight = (positions - low)[:, None]
    return ((1 - weight) * anchors[low] + weight * anchors[high]).astype(np.float32)


def _stretch(sequence: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Time-stretch by repeating/dropping frames; returns the copy and the source index of each frame."""
    positions = np.arange(int(len(sequence) * factor)) / factor
    source = np.minimum(np.round(positions).astype(int), len(sequence) - 1)
    return sequence[source], source


def test_frame_distances_match_definition() -> None:
    a, b = _utterance(7, seed=1), _utterance(5, seed=2)
    expected = np.linalg.norm(a[:, None, :].astype(np.float64) - b[None, :, :], axis=-1)
    np.testing.assert_allclose(frame_distances(a, b), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("factor", [0.6, 1.0, 1.7])
def test_path_is_monotone_and_spans_both_sequences(factor: float) -> None:
    a = _utterance(120)
    b, _ = _stretch(a, factor)
    path, _ = dtw_path(a, b)
    assert path.dtype == np.int64 and path.shape[1] == 2
    assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (len(a) - 1, len(b) - 1)
    steps = np.diff(path, axis=0)
    assert set(map(tuple, steps)) <= {(1, 0), (0, 1), (1, 1)}


def test_stretched_copy_is_aligned_back() -> None:
    a = _utterance(160)
    b, source = _stretch(a, 1.5)  # b[j] == a[source[j]]
    path, cost = dtw_path(a, b)
    assert cost < 1e-6  # an exact copy in time: every matched pair is identical
    np.testing.assert_array_equal(path[:, 0], source[path[:, 1]])
    warped = warp_to(a, b)
    assert warped.shape == a.shape and warped.dtype == a.dtype
    aligned_error = np.abs(warped - a).mean()
    naive = np.abs(b[np.linspace(0, len(b) - 1, len(a)).round().astype(int)] - a).mean()
    unaligned_error = np.abs(b[: len(a)] - a).mean()
    assert aligned_error < 1e-5
    assert unaligned_error > 0.5 and naive >= aligned_error


def test_nonuniform_tempo_is_recovered() -> None:
    a = _utterance(150, seed=3)
    # first half spoken slowly, second half quickly
    source = np.concatenate([np.repeat(np.arange(75), 2), np.arange(75, 150, 2)])
    b = a[source] + np.random.default_rng(0).normal(0, 0.05, size=(len(source), 80)).astype(np.float32)
    path, _ = dtw_path(a, b)
    assert np.abs(path[:, 0] - source[path[:, 1]]).max() <= 1  # each frame of b lands on its source frame
    warped = warp_to(a, b)
    linear = b[np.linspace(0, len(b) - 1, len(a)).round().astype(int)]
    assert np.abs(warped - a).mean() < 0.2 * np.abs(linear - a).mean()


def test_band_restricts_path_and_rejects_impossible_bands() -> None:
    a = _utterance(60)
    b, _ = _stretch(a, 1.3)
    path, _ = dtw_path(a, b, band=0.1)
    diagonal = path[:, 0] * (len(b) - 1) / (len(a) - 1)
    assert np.all(np.abs(path[:, 1] - diagonal) <= 0.1 * len(b))
    with pytest.raises(ValueError, match="band"):
        dtw_path(a, b, band=-1.0)


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"\(S, F\)"):
        dtw_path(np.zeros((0, 80)), np.zeros((3, 80)))
    with pytest.raises(ValueError, match="same number of bins"):
        warp_to(np.zeros((3, 80)), np.zeros((3, 40)))
