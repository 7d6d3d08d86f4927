"""Stage ``renderer``: train the face renderer (Sec. III-D, Eqs. 14-17) adversarially on any talking corpus.

Paper (Sec. IV-C): ``L = w_per L_per + w_gan L_gan + w_fm L_fm`` with 4 / 0.25 / 1 (Eq. 17), the weights
living in :class:`RendererConfig`. Each step has two phases (pix2pixHD style):

1. ``generator``: render the target from the references, loss of Eq. (17) (:func:`generator_loss`, which
   also applies the perceptual loss to the fused warp, weight ``warp_weight``); the discriminator sees the
   image concatenated with the target sketch (a conditional discriminator, ``in_channels = 6``).
2. ``discriminator``: real target vs the (detached) rendered frame, least-squares GAN loss.

Optional warm-up (``warmup_steps`` > 0): before the adversarial phases, only the warping loss (the
perceptual loss of the fused warp against the target) is minimised, so the flow estimator learns motion
before the generator learns to fill in; IP-LAP trains its renderer's warping path this way. The paper
does not mention a warm-up, so the ``paper`` preset has none.

Frames come at 128x128 (:class:`RendererDataset`); a smaller ``model.image_size`` (the ``tiny`` preset)
resizes them (area averaging) inside the step. The VGG19 of the perceptual loss is frozen: ImageNet weights
from the registry (``vgg_weights``), or random features when ``vgg_weights = ""`` (tests only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cemnet_core.data.datasets import RendererDataset
from cemnet_core.models.discriminator import PatchDiscriminator, PatchDiscriminatorConfig, discriminator_loss
from cemnet_core.models.perceptual import VGG19Features, perceptual_loss
from cemnet_core.models.renderer import FaceRenderer, RendererConfig, generator_loss, mask_lower_half
from cemnet_core.train.distributed import DistEnv
from cemnet_core.train.loop import LoopConfig, Phase, StepContext, TrainTask

Batch = dict[str, torch.Tensor]


def _paper_loop() -> LoopConfig:
    return LoopConfig(lr=1e-4, batch_size=16, steps=300_000, val_every=2000, checkpoint_every=2000,
                      sample_every=2000)  # fmt: skip


@dataclass(frozen=True)
class Config:
    """Stage ``renderer``: model and discriminator sizes, the loop, optimiser and warm-up settings."""

    model: RendererConfig = field(default_factory=RendererConfig.paper)
    discriminator: PatchDiscriminatorConfig = field(
        default_factory=lambda: PatchDiscriminatorConfig(in_channels=6)
    )
    loop: LoopConfig = field(default_factory=_paper_loop)
    discriminator_lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)  # Adam, as pix2pixHD
    warmup_steps: int = 0  # warping-loss-only steps before the adversarial phases (see module docstring)
    vgg_weights: str = "vgg19.imagenet"  # registry name of the perceptual network; "" = random (tests)
    samples_per_clip: int = 8
    val_samples_per_clip: int = 2

    @classmethod
    def paper(cls) -> Config:
        """Sec. IV-C: w_per 4, w_gan 0.25, w_fm 1; no warm-up."""
        return cls()

    @classmethod
    def tiny(cls) -> Config:
        """32x32 frames, 2 references, a small discriminator, random VGG: seconds on a CPU."""
        loop = LoopConfig(lr=1e-3, batch_size=4, steps=30, log_every=5, val_every=10, checkpoint_every=10)
        return cls(
            model=RendererConfig.tiny(),
            discriminator=PatchDiscriminatorConfig(6, base_channels=8, num_layers=2, max_channels=32),
            loop=loop, discriminator_lr=1e-3, warmup_steps=5, vgg_weights="", samples_per_clip=2,
            val_samples_per_clip=1,
        )  # fmt: skip

    @classmethod
    def presets(cls) -> dict[str, Any]:
        """Named starting points for ``preset = ...``."""
        return {"paper": cls.paper, "tiny": cls.tiny}


def _vgg(name: str, device: torch.device) -> VGG19Features:
    if name:
        from cemnet_core.weights import resolve

        vgg = VGG19Features.from_file(resolve(name))
    else:
        vgg = VGG19Features()
    vgg.requires_grad_(False)  # frozen: only a loss network
    return vgg.eval().to(device)


def _resize(batch: Batch, size: int) -> Batch:
    """Images of the batch at ``size`` x ``size`` (area averaging); unchanged when already that size."""
    resized = dict(batch)
    for key in ("ref_images", "ref_sketches", "target_image", "target_sketch"):
        images = batch[key]
        if images.shape[-1] != size:
            flat = images.flatten(0, -4)  # (B or B*N, 3, H, W)
            flat = F.interpolate(flat, size=(size, size), mode="area")
            resized[key] = flat.view(*images.shape[:-2], size, size)
    return resized


def build_task(config: Config, data: Path, env: DistEnv) -> TrainTask:
    """Renderer + conditional multi-scale discriminator, two Adam optimisers, the phases of the docstring."""
    renderer = FaceRenderer(config.model).to(env.device)
    discriminator = PatchDiscriminator(config.discriminator).to(env.device)
    vgg = _vgg(config.vgg_weights, env.device)
    optimizers = {
        "generator": torch.optim.Adam(renderer.parameters(), lr=config.loop.lr, betas=config.betas),
        "discriminator": torch.optim.Adam(
            discriminator.parameters(), lr=config.discriminator_lr, betas=config.betas
        ),
    }
    sizes = {"n_refs": config.model.num_refs, "seed": config.loop.seed}
    train_data = RendererDataset(data, "train", samples_per_clip=config.samples_per_clip, **sizes)
    val_data = RendererDataset(data, "val", samples_per_clip=config.val_samples_per_clip, **sizes)

    def render(batch: Batch) -> tuple[Batch, Any]:
        batch = _resize(batch, config.model.image_size)
        target = batch["target_image"]  # (B, 3, H, W)
        output = renderer(
            batch["ref_images"], batch["ref_sketches"], batch["target_sketch"], mask_lower_half(target)
        )
        return batch, output

    def warmup_loss(batch: Batch, ctx: StepContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        batch, output = render(batch)
        warp = perceptual_loss(vgg, output.warped.float(), batch["target_image"])  # warping loss (warm-up)
        return config.model.warp_weight * warp, {"warp": warp.detach()}

    def generator_step(batch: Batch, ctx: StepContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        batch, output = render(batch)
        ctx.cache["batch"], ctx.cache["fake"] = batch, output.image.detach()
        # Eq. (17): w_per L_per + w_gan L_gan + w_fm L_fm (+ w_warp x perceptual loss of the warp)
        return generator_loss(config.model, output, batch["target_image"], vgg, discriminator,
                              condition=batch["target_sketch"])  # fmt: skip

    def discriminator_step(batch: Batch, ctx: StepContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        batch, fake = ctx.cache["batch"], ctx.cache["fake"]
        condition = batch["target_sketch"]
        real_outputs = discriminator(torch.cat([batch["target_image"], condition], dim=1))
        fake_outputs = discriminator(torch.cat([fake, condition], dim=1))
        loss = discriminator_loss(real_outputs, fake_outputs, config.model.gan_mode)  # type: ignore[arg-type]
        return loss, {}

    def evaluate(batch: Batch) -> dict[str, torch.Tensor]:
        batch, output = render(batch)
        target = batch["target_image"]
        return {"l1": F.l1_loss(output.image.float(), target),
                "perceptual": perceptual_loss(vgg, output.image.float(), target)}  # fmt: skip

    def sample(batch: Batch) -> dict[str, np.ndarray]:
        batch, output = render(batch)
        row = torch.cat(
            [batch["target_sketch"][0], batch["target_image"][0], output.warped[0], output.image[0]], -1
        )
        return {"render": (row.float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()}

    warmup = config.warmup_steps
    return TrainTask(
        models={"renderer": renderer, "discriminator": discriminator},
        optimizers=optimizers,
        phases=[
            Phase("warmup", "generator", warmup_loss, stop_step=warmup),
            Phase("generator", "generator", generator_step, start_step=warmup),
            Phase("discriminator", "discriminator", discriminator_step, start_step=warmup),
        ],
        train_data=train_data,
        val_data=val_data,
        evaluate=evaluate,
        sample=sample,
    )


def releases(config: Config) -> dict[str, tuple[str, str, Any]]:
    """The renderer (kind ``renderer``); the discriminator is only needed for training."""
    return {"renderer": ("renderer", "renderer", config.model)}
