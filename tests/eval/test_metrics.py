"""Metrics of Table II: reference values, cross-checks against skimage, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from cemnet_core.contracts import FER_CLASSES
from cemnet_core.eval import metrics


def _frames(rng: np.random.Generator, count: int = 3, size: int = 32) -> np.ndarray:
    base = rng.integers(0, 256, size=(count, size, size, 3))
    return base.astype(np.uint8)


def test_psnr_matches_skimage_and_formula() -> None:
    rng = np.random.default_rng(1)
    a = _frames(rng)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, size=a.shape), 0, 255).astype(np.uint8)
    per_frame = metrics.psnr_per_frame(b, a)
    expected = [peak_signal_noise_ratio(a[i], b[i], data_range=255) for i in range(len(a))]
    np.testing.assert_allclose(per_frame, expected, rtol=1e-10)
    assert metrics.psnr(b, a) == pytest.approx(np.mean(expected))


def test_psnr_of_identical_frames_is_capped_not_infinite() -> None:
    a = _frames(np.random.default_rng(2))
    assert np.isinf(metrics.psnr_per_frame(a, a)).all()
    assert metrics.psnr(a, a) == 100.0


def test_psnr_known_value() -> None:
    a = np.zeros((1, 16, 16, 3), np.uint8)
    b = np.full((1, 16, 16, 3), 10, np.uint8)  # MSE 100 -> 10 log10(255^2 / 100)
    assert metrics.psnr(b, a) == pytest.approx(10 * math.log10(255**2 / 100))


@pytest.mark.parametrize("noise", [5, 40])
def test_ssim_matches_skimage_gaussian(noise: int) -> None:
    rng = np.random.default_rng(noise)
    a = _frames(rng, count=2, size=40)
    smooth = np.cumsum(a.astype(float), axis=2) / np.arange(1, 41)[None, None, :, None]  # structure
    a = smooth.astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-noise, noise + 1, size=a.shape), 0, 255).astype(np.uint8)
    ours = metrics.ssim_per_frame(b, a)
    for i in range(len(a)):
        reference = structural_similarity(
            b[i], a[i], data_range=255, channel_axis=-1, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False,
        )  # fmt: skip
        assert abs(ours[i] - reference) < 1e-4


def test_ssim_identity_and_degradation() -> None:
    a = _frames(np.random.default_rng(3), size=24)
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    assert metrics.ssim(255 - a, a) < 0.5


def test_ssim_float_range_and_shape_errors() -> None:
    a = np.random.default_rng(4).random((1, 20, 20, 3))
    assert metrics.ssim(a, a, data_range=1.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same shape"):
        metrics.ssim(a, a[:, :10])
    with pytest.raises(ValueError, match="at least 11"):
        metrics.ssim(a[:, :8, :8], a[:, :8, :8])


def test_landmark_distance_known_value_and_nan_frames() -> None:
    target = np.zeros((3, 57, 2))
    predicted = target.copy()
    predicted[..., 0] += 3.0
    predicted[..., 1] += 4.0  # every point 5 away
    predicted[1] = np.nan  # a frame without a face is left out, not counted as 0 or inf
    assert metrics.landmark_distance(predicted, target) == pytest.approx(5.0)
    assert metrics.landmark_distance(predicted / 128, target, scale=128) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="no frame"):
        metrics.landmark_distance(np.full((2, 57, 2), np.nan), target[:2])
    with pytest.raises(ValueError, match="must both be"):
        metrics.landmark_distance(target[:, :10], target)


def test_fer_mapping_covers_mead_and_merges_contempt() -> None:
    assert set(metrics.MEAD_TO_FER.values()) == set(FER_CLASSES)
    assert metrics.fer_index("contempt") == metrics.fer_index("disgusted") == FER_CLASSES.index("disgust")
    assert metrics.fer_index("surprised") == FER_CLASSES.index("surprise")
    with pytest.raises(ValueError, match="unknown MEAD emotion"):
        metrics.fer_index("bored")


def test_emotion_accuracy() -> None:
    logits = np.array([[0.0, 1.0], [2.0, 1.0], [0.0, 3.0], [5.0, 0.0]])
    assert metrics.emotion_accuracy(logits, [1, 0, 0, 0]) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="one label per row"):
        metrics.emotion_accuracy(logits, [1, 0])


def test_identity_similarity() -> None:
    reference = np.array([1.0, 0.0])
    generated = np.array([[2.0, 0.0], [0.0, 1.0]])
    assert metrics.identity_similarity(generated, reference) == pytest.approx(0.5)
    assert metrics.identity_similarity(generated, generated) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        metrics.identity_similarity(generated, np.ones(3))


def test_mean_std_ignores_non_finite() -> None:
    assert metrics.mean_std([1.0, 3.0, float("nan")]) == (2.0, 1.0)
    mean, std = metrics.mean_std([])
    assert math.isnan(mean) and math.isnan(std)
