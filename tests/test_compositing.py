"""Paste-back (cemnet_core/compositing.py): rectangle and face masks, colour match, untouched pixels."""

from __future__ import annotations

import numpy as np

from cemnet_core import contracts as lm
from cemnet_core.compositing import blend_window, face_mask, feather_mask, paste_back


def _face(chin: float = 0.85) -> np.ndarray:
    """ALL-ordered crop-normalised landmarks whose JAW runs ear to ear through a chin at height ``chin``."""
    points = np.full((lm.N_ALL, 2), 0.5, np.float32)
    angles = np.linspace(0.0, np.pi, lm.N_JAW)  # right ear -> chin -> left ear
    points[-lm.N_JAW :, 0] = 0.5 + 0.3 * np.cos(angles)
    points[-lm.N_JAW :, 1] = 0.45 + (chin - 0.45) * np.sin(angles)
    return points


def test_paste_back_blends_inside_the_box_only() -> None:
    frame = np.zeros((40, 50, 3), np.uint8)
    face = np.full((8, 8, 3), 200, np.uint8)
    box = np.array([-4, 10, 16, 30])  # partly outside the frame
    out = paste_back(frame, face, box, feather=0.2, lower_half=False)
    assert out[20, 6].min() == 200  # centre of the box: the face
    assert out[:10].max() == 0 and out[30:].max() == 0 and out[:, 16:].max() == 0
    assert 0 < out[11, 6, 0] < 200  # feathered edge
    mask = feather_mask(20, 0.25, lower_half=False)
    assert mask.max() == 1 and mask[0, 0] < 0.1 and np.allclose(mask, mask.T)
    lower = paste_back(frame, face, box, feather=0.2)  # default: only the lower half of the face
    assert lower[10:18].max() == 0 and lower[25, 6].min() == 200 and 0 < lower[20, 6, 0] < 200
    half = feather_mask(20, 0.25)
    assert half[:8].max() == 0 and half[14, 10] == 1 and np.all(np.diff(half[:, 10][:14]) >= 0)


def test_face_mask_covers_the_jaw_below_the_middle_and_nothing_outside() -> None:
    mask = face_mask([_face()], side=128, feather=0.05)
    assert mask.shape == (128, 128) and mask.dtype == np.float32
    assert mask[100, 64] == 1.0  # inside the jaw, below the middle
    assert mask[:60].max() == 0.0  # the upper face is never blended
    assert mask[:, :6].max() == 0.0 and mask[:, 122:].max() == 0.0  # jaw x in [26, 102], 6 px reach
    assert 0.0 < mask[112, 64] < 1.0  # feathered at the chin (0.85 * 128 = 109)
    lower_chin = face_mask([_face(), _face(chin=0.95)], side=128, feather=0.05)
    assert lower_chin[118, 64] > 0.5 > mask[118, 64]  # the union covers a chin that moved down


def test_paste_back_with_a_face_mask_leaves_pixels_outside_it_unchanged() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (300, 260, 3), dtype=np.uint8)
    face = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    box = np.array([40, 60, 240, 260])  # 200 px side
    mask = face_mask([_face()], side=128, feather=0.05)
    out = paste_back(frame, face, box, feather=0.1, mask=mask, match_colour=True)
    import cv2

    weight = cv2.resize(mask, (200, 200), interpolation=cv2.INTER_LINEAR)
    outside = np.ones(frame.shape[:2], bool)
    outside[60:260, 40:240] = weight <= 0
    assert np.array_equal(out[outside], frame[outside])
    inside = np.zeros(frame.shape[:2], bool)
    inside[60:260, 40:240] = weight >= 0.999
    assert not np.array_equal(out[inside], frame[inside])


def test_colour_match_removes_a_uniform_colour_shift_of_the_render() -> None:
    frame = np.full((128, 128, 3), (180, 120, 90), np.uint8)  # skin-like
    face = np.full((128, 128, 3), (150, 140, 130), np.uint8)  # the render drifted in colour
    box = np.array([0, 0, 128, 128])
    mask = face_mask([_face()], side=128, feather=0.05)
    matched = paste_back(frame, face, box, feather=0.1, mask=mask, match_colour=True)
    plain = paste_back(frame, face, box, feather=0.1, mask=mask, match_colour=False)
    assert np.abs(matched.astype(int) - frame).max() <= 1  # a uniform drift is taken out entirely
    assert np.abs(plain[100, 64].astype(int) - (150, 140, 130)).max() <= 1


def test_blend_window_is_what_paste_back_changes() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (60, 70, 3), dtype=np.uint8)
    face = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    mask = face_mask([_face()], 16, 0.06)
    for box in (np.array([10, 5, 50, 45]), np.array([-12, 30, 28, 70])):  # inside; over two edges
        out = paste_back(frame, face, box, 0.1, mask=mask, match_colour=True)
        window = blend_window(frame, face, box, 0.1, mask=mask, match_colour=True)
        assert window is not None
        (y0, y1, x0, x1), pixels = window
        np.testing.assert_array_equal(out[y0:y1, x0:x1], pixels)
        outside = np.ones(frame.shape[:2], bool)
        outside[y0:y1, x0:x1] = False
        np.testing.assert_array_equal(out[outside], frame[outside])
        assert y0 >= max(box[1], 0) + (box[3] - box[1]) // 3  # cut to the mask: the lower face only
    assert blend_window(frame, face, np.array([80, 80, 100, 100]), 0.1, mask=mask) is None  # off the frame
