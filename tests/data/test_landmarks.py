"""Tests for cemnet_core.data.landmarks: the mouth opening measure agrees across the three point layouts."""

from __future__ import annotations

import numpy as np
import pytest

from cemnet_core.contracts import ALL, MOUTH
from cemnet_core.data.landmarks import mouth_opening, select


def _mesh(opening: float, width: float) -> np.ndarray:
    """Random 478 points with the inner lips ``opening`` apart and the corners ``width`` apart."""
    points = np.random.default_rng(0).uniform(0, 100, (478, 2))
    points[13], points[14] = (50, 60), (50, 60 + opening)
    points[61], points[291] = (50 - width / 2, 62), (50 + width / 2, 62)
    return points


def test_opening_is_lip_gap_over_width_in_every_layout() -> None:
    mesh = np.stack([_mesh(4.0, 20.0), _mesh(10.0, 25.0)])
    expected = np.array([0.2, 0.4])
    np.testing.assert_allclose(mouth_opening(mesh), expected)
    np.testing.assert_allclose(mouth_opening(select(mesh, ALL), "all"), expected)
    np.testing.assert_allclose(mouth_opening(select(mesh, MOUTH), "mouth"), expected)


def test_opening_refuses_points_of_another_layout() -> None:
    with pytest.raises(ValueError, match="135 points"):
        mouth_opening(np.zeros((3, 478, 2)), "all")
