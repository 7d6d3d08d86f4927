"""Tests of face tracking through clips (cemnet_core/data/tracking.py), with both engines.

The landmark models run on real clips from ``real_data`` (skipped outside CI when it is not set).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cemnet_core.data import landmarks as lm
from cemnet_core.data.faces import FaceConfig, TrackResult, crop_boxes, detect_image_landmarks
from cemnet_core.data.media import read_video
from cemnet_core.data.tracking import FaceTracker

CLIP = "video/styletalk__feifeili_clip3.mp4"
ENGINES = pytest.mark.parametrize("engine", ["litert", "mediapipe"])


@pytest.fixture(scope="module")
def clip_frames(real_data: Path) -> np.ndarray:
    return read_video(real_data / CLIP)[:40]  # (40, 256, 256, 3)


@ENGINES
def test_tracker_finds_face_in_real_clip_and_crops_align(
    weights_dir: Path, clip_frames: np.ndarray, engine: str
) -> None:
    with FaceTracker(weights_dir / "face_landmarker.task", FaceConfig(engine=engine)) as tracker:
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


@ENGINES
def test_tracker_sees_two_faces_and_keeps_the_tracked_one(
    weights_dir: Path, clip_frames: np.ndarray, engine: str
) -> None:
    frames = clip_frames[:8]
    blank = np.zeros_like(frames)
    alone = np.concatenate([frames, blank], axis=2)  # (8, 256, 512, 3): face on the left only
    pair = np.concatenate([frames, frames[:, :, ::-1]], axis=2)  # second (mirrored) face on the right
    with FaceTracker(weights_dir / "face_landmarker.task", FaceConfig(engine=engine)) as tracker:
        first = tracker.track(alone)
        both = tracker.track(pair)
    assert first.faces_seen.max() == 1 and both.faces_seen.min() == 2
    assert both.multi_face_frames == 8
    assert np.nanmax(both.landmarks[..., 0]) < 256  # still the left person


@ENGINES
def test_tracker_checks_for_a_second_face_every_check_every_frames(
    weights_dir: Path, clip_frames: np.ndarray, engine: str
) -> None:
    frames = clip_frames[:8]
    alone = np.concatenate([frames, np.zeros_like(frames)], axis=2)  # (8, 256, 512, 3): left face only
    pair = np.concatenate([frames, frames[:, :, ::-1]], axis=2)  # a second (mirrored) face on the right
    clip = np.concatenate([alone, pair, alone])  # (24, 256, 512, 3); the second face is there at 8-15
    with FaceTracker(
        weights_dir / "face_landmarker.task", FaceConfig(check_every=3, engine=engine)
    ) as tracker:
        track = tracker.track(clip)  # one chunk: checks at frames 0, 3, 6, 9
    assert track.valid.all()
    np.testing.assert_array_equal(track.faces_seen[:9], 1)  # frame 8 falls between two checks
    np.testing.assert_array_equal(track.faces_seen[9:16], 2)  # every face on every frame from the check on
    np.testing.assert_array_equal(track.faces_seen[16:], 1)
    assert track.landmarks[..., 0].max() < 256  # the left person throughout
    with FaceTracker(weights_dir / "face_landmarker.task", FaceConfig(num_faces=1, engine=engine)) as tracker:
        single = tracker.track(clip)
    assert single.faces_seen.max() == 1 and single.valid.all()
    assert single.landmarks[..., 0].max() < 256  # tracking stays on the person it started with


@ENGINES
def test_tracker_landmarks_agree_with_per_frame_detection(
    weights_dir: Path, clip_frames: np.ndarray, engine: str
) -> None:
    frames = clip_frames[:12]
    model = weights_dir / "face_landmarker.task"
    with FaceTracker(model, FaceConfig(engine=engine)) as tracker:
        tracked = tracker.track(frames).landmarks  # (12, 478, 2)
    detected = np.stack([detect_image_landmarks(frame, model) for frame in frames])  # (12, 478, 2)
    side = np.ptp(detected[:, list(lm.ALL)], axis=1).max(axis=1)  # (12,)
    error = np.linalg.norm(tracked - detected, axis=2).mean(axis=1) / side
    assert error.max() < 0.02  # tracking keeps the per-frame landmarks to within 2% of the face size


def test_tracker_rejects_bad_check_interval(weights_dir: Path) -> None:
    with pytest.raises(ValueError, match="check_every"):
        FaceTracker(weights_dir / "face_landmarker.task", FaceConfig(check_every=0))


@ENGINES
def test_tracker_marks_frames_without_face_invalid(
    weights_dir: Path, clip_frames: np.ndarray, engine: str
) -> None:
    frames = clip_frames[:6].copy()
    frames[2:4] = 0
    with FaceTracker(weights_dir / "face_landmarker.task", FaceConfig(engine=engine)) as tracker:
        track = tracker.track(frames)
    np.testing.assert_array_equal(track.valid, [True, True, False, False, True, True])
    assert np.isnan(track.landmarks[2:4]).all()


def test_tracker_rejects_unknown_engine(weights_dir: Path) -> None:
    with pytest.raises(ValueError, match="engine"):
        FaceTracker(weights_dir / "face_landmarker.task", FaceConfig(engine="onnx"))


def test_litert_engine_matches_mediapipe_tracking(weights_dir: Path, real_data: Path) -> None:
    frames = read_video(real_data / "video/styletalk__Obama_clip1.mp4")[:50]  # a moving head, 50 frames
    model = weights_dir / "face_landmarker.task"
    tracks = {}
    for engine in ("litert", "mediapipe"):
        with FaceTracker(model, FaceConfig(engine=engine, num_faces=1)) as tracker:
            tracks[engine] = tracker.track(frames)
    ours, theirs = tracks["litert"], tracks["mediapipe"]
    assert ours.valid.all() and theirs.valid.all()
    side = np.ptp(theirs.landmarks[:, list(lm.ALL)], axis=1).max(axis=1)  # (50,)
    error = np.linalg.norm(ours.landmarks - theirs.landmarks, axis=2).mean(axis=1) / side  # (50,)
    assert error.mean() < 0.005 and error.max() < 0.02  # the same network and tracking rules
    with FaceTracker(model, FaceConfig(engine="litert", num_faces=1, smooth_landmarks=False)) as tracker:
        raw = tracker.track(frames)
    raw_error = np.linalg.norm(raw.landmarks - theirs.landmarks, axis=2).mean(axis=1) / side
    assert raw_error.mean() > 2 * error.mean()  # MediaPipe's VIDEO mode smooths; so does "litert"
