"""Stage ``syncnet``: train a lip-sync expert (SyncNet v2) for the LipSync metric (Sec. IV-D).

The paper scores lip sync with SyncNet confidence (LSE-C / LSE-D) from the original ``syncnet_v2.model``.
Where those weights are unavailable, this stage trains the same network (``models/syncnet.py``,
syncnet_python's ``S``) on any preprocessed talking-face corpus, and ``cemnet export`` writes a ``syncnet/``
release folder that :func:`cemnet_core.models.syncnet.load_syncnet` (and so the LipSync judge) reads.
Scores of such an expert are ours: they rank videos by sync but are not comparable with published LSE numbers.

Pairs come from :class:`cemnet_core.data.sync_dataset.SyncNetDataset`: the lower halves of 5 face crops and
a 0.2 s MFCC window, in sync (label 1) or shifted by at least ``min_offset`` frames / from another clip (0).

Objective: the contrastive loss of the original SyncNet paper (Chung & Zisserman, "Out of time", ACCV
workshops 2016, Eq. 1) on the Euclidean distance ``d = ||v - a||`` between video and audio embeddings::

    L = mean( y d^2 + (1 - y) max(margin - d, 0)^2 ) / margin^2

We chose it over Wav2Lip's expert objective (BCE on the cosine similarity) because LSE-D and LSE-C are
Euclidean distances between the raw embeddings (``sync_scores``): the contrastive loss trains exactly the
quantity the metric reads, while a cosine objective leaves the embedding norms, and so the distances, free.
Dividing by ``margin^2`` only keeps the loss near [0, 1] whatever the margin. The margin (default 2, about
the distance between the embeddings of a freshly initialised network) sets the scale of our LSE-D / LSE-C:
an expert trained here reports distances below ``margin``, not on syncnet_python's scale (LSE-D about 6-9).
Training from scratch first settles on a plateau where every distance is about ``margin / 2`` (loss 0.25)
and only later separates in-sync from off-sync pairs; the ``error`` metric shows when it does.

Validation: ``loss`` and ``error`` (the share of pairs on the wrong side of ``margin / 2``). Optimiser: Adam,
learning rate 1e-4 and batch 64 in the ``paper`` preset (Wav2Lip's expert settings; the SyncNet paper does
not give its own), early stopping on the validation loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cemnet_core.data.sync_dataset import SyncNetDataset
from cemnet_core.errors import ConfigError
from cemnet_core.models.syncnet import LIP_FRAMES, LIP_SIZE, SyncNet, SyncNetConfig, prepare_lip_frames
from cemnet_core.train.distributed import DistEnv
from cemnet_core.train.loop import LoopConfig, Phase, StepContext, TrainTask

Batch = dict[str, torch.Tensor]


def _paper_loop() -> LoopConfig:
    return LoopConfig(lr=1e-4, batch_size=64, steps=200_000, val_every=1000, checkpoint_every=1000,
                      early_stop_metric="loss", early_stop_patience=20)  # fmt: skip


@dataclass(frozen=True)
class Config:
    """Stage ``syncnet``: the network's sizes, the loop, the contrastive margin and the pair sampling."""

    model: SyncNetConfig = field(default_factory=lambda: replace(SyncNetConfig.paper(), input_region="mouth"))
    loop: LoopConfig = field(default_factory=_paper_loop)
    margin: float = 2.0  # contrastive margin on the embedding distance
    min_offset: int = 5  # off-sync pairs are shifted by at least this many video frames (0.2 s)
    other_clip_rate: float = 0.25  # share of off-sync pairs whose audio comes from another clip
    samples_per_clip: int = 32  # training pairs drawn per clip and epoch
    val_samples_per_clip: int = 8
    cache_clips: int = 8  # decoded clips kept in memory per dataset (raise it when the corpus fits in RAM)

    def __post_init__(self) -> None:
        if self.margin <= 0:
            raise ConfigError(f"margin must be > 0, got {self.margin}; set e.g. --set margin=2")
        if self.min_offset < 1:
            raise ConfigError(f"min_offset must be at least 1 frame, got {self.min_offset}")
        if not 0.0 <= self.other_clip_rate <= 1.0:
            raise ConfigError(f"other_clip_rate must be in [0, 1], got {self.other_clip_rate}")
        if min(self.samples_per_clip, self.val_samples_per_clip, self.cache_clips) < 1:
            raise ConfigError("samples_per_clip, val_samples_per_clip and cache_clips must be at least 1")

    @classmethod
    def paper(cls) -> Config:
        """syncnet_python's v2 sizes, Adam 1e-4, batch 64, early stopping on the validation loss."""
        return cls()

    @classmethod
    def tiny(cls) -> Config:
        """The tiny network, small batches and few steps: seconds on a CPU (tests, demo)."""
        loop = LoopConfig(lr=1e-3, batch_size=8, steps=30, log_every=5, val_every=10, checkpoint_every=10,
                          early_stop_metric="loss", early_stop_patience=5)  # fmt: skip
        model = replace(SyncNetConfig.tiny(), input_region="mouth")
        return cls(model=model, loop=loop, samples_per_clip=8, val_samples_per_clip=4)

    @classmethod
    def presets(cls) -> dict[str, Any]:
        """Named starting points for ``preset = ...``."""
        return {"paper": cls.paper, "tiny": cls.tiny}


def lip_input(lips: torch.Tensor) -> torch.Tensor:
    """Batched mouth crops ``(B, 5, h, w, 3)`` RGB uint8 -> SyncNet's ``(B, 3, 5, 224, 224)`` BGR 0..255.

    The same conversion as ``evaluate_sync`` (:func:`prepare_lip_frames`), done for the whole batch at once.
    """
    if lips.dim() != 5 or lips.shape[1] != LIP_FRAMES or lips.shape[-1] != 3:
        raise ValueError(f"lips must be (B, {LIP_FRAMES}, h, w, 3), got {tuple(lips.shape)}")
    B = lips.shape[0]
    frames = prepare_lip_frames(lips.reshape(B * LIP_FRAMES, *lips.shape[2:]))  # (3, B*5, 224, 224)
    frames = frames.reshape(3, B, LIP_FRAMES, LIP_SIZE, LIP_SIZE)  # (3, B, 5, 224, 224)
    return frames.permute(1, 0, 2, 3, 4).contiguous()  # (B, 3, 5, 224, 224)


def contrastive_loss(distance: torch.Tensor, label: torch.Tensor, margin: float) -> torch.Tensor:
    """Chung & Zisserman (2016) Eq. 1, divided by ``margin^2``: distance, label (B,) -> scalar.

    ``label`` is 1 for pairs in sync (pulled together), 0 for off-sync pairs (pushed beyond ``margin``).
    """
    pulled = label * distance.pow(2)
    pushed = (1.0 - label) * torch.clamp(margin - distance, min=0.0).pow(2)
    return (pulled + pushed).mean() / margin**2


def build_task(config: Config, data: Path, env: DistEnv) -> TrainTask:
    """SyncNet, Adam, in-sync / off-sync pairs of the train and val splits, the contrastive loss."""
    model = SyncNet(config.model).to(env.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.loop.lr)
    pairs = {
        "seed": config.loop.seed,
        "min_offset": config.min_offset,
        "other_clip_rate": config.other_clip_rate,
        "cache_size": config.cache_clips,
    }
    train_data = SyncNetDataset(data, "train", samples_per_clip=config.samples_per_clip, **pairs)
    val_data = SyncNetDataset(data, "val", samples_per_clip=config.val_samples_per_clip, **pairs)

    def distance(batch: Batch) -> torch.Tensor:
        video, audio = model(lip_input(batch["lips"]), batch["mfcc"])  # (B, D), (B, D)
        # the distance sync_scores uses: pairwise_distance with its eps 1e-6
        return torch.nn.functional.pairwise_distance(video.float(), audio.float())  # (B,)

    def loss(batch: Batch, ctx: StepContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return contrastive_loss(distance(batch), batch["label"], config.margin), {}

    def evaluate(batch: Batch) -> dict[str, torch.Tensor]:
        d = distance(batch)
        wrong = (d < config.margin / 2).float() != batch["label"]
        return {"loss": contrastive_loss(d, batch["label"], config.margin), "error": wrong.float().mean()}

    def sample(batch: Batch) -> dict[str, np.ndarray]:
        return {"mouths": batch["lips"][0].reshape(-1, *batch["lips"].shape[3:]).cpu().numpy()}  # (5h, w, 3)

    return TrainTask(
        models={"syncnet": model},
        optimizers={"adam": optimizer},
        phases=[Phase("syncnet", "adam", loss)],
        train_data=train_data,
        val_data=val_data,
        evaluate=evaluate,
        sample=sample,
    )


def releases(config: Config) -> dict[str, tuple[str, str, Any]]:
    """One release: ``syncnet/`` (kind ``syncnet``), read by ``load_syncnet``."""
    return {"syncnet": ("syncnet", "syncnet", config.model)}
