"""Tests of face tracking and cropping (cemnet_core/data/faces.py).

Box and crop maths run on arrays made here; the landmarker runs on real clips from ``real_data``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cemnet_core import contracts as lm
from cemnet_core.data.faces import (
    FaceConfig,
    crop_boxes,
    crop_frames,
    detect_image_landmarks,
)
from cemnet_core.data.media import read_image, read_video
from cemnet_core.errors import NoFaceError

CLIP = "video/styletalk__feifeili_clip3.mp4"


def _face_landmarks(centre: tuple[float, float], side: float) -> np.ndarray:
    """478 points spread over a square of ``side`` around ``centre`` (ALL spans the full square)."""
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.5, 0.5, size=(lm.N_LANDMARKS, 2)).astype(np.float32)
    points[lm.ALL[0]], points[lm.ALL[1]] = (-0.5, -0.5), (0.5, 0.5)
    return points * side + np.array(centre, dtype=np.float32)


@pytest.fixture(scope="module")
def clip_frames(real_data: Path) -> np.ndarray:
    return read_video(real_data / CLIP)[:40]  # (40, 256, 256, 3)


def test_crop_boxes_square_whole_pixels_with_margin() -> None:
    marks = np.stack([_face_landmarks((100, 80), 50)] * 6)  # (6, 478, 2)
    boxes = crop_boxes(marks, np.ones(6, bool), FaceConfig(margin=0.2))
    assert boxes.shape == (6, 4) and boxes.dtype == np.float32
    np.testing.assert_array_equal(boxes, np.round(boxes))
    np.testing.assert_array_equal(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    np.testing.assert_array_equal(boxes[0], [65, 45, 135, 115])  # side 50 * 1.4 = 70 around (100, 80)


def test_crop_boxes_fill_missing_frames_and_smooth_jitter() -> None:
    rng = np.random.default_rng(0)
    centres = 100 + rng.normal(0, 4, size=(30, 2))
    marks = np.stack([_face_landmarks(tuple(c), 60) for c in centres])
    valid = np.ones(30, bool)
    valid[[0, 10, 11, 29]] = False
    marks[~valid] = np.nan
    raw = crop_boxes(marks, valid, FaceConfig(smoothing=1))
    smooth = crop_boxes(marks, valid, FaceConfig(smoothing=7))
    assert np.isfinite(raw).all() and np.isfinite(smooth).all()
    np.testing.assert_array_equal(raw[0], raw[1])  # held at the start
    assert raw[9, 0] <= max(raw[10, 0], raw[11, 0]) + 1 and raw[12, 0] >= min(raw[10, 0], raw[11, 0]) - 1
    assert np.abs(np.diff(smooth[:, 0])).mean() < 0.6 * np.abs(np.diff(raw[:, 0])).mean()


def test_crop_boxes_without_any_face_raises() -> None:
    with pytest.raises(NoFaceError, match="no face"):
        crop_boxes(np.full((4, 478, 2), np.nan, np.float32), np.zeros(4, bool))
    with pytest.raises(ValueError, match=r"\(T, 478, 2\)"):
        crop_boxes(np.zeros((4, 135, 2), np.float32), np.ones(4, bool))


def test_crop_frames_cuts_box_and_pads_outside_black() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(2, 300, 400, 3), dtype=np.uint8)
    boxes = np.array([[100, 20, 356, 276], [-64, -64, 192, 192]], dtype=np.float32)
    crops = crop_frames(frames, boxes)
    assert crops.shape == (2, 128, 128, 3) and crops.dtype == np.uint8
    inside = np.ascontiguousarray(frames[0, 20:276, 100:356])
    np.testing.assert_array_equal(crops[0], cv2.resize(inside, (128, 128), interpolation=cv2.INTER_AREA))
    assert crops[1, :31, :].max() == 0 and crops[1, :, :31].max() == 0  # outside the frame: black
    assert crops[1, 33:, 33:].min() > 0  # the averaged noise inside is never black


def test_detect_image_landmarks_match_mediapipe_public_result(weights_dir: Path, real_data: Path) -> None:
    from mediapipe import Image, ImageFormat
    from mediapipe.tasks.python import BaseOptions, vision

    image = read_image(real_data / "image/dreamtalk__cut_img.png")
    model = weights_dir / "face_landmarker.task"
    options = vision.FaceLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(model)))
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        result = landmarker.detect(Image(image_format=ImageFormat.SRGB, data=image))
    expected = np.array([(p.x, p.y) for p in result.face_landmarks[0]], np.float32) * image.shape[1::-1]
    np.testing.assert_allclose(detect_image_landmarks(image, model), expected, rtol=0, atol=1e-3)


def test_detect_image_landmarks_on_photo_and_blank(weights_dir: Path, real_data: Path) -> None:
    image = read_image(real_data / "image/dreamtalk__cut_img.png")
    points = detect_image_landmarks(image, weights_dir / "face_landmarker.task")
    assert points.shape == (478, 2) and points.dtype == np.float32
    assert points.min() > 0 and points.max() < 256
    with pytest.raises(NoFaceError, match="no face"):
        detect_image_landmarks(np.full((200, 200, 3), 127, np.uint8), weights_dir / "face_landmarker.task")
