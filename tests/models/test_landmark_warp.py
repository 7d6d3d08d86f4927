"""Landmark motion prior (models/landmark_warp.py): TPS warps land content where the landmarks say."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cemnet_core.models.landmark_warp import mouth_similarity_logits, tps_flow, tps_grid
from cemnet_core.models.renderer import warp


def _blobs(size: int) -> torch.Tensor:
    """(1, 3, size, size) smooth test image: three Gaussian blobs of different colours."""
    centres = (torch.arange(size) + 0.5) / size
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    channels = [
        torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.01)
        for cx, cy in ((0.4, 0.4), (0.6, 0.5), (0.45, 0.65))
    ]
    return torch.stack(channels)[None]


def test_known_affine_motion_gives_the_known_image() -> None:
    generator = torch.Generator().manual_seed(0)
    source = 0.2 + 0.6 * torch.rand(1, 60, 2, generator=generator)  # landmarks in the source image
    matrix = torch.tensor([[1.08, 0.12], [-0.06, 0.93]])
    offset = torch.tensor([0.04, -0.03])
    target = source @ matrix.T + offset  # where they are in the target
    image = _blobs(64)
    moved = warp(image, tps_flow(source, target, (64, 64)))
    # the same motion straight from the affine map: target q samples source p = matrix^-1 (q - offset)
    inverse = torch.linalg.inv(matrix)
    theta = torch.cat([inverse, (inverse @ (-offset)[:, None]) * 2 + inverse.sum(1, keepdim=True) - 1], 1)
    grid = F.affine_grid(theta[None], [1, 3, 64, 64], align_corners=False)
    expected = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    torch.testing.assert_close(moved, expected, rtol=0, atol=1e-4)
    assert (moved - image).abs().max() > 0.3  # the motion is not trivial


def test_the_spline_carries_each_target_landmark_to_its_source_landmark() -> None:
    generator = torch.Generator().manual_seed(1)
    size = 64
    pixel = torch.randperm(size * size, generator=generator)[:40].view(1, 40)  # distinct pixels
    pixel = torch.stack([pixel % size, pixel // size], dim=-1).expand(2, -1, -1)  # (2, 40, 2) x, y
    target = (pixel.float() + 0.5) / size  # target landmarks on pixel centres
    source = target + 0.03 * torch.randn(2, 40, 2, generator=generator)  # a non-affine motion
    grid = tps_grid(source, target, (size, size), regularization=1e-8)  # (2, H, W, 2) in [-1, 1]
    landed = grid[torch.arange(2)[:, None], pixel[..., 1], pixel[..., 0]]  # (2, 40, 2)
    torch.testing.assert_close(landed, 2 * source - 1, rtol=0, atol=1e-3)


def test_identical_landmarks_give_the_identity_warp() -> None:
    points = 0.2 + 0.6 * torch.rand(3, 30, 2, generator=torch.Generator().manual_seed(2))
    assert tps_flow(points, points, (16, 16)).abs().max() < 1e-5


def test_mouth_prior_prefers_the_reference_with_the_same_mouth_shape() -> None:
    generator = torch.Generator().manual_seed(3)
    target = 0.5 + 0.05 * torch.randn(1, 40, 2, generator=generator)
    open_mouth = target.clone()
    open_mouth[:, 20:, 1] += 0.04  # another shape
    shifted = target + 0.1  # the same shape elsewhere in the crop
    logits = mouth_similarity_logits(torch.stack([open_mouth, shifted], dim=1), target)
    assert logits.shape == (1, 2) and logits[0, 1] > logits[0, 0]
    assert logits[0, 1] == pytest.approx(0.0, abs=1e-4)


def test_bad_shapes_raise_value_error() -> None:
    with pytest.raises(ValueError, match="M, K, 2"):
        tps_grid(torch.rand(1, 10, 2), torch.rand(1, 9, 2), (8, 8))
    with pytest.raises(ValueError, match="K >= 3"):
        tps_grid(torch.rand(1, 2, 2), torch.rand(1, 2, 2), (8, 8))
    with pytest.raises(ValueError, match="ref_mouths"):
        mouth_similarity_logits(torch.rand(1, 40, 2), torch.rand(1, 40, 2))


def test_a_set_without_a_face_gets_the_identity_warp() -> None:
    good = 0.2 + 0.6 * torch.rand(1, 30, 2, generator=torch.Generator().manual_seed(4))
    missing = torch.cat([torch.zeros(1, 30, 2), torch.full((1, 30, 2), float("nan")), good + 0.01])
    flows = tps_flow(missing, torch.cat([good, good, good]), (16, 16))
    assert torch.isfinite(flows).all()
    assert flows[:2].abs().max() < 1e-5 and flows[2].abs().max() > 1e-3


def test_shared_targets_give_the_grids_of_separate_solves() -> None:
    generator = torch.Generator().manual_seed(5)
    target = 0.2 + 0.6 * torch.rand(2, 30, 2, generator=generator)  # (M, K, 2)
    sources = target[:, None] + 0.03 * torch.randn(2, 3, 30, 2, generator=generator)  # (M, R, K, 2)
    sources[1, 2] = float("nan")  # one reference without a face
    shared = tps_flow(sources, target, (16, 16))  # (M, R, 2, H, W)
    assert shared.shape == (2, 3, 2, 16, 16)
    for m in range(2):
        for r in range(3):
            alone = tps_flow(sources[m, r][None], target[m][None], (16, 16))[0]
            torch.testing.assert_close(shared[m, r], alone, rtol=0, atol=1e-4)  # float32 evaluation
    assert shared[1, 2].abs().max() < 1e-5 and shared[1, 1].abs().max() > 1e-3


def test_mixed_precision_leaves_the_spline_in_float32() -> None:
    generator = torch.Generator().manual_seed(2)
    target = 0.2 + 0.6 * torch.rand(2, 60, 2, generator=generator)
    sources = target[:, None] + 0.02 * torch.randn(2, 3, 60, 2, generator=generator)  # 3 references each
    expected = tps_grid(sources, target, (48, 48))
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        mixed = tps_grid(sources, target, (48, 48))
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, expected, rtol=0, atol=0)
