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
resizes them (area averaging) inside the step. The perceptual network (``vgg_weights``) is frozen. The
paper's is VGG19 with ImageNet weights (``"vgg19.imagenet"``, the ``paper`` preset); those cannot be had
offline, so the default is the pretrained FER2013 mini-Xception of the assets
(``"fer2013.mini_xception"``, see :mod:`cemnet_core.models.perceptual`); ``""`` gives random VGG19 features
(tests only).

One-photo references (``single_reference_rate`` > 0, off in every preset): that share of training items
gets one reference frame repeated N times, the most closed mouth among those drawn
(:class:`RendererDataset`), which is what ``cemnet generate`` gives the renderer from a single portrait: no
reference shows an open mouth, so the generator learns to synthesise it instead of copying it from another
reference. ``init_from`` (a renderer release folder)
starts the renderer from trained weights (fine-tuning, e.g. the starter's one-photo stage); its config
must equal ``model``.

Presets: ``paper`` (the paper's renderer and loss, no deviation), ``base`` (the paper's sizes with the
landmark prior, the composite and the pixel term of :mod:`cemnet_core.models.renderer`; the default),
``small`` (a quarter of the widths at 128 px, a small discriminator: minutes of CPU training) and ``tiny``
(tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cemnet_core.bundle import release_spec
from cemnet_core.data.datasets import RendererDataset
from cemnet_core.data.images import to_uint8
from cemnet_core.models.discriminator import PatchDiscriminator, PatchDiscriminatorConfig, discriminator_loss
from cemnet_core.models.perceptual import FacePerceptualFeatures, VGG19Features, perceptual_loss
from cemnet_core.models.renderer import FaceRenderer, RendererConfig, mask_lower_half
from cemnet_core.models.renderer_loss import generator_loss, warp_loss
from cemnet_core.train.distributed import DistEnv
from cemnet_core.train.loop import LoopConfig, Phase, StepContext, TrainTask

Batch = dict[str, torch.Tensor]


def _paper_loop() -> LoopConfig:
    return LoopConfig(lr=1e-4, batch_size=16, steps=300_000, val_every=2000, checkpoint_every=2000,
                      sample_every=2000)  # fmt: skip


@dataclass(frozen=True)
class Config:
    """Stage ``renderer``: model and discriminator sizes, the loop, optimiser and warm-up settings."""

    model: RendererConfig = field(default_factory=RendererConfig.base)
    discriminator: PatchDiscriminatorConfig = field(
        default_factory=lambda: PatchDiscriminatorConfig(in_channels=6)
    )
    loop: LoopConfig = field(default_factory=_paper_loop)
    discriminator_lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)  # Adam, as pix2pixHD
    warmup_steps: int = 0  # warping-loss-only steps before the adversarial phases (see module docstring)
    vgg_weights: str = "fer2013.mini_xception"  # perceptual network (registry name); "" = random VGG19
    samples_per_clip: int = 8
    val_samples_per_clip: int = 2
    single_reference_rate: float = 0.0  # share of training items with one repeated reference (docstring)
    init_from: str = ""  # a renderer release folder to start from (fine-tuning); "" = random weights

    @classmethod
    def paper(cls) -> Config:
        """Sec. IV-C: the paper's renderer, w_per 4 on ImageNet VGG19, w_gan 0.25, w_fm 1; no warm-up."""
        return cls(model=RendererConfig.paper(), vgg_weights="vgg19.imagenet")

    @classmethod
    def base(cls) -> Config:
        """The paper's sizes and loop with the documented deviations (module docstring)."""
        return cls()

    @classmethod
    def small(cls) -> Config:
        """128 px, a quarter of the widths, a small 2-scale discriminator, batch 8, Adam 5e-4: CPU minutes."""
        loop = LoopConfig(lr=5e-4, batch_size=8, steps=3000, log_every=50, val_every=500,
                          checkpoint_every=500, sample_every=500)  # fmt: skip
        discriminator = PatchDiscriminatorConfig(6, base_channels=16, num_layers=3, max_channels=128,
                                                 num_scales=2)  # fmt: skip
        return cls(model=RendererConfig.small(), discriminator=discriminator, loop=loop,
                   discriminator_lr=5e-4)  # fmt: skip

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
        return {"paper": cls.paper, "base": cls.base, "small": cls.small, "tiny": cls.tiny}


def _vgg(name: str, device: torch.device) -> VGG19Features | FacePerceptualFeatures:
    """The frozen perceptual network named by ``vgg_weights`` (module docstring)."""
    if name == "fer2013.mini_xception":
        from cemnet_core.pretrained import load_fer_classifier

        vgg: VGG19Features | FacePerceptualFeatures = FacePerceptualFeatures(load_fer_classifier())
    elif name:
        from cemnet_core.weights import resolve

        vgg = VGG19Features.from_file(resolve(name))
    else:
        vgg = VGG19Features()
    vgg.requires_grad_(False)  # frozen: only a loss network
    return vgg.eval().to(device)


def _resize(batch: Batch, size: int) -> Batch:
    """Images of the batch at ``size`` x ``size`` (area averaging); unchanged when already that size."""
    resized = dict(batch)
    for key in ("ref_images", "ref_sketches", "target_image", "target_sketch"):  # landmarks: crop units
        images = batch[key]
        if images.shape[-1] != size:
            flat = images.flatten(0, -4)  # (B or B*N, 3, H, W)
            flat = F.interpolate(flat, size=(size, size), mode="area")
            resized[key] = flat.view(*images.shape[:-2], size, size)
    return resized


def build_task(config: Config, data: Path, env: DistEnv) -> TrainTask:
    """Renderer + conditional multi-scale discriminator, two Adam optimisers, the phases of the docstring."""
    renderer = FaceRenderer(config.model)
    if config.init_from:
        from cemnet_core.release import init_from_release

        init_from_release(renderer, config.init_from, "renderer")
    renderer = renderer.to(env.device)
    discriminator = PatchDiscriminator(config.discriminator).to(env.device)
    vgg = _vgg(config.vgg_weights, env.device)
    optimizers = {
        "generator": torch.optim.Adam(renderer.parameters(), lr=config.loop.lr, betas=config.betas),
        "discriminator": torch.optim.Adam(
            discriminator.parameters(), lr=config.discriminator_lr, betas=config.betas
        ),
    }
    sizes = {"n_refs": config.model.num_refs, "seed": config.loop.seed}
    train_data = RendererDataset(data, "train", samples_per_clip=config.samples_per_clip,
                                 single_reference_rate=config.single_reference_rate, **sizes)  # fmt: skip
    val_data = RendererDataset(data, "val", samples_per_clip=config.val_samples_per_clip, **sizes)

    def render(batch: Batch) -> tuple[Batch, Any]:
        batch = _resize(batch, config.model.image_size)
        target = batch["target_image"]  # (B, 3, H, W)
        output = renderer(
            batch["ref_images"], batch["ref_sketches"], batch["target_sketch"], mask_lower_half(target),
            batch["ref_landmarks"], batch["target_landmarks"],
        )  # fmt: skip
        return batch, output

    def warmup_loss(batch: Batch, ctx: StepContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        batch, output = render(batch)
        warp = warp_loss(vgg, output, batch["target_image"], config.model.composite)  # warping loss (warm-up)
        return config.model.warp_weight * warp, {"warp": warp.detach()}

    def generator_step(batch: Batch, ctx: StepContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        batch, output = render(batch)
        ctx.cache["batch"], ctx.cache["fake"] = batch, output.image.detach()
        # Eq. (17): w_per L_per + w_gan L_gan + w_fm L_fm (+ w_warp x perceptual loss of the warp)
        return generator_loss(config.model, output, batch["target_image"], vgg, discriminator,
                              condition=batch["target_sketch"],
                              target_landmarks=batch["target_landmarks"])  # fmt: skip

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
        mse = F.mse_loss(output.image.float(), target, reduction="none").mean(dim=(1, 2, 3))  # (B,)
        return {"l1": F.l1_loss(output.image.float(), target),
                "psnr": (-10 * torch.log10(mse.clamp_min(1e-10))).mean(),
                "perceptual": perceptual_loss(vgg, output.image.float(), target)}  # fmt: skip

    def sample(batch: Batch) -> dict[str, np.ndarray]:
        batch, output = render(batch)
        row = torch.cat(
            [batch["target_sketch"][0], batch["target_image"][0], output.warped[0], output.image[0]], -1
        )
        return {"render": to_uint8(row[None])[0]}

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
    return release_spec("renderer", "renderer", config.model)
