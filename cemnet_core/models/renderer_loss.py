"""The renderer's training objective, Eq. (17), with the documented extra terms (Sec. III-D, IV-C).

``generator_loss`` is ``w_per L_per + w_gan L_gan + w_fm L_fm`` (4 / 0.25 / 1 in the paper) plus, as
deviations listed in :mod:`cemnet_core.models.renderer` (each 0 in ``RendererConfig.paper()``):

- ``w_warp`` x the perceptual loss of the fused warp (:func:`warp_loss`; the paper applies the perceptual
  loss "to ensure the precision of the motion field");
- ``w_pixel`` x L1 over the frame, which pins colour;
- ``w_mouth`` x L1 over a box around the target's lips (:func:`mouth_mask`). The mouth is about 3% of the
  128x128 crop, so over the whole frame a mouth left as closed as the reference costs little, and a
  renderer fed one closed-mouth photo learns to keep it closed (issue #13: the starter's learned flow
  pulled the mouth back toward the reference). This term weights the pixels the speech moves.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cemnet_core.contracts import ALL_LIPS
from cemnet_core.models.discriminator import GanMode, PatchDiscriminator, feature_matching_loss, gan_loss
from cemnet_core.models.perceptual import perceptual_loss
from cemnet_core.models.renderer import RendererConfig, RendererOutput

MOUTH_MARGIN = 0.2  # the mouth box reaches this share of the lips' width beyond them on every side


def mouth_mask(landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 135, 2) ALL landmarks, crop-normalised -> (B, 1, size, size) float: 1 inside the lips' box.

    The box bounds the 40 lip points, grown by ``MOUTH_MARGIN`` x their width on each side; a pixel is
    inside when its centre is.
    """
    lips = landmarks[:, ALL_LIPS]  # (B, 40, 2)
    low, high = lips.amin(dim=1), lips.amax(dim=1)  # (B, 2)
    margin = MOUTH_MARGIN * (high[:, :1] - low[:, :1])  # (B, 1), the lips' width
    low, high = low - margin, high + margin
    centres = (torch.arange(size, device=landmarks.device, dtype=landmarks.dtype) + 0.5) / size  # (S,)
    inside_x = (centres >= low[:, 0:1]) & (centres <= high[:, 0:1])  # (B, S)
    inside_y = (centres >= low[:, 1:2]) & (centres <= high[:, 1:2])  # (B, S)
    return (inside_y[:, :, None] & inside_x[:, None, :]).unsqueeze(1).to(landmarks.dtype)


def mouth_l1(image: torch.Tensor, target: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the mouth boxes of :func:`mouth_mask` (B, 3, H, W) x2 + (B, 135, 2)."""
    mask = mouth_mask(landmarks, image.shape[-1])  # (B, 1, H, W)
    error = ((image - target).abs() * mask).sum()
    return error / (mask.sum() * image.shape[1]).clamp_min(1.0)


def warp_loss(
    vgg: nn.Module, output: RendererOutput, target: torch.Tensor, composite: bool = False
) -> torch.Tensor:
    """Perceptual loss of the fused warp against the target frame: supervises the motion fields directly.

    With ``composite`` only the lower half of the warp is used by the renderer, so only it is compared (the
    upper half is taken from the target).
    """
    warped = output.warped
    if composite:
        H = warped.shape[-2]
        warped = torch.cat([target[..., : H // 2, :], warped[..., H // 2 :, :]], dim=-2)
    return perceptual_loss(vgg, warped, target)


def generator_loss(
    config: RendererConfig,
    output: RendererOutput,
    target: torch.Tensor,
    vgg: nn.Module,
    discriminator: PatchDiscriminator,
    condition: torch.Tensor | None = None,
    target_landmarks: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Renderer objective, Eq. (17): ``w_per L_per + w_gan L_gan + w_fm L_fm`` (+ ``w_warp`` x warp loss
    + ``w_pixel`` x L1 + ``w_mouth`` x mouth L1, the documented terms of the module docstring).

    ``vgg`` is the perceptual network (:class:`VGG19Features` or :class:`FacePerceptualFeatures`).
    ``condition`` (B, C', H, W), if given, is concatenated to the images before the discriminator (its
    ``in_channels`` must be 3 + C'). ``target_landmarks`` (B, 135, 2) place the mouth box; needed when
    ``config.mouth_weight`` > 0. Returns the total and the detached terms for logging.
    """
    if config.mouth_weight and target_landmarks is None:
        raise ValueError("mouth_weight > 0 needs the target landmarks")
    fake_input = output.image if condition is None else torch.cat([output.image, condition], dim=1)
    real_input = target if condition is None else torch.cat([target, condition], dim=1)
    fake_outputs = discriminator(fake_input)
    with torch.no_grad():
        real_outputs = discriminator(real_input)
    mode: GanMode = config.gan_mode  # type: ignore[assignment]
    terms = {
        "perceptual": perceptual_loss(vgg, output.image, target),
        "warp": warp_loss(vgg, output, target, config.composite),
        "gan": gan_loss(fake_outputs, True, mode, for_discriminator=False),
        "feature_matching": feature_matching_loss(fake_outputs, real_outputs),
        "pixel": F.l1_loss(output.image, target),
    }
    if target_landmarks is not None:
        terms["mouth"] = mouth_l1(output.image, target, target_landmarks)
    total = (
        config.pixel_weight * terms["pixel"]
        + config.perceptual_weight * terms["perceptual"]
        + config.warp_weight * terms["warp"]
        + config.gan_weight * terms["gan"]
        + config.feature_matching_weight * terms["feature_matching"]
    )
    if config.mouth_weight:
        total = total + config.mouth_weight * terms["mouth"]
    return total, {name: value.detach() for name, value in terms.items()}
