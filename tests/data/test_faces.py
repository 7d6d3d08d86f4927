"""Tests of face tracking and cropping (cemnet_core/data/faces.py).

Box and crop maths run on arrays made here; the landmarker runs on real clips from ``real_data``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cemnet_core.data import landmarks as lm
from cemnet_core.data.faces import (
    FaceConfig,
    FaceTracker,
    TrackResult,
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


def test_tracker_finds_face_in_real_clip_and_crops_align(weights_dir: Path, clip_frames: np.ndarray) -> None:
    with FaceTracker(weights_dir / "face_landmarker.task") as tracker:
        parts = [tracker.track(clip_frames[:25]), tracker.track(clip_frames[25:])]
    track = TrackResult.concat(parts)
    assert track.landmarks.shape == (40, 478, 2) and track.face_ratio >= 0.95
    assert track.multi_face_frames == 0
    inside = track.landmarks[track.valid]
    assert inside.min() > 0 and inside.max() < 256  # frame pixels, not normalised
    boxes = crop_boxes(track.landmarks, track.valid)
    normalised = lm.to_crop(track.landmarks, boxes)  # (T, 478, 2)
    face = normalised[:, list(lm.ALL)]
    assert face.min() > 0.0 and face.max() < 1.0  # the margin keeps the face inside its crop
    assert 0.6 < (face.max(axis=1) - face.min(axis=1)).max(axis=1).mean() < 0.85


def test_tracker_sees_two_faces_and_keeps_the_tracked_one(weights_dir: Path, clip_frames: np.ndarray) -> None:
    frames = clip_frames[:8]
    blank = np.zeros_like(frames)
    alone = np.concatenate([frames, blank], axis=2)  # (8, 256, 512, 3): face on the left only
    pair = np.concatenate([frames, frames[:, :, ::-1]], axis=2)  # second (mirrored) face on the right
    with FaceTracker(weights_dir / "face_landmarker.task") as tracker:
        first = tracker.track(alone)
        both = tracker.track(pair)
    assert first.faces_seen.max() == 1 and both.faces_seen.min() == 2
    assert both.multi_face_frames == 8
    assert np.nanmax(both.landmarks[..., 0]) < 256  # still the left person


def test_tracker_checks_for_a_second_face_every_check_every_frames(
    weights_dir: Path, clip_frames: np.ndarray
) -> None:
    frames = clip_frames[:8]
    alone = np.concatenate([frames, np.zeros_like(frames)], axis=2)  # (8, 256, 512, 3): left face only
    pair = np.concatenate([frames, frames[:, :, ::-1]], axis=2)  # a second (mirrored) face on the right
    clip = np.concatenate([alone, pair, alone])  # (24, 256, 512, 3); the second face is there at 8-15
    with FaceTracker(weights_dir / "face_landmarker.task", FaceConfig(check_every=3)) as tracker:
        track = tracker.track(clip)  # one chunk: checks at frames 0, 3, 6, 9
    assert track.valid.all()
    np.testing.assert_array_equal(track.faces_seen[:9], 1)  # frame 8 falls between two checks
    np.testing.assert_array_equal(track.faces_seen[9:16], 2)  # every face on every frame from the check on
    np.testing.assert_array_equal(track.faces_seen[16:], 1)
    assert track.landmarks[..., 0].max() < 256  # the left person throughout
    with FaceTracker(weights_dir / "face_landmarker.task", FaceConfig(num_faces=1)) as tracker:
        single = tracker.track(clip)
    assert single.faces_seen.max() == 1 and single.valid.all()
    assert single.landmarks[..., 0].max() < 256  # tracking stays on the person it started with


def test_tracker_landmarks_agree_with_per_frame_detection(weights_dir: Path, clip_frames: np.ndarray) -> None:
    frames = clip_frames[:12]
    model = weights_dir / "face_landmarker.task"
    with FaceTracker(model) as tracker:
        tracked = tracker.track(frames).landmarks  # (12, 478, 2)
    detected = np.stack([detect_image_landmarks(frame, model) for frame in frames])  # (12, 478, 2)
    side = np.ptp(detected[:, list(lm.ALL)], axis=1).max(axis=1)  # (12,)
    error = np.linalg.norm(tracked - detected, axis=2).mean(axis=1) / side
    assert error.max() < 0.02  # tracking keeps the per-frame landmarks to within 2% of the face size


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


def test_tracker_rejects_bad_check_interval(weights_dir: Path) -> None:
    with pytest.raises(ValueError, match="check_every"):
        FaceTracker(weights_dir / "face_landmarker.task", FaceConfig(check_every=0))


def test_tracker_marks_frames_without_face_invalid(weights_dir: Path, clip_frames: np.ndarray) -> None:
    frames = clip_frames[:6].copy()
    frames[2:4] = 0
    with FaceTracker(weights_dir / "face_landmarker.task") as tracker:
        track = tracker.track(frames)
    np.testing.assert_array_equal(track.valid, [True, True, False, False, True, True])
    assert np.isnan(track.landmarks[2:4]).all()


def test_detect_image_landmarks_on_photo_and_blank(weights_dir: Path, real_data: Path) -> None:
    image = read_image(real_data / "image/dreamtalk__cut_img.png")
    points = detect_image_landmarks(image, weights_dir / "face_landmarker.task")
    assert points.shape == (478, 2) and points.dtype == np.float32
    assert points.min() > 0 and points.max() < 256
    with pytest.raises(NoFaceError, match="no face"):
        detect_image_landmarks(np.full((200, 200, 3), 127, np.uint8), weights_dir / "face_landmarker.task")
