"""Stage ``a2m``: train Audio2Mouth (Sec. III-A, Eqs. 1-4) on any talking-face corpus.

Paper (Sec. IV-C): Adam, learning rate 1e-4, loss ``L1 + lambda * L_velocity`` with lambda = 1 (Eq. 4),
early stopping on the L1 loss (of the validation split here; the paper does not say which split). Items
come from :class:`Audio2MouthDataset`: N reference landmark sets, T mel windows and T pose landmark sets of
one clip, with the T ground-truth mouth landmark sets as target.

One-photo references (``single_reference_rate`` > 0, off in both presets): that share of training items
gets one reference repeated N times, the most closed mouth of those drawn (:class:`Audio2MouthDataset`).
References spread over a clip's mouth shapes average to a half-open mouth, so a model trained only on them
predicts small offsets from it; from a single closed-mouth portrait (what ``cemnet generate --ref
portrait.jpg`` gives) it then barely opens the mouth. ``init_from`` (an ``audio_to_mouth`` release folder)
starts from trained weights (fine-tuning, the starter's one-photo phase); its config must equal ``model``.
Neither is in the paper, which trains and tests with references from the target's own video.
``model.motion_gain`` must be 1 here: it is set after training (:mod:`cemnet_core.train.calibrate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cemnet_core.bundle import release_spec
from cemnet_core.data.datasets import Audio2MouthDataset
from cemnet_core.errors import ConfigError
from cemnet_core.models.audio_to_mouth import AudioToMouth, AudioToMouthConfig
from cemnet_core.train.distributed import DistEnv
from cemnet_core.train.loop import LoopConfig, Phase, StepContext, TrainTask

SAMPLE_SIZE = 128


def _paper_loop() -> LoopConfig:
    return LoopConfig(lr=1e-4, batch_size=32, steps=500_000, val_every=1000, checkpoint_every=1000,
                      early_stop_metric="l1", early_stop_patience=20)  # fmt: skip


@dataclass(frozen=True)
class Config:
    """Stage ``a2m``: the model's sizes, the loop, and the data sampling."""

    model: AudioToMouthConfig = field(default_factory=AudioToMouthConfig.paper)
    loop: LoopConfig = field(default_factory=_paper_loop)
    samples_per_clip: int = 8  # training windows drawn per clip and epoch
    val_samples_per_clip: int = 2
    betas: tuple[float, float] = (0.9, 0.999)  # Adam
    single_reference_rate: float = 0.0  # share of training items with one repeated reference (docstring)
    init_from: str = ""  # an audio_to_mouth release folder to start from (fine-tuning); "" = random weights

    @classmethod
    def paper(cls) -> Config:
        """Sec. IV-C: Adam 1e-4, lambda = 1, early stopping on L1."""
        return cls()

    @classmethod
    def tiny(cls) -> Config:
        """A few-second CPU run for tests and demos (the tiny model, small batches, frequent validation)."""
        loop = LoopConfig(lr=1e-3, batch_size=4, steps=40, log_every=5, val_every=10, checkpoint_every=20,
                          early_stop_metric="l1", early_stop_patience=5)  # fmt: skip
        return cls(model=AudioToMouthConfig.tiny(), loop=loop, samples_per_clip=2, val_samples_per_clip=1)

    @classmethod
    def presets(cls) -> dict[str, Any]:
        """Named starting points for ``preset = ...``."""
        return {"paper": cls.paper, "tiny": cls.tiny}


def build_task(config: Config, data: Path, env: DistEnv) -> TrainTask:
    """Audio2Mouth, Adam, the train/val splits of ``data`` and the Eq. (4) loss."""
    if config.model.motion_gain != 1.0:
        raise ConfigError(
            f"a2m: model.motion_gain is {config.model.motion_gain}, but training runs at 1 (the model would "
            "learn to undo a gain); set it after training with cemnet_core.train.calibrate"
        )
    model = AudioToMouth(config.model)
    if config.init_from:
        from cemnet_core.release import init_from_release

        init_from_release(model, config.init_from, "audio_to_mouth")
    model = model.to(env.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.loop.lr, betas=config.betas)
    sizes = {"n_refs": config.model.num_refs, "t_frames": config.model.num_frames, "seed": config.loop.seed}
    train_data = Audio2MouthDataset(data, "train", samples_per_clip=config.samples_per_clip,
                                    single_reference_rate=config.single_reference_rate, **sizes)  # fmt: skip
    val_data = Audio2MouthDataset(data, "val", samples_per_clip=config.val_samples_per_clip, **sizes)

    def predict(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(batch["ref_landmarks"], batch["mel"], batch["pose"])  # (B, T, 57, 2), Eq. (1)

    def loss(
        batch: dict[str, torch.Tensor], ctx: StepContext
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # L = L1 (Eq. 2) + lambda * L_velocity (Eq. 3), Eq. (4)
        return model.loss(predict(batch).float(), batch["mouth"])

    def evaluate(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        total, terms = model.loss(predict(batch).float(), batch["mouth"])
        return {"loss": total, **terms}

    def sample(batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        return {
            "mouth": draw_mouths(
                predict(batch)[0, 0].float().cpu().numpy(), batch["mouth"][0, 0].cpu().numpy()
            )
        }

    return TrainTask(
        models={"audio_to_mouth": model},
        optimizers={"adam": optimizer},
        phases=[Phase("a2m", "adam", loss)],
        train_data=train_data,
        val_data=val_data,
        evaluate=evaluate,
        sample=sample,
    )


def draw_mouths(predicted: np.ndarray, target: np.ndarray, size: int = SAMPLE_SIZE) -> np.ndarray:
    """Predicted (red) and true (green) mouth points ``(57, 2)`` on a black ``(size, size, 3)`` image.

    The points are scaled to fill the image (the mouth is small in the crop), with the same transform for
    both sets so their offsets stay visible.
    """
    both = np.concatenate([predicted, target])  # (114, 2)
    low, high = both.min(0), both.max(0)
    scale = (size - 9) / max(float((high - low).max()), 1e-6)
    image = np.zeros((size, size, 3), dtype=np.uint8)
    for points, channel in ((target, 1), (predicted, 0)):
        pixels = np.clip(np.round((points - low) * scale + 4).astype(int), 0, size - 2)
        for x, y in pixels:
            image[y : y + 2, x : x + 2, channel] = 255
    return image


def releases(config: Config) -> dict[str, tuple[str, str, Any]]:
    """One release: ``audio_to_mouth/`` (kind ``audio_to_mouth``)."""
    return release_spec("audio_to_mouth", "audio_to_mouth", config.model)
