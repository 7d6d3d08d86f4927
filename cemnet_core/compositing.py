"""Paste-back: blend a rendered 128x128 face crop into the full-size frame it was cut from (DESIGN section 8).

The renderer synthesises the lower half of the face crop (Sec. III-D). Putting it back into the original
frame is not part of the paper's model; done naively (a feathered rectangle) it leaves a hard seam across the
cheeks and replaces sharp background and neck with the upsampled 128-px crop. So the blend follows the face:

- :func:`face_mask` is the lower face the renderer changed: the polygon of the jaw line (``JAW``, ear level to
  ear level through the chin), closed across the cheeks, for the rendered landmarks and for the frame's own
  ones (so a chin that moved up or down is covered both where it was and where it is), dilated a little,
  feathered with a Gaussian, and kept below the middle of the crop with a ramp (the renderer's masked half;
  the original's upper face stays as it is, sharp).
- :func:`paste_back` resizes the crop to its box, shifts its colour so that its mean along the mask's edge
  matches the original's there (a renderer's colour drift then shows neither as a seam nor as a shift), and
  blends with the mask; pixels where the mask is 0 are the original's, bit for bit.

Without landmarks, :func:`feather_mask` (a feathered rectangle over the lower half of the box) is the mask.
"""

from __future__ import annotations

import cv2
import numpy as np

from cemnet_core.contracts import ALL_JAW, N_ALL


def feather_mask(side: int, feather: float, lower_half: bool = True) -> np.ndarray:
    """(side, side) float32 mask: 1 inside, linear ramp to 0 over ``feather * side`` pixels at the edges.

    With ``lower_half`` the mask is also 0 above the middle of the box, ramping up over ``feather * side``
    rows centred on the middle: the renderer synthesises the lower half of the face (Sec. III-D: the
    generator sees the target with its lower half masked), so the original's upper face is kept as it is.
    """
    ramp = max(1.0, feather * side)
    edge = np.minimum(np.arange(side) + 0.5, side - np.arange(side) - 0.5) / ramp  # (side,)
    profile = np.clip(edge, 0.0, 1.0).astype(np.float32)
    rows = profile
    if lower_half:
        rows = np.minimum(profile, _lower_ramp(side, ramp))
    return np.outer(rows, profile).astype(np.float32)


def _lower_ramp(side: int, ramp: float) -> np.ndarray:
    """(side,) 0 above the middle row, ramping to 1 over ``ramp`` rows centred just below it."""
    return np.clip((np.arange(side) + 0.5 - side / 2) / ramp + 0.5, 0.0, 1.0).astype(np.float32)


def face_mask(landmark_sets: list[np.ndarray], side: int, feather: float = 0.06) -> np.ndarray:
    """(side, side) float32 blend mask of the lower face, from ``ALL``-ordered landmark sets (135, 2).

    ``landmark_sets`` are crop-normalised (the rendered frame's and the original frame's); the mask is the
    union of their jaw polygons, dilated by ``feather * side`` and blurred by as much, below the crop's middle
    (module docstring). Values in [0, 1].
    """
    canvas = np.zeros((side, side), np.uint8)
    for points in landmark_sets:
        if points.shape != (N_ALL, 2):
            raise ValueError(f"landmarks must be ({N_ALL}, 2) ALL-ordered, got {points.shape}")
        jaw = np.round(points[ALL_JAW] * side * 16).astype(np.int32)  # (17, 2), 4 fractional bits
        cv2.fillPoly(canvas, [jaw], 255, cv2.LINE_AA, shift=4)
    reach = max(1, round(feather * side))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    grown = cv2.dilate(canvas, kernel).astype(np.float32) / 255.0
    soft = cv2.GaussianBlur(grown, (0, 0), sigmaX=reach / 2)
    soft[soft < 1e-3] = 0.0  # exact zeros away from the face: those pixels stay the original's
    return (soft * _lower_ramp(side, reach)[:, None]).astype(np.float32)


def _edge_colour_offset(patch: np.ndarray, region: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(3,) mean of ``region - patch`` over the mask's edge band (weight w(1-w), largest where w = 0.5)."""
    band = (weight * (1.0 - weight))[..., 0]  # (h, w)
    total = float(band.sum())
    if total < 1e-6:
        return np.zeros(3, np.float32)
    return band.reshape(-1) @ (region - patch).reshape(-1, 3) / total  # (3,)


def blend_window(
    frame: np.ndarray,
    face: np.ndarray,
    box: np.ndarray,
    feather: float,
    lower_half: bool = True,
    mask: np.ndarray | None = None,
    match_colour: bool = False,
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """What :func:`paste_back` changes: ((y0, y1, x0, x1), the blended (y1-y0, x1-x0, 3) uint8 pixels there).

    The window is the box, within the frame, cut to where the mask is > 0; None when nothing changes.
    """
    x0, y0, x1, y1 = (int(v) for v in np.round(box))
    side = x1 - x0
    height, width = frame.shape[:2]
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if fx1 <= fx0 or fy1 <= fy0 or side <= 0:
        return None
    if mask is None:
        weights = feather_mask(side, feather, lower_half)
    else:
        weights = np.clip(cv2.resize(mask, (side, side), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    weight = weights[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]  # (h, w)
    rows, cols = np.flatnonzero(weight.any(axis=1)), np.flatnonzero(weight.any(axis=0))
    if len(rows) == 0:
        return None
    fy0, fy1, fx0, fx1 = fy0 + rows[0], fy0 + rows[-1] + 1, fx0 + cols[0], fx0 + cols[-1] + 1
    resized = cv2.resize(
        face, (side, side), interpolation=cv2.INTER_CUBIC if side > face.shape[0] else cv2.INTER_AREA
    )  # (side, side, 3)
    region = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    patch = resized[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0].astype(np.float32)
    weight = weights[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0, None]  # (h, w, 1)
    if match_colour:
        patch = patch + _edge_colour_offset(patch, region, weight)
    blended = region + weight * (patch - region)  # where the weight is 0: the original's pixels, exactly
    return (int(fy0), int(fy1), int(fx0), int(fx1)), np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def paste_back(
    frame: np.ndarray,
    face: np.ndarray,
    box: np.ndarray,
    feather: float,
    lower_half: bool = True,
    mask: np.ndarray | None = None,
    match_colour: bool = False,
) -> np.ndarray:
    """Blend a rendered crop (S, S, 3) into a copy of ``frame`` (H, W, 3) at square box (x0, y0, x1, y1).

    ``mask`` (S', S') in [0, 1], e.g. :func:`face_mask`, is resized to the box; without it the mask is
    :func:`feather_mask` (``lower_half``: only the lower half of the face). ``match_colour`` shifts the
    crop's colour to the original's along the mask's edge. Pixels where the mask is 0 are left unchanged.
    """
    out = frame.copy()
    changed = blend_window(frame, face, box, feather, lower_half, mask, match_colour)
    if changed is not None:
        (y0, y1, x0, x1), pixels = changed
        out[y0:y1, x0:x1] = pixels
    return out
