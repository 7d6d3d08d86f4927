"""Functions on face landmarks: selection, crop normalisation and landmark sketches (DESIGN section 3).

The index groups (``LIPS``, ``JAW``, ``POSE``, ``MOUTH = LIPS + JAW``, ``ALL = POSE + LIPS + JAW``, the
positions ``ALL_POSE`` / ``ALL_MOUTH`` inside an ``ALL``-ordered array) are contracts shared with the models
and live in :mod:`cemnet_core.contracts`; this module works with them on arrays:

- :func:`select` picks a group out of MediaPipe's 478 points;
- :func:`to_crop` / :func:`to_frame` convert between frame pixels and crop-normalised coordinates;
- :func:`draw_sketch` draws the landmark sketch the renderer sees (Sec. III-D);
- :func:`mouth_opening` measures inner-lip opening over mouth width, in any of the layouts.

Arrays of landmarks are ``(..., K, 2)`` with ``(x, y)``; "normalised" means divided by the crop size, so
[0, 1] inside the 128x128 crop.
"""

from __future__ import annotations

import numpy as np

from cemnet_core.contracts import (
    ALL,
    JAW,
    LEFT_BROW,
    LEFT_EYE,
    LIPS_INNER,
    LIPS_OUTER,
    MOUTH,
    N_ALL,
    N_LANDMARKS,
    NOSE,
    RIGHT_BROW,
    RIGHT_EYE,
    UPPER_OVAL,
)


def select(landmarks: np.ndarray, group: tuple[int, ...]) -> np.ndarray:
    """Pick ``group`` out of full 478-point landmarks: ``(..., 478, 2) -> (..., len(group), 2)``."""
    if landmarks.shape[-2] != N_LANDMARKS:
        raise ValueError(f"expected landmarks of shape (..., {N_LANDMARKS}, 2), got {landmarks.shape}")
    return landmarks[..., list(group), :]


# Mesh indices of the inner upper / lower lip midpoints and the left / right mouth corners.
_OPENING_POINTS = (13, 14, 61, 291)
_LAYOUTS = {"mesh": tuple(range(N_LANDMARKS)), "all": ALL, "mouth": MOUTH}


def mouth_opening(points: np.ndarray, layout: str = "mesh") -> np.ndarray:
    """``(..., K, 2)`` landmarks -> ``(...)`` inner-lip opening over mouth width (a scale-free mouth measure).

    ``layout`` names the point order: ``"mesh"`` MediaPipe's 478 points, ``"all"`` the model's 135 (``ALL``),
    ``"mouth"`` the 57 of ``MOUTH``.
    """
    order = _LAYOUTS[layout]
    if points.shape[-2] != len(order):
        raise ValueError(f"{layout!r} landmarks have {len(order)} points, got shape {points.shape}")
    upper, lower, left, right = (points[..., order.index(i), :] for i in _OPENING_POINTS)
    width = np.linalg.norm(right - left, axis=-1)
    return np.linalg.norm(lower - upper, axis=-1) / np.maximum(width, 1e-6)


def to_crop(landmarks_px: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Frame pixels -> crop-normalised [0, 1]. ``box`` is ``(x0, y0, x1, y1)`` in frame pixels (square)."""
    box = np.asarray(box, dtype=np.float32)
    origin, size = box[..., None, :2], (box[..., None, 2:] - box[..., None, :2])
    return ((landmarks_px - origin) / size).astype(np.float32)


def to_frame(landmarks_norm: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Crop-normalised [0, 1] -> frame pixels; the inverse of :func:`to_crop`."""
    box = np.asarray(box, dtype=np.float32)
    origin, size = box[..., None, :2], (box[..., None, 2:] - box[..., None, :2])
    return (landmarks_norm * size + origin).astype(np.float32)


def _loop(points: tuple[int, ...]) -> list[tuple[int, int]]:
    return [(points[i], points[(i + 1) % len(points)]) for i in range(len(points))]


def _path(points: tuple[int, ...]) -> list[tuple[int, int]]:
    return [(points[i], points[i + 1]) for i in range(len(points) - 1)]


# Sketch strokes: (edges in 478-index space, BGR-free RGB colour). Pose strokes and mouth strokes get
# different colours so the renderer can tell what moved.
_SKETCH_STROKES: tuple[tuple[list[tuple[int, int]], tuple[int, int, int]], ...] = (
    (_loop(RIGHT_EYE) + _loop(LEFT_EYE), (0, 255, 0)),
    (_path(RIGHT_BROW[:5]) + _path(RIGHT_BROW[5:]), (0, 255, 0)),
    (_path(LEFT_BROW[:5]) + _path(LEFT_BROW[5:]), (0, 255, 0)),
    (_path(NOSE), (0, 255, 255)),
    (_path(UPPER_OVAL), (255, 255, 0)),
    (_path(JAW), (255, 0, 255)),
    (_loop(LIPS_OUTER), (255, 0, 0)),
    (_loop(LIPS_INNER), (0, 0, 255)),
)
_ALL_POS = {index: position for position, index in enumerate(ALL)}
SKETCH_EDGES: tuple[tuple[np.ndarray, tuple[int, int, int]], ...] = tuple(
    (np.array([(_ALL_POS[a], _ALL_POS[b]) for a, b in edges], dtype=np.int64), colour)
    for edges, colour in _SKETCH_STROKES
)


def draw_sketch(landmarks: np.ndarray, size: int = 128, thickness: int = 1) -> np.ndarray:
    """Draw a landmark sketch image, the renderer's view of a face's geometry (Sec. III-D, Eq. 14).

    landmarks: ``(478, 2)`` or ``(len(ALL), 2)`` (``ALL`` order), crop-normalised [0, 1].
    Returns ``(size, size, 3)`` uint8 RGB, black background, one colour per facial part.
    """
    import cv2  # opencv comes with mediapipe; imported here to keep `import cemnet_core` light

    points = np.asarray(landmarks, dtype=np.float32)
    if points.shape == (N_LANDMARKS, 2):
        points = points[list(ALL)]
    if points.shape != (N_ALL, 2):
        raise ValueError(f"expected landmarks of shape (478, 2) or ({N_ALL}, 2), got {points.shape}")
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    pixels = np.round(points * size * 16).astype(np.int32)  # 4 bits of sub-pixel precision
    for edges, colour in SKETCH_EDGES:
        lines = pixels[edges]  # (E, 2, 2)
        cv2.polylines(canvas, list(lines), False, colour, thickness, cv2.LINE_AA, shift=4)
    return canvas
