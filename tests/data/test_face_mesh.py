"""Tests of the LiteRT face mesh and its tracking maths (cemnet_core/data/face_mesh.py).

ROI geometry and the One Euro filter run on arrays made here; the mesh network runs on a real photo.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cemnet_core import contracts as lm
from cemnet_core.data.face_mesh import (
    INPUT_SIZE,
    LEFT_EYE_CORNER,
    RIGHT_EYE_CORNER,
    FaceMesh,
    OneEuroFilter,
    Roi,
    roi_from_box,
    roi_from_landmarks,
)
from cemnet_core.data.faces import detect_image_landmarks
from cemnet_core.data.media import read_image
from cemnet_core.errors import WeightsError


def _to_frame(roi: Roi, points: np.ndarray) -> np.ndarray:
    matrix = roi.to_frame_matrix()
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_roi_matrix_maps_input_corners_onto_the_rotated_square() -> None:
    roi = Roi((100.0, 50.0), 80.0, math.radians(30))
    centre = _to_frame(roi, np.array([[INPUT_SIZE / 2, INPUT_SIZE / 2]]))
    np.testing.assert_allclose(centre, [[100.0, 50.0]], atol=1e-9)
    right = _to_frame(roi, np.array([[INPUT_SIZE, INPUT_SIZE / 2]]))[0] - centre[0]  # input x axis
    np.testing.assert_allclose(right, 40.0 * np.array([math.cos(roi.angle), math.sin(roi.angle)]), atol=1e-9)
    corners = _to_frame(roi, np.array([[0, 0], [INPUT_SIZE, 0], [INPUT_SIZE, INPUT_SIZE], [0, INPUT_SIZE]]))
    sides = np.linalg.norm(np.roll(corners, -1, axis=0) - corners, axis=1)
    np.testing.assert_allclose(sides, 80.0, atol=1e-9)


def test_roi_from_landmarks_levels_the_eyes_and_scales_the_box() -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 60, size=(lm.N_LANDMARKS, 2)) + np.array([200, 100])  # (K, 2) 60 px box
    points[0], points[1] = (200, 100), (260, 160)  # the box's corners
    points[LEFT_EYE_CORNER], points[RIGHT_EYE_CORNER] = (210, 120), (250, 130)
    roi = roi_from_landmarks(points)
    assert roi.centre == pytest.approx((230.0, 130.0)) and roi.side == pytest.approx(90.0)
    assert roi.angle == pytest.approx(math.atan2(10, 40))
    box = roi_from_box((10.0, 20.0, 40.0, 60.0), (np.array([20.0, 40.0]), np.array([40.0, 40.0])))
    assert box.centre == (30.0, 50.0) and box.side == 90.0 and box.angle == 0.0


def test_one_euro_filter_steadies_noise_and_follows_motion() -> None:
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 100, size=(lm.N_LANDMARKS, 2)).astype(np.float32)  # a 100 px face
    smoother = OneEuroFilter(fps=25.0)
    noisy = base + rng.normal(0, 0.5, size=(50, *base.shape)).astype(np.float32)  # (50, K, 2) jitter
    still = np.stack([smoother(points) for points in noisy])  # (50, K, 2)
    assert np.std(still[10:] - base, axis=0).mean() < 0.7 * np.std(noisy[10:] - base, axis=0).mean()
    smoother.reset()
    moving = [smoother(base + np.float32(5.0 * t)) for t in range(10)]  # 5 px a frame: fast motion
    lag = (base + 45.0 - moving[-1]).mean()
    assert 0 < lag < 5.0  # it follows within a frame's motion
    assert smoother(base) is not None


def test_face_mesh_on_a_photo_matches_mediapipe(weights_dir: Path, real_data: Path) -> None:
    image = read_image(real_data / "image/dreamtalk__cut_img.png")
    model = weights_dir / "face_landmarker.task"
    expected = detect_image_landmarks(image, model)  # MediaPipe's graph, IMAGE mode: (K, 2)
    mesh = FaceMesh(model)
    points, presence = mesh(image, roi_from_landmarks(expected))  # one tracking step from its result
    assert points.shape == (lm.N_LANDMARKS, 2) and points.dtype == np.float32 and presence > 0.9
    side = np.ptp(expected[list(lm.ALL)], axis=0).max()
    assert np.linalg.norm(points - expected, axis=1).mean() / side < 0.02
    _, blank = mesh(np.zeros_like(image), roi_from_landmarks(expected))
    assert blank < 0.5  # no face in the region: the presence score says so


def test_face_mesh_rejects_a_bundle_without_the_mesh(tmp_path: Path) -> None:
    broken = tmp_path / "face_landmarker.task"
    broken.write_bytes(b"not a zip")
    with pytest.raises(WeightsError, match="cemnet weights verify"):
        FaceMesh(broken)
