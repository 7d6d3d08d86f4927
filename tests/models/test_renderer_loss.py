"""The renderer's objective (cemnet_core.models.renderer_loss): Eq. (17) and the documented extra terms."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cemnet_core.contracts import ALL_LIPS, N_ALL
from cemnet_core.errors import ConfigError
from cemnet_core.models.discriminator import PatchDiscriminator, PatchDiscriminatorConfig
from cemnet_core.models.perceptual import VGG19Features
from cemnet_core.models.renderer import FaceRenderer, RendererConfig
from cemnet_core.models.renderer_loss import MOUTH_MARGIN, generator_loss, mouth_l1, mouth_mask, warp_loss


def _lips_at(x0: float, y0: float, x1: float, y1: float, batch: int = 1) -> torch.Tensor:
    """(batch, 135, 2) landmarks at the crop centre whose lip points span the box (x0, y0)-(x1, y1)."""
    landmarks = torch.full((batch, N_ALL, 2), 0.5)
    lips = torch.rand(batch, ALL_LIPS.stop - ALL_LIPS.start, 2) * torch.tensor([x1 - x0, y1 - y0])
    lips = lips + torch.tensor([x0, y0])
    lips[:, 0], lips[:, 1] = torch.tensor([x0, y0]), torch.tensor([x1, y1])  # the box's corners
    landmarks[:, ALL_LIPS] = lips
    return landmarks


def test_mouth_mask_is_the_lips_box_grown_by_the_margin() -> None:
    size = 100
    mask = mouth_mask(_lips_at(0.40, 0.60, 0.60, 0.70), size)  # lips 0.2 wide: margin 0.04
    assert mask.shape == (1, 1, size, size)
    assert pytest.approx(0.2) == MOUTH_MARGIN
    rows = torch.nonzero(mask[0, 0].any(dim=1)).flatten()
    cols = torch.nonzero(mask[0, 0].any(dim=0)).flatten()
    # pixel i is inside when (i + 0.5) / 100 lies in [0.36, 0.64] x [0.56, 0.74]
    assert (cols.min().item(), cols.max().item()) == (36, 63)
    assert (rows.min().item(), rows.max().item()) == (56, 73)
    assert mask.sum().item() == 28 * 18  # a full rectangle


def test_mouth_l1_reads_only_the_mouth_box() -> None:
    landmarks = _lips_at(0.40, 0.60, 0.60, 0.70, batch=2)
    target = torch.rand(2, 3, 64, 64)
    mask = mouth_mask(landmarks, 64).bool().expand(-1, 3, -1, -1)
    outside = target.clone()
    outside[~mask] = 1 - outside[~mask]  # change every pixel outside the box
    assert mouth_l1(outside, target, landmarks).item() == 0.0
    inside = target.clone()
    inside[mask] = inside[mask] + 0.25
    torch.testing.assert_close(mouth_l1(inside, target, landmarks), torch.tensor(0.25))


@pytest.mark.parametrize("composite", [True, False])
def test_generator_loss_weights_follow_eq_17(composite: bool) -> None:
    torch.manual_seed(0)
    model = FaceRenderer(dataclasses.replace(RendererConfig.tiny(), composite=composite, mouth_weight=3.0))
    inputs = model.example_inputs(batch_size=2)
    target = torch.rand(2, 3, model.config.image_size, model.config.image_size)
    discriminator = PatchDiscriminator(PatchDiscriminatorConfig.tiny())
    vgg = VGG19Features()
    output = model(*inputs)
    landmarks = inputs[-1]  # the target landmarks
    total, terms = generator_loss(
        model.config, output, target, vgg, discriminator, target_landmarks=landmarks
    )
    expected = 4 * terms["perceptual"] + 4 * terms["warp"] + 0.25 * terms["gan"] + terms["feature_matching"]
    expected = expected + model.config.pixel_weight * terms["pixel"] + 3.0 * terms["mouth"]
    torch.testing.assert_close(total.detach(), expected)
    torch.testing.assert_close(terms["pixel"], torch.nn.functional.l1_loss(output.image, target).detach())
    torch.testing.assert_close(terms["mouth"], mouth_l1(output.image, target, landmarks).detach())
    torch.testing.assert_close(terms["warp"], warp_loss(vgg, output, target, composite).detach())


def test_mouth_weight_needs_the_target_landmarks_and_may_not_be_negative() -> None:
    model = FaceRenderer(dataclasses.replace(RendererConfig.tiny(), mouth_weight=1.0))
    inputs = model.example_inputs(batch_size=1)
    discriminator = PatchDiscriminator(PatchDiscriminatorConfig.tiny())
    with pytest.raises(ValueError, match="target landmarks"):
        generator_loss(model.config, model(*inputs), inputs[0][:, 0], VGG19Features(), discriminator)
    with pytest.raises(ConfigError, match="mouth_weight"):
        dataclasses.replace(RendererConfig.tiny(), mouth_weight=-1.0)
