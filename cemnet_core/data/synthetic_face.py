"""Procedural faces for the synthetic corpus (DESIGN section 9): 478 landmarks and their drawing.

The face starts from MediaPipe's canonical face mesh (468 vertices, in cm, x right in the image, y up, z
towards the camera), stored in ``canonical_face.npy`` beside this file. It was extracted once by
``scripts/extract_canonical_face.py`` from ``geometry_pipeline_metadata_landmarks.binarypb`` inside Google's
Face Landmarker bundle ``face_landmarker.task`` (Apache-2.0). The 10 iris points (468-477) are added here:
each eye's centre followed by 4 points on a circle (right, up, left, down in the image).

Every change of shape is a smooth displacement field over the canonical vertices, so the landmarks of a
clip are one linear combination per frame:

    points(t) = speaker shape + expression (emotion, Sec. IV's MEAD labels)
                + open(t) * open field + width(t) * width field + (eyes(t) - 1) * eye field

then a small head rotation and a weak-perspective projection into frame pixels. ``T`` is frames, ``K = 478``.
The drawing (:func:`draw_face`) fills the face oval, hair, brows, eyes with irises, nose and lips, with the
inner-lip polygon filled with :data:`MOUTH_INTERIOR`, so the mouth opening seen in the image is exactly the
one in the landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from cemnet_core.contracts import (
    FACE_OVAL,
    LEFT_BROW,
    LEFT_EYE,
    LIPS_INNER,
    LIPS_OUTER,
    N_LANDMARKS,
    NOSE,
    RIGHT_BROW,
    RIGHT_EYE,
)

CANONICAL_PATH = Path(__file__).with_name("canonical_face.npy")
MOUTH_INTERIOR = (72, 16, 24)  # RGB of the dark mouth opening, the same for every speaker
SCLERA = (236, 232, 226)
NOSE_BOTTOM = (98, 97, 2, 326, 327)
RIGHT_IRIS_CENTRE, LEFT_IRIS_CENTRE = 468, 473
MOUTH_LINE_Y = -4.28  # canonical y of the mouth corners (cm)
MOUTH_HALF_WIDTH = 2.46  # canonical half distance between the corners 61 and 291 (cm)
EYE_LINE_Y = 2.58  # canonical y of the eye corners (cm)
IRIS_RADIUS = 0.58  # cm
PIXELS_PER_CM = 0.0355  # of the frame size: the canonical face (15.5 cm wide) spans ~55% of the frame


@cache
def _canonical_mesh() -> np.ndarray:
    """MediaPipe's canonical 478 points ``(478, 3)`` float64 in cm (lips as stored: slightly apart)."""
    mesh = np.load(CANONICAL_PATH).astype(np.float64)  # (468, 3)
    irises = []
    for eye in (RIGHT_EYE, LEFT_EYE):
        centre = mesh[list(eye)].mean(axis=0)
        centre[2] += 0.2
        directions = ((1, 0), (0, 1), (-1, 0), (0, -1))
        ring = [centre + IRIS_RADIUS * np.array([dx, dy, 0.0]) for dx, dy in directions]
        irises += [centre, *ring]
    return np.concatenate([mesh, np.stack(irises)])  # (478, 3)


@cache
def canonical_face() -> np.ndarray:
    """Canonical 478-point face ``(478, 3)`` float64 in cm with a closed mouth: the neutral rest shape."""
    points = _canonical_mesh().copy()
    # Close the mouth: the canonical inner lips are 0.5 cm apart; meet them half-way, pair by pair.
    for upper, lower in zip(LIPS_INNER[1:10], LIPS_INNER[19:10:-1], strict=True):
        middle = 0.5 * (points[upper, 1] + points[lower, 1])
        points[upper, 1] = points[lower, 1] = middle
    return points


@dataclass(frozen=True)
class FaceShape:
    """A speaker's face geometry (factors of 1 / offsets of 0 give the canonical face)."""

    width: float = 1.0  # whole-face horizontal scale
    jaw_length: float = 1.0  # vertical scale of the face below the nose
    jaw_width: float = 1.0  # extra horizontal scale growing towards the chin
    eye_spacing: float = 0.0  # cm added to each eye's (and brow's) distance from the midline
    mouth_size: float = 1.0  # horizontal scale of the mouth region
    max_open: float = 1.1  # cm the lower lip drops for a fully open vowel ("a")
    asymmetry: float = 0.0  # -0.3..0.3: one side of the mouth opens more (a speaking habit)


@dataclass(frozen=True)
class Expression:
    """Emotional face changes in cm (or fractions), scaled by the emotion level before use."""

    corners: float = 0.0  # mouth corners up (+) / down (-)
    corner_asymmetry: float = 0.0  # raise of the image-right corner minus the left one (contempt)
    mouth_width: float = 0.0  # fraction added to the mouth width (smile > 0)
    jaw: float = 0.0  # constant mouth opening in units of max_open (surprise > 0)
    brow_raise: float = 0.0  # whole brows up (+) / down (-)
    brow_inner: float = 0.0  # inner brow ends up (+, sadness/fear)
    brow_furrow: float = 0.0  # inner brows pulled down and together (anger)
    eye_open: float = 0.0  # fraction added to the eye opening (-1 closes the eyes)
    upper_lip: float = 0.0  # upper lip raise (disgust)

    def scaled(self, factor: float) -> Expression:
        """The same expression with every component multiplied by ``factor``."""
        return Expression(**{name: value * factor for name, value in self.__dict__.items()})


@dataclass(frozen=True)
class Palette:
    """RGB colours of one speaker's face and scene."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    background: tuple[int, int, int]
    lips: tuple[int, int, int]
    iris: tuple[int, int, int]
    clothes: tuple[int, int, int]


def _gauss(value: np.ndarray, width: float) -> np.ndarray:
    return np.exp(-((value / width) ** 2))


@dataclass(frozen=True)
class FaceRig:
    """Displacement fields of one speaker's face: the static shape plus one field per control.

    ``rest`` is ``(K, 3)``; ``open_field``, ``width_field`` and ``eye_field`` are ``(K, 3)``
    displacements per unit of their control.
    """

    rest: np.ndarray
    open_field: np.ndarray
    width_field: np.ndarray
    eye_field: np.ndarray


def _speaker_shape(shape: FaceShape) -> np.ndarray:
    points = canonical_face().copy()  # (K, 3)
    x, y = points[:, 0].copy(), points[:, 1].copy()
    below = np.clip(-y / 9.4, 0.0, 1.0)  # 0 above the nose tip, 1 at the chin
    mouth_region = _gauss(y - MOUTH_LINE_Y, 1.2) * np.exp(-((x / 4.0) ** 4))
    eye_region = _gauss(y - 3.4, 2.0) * np.clip(np.abs(x) / 2.0, 0.0, 1.0)
    points[:, 0] = x * (1.0 + (shape.mouth_size - 1.0) * mouth_region)
    points[:, 0] += np.sign(x) * shape.eye_spacing * eye_region
    points[:, 0] *= shape.width * (1.0 + (shape.jaw_width - 1.0) * below)
    points[:, 1] = np.where(y < 0.0, y * shape.jaw_length, y)
    return points


def build_rig(shape: FaceShape) -> FaceRig:
    """The rest shape of a speaker's face and the fields that move it (jaw/lips and eyelids)."""
    canonical = _canonical_mesh()  # the fields are defined on the stored mesh, where the lips are apart
    x, y = canonical[:, 0], canonical[:, 1]
    rest = _speaker_shape(shape)
    below = MOUTH_LINE_Y - y  # > 0 under the mouth line
    # Opening: the lower lip and the jaw drop, the upper lip lifts a little; lips open most in the middle.
    lip_profile = np.sqrt(np.clip(1.0 - (x / (1.15 * MOUTH_HALF_WIDTH)) ** 2, 0.0, 1.0))
    jaw_profile = 0.85 * _gauss(x, 6.5)
    towards_chin = np.clip((below - 0.3) / 1.5, 0.0, 1.0)
    profile = (1.0 - towards_chin) * lip_profile + towards_chin * jaw_profile
    profile *= 1.0 + shape.asymmetry * np.clip(x / MOUTH_HALF_WIDTH, -1.0, 1.0)
    lower = np.clip((below + 0.1) / 0.3, 0.0, 1.0)
    above_lip = np.maximum(0.0, -below - 0.3)
    upper = 0.25 * np.clip((0.1 - below) / 0.3, 0.0, 1.0) * np.exp(-(above_lip**2) / 0.36)
    open_field = np.zeros_like(rest)
    open_field[:, 1] = shape.max_open * profile * (upper - lower)
    # Width: the mouth region stretches horizontally (spread lips > 0, rounded lips < 0).
    width_field = np.zeros_like(rest)
    width_field[:, 0] = rest[:, 0] * _gauss(below, 1.0) * np.exp(-((x / 4.0) ** 4))
    # Eyelids: points near each eye move away from (or towards) the line through the eye corners.
    eye_weight = _gauss(np.abs(x) - 3.2, 1.8) * _gauss(y - EYE_LINE_Y, 0.6)
    eye_weight[[RIGHT_IRIS_CENTRE + i for i in range(10)]] = 0.0  # irises stay; the lids cover them
    eye_field = np.zeros_like(rest)
    eye_field[:, 1] = (y - EYE_LINE_Y) * eye_weight
    rest = rest + 0.3 * eye_field  # the canonical eyes are narrow for a drawing this small
    return FaceRig(rest=rest, open_field=open_field, width_field=width_field, eye_field=eye_field)


def expression_offset(rig: FaceRig, expression: Expression) -> tuple[np.ndarray, float, float, float]:
    """Static displacement ``(K, 3)`` of an expression, plus its (jaw, width, eye) control offsets."""
    canonical = _canonical_mesh()
    x, y = canonical[:, 0], canonical[:, 1]
    below = MOUTH_LINE_Y - y
    offset = np.zeros_like(rig.rest)
    side = np.sign(x)
    corner_weight = np.exp(-(((np.abs(x) - MOUTH_HALF_WIDTH) / 1.3) ** 2) - (below / 0.9) ** 2)
    corner_raise = expression.corners + 0.5 * side * expression.corner_asymmetry
    offset[:, 1] += corner_raise * corner_weight
    upper_lip = _gauss(x, 2.0) * _gauss(below + 0.7, 0.5) * (below < 0.15)
    offset[:, 1] += expression.upper_lip * upper_lip
    brows = _gauss(y - 4.6, 1.0) * _gauss(np.abs(x) - 3.3, 2.5)
    inner_brows = _gauss(np.abs(x) - 1.5, 1.0) * _gauss(y - 4.6, 0.8)
    offset[:, 1] += expression.brow_raise * brows + expression.brow_inner * inner_brows
    offset[:, 1] -= 0.6 * expression.brow_furrow * inner_brows
    offset[:, 0] -= 0.5 * side * expression.brow_furrow * inner_brows
    return offset, expression.jaw, expression.mouth_width, expression.eye_open


def _rotation(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(T, 3, 3)`` from angles in radians (yaw about y, pitch about x, roll about z)."""
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    one, zero = np.ones_like(yaw), np.zeros_like(yaw)
    r_yaw = np.stack(
        [np.stack([cy, zero, sy], -1), np.stack([zero, one, zero], -1), np.stack([-sy, zero, cy], -1)], -2
    )
    r_pitch = np.stack(
        [np.stack([one, zero, zero], -1), np.stack([zero, cp, -sp], -1), np.stack([zero, sp, cp], -1)], -2
    )
    r_roll = np.stack(
        [np.stack([cr, -sr, zero], -1), np.stack([sr, cr, zero], -1), np.stack([zero, zero, one], -1)], -2
    )
    return r_roll @ r_pitch @ r_yaw


@dataclass(frozen=True)
class HeadPose:
    """Per-frame head motion: angles in degrees ``(T,)`` and image translation in pixels ``(T, 2)``."""

    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    shift: np.ndarray


def face_landmarks(
    rig: FaceRig,
    expression: Expression,
    opening: np.ndarray,
    width: np.ndarray,
    eyes: np.ndarray,
    pose: HeadPose,
    size: int,
    scale: float = 1.0,
) -> np.ndarray:
    """Landmarks of every frame in frame pixels.

    opening: ``(T,)`` mouth opening in units of the speaker's ``max_open`` (0 closed, 1 an open "a").
    width: ``(T,)`` fraction added to the mouth width. eyes: ``(T,)`` eye opening factor (1 open, 0 shut).
    Returns ``(T, 478, 2)`` float32 pixels (x right, y down) in a ``size x size`` frame.
    """
    if not (opening.shape == width.shape == eyes.shape) or opening.ndim != 1:
        raise ValueError(
            f"opening, width, eyes: expected equal shapes (T,), got {opening.shape}, "
            f"{width.shape}, {eyes.shape}"
        )
    offset, jaw, mouth_width, eye_open = expression_offset(rig, expression)
    opening = np.maximum(opening + jaw, 0.0)
    eyes_total = np.clip(eyes * (1.0 + eye_open), 0.0, 2.0)
    points = (rig.rest + offset)[None] + opening[:, None, None] * rig.open_field[None]  # (T, K, 3)
    points = points + (width + mouth_width)[:, None, None] * rig.width_field[None]
    points = points + (eyes_total - 1.0)[:, None, None] * rig.eye_field[None]
    pivot = np.array([0.0, -1.0, -4.0])
    rotation = _rotation(*(np.radians(angle) for angle in (pose.yaw, pose.pitch, pose.roll)))  # (T, 3, 3)
    points = np.einsum("tij,tkj->tki", rotation, points - pivot) + pivot  # (T, K, 3)
    pixels_per_cm = PIXELS_PER_CM * size * scale
    centre = np.array([size / 2.0, size * 0.53]) + pose.shift  # (T, 2)
    pixels = np.empty((*points.shape[:2], 2), dtype=np.float32)
    pixels[..., 0] = centre[:, None, 0] + pixels_per_cm * points[..., 0]
    pixels[..., 1] = centre[:, None, 1] - pixels_per_cm * (points[..., 1] + 0.5)
    return pixels


def _fill(canvas: np.ndarray, polygon: np.ndarray, colour: tuple[int, ...]) -> None:
    cv2.fillPoly(canvas, [np.round(polygon * 16).astype(np.int32)], colour, cv2.LINE_AA, shift=4)


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(channel * factor, 0, 255)) for channel in colour)  # type: ignore[return-value]


def _draw_eye(
    canvas: np.ndarray, points: np.ndarray, contour: tuple[int, ...], iris: int, palette: Palette
) -> None:
    outline = points[list(contour)]  # (16, 2)
    x0, y0 = np.floor(outline.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(outline.max(axis=0)).astype(int) + 3
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, canvas.shape[1]), min(y1, canvas.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    region = canvas[y0:y1, x0:x1]
    local = outline - np.array([x0, y0])
    mask = np.zeros(region.shape[:2], dtype=np.uint8)
    _fill(mask, local, (255,))
    eye = np.empty_like(region)
    eye[:] = SCLERA
    centre = points[iris] - np.array([x0, y0])
    radius = float(np.linalg.norm(points[iris + 1] - points[iris]))
    cv2.circle(
        eye,
        tuple(np.round(centre * 16).astype(int)),
        round(radius * 16),
        palette.iris,
        -1,
        cv2.LINE_AA,
        shift=4,
    )
    cv2.circle(
        eye,
        tuple(np.round(centre * 16).astype(int)),
        round(radius * 0.45 * 16),
        (20, 20, 20),
        -1,
        cv2.LINE_AA,
        shift=4,
    )
    alpha = mask[..., None].astype(np.float32) / 255.0
    region[:] = (alpha * eye + (1.0 - alpha) * region).astype(np.uint8)
    cv2.polylines(
        canvas,
        [np.round(outline * 16).astype(np.int32)],
        True,
        _shade(palette.hair, 0.5),
        1,
        cv2.LINE_AA,
        shift=4,
    )


def background_image(palette: Palette, size: int) -> np.ndarray:
    """The scene behind the face: a vertical gradient of the background colour, ``(size, size, 3)`` uint8."""
    ramp = np.linspace(1.08, 0.82, size, dtype=np.float32)[:, None, None]  # (H, 1, 1)
    colour = np.asarray(palette.background, dtype=np.float32)[None, None]  # (1, 1, 3)
    return np.clip(np.broadcast_to(ramp * colour, (size, size, 3)), 0, 255).astype(np.uint8)


def draw_face(points: np.ndarray, palette: Palette, background: np.ndarray) -> np.ndarray:
    """Draw one frame from its landmarks.

    points: ``(478, 2)`` frame pixels. background: ``(H, W, 3)`` uint8 (see :func:`background_image`).
    Returns ``(H, W, 3)`` uint8 RGB.
    """
    if points.shape != (N_LANDMARKS, 2):
        raise ValueError(f"points: expected shape ({N_LANDMARKS}, 2), got {points.shape}")
    canvas = background.copy()
    height = canvas.shape[0]
    oval = points[list(FACE_OVAL)]  # (36, 2)
    centre = oval.mean(axis=0)
    face_width = float(oval[:, 0].max() - oval[:, 0].min())
    # Clothes and neck below the jaw, hair behind the upper face.
    chin = points[152]
    shoulders = (round(centre[0] * 16), round((height + face_width * 0.25) * 16))
    cv2.ellipse(
        canvas,
        shoulders,
        (round(face_width * 1.1 * 16), round(face_width * 0.55 * 16)),
        0,
        0,
        360,
        palette.clothes,
        -1,
        cv2.LINE_AA,
        shift=4,
    )
    jaw_left, jaw_right = points[136], points[365]
    neck = np.array(
        [
            jaw_left + (centre - jaw_left) * 0.25,
            jaw_right + (centre - jaw_right) * 0.25,
            [jaw_right[0] - 0.1 * face_width, height + 2],
            [jaw_left[0] + 0.1 * face_width, height + 2],
        ]
    )
    _fill(canvas, neck, _shade(palette.skin, 0.8))
    hair = centre + (points[list(FACE_OVAL[27:] + FACE_OVAL[:10])] - centre) * np.array([1.12, 1.16])
    _fill(canvas, np.concatenate([hair, [centre + (chin - centre) * 0.1]]), palette.hair)
    _fill(canvas, oval, palette.skin)
    # Brows: lower edge then upper edge reversed makes a closed outline.
    for brow in (RIGHT_BROW, LEFT_BROW):
        _fill(canvas, points[list(brow[:5] + brow[5:][::-1])], _shade(palette.hair, 0.8))
    _draw_eye(canvas, points, RIGHT_EYE, RIGHT_IRIS_CENTRE, palette)
    _draw_eye(canvas, points, LEFT_EYE, LEFT_IRIS_CENTRE, palette)
    nose_colour = _shade(palette.skin, 0.72)
    cv2.polylines(
        canvas,
        [np.round(points[list(NOSE[1:])] * 16).astype(np.int32)],
        False,
        _shade(palette.skin, 0.88),
        1,
        cv2.LINE_AA,
        shift=4,
    )
    cv2.polylines(
        canvas,
        [np.round(points[list(NOSE_BOTTOM)] * 16).astype(np.int32)],
        False,
        nose_colour,
        2,
        cv2.LINE_AA,
        shift=4,
    )
    _fill(canvas, points[list(LIPS_OUTER)], palette.lips)
    _fill(canvas, points[list(LIPS_INNER)], MOUTH_INTERIOR)
    return canvas
