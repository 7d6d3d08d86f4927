"""Face renderer: flow estimator, warping, weighted fusion and generator, Sec. III-D, Eqs. (14)-(17).

"Inspired by Monkey-Net, our renderer consists of a flow estimator and an image generator." For every
reference i the flow estimator W (Eq. 14) sees the reference image, its landmark sketch and the target
sketch (predicted landmarks f_t) and predicts a dense motion field M_i (a sampling-grid offset) plus a weight
logit map. Each reference is warped with ``grid_sample`` and the warped references are fused with per-pixel
weights w_i^t, a softmax over the N references (Eq. 15). The generator G (Eq. 16) takes the fused warped
image, the target sketch and the target face with its lower half masked and produces the frame through a
U-Net (encoder/decoder with skip connections, residual blocks at the bottleneck), as IP-LAP's renderer does
with a simpler image-space warp. Loss (Eq. 17): ``w_per L_per + w_gan L_gan + w_fm L_fm`` with 4 / 0.25 / 1;
the perceptual term is applied to the generated frame and, as ``warp_loss``, to the fused warp, since the
paper uses it "to ensure the precision of the motion field and the quality of the generated faces".

Shapes::

    ref_images     (B, N, 3, H, W)  RGB in [0, 1]       ref_sketches  (B, N, 3, H, W)  landmark sketches
    target_sketch  (B, 3, H, W)     predicted landmarks masked_target (B, 3, H, W)     lower half zeroed
    image          (B, 3, H, W)     in [0, 1]           warped        (B, 3, H, W)     fused warp
    flows          (B, N, 2, H, W)  grid offsets (x, y) in normalised [-1, 1] units
    weights        (B, N, 1, H, W)  sum to 1 over N

Documented deviations (DESIGN section 5), each one config switch away from the paper (``paper()`` turns all
three off and gives the design above, with the flow head starting at zero, i.e. from the identity warp):

- ``motion_prior``: motion starts from the landmarks. A thin-plate-spline warp from each reference's
  landmarks to the target landmarks (:mod:`cemnet_core.models.landmark_warp`) is computed before any
  learning; the flow estimator sees the references already warped by it and predicts a correction (its
  flow head starts at zero), and the fusion weights start from a prior that favours the references whose
  mouth shape matches the target's (the weight head starts at zero). The paper's estimator has to learn all
  motion from data, which minutes of CPU training cannot do.
  ``prior_regularization`` smooths the spline (0 interpolates every landmark exactly); 1e-2 was chosen on
  the validation speakers (``benchmarks/renderer_quality.py --steps 0 --split val --items 64 --set
  model.prior_regularization=R``): real videos 29.38 dB at 1e-4 vs 29.63 at 1e-2, the procedural corpus
  35.80 vs 35.90.
- ``composite``: only the masked region is synthesised. The generator predicts a residual on the fused warp
  (its output layer starts at zero) and the result replaces only the masked lower half; the upper half is
  the given ``masked_target``, bit for bit. So an untrained renderer returns the warp prior, and no capacity
  goes into copying the pixels it is given. The paper's generator outputs the whole frame (a sigmoid).
- ``pixel_weight``: an L1 pixel term beside Eq. (17)'s perceptual, GAN and feature-matching terms, which
  pins colour (the perceptual network sees grey faces or, with ImageNet VGG19, ignores small colour
  shifts). ``mouth_weight`` (0 by default) adds an L1 term over a box around the target's lips
  (:mod:`cemnet_core.models.renderer_loss`). The loss itself lives in that module.

``warp(images, zero flow)`` returns the images exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cemnet_core.configs import config_from_dict, config_to_dict
from cemnet_core.contracts import ALL_LIPS, N_ALL, N_POSE
from cemnet_core.errors import ConfigError
from cemnet_core.models.landmark_warp import mouth_similarity_logits, tps_flow

# Thin-plate-spline control points, positions in the ALL order (POSE + LIPS + JAW): every mouth point and
# every third pose point (the rigid upper face anchors the spline; all 135 points cost 1.6x the time).
PRIOR_POINTS: tuple[int, ...] = tuple(range(N_POSE, N_ALL)) + tuple(range(0, N_POSE, 3))


@dataclass(frozen=True)
class RendererConfig:
    """Sizes of the renderer and the weights of its loss (Eq. 17)."""

    image_size: int = 128
    num_refs: int = 5
    flow_channels: tuple[int, ...] = (64, 128, 256, 512)
    generator_channels: tuple[int, ...] = (64, 128, 256, 512)
    generator_res_blocks: int = 2
    flow_scale: float = 0.5
    perceptual_weight: float = 4.0
    gan_weight: float = 0.25
    feature_matching_weight: float = 1.0
    warp_weight: float = 4.0
    gan_mode: str = "lsgan"
    motion_prior: bool = True  # landmark (TPS) warp + mouth-similarity weights as the start (docstring)
    prior_scale: float = 0.25  # resolution of the TPS evaluation relative to image_size (smooth: upsampled)
    prior_sigma: float = 0.01  # mouth-shape distance scale of the weight prior, crop units
    prior_regularization: float = 0.01  # TPS smoothing (see below)
    composite: bool = True  # synthesise only the masked lower half, as a residual on the fused warp
    pixel_weight: float = 16.0  # L1 pixel term beside Eq. (17); 0 in the paper
    mouth_weight: float = 0.0  # L1 over the target's mouth box (renderer_loss); 0 in the paper

    #: Fields a fine-tuning run (a stage's ``init_from``) may change: the resolution motion is estimated at
    #: (the networks are fully convolutional, so the same weights run at another scale) and the loss weights.
    FINE_TUNABLE = ("flow_scale", "perceptual_weight", "gan_weight", "feature_matching_weight",
                    "warp_weight", "pixel_weight", "mouth_weight")  # fmt: skip

    def __post_init__(self) -> None:
        depth = max(len(self.flow_channels), len(self.generator_channels))
        if self.image_size % (2**depth) != 0:
            raise ConfigError(f"image_size {self.image_size} must be divisible by 2**{depth}; pick 128.")
        if self.num_refs < 1 or not self.flow_channels or not self.generator_channels:
            raise ConfigError("num_refs must be >= 1 and flow/generator channels non-empty.")
        flow_size = self.image_size * self.flow_scale
        if (
            not 0 < self.flow_scale <= 1
            or flow_size != int(flow_size)
            or int(flow_size) % 2 ** len(self.flow_channels)
        ):
            raise ConfigError(
                f"flow_scale {self.flow_scale} must be in (0, 1] and give a flow resolution divisible by "
                f"2**{len(self.flow_channels)}; 0.5 or 1.0 fit 128x128 frames."
            )
        if self.gan_mode not in ("lsgan", "hinge"):
            raise ConfigError(f"gan_mode must be 'lsgan' or 'hinge', got {self.gan_mode!r}")
        prior_size = self.image_size * self.prior_scale
        if not 0 < self.prior_scale <= 1 or prior_size != int(prior_size) or self.prior_sigma <= 0:
            raise ConfigError(
                f"prior_scale {self.prior_scale} must be in (0, 1] giving a whole number of pixels, and "
                f"prior_sigma > 0 (got {self.prior_sigma}); 0.25 and 0.01 are the defaults."
            )
        if min(self.pixel_weight, self.mouth_weight, self.prior_regularization) < 0:
            raise ConfigError(
                f"pixel_weight, mouth_weight and prior_regularization must be >= 0, got {self.pixel_weight}, "
                f"{self.mouth_weight} and {self.prior_regularization}"
            )

    @classmethod
    def paper(cls) -> RendererConfig:
        """The paper's renderer: 128x128 frames, N = 5, IP-LAP-range widths, losses 4 / 0.25 / 1, unchanged.

        Motion is estimated at half resolution (64x64) and upsampled, as Monkey-Net and FOMM estimate dense
        motion at a reduced scale: it costs a quarter of the flow estimator's full-resolution FLOPs. The
        landmark prior, the composite and the pixel term are off: the flow starts from the identity.
        """
        return cls(motion_prior=False, composite=False, pixel_weight=0.0)

    @classmethod
    def base(cls) -> RendererConfig:
        """The paper's sizes with this project's deviations (module docstring): the default."""
        return cls()

    @classmethod
    def small(cls) -> RendererConfig:
        """128x128 frames, N = 5, a quarter of the paper's widths: minutes of CPU training from the prior."""
        widths = (16, 32, 64, 128)
        return cls(flow_channels=widths, generator_channels=widths, generator_res_blocks=2)

    @classmethod
    def tiny(cls) -> RendererConfig:
        """32x32 frames, 2 references, a few channels: for CPU tests."""
        return cls(
            image_size=32,
            num_refs=2,
            flow_channels=(8, 16),
            generator_channels=(8, 16),
            generator_res_blocks=1,
            flow_scale=1.0,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict of the fields (:func:`~cemnet_core.configs.config_to_dict`)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RendererConfig:
        """Inverse of :meth:`to_dict`, type-checked; ``ConfigError`` naming unknown keys.

        The upgrade hook of :mod:`cemnet_core.configs`: a config written before the deviations existed
        (none of ``motion_prior``, ``composite``, ``pixel_weight``) is a renderer trained as the paper's,
        so it loads with those off.
        """
        if not {"motion_prior", "composite", "pixel_weight"} & set(data):
            data = {**data, "motion_prior": False, "composite": False, "pixel_weight": 0.0}
        return config_from_dict(cls, data)


class RendererOutput(NamedTuple):
    """What :class:`FaceRenderer` returns; shapes in the module docstring."""

    image: torch.Tensor
    warped: torch.Tensor
    flows: torch.Tensor
    weights: torch.Tensor


def mask_lower_half(images: torch.Tensor) -> torch.Tensor:
    """Zero the lower half (rows H//2 ..) of images (..., C, H, W): the generator's masked target input."""
    masked = images.clone()
    masked[..., images.shape[-2] // 2 :, :] = 0
    return masked


def identity_grid(
    batch: int, height: int, width: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Sampling grid (batch, H, W, 2) that makes ``grid_sample(align_corners=False)`` return its input."""
    theta = torch.eye(2, 3, device=device, dtype=dtype).unsqueeze(0).expand(batch, 2, 3)
    return F.affine_grid(theta, [batch, 1, height, width], align_corners=False)


def warp(images: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward-warp images (B, C, H, W) by flow (B, 2, H, W): (x, y) offsets in [-1, 1] units (Eq. 15)."""
    if flow.shape[0] != images.shape[0] or flow.shape[1] != 2 or flow.shape[-2:] != images.shape[-2:]:
        raise ValueError(
            f"flow must be (B, 2, H, W) matching images {tuple(images.shape)}, got {tuple(flow.shape)}"
        )
    B, _, H, W = images.shape
    grid = identity_grid(B, H, W, images.device, images.dtype) + flow.permute(0, 2, 3, 1)  # (B, H, W, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class _ConvBlock(nn.Module):
    """conv3x3 (stride 1 or 2) -> group norm -> LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1)
        self.norm = _norm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.norm(self.conv(x)), 0.2)


class _UpBlock(nn.Module):
    """nearest x2 upsampling, concat the skip, two conv blocks."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.fuse = _ConvBlock(in_channels + skip_channels, out_channels)
        self.refine = _ConvBlock(out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.refine(self.fuse(torch.cat([x, skip], dim=1)))


class _ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.first = _ConvBlock(channels, channels)
        self.second = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.norm = _norm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.norm(self.second(self.first(x))), 0.2)


class _UNet(nn.Module):
    """Hourglass: stem at full resolution, len(channels)-1 stride-2 stages down, mirrored up with skips."""

    def __init__(self, in_channels: int, channels: tuple[int, ...], res_blocks: int) -> None:
        super().__init__()
        self.stem = _ConvBlock(in_channels, channels[0])
        self.down = nn.ModuleList(
            [_ConvBlock(channels[i], channels[i + 1], stride=2) for i in range(len(channels) - 1)]
        )
        self.middle = nn.Sequential(*[_ResBlock(channels[-1]) for _ in range(res_blocks)])
        self.up = nn.ModuleList(
            [_UpBlock(channels[i + 1], channels[i], channels[i]) for i in reversed(range(len(channels) - 1))]
        )
        self.out_channels = channels[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.stem(x)  # (B, c0, H, W)
        skips = [hidden]
        for block in self.down:
            hidden = block(hidden)  # (B, c_{i+1}, H/2^{i+1}, W/2^{i+1})
            skips.append(hidden)
        hidden = self.middle(hidden)
        skips.pop()
        for block in self.up:
            hidden = block(hidden, skips.pop())
        return hidden  # (B, c0, H, W)


class FlowEstimator(nn.Module):
    """W of Eq. (14): (reference image, reference sketch, target sketch) -> motion field + weight logit."""

    def __init__(self, config: RendererConfig) -> None:
        super().__init__()
        self.scale = config.flow_scale
        self.body = _UNet(9, config.flow_channels, res_blocks=1)
        self.flow_head = nn.Conv2d(self.body.out_channels, 2, kernel_size=3, padding=1)
        self.weight_head = nn.Conv2d(self.body.out_channels, 1, kernel_size=3, padding=1)
        nn.init.zeros_(self.flow_head.weight)  # start from the identity warp (or the landmark prior)
        nn.init.zeros_(self.flow_head.bias)
        if config.motion_prior:  # start from the prior's fusion weights
            nn.init.zeros_(self.weight_head.weight)
            nn.init.zeros_(self.weight_head.bias)

    def forward(
        self, ref_images: torch.Tensor, ref_sketches: torch.Tensor, target_sketch: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N, 3, H, W) x2 + (B, 3, H, W) -> flows (B, N, 2, H, W), weight logits (B, N, 1, H, W)."""
        B, N, _, H, W = ref_images.shape
        target = target_sketch.unsqueeze(1).expand(B, N, 3, H, W)
        inputs = torch.cat([ref_images, ref_sketches, target], dim=2).reshape(
            B * N, 9, H, W
        )  # (B*N, 9, H, W)
        if self.scale != 1.0:  # estimate motion at a reduced resolution, Monkey-Net/FOMM style
            inputs = F.interpolate(inputs, scale_factor=self.scale, mode="area")  # (B*N, 9, sH, sW)
        hidden = self.body(inputs)  # (B*N, c0, sH, sW)
        flows, logits = self.flow_head(hidden), self.weight_head(hidden)  # (B*N, 2|1, sH, sW)
        if self.scale != 1.0:  # offsets are in normalised [-1, 1] units, so they upsample unchanged
            flows = F.interpolate(flows, size=(H, W), mode="bilinear", align_corners=False)
            logits = F.interpolate(logits, size=(H, W), mode="bilinear", align_corners=False)
        return flows.reshape(B, N, 2, H, W), logits.reshape(B, N, 1, H, W)


class FaceRenderer(nn.Module):
    """Renderer of Sec. III-D: flow estimation (Eq. 14), weighted warp fusion (Eq. 15), generator (Eq. 16)."""

    def __init__(self, config: RendererConfig) -> None:
        super().__init__()
        self.config = config
        self.flow_estimator = FlowEstimator(config)
        self.generator = _UNet(9, config.generator_channels, res_blocks=config.generator_res_blocks)
        self.to_rgb = nn.Conv2d(config.generator_channels[0], 3, kernel_size=3, padding=1)
        if config.composite:  # a residual on the fused warp that starts at zero
            nn.init.zeros_(self.to_rgb.weight)
            nn.init.zeros_(self.to_rgb.bias)

    def _check(
        self,
        ref_images: torch.Tensor,
        ref_sketches: torch.Tensor,
        target_sketch: torch.Tensor,
        masked_target: torch.Tensor,
        ref_landmarks: torch.Tensor | None,
        target_landmarks: torch.Tensor | None,
    ) -> None:
        size = self.config.image_size
        if ref_images.dim() != 5 or ref_images.shape[2:] != (3, size, size):
            raise ValueError(f"ref_images must be (B, N, 3, {size}, {size}), got {tuple(ref_images.shape)}")
        if ref_sketches.shape != ref_images.shape:
            raise ValueError(
                f"ref_sketches must match ref_images {tuple(ref_images.shape)}, "
                f"got {tuple(ref_sketches.shape)}"
            )
        B = ref_images.shape[0]
        for name, tensor in (("target_sketch", target_sketch), ("masked_target", masked_target)):
            if tensor.shape != (B, 3, size, size):
                raise ValueError(f"{name} must be ({B}, 3, {size}, {size}), got {tuple(tensor.shape)}")
        if self.config.motion_prior:
            N = ref_images.shape[1]
            if ref_landmarks is None or ref_landmarks.shape != (B, N, N_ALL, 2):
                got = None if ref_landmarks is None else tuple(ref_landmarks.shape)
                raise ValueError(f"ref_landmarks must be ({B}, {N}, {N_ALL}, 2) with motion_prior, got {got}")
            if target_landmarks is None or target_landmarks.shape != (B, N_ALL, 2):
                got = None if target_landmarks is None else tuple(target_landmarks.shape)
                raise ValueError(f"target_landmarks must be ({B}, {N_ALL}, 2) with motion_prior, got {got}")

    def motion_prior(
        self, ref_landmarks: torch.Tensor, target_landmarks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Landmark prior: TPS flows (B, N, 2, H, W) reference -> target, and weight logits (B, N, 1, 1, 1).

        ref_landmarks (B, N, 135, 2) and target_landmarks (B, 135, 2) are ``ALL``-ordered, crop-normalised.
        """
        B, N = ref_landmarks.shape[:2]
        size, prior = self.config.image_size, int(self.config.image_size * self.config.prior_scale)
        points = list(PRIOR_POINTS)
        source, target = ref_landmarks[:, :, points], target_landmarks[:, points]  # (B, N, P, 2), (B, P, 2)
        flows = tps_flow(source.float(), target.float(), (prior, prior), self.config.prior_regularization)
        flows = flows.reshape(B * N, 2, prior, prior)  # the N references share one spline system per frame
        if prior != size:  # flow offsets are in [-1, 1] units, so they upsample unchanged
            flows = F.interpolate(flows, size=(size, size), mode="bilinear", align_corners=False)
        logits = mouth_similarity_logits(
            ref_landmarks[:, :, ALL_LIPS], target_landmarks[:, ALL_LIPS], self.config.prior_sigma
        )  # (B, N)
        return flows.reshape(B, N, 2, size, size), logits.reshape(B, N, 1, 1, 1)

    def forward(
        self,
        ref_images: torch.Tensor,
        ref_sketches: torch.Tensor,
        target_sketch: torch.Tensor,
        masked_target: torch.Tensor,
        ref_landmarks: torch.Tensor | None = None,
        target_landmarks: torch.Tensor | None = None,
        ref_counts: torch.Tensor | None = None,
    ) -> RendererOutput:
        """Render one frame per batch item; inputs and outputs as in the module docstring.

        ``ref_landmarks`` (B, N, 135, 2) and ``target_landmarks`` (B, 135, 2), ``ALL``-ordered and
        crop-normalised (the landmarks the sketches are drawn from), are required with ``motion_prior``.
        N may differ from ``config.num_refs`` (the weights are a softmax over whatever N is given).
        ``ref_counts`` (N,) says reference i stands for that many identical copies: Eq. (15)'s softmax then
        counts it that many times (``log(count)`` added to its logit), so N references repeated to
        ``config.num_refs`` render the same frame as the distinct ones with their counts, at 1/count the cost.
        """
        self._check(ref_images, ref_sketches, target_sketch, masked_target, ref_landmarks, target_landmarks)
        B, N, _, H, W = ref_images.shape
        if self.config.motion_prior:
            assert ref_landmarks is not None and target_landmarks is not None
            prior_flows, prior_logits = self.motion_prior(ref_landmarks, target_landmarks)
            both = torch.cat([ref_images, ref_sketches], dim=2).reshape(B * N, 6, H, W)
            aligned = warp(both, prior_flows.reshape(B * N, 2, H, W)).reshape(B, N, 6, H, W)
            correction, logits = self.flow_estimator(aligned[:, :, :3], aligned[:, :, 3:], target_sketch)
            flows, logits = prior_flows + correction, logits + prior_logits  # (B, N, 2|1, H, W)
        else:
            flows, logits = self.flow_estimator(ref_images, ref_sketches, target_sketch)
        if ref_counts is not None:  # a reference repeated k times weighs k times in the softmax
            if ref_counts.shape != (N,) or bool((ref_counts < 1).any()):
                raise ValueError(f"ref_counts must be ({N},) counts >= 1, got {ref_counts.tolist()}")
            logits = logits + ref_counts.to(logits).log().view(1, N, 1, 1, 1)
        weights = torch.softmax(logits, dim=1)  # (B, N, 1, H, W), w_i^t of Eq. (15)
        warped_each = warp(ref_images.reshape(B * N, 3, H, W), flows.reshape(B * N, 2, H, W))
        warped = (warped_each.reshape(B, N, 3, H, W) * weights).sum(dim=1)  # (B, 3, H, W)
        hidden = self.generator(torch.cat([warped, target_sketch, masked_target], dim=1))  # (B, c0, H, W)
        if self.config.composite:  # residual on the warp, inside the masked lower half only
            generated = (warped + self.to_rgb(hidden)).clamp(0, 1)  # (B, 3, H, W)
            lower = torch.arange(H, device=generated.device).view(1, 1, H, 1) >= H // 2
            image = torch.where(lower, generated, masked_target)
        else:
            image = torch.sigmoid(self.to_rgb(hidden))  # (B, 3, H, W)
        return RendererOutput(image=image, warped=warped, flows=flows, weights=weights)

    def example_inputs(self, batch_size: int = 1) -> tuple[torch.Tensor, ...]:
        """Random inputs of the configured sizes (profiling, smoke tests)."""
        size, N = self.config.image_size, self.config.num_refs
        target = torch.rand(batch_size, 3, size, size)
        inputs = (
            torch.rand(batch_size, N, 3, size, size),
            torch.rand(batch_size, N, 3, size, size),
            torch.rand(batch_size, 3, size, size),
            mask_lower_half(target),
        )
        if not self.config.motion_prior:
            return inputs
        target_landmarks = 0.2 + 0.6 * torch.rand(batch_size, N_ALL, 2)
        ref_landmarks = target_landmarks[:, None] + 0.01 * torch.randn(batch_size, N, N_ALL, 2)
        return (*inputs, ref_landmarks, target_landmarks)

    @property
    def frames_per_example(self) -> float:
        """Video frames generated by one call on :meth:`example_inputs` (batch 1)."""
        return 1.0
