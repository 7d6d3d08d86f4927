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

The flow head starts at zero, so an untrained estimator warps by the identity (FOMM/Monkey-Net start
from identity motion as well); ``warp(images, zero flow)`` returns the images exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cemnet_core.errors import ConfigError
from cemnet_core.models.discriminator import GanMode, PatchDiscriminator, feature_matching_loss, gan_loss
from cemnet_core.models.perceptual import VGG19Features, perceptual_loss


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

    @classmethod
    def paper(cls) -> RendererConfig:
        """128x128 frames, N = 5 references, widths in the range of IP-LAP's renderer; losses 4 / 0.25 / 1.

        Motion is estimated at half resolution (64x64) and upsampled, as Monkey-Net and FOMM estimate dense
        motion at a reduced scale: it costs a quarter of the flow estimator's full-resolution FLOPs.
        """
        return cls()

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
        """JSON-safe dict (tuples become lists)."""
        data = asdict(self)
        data["flow_channels"] = list(self.flow_channels)
        data["generator_channels"] = list(self.generator_channels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RendererConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown RendererConfig keys {sorted(unknown)}; remove them.")
        values = dict(data)
        for key in ("flow_channels", "generator_channels"):
            if key in values:
                values[key] = tuple(int(channels) for channels in values[key])
        return cls(**values)


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
        nn.init.zeros_(self.flow_head.weight)  # start from the identity warp
        nn.init.zeros_(self.flow_head.bias)

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

    def _check(
        self,
        ref_images: torch.Tensor,
        ref_sketches: torch.Tensor,
        target_sketch: torch.Tensor,
        masked_target: torch.Tensor,
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

    def forward(
        self,
        ref_images: torch.Tensor,
        ref_sketches: torch.Tensor,
        target_sketch: torch.Tensor,
        masked_target: torch.Tensor,
    ) -> RendererOutput:
        """Render one frame per batch item; inputs and outputs as in the module docstring.

        N may differ from ``config.num_refs`` (the weights are a softmax over whatever N is given).
        """
        self._check(ref_images, ref_sketches, target_sketch, masked_target)
        B, N, _, H, W = ref_images.shape
        flows, logits = self.flow_estimator(ref_images, ref_sketches, target_sketch)
        weights = torch.softmax(logits, dim=1)  # (B, N, 1, H, W), w_i^t of Eq. (15)
        warped_each = warp(ref_images.reshape(B * N, 3, H, W), flows.reshape(B * N, 2, H, W))
        warped = (warped_each.reshape(B, N, 3, H, W) * weights).sum(dim=1)  # (B, 3, H, W)
        hidden = self.generator(torch.cat([warped, target_sketch, masked_target], dim=1))  # (B, c0, H, W)
        image = torch.sigmoid(self.to_rgb(hidden))  # (B, 3, H, W)
        return RendererOutput(image=image, warped=warped, flows=flows, weights=weights)

    def example_inputs(self, batch_size: int = 1) -> tuple[torch.Tensor, ...]:
        """Random inputs of the configured sizes (profiling, smoke tests)."""
        size, N = self.config.image_size, self.config.num_refs
        target = torch.rand(batch_size, 3, size, size)
        return (
            torch.rand(batch_size, N, 3, size, size),
            torch.rand(batch_size, N, 3, size, size),
            torch.rand(batch_size, 3, size, size),
            mask_lower_half(target),
        )

    @property
    def frames_per_example(self) -> float:
        """Video frames generated by one call on :meth:`example_inputs` (batch 1)."""
        return 1.0


def warp_loss(vgg: VGG19Features, output: RendererOutput, target: torch.Tensor) -> torch.Tensor:
    """Perceptual loss of the fused warp against the target frame: supervises the motion fields directly."""
    return perceptual_loss(vgg, output.warped, target)


def generator_loss(
    config: RendererConfig,
    output: RendererOutput,
    target: torch.Tensor,
    vgg: VGG19Features,
    discriminator: PatchDiscriminator,
    condition: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Renderer objective, Eq. (17): ``w_per L_per + w_gan L_gan + w_fm L_fm`` (+ ``w_warp`` x warp loss).

    ``condition`` (B, C', H, W), if given, is concatenated to the images before the discriminator (its
    ``in_channels`` must be 3 + C'). Returns the total and the detached terms for logging.
    """
    fake_input = output.image if condition is None else torch.cat([output.image, condition], dim=1)
    real_input = target if condition is None else torch.cat([target, condition], dim=1)
    fake_outputs = discriminator(fake_input)
    with torch.no_grad():
        real_outputs = discriminator(real_input)
    mode: GanMode = config.gan_mode  # type: ignore[assignment]
    terms = {
        "perceptual": perceptual_loss(vgg, output.image, target),
        "warp": warp_loss(vgg, output, target),
        "gan": gan_loss(fake_outputs, True, mode, for_discriminator=False),
        "feature_matching": feature_matching_loss(fake_outputs, real_outputs),
    }
    total = (
        config.perceptual_weight * terms["perceptual"]
        + config.warp_weight * terms["warp"]
        + config.gan_weight * terms["gan"]
        + config.feature_matching_weight * terms["feature_matching"]
    )
    return total, {name: value.detach() for name, value in terms.items()}
