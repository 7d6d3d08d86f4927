"""Face landmark index groups, normalisation and landmark sketches (DESIGN section 3).

MediaPipe Face Landmarker gives 478 points per face (468 mesh points + 10 iris points). CEM-Net works on a
subset, defined here once:

- ``LIPS`` (40): the outer and inner lip contours.
- ``JAW`` (17): the lower half of the face oval, ear level to ear level through the chin (152).
- ``POSE``: the rigid and upper-face points (eyes, brows, nose bridge and tip, upper face oval). They carry
  head pose and are copied from the references (or a pose video) at generation time.
- ``MOUTH = LIPS + JAW`` (57): what Audio2Mouth (Sec. III-A) and the EBM (Sec. III-C) predict.
- ``ALL = POSE + LIPS + JAW``: the landmarks the renderer (Sec. III-D) sees as sketches.

Arrays of landmarks are ``(..., K, 2)`` with ``(x, y)``; "normalised" means divided by the crop size, so
[0, 1] inside the 128x128 crop.
"""

from __future__ import annotations

import numpy as np

N_LANDMARKS = 478
N_MESH = 468

# Face oval in MediaPipe's order: starts at the top of the forehead (10) and runs clockwise in the image.
FACE_OVAL: tuple[int, ...] = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
# Outer lip contour (clockwise from the left mouth corner 61) and inner contour (from 78).
LIPS_OUTER: tuple[int, ...] = (
    61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146,
)  # fmt: skip
LIPS_INNER: tuple[int, ...] = (
    78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95,
)  # fmt: skip
# Eye contours (closed loops) and brows (upper then lower edge), "left"/"right" from the subject's view.
RIGHT_EYE: tuple[int, ...] = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
LEFT_EYE: tuple[int, ...] = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
RIGHT_BROW: tuple[int, ...] = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
LEFT_BROW: tuple[int, ...] = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
NOSE: tuple[int, ...] = (168, 6, 197, 195, 5, 4, 1)
RIGHT_IRIS: tuple[int, ...] = (468, 469, 470, 471, 472)
LEFT_IRIS: tuple[int, ...] = (473, 474, 475, 476, 477)

LIPS: tuple[int, ...] = LIPS_OUTER + LIPS_INNER
JAW: tuple[int, ...] = FACE_OVAL[10:27]  # 361 ... 152 ... 132
UPPER_OVAL: tuple[int, ...] = FACE_OVAL[27:] + FACE_OVAL[:10]
POSE: tuple[int, ...] = RIGHT_EYE + LEFT_EYE + RIGHT_BROW + LEFT_BROW + NOSE + UPPER_OVAL
MOUTH: tuple[int, ...] = LIPS + JAW
ALL: tuple[int, ...] = POSE + LIPS + JAW

N_LIPS, N_JAW, N_POSE, N_MOUTH, N_ALL = len(LIPS), len(JAW), len(POSE), len(MOUTH), len(ALL)

# Positions of the groups inside an ``ALL``-ordered array.
ALL_POSE = slice(0, N_POSE)
ALL_MOUTH = slice(N_POSE, N_ALL)

assert len(set(ALL)) == N_ALL, "landmark groups overlap"
assert N_LIPS == 40 and N_JAW == 17 and N_MOUTH == 57


def select(landmarks: np.ndarray, group: tuple[int, ...]) -> np.ndarray:
    """Pick ``group`` out of full 478-point landmarks: ``(..., 478, 2) -> (..., len(group), 2)``."""
    if landmarks.shape[-2] != N_LANDMARKS:
        raise ValueError(f"expected landmarks of shape (..., {N_LANDMARKS}, 2), got {landmarks.shape}")
    return landmarks[..., list(group), :]


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
