"""Multi-scale patch discriminator, GAN and feature-matching losses of the renderer, Sec. III-D, Eq. (17).

The paper takes ``L_gan`` and ``L_fm`` from pix2pixHD [53]; this file follows pix2pixHD's
``MultiscaleDiscriminator``: ``num_scales`` PatchGAN discriminators (``num_layers`` strided 4x4 convolutions,
instance norm, LeakyReLU 0.2), the k-th one looking at the input average-pooled k times. Each returns the
activations of every block, the last one being the patch logits, so the feature-matching loss can compare
intermediate features of real and generated images.

Shapes::

    images   (B, C, H, W)  C = config.in_channels (3 for RGB, more if the caller concatenates a condition)
    output   list over scales (finest first) of lists over blocks of (B, D_l, H_l, W_l);
             output[k][-1] is the patch logit map (B, 1, H_k', W_k')
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from cemnet_core.configs import config_from_dict, config_to_dict
from cemnet_core.errors import ConfigError

GanMode = Literal["lsgan", "hinge"]


@dataclass(frozen=True)
class PatchDiscriminatorConfig:
    """Sizes of the multi-scale discriminator (pix2pixHD defaults in ``paper()``)."""

    in_channels: int = 3
    base_channels: int = 64
    num_layers: int = 3
    num_scales: int = 2
    max_channels: int = 512

    def __post_init__(self) -> None:
        if self.in_channels < 1 or self.base_channels < 1 or self.num_layers < 1 or self.num_scales < 1:
            raise ConfigError(f"PatchDiscriminatorConfig fields must be positive, got {self}")

    @classmethod
    def paper(cls) -> PatchDiscriminatorConfig:
        """pix2pixHD sizes (ndf 64, 3 layers) with 2 scales, enough for 128x128 faces."""
        return cls()

    @classmethod
    def tiny(cls) -> PatchDiscriminatorConfig:
        """Small enough for CPU tests."""
        return cls(base_channels=8, num_layers=2, num_scales=2, max_channels=32)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict of the fields (:func:`~cemnet_core.configs.config_to_dict`)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PatchDiscriminatorConfig:
        """Inverse of :meth:`to_dict`, type-checked; ``ConfigError`` naming unknown keys."""
        return config_from_dict(cls, data)


class _NLayerDiscriminator(nn.Module):
    """One PatchGAN: ``num_layers`` stride-2 blocks, one stride-1 block, a 1-channel logit conv."""

    def __init__(self, config: PatchDiscriminatorConfig) -> None:
        super().__init__()
        padding = math.ceil((4 - 1) / 2)
        channels = config.base_channels
        blocks: list[nn.Sequential] = [
            nn.Sequential(
                nn.Conv2d(config.in_channels, channels, kernel_size=4, stride=2, padding=padding),
                nn.LeakyReLU(0.2),
            )
        ]
        for index in range(1, config.num_layers + 1):
            previous = channels
            channels = min(channels * 2, config.max_channels)
            stride = 2 if index < config.num_layers else 1
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(previous, channels, kernel_size=4, stride=stride, padding=padding),
                    nn.InstanceNorm2d(channels, affine=True),
                    nn.LeakyReLU(0.2),
                )
            )
        blocks.append(nn.Sequential(nn.Conv2d(channels, 1, kernel_size=4, stride=1, padding=padding)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        features = []
        hidden = images
        for block in self.blocks:
            hidden = block(hidden)
            features.append(hidden)  # (B, D_l, H_l, W_l)
        return features


class PatchDiscriminator(nn.Module):
    """pix2pixHD multi-scale patch discriminator returning every block's activations per scale."""

    def __init__(self, config: PatchDiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        self.scales = nn.ModuleList([_NLayerDiscriminator(config) for _ in range(config.num_scales)])

    def forward(self, images: torch.Tensor) -> list[list[torch.Tensor]]:
        """images: (B, in_channels, H, W) -> per scale (finest first) the block outputs, logits last."""
        if images.dim() != 4 or images.shape[1] != self.config.in_channels:
            raise ValueError(
                f"images must be (B, {self.config.in_channels}, H, W), got {tuple(images.shape)}"
            )
        outputs = []
        hidden = images
        for index, scale in enumerate(self.scales):
            if index > 0:
                hidden = F.avg_pool2d(hidden, kernel_size=3, stride=2, padding=1, count_include_pad=False)
            outputs.append(scale(hidden))
        return outputs


def gan_loss(
    outputs: list[list[torch.Tensor]],
    real: bool,
    mode: GanMode = "lsgan",
    for_discriminator: bool = True,
) -> torch.Tensor:
    """Adversarial loss averaged over scales, on the last (logit) output of each scale.

    ``lsgan`` (pix2pixHD): mean (logit - 1)^2 for real, mean logit^2 for fake; the generator uses the real
    target. ``hinge``: discriminator mean relu(1 - logit) (real) / relu(1 + logit) (fake), generator
    -mean logit.
    """
    if mode not in ("lsgan", "hinge"):
        raise ConfigError(f"gan mode must be 'lsgan' or 'hinge', got {mode!r}")
    total = outputs[0][-1].new_zeros(())
    for scale_outputs in outputs:
        logits = scale_outputs[-1]
        if mode == "lsgan":
            target = 1.0 if real else 0.0
            total = total + F.mse_loss(logits, torch.full_like(logits, target))
        elif for_discriminator:
            total = total + (F.relu(1.0 - logits) if real else F.relu(1.0 + logits)).mean()
        else:
            total = total - logits.mean()
    return total / len(outputs)


def discriminator_loss(
    real_outputs: list[list[torch.Tensor]], fake_outputs: list[list[torch.Tensor]], mode: GanMode = "lsgan"
) -> torch.Tensor:
    """Discriminator objective: real images scored real, generated (detached by the caller) scored fake."""
    return 0.5 * (gan_loss(real_outputs, True, mode) + gan_loss(fake_outputs, False, mode))


def feature_matching_loss(
    fake_outputs: list[list[torch.Tensor]], real_outputs: list[list[torch.Tensor]]
) -> torch.Tensor:
    """pix2pixHD feature matching: L1 between intermediate discriminator features of fake and real images.

    Sum over scales and blocks (logits excluded) of ``4 / (num_layers + 1) / num_scales * L1``; real features
    carry no gradient.
    """
    num_scales = len(fake_outputs)
    num_intermediate = len(fake_outputs[0]) - 1
    weight = 4.0 / num_intermediate / num_scales
    total = fake_outputs[0][-1].new_zeros(())
    for fake_scale, real_scale in zip(fake_outputs, real_outputs, strict=True):
        for fake, real in zip(fake_scale[:-1], real_scale[:-1], strict=True):
            total = total + weight * F.l1_loss(fake, real.detach())
    return total
