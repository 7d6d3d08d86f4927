"""Stage ``syncnet``: train a lip-sync expert (SyncNet v2) for the LipSync metric (Sec. IV-D).

The paper scores lip sync with SyncNet confidence (LSE-C / LSE-D) from the original ``syncnet_v2.model``.
Where those weights are unavailable, this stage trains the same network (``models/syncnet.py``,
syncnet_python's ``S``) on any preprocessed talking-face corpus, and ``cemnet export`` writes a ``syncnet/``
release folder that :func:`cemnet_core.pretrained.load_syncnet` (and so the LipSync judge) reads.
Scores of such an expert are ours: they rank videos by sync but are not comparable with published LSE numbers.

Items come from :class:`cemnet_core.data.sync_dataset.SyncNetDataset`: ``windows`` consecutive 5-frame
windows of mouth crops (lower halves of the face crops, at their own 64x128 size: ``model.lip_size``) and,
for each, the ``2 V + 1`` MFCC windows (0.2 s) shifted by ``-V .. V`` frames (``V = max_offset``, 15 as
syncnet_python's ``vshift``), the middle one in sync.

Objective: multi-way matching over audio offsets (Chung, Chung & Zisserman, "Perfect match", ICASSP 2019:
cross-entropy over one in-sync and several off-sync audio candidates of the same video window), with the
negative Euclidean distance of the metric as the score. For video window ``i`` with embedding ``v_i`` and
candidate audio embeddings ``a_{i+k}``, ``k = -V .. V``::

    logits_k = -||v_i - a_{i+k} + 1e-6|| / temperature,   L = mean_i CE(logits, k = 0)

Why not the pairwise contrastive loss of the original SyncNet paper (Chung & Zisserman, "Out of time", 2016,
Eq. 1), which this stage used first: with random in-sync / off-sync pairs it sat on its known plateau (every
distance about ``margin / 2``, loss 0.26) for the 300 steps (945 s) a CPU run on the 14 real clips could
afford, and the trained expert then reported offset 15 whatever the shift. The multi-way objective asks the
network exactly what ``sync_scores`` later asks it, which candidate offset of the same clip is nearest, so
every step trains the distances that LSE-D (minimum of the mean distance curve), LSE-C (median minus
minimum) and the AV offset (its argmin) read, including the hard near-offset negatives (1-4 frames) that the
pairs (shifted by at least 5 frames) never gave; it is also how later lip-sync experts train faster (Perfect
Match; Wav2Lip's expert also draws its negatives from the same clip). The embeddings keep the Euclidean
geometry of the metric (no cosine normalisation), so LSE-D / LSE-C of this expert are distances in its own
scale, not syncnet_python's (LSE-D about 6-9); ``temperature`` only sets how far apart the network must push
them.

Validation: ``loss`` and ``error`` (the share of video windows whose nearest candidate is not the in-sync
one, a per-window AV offset test: it stays high, the metric averages the distances over all windows before
taking the argmin). Optimiser: Adam, learning rate 1e-3, 4 items (64 video windows) a step, the loop's
gradient clipping, early stopping on the validation loss. Measured with the ``small`` preset on the 14 real
clips, leave-one-out (``benchmarks/lipsync_shift.py``): 1500 steps (about 3 minutes on one CPU thread) and
the expert tracks a shift of the held-out clip's audio exactly (``offset(k) - offset(0) = -k``); its offset
for the unshifted clip was 0 on one held-out clip and -3 .. 2 frames on others: an expert trained on
unchecked clips learns their average sync point, and a clip (or a speaker) may sit a frame or two off it.
The ``paper`` preset (syncnet_python's widths) uses the same settings, not measured here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cemnet_core.bundle import release_spec
from cemnet_core.contracts import LIP_FRAMES, VSHIFT
from cemnet_core.data.sync_dataset import SyncNetDataset
from cemnet_core.errors import ConfigError
from cemnet_core.models.syncnet import SyncNet, SyncNetConfig, prepare_lip_frames
from cemnet_core.train.distributed import DistEnv
from cemnet_core.train.loop import LoopConfig, Phase, StepContext, TrainTask

Batch = dict[str, torch.Tensor]
MOUTH_SIZE = (64, 128)  # the lower half of the 128x128 face crops, (H, W)


def _paper_loop() -> LoopConfig:
    return LoopConfig(lr=1e-3, batch_size=4, steps=200_000, val_every=1000, checkpoint_every=1000,
                      early_stop_metric="loss", early_stop_patience=20)  # fmt: skip


def _mouth(config: SyncNetConfig) -> SyncNetConfig:
    return replace(config, input_region="mouth", lip_size=MOUTH_SIZE)


@dataclass(frozen=True)
class Config:
    """Stage ``syncnet``: the network's sizes, the loop, the offset candidates and the items per clip.

    ``loop.batch_size`` counts items, each ``windows`` video windows (the network sees
    ``batch_size * windows`` lip windows and ``batch_size * (windows + 2 max_offset)`` audio windows a step).
    """

    model: SyncNetConfig = field(default_factory=lambda: _mouth(SyncNetConfig.paper()))
    loop: LoopConfig = field(default_factory=_paper_loop)
    windows: int = 16  # consecutive video windows per item (they share their audio candidates)
    max_offset: int = VSHIFT  # candidates: audio shifted by -max_offset .. max_offset frames
    temperature: float = 1.0  # logits = -distance / temperature
    samples_per_clip: int = 8  # training items drawn per clip and epoch
    val_samples_per_clip: int = 4
    cache_clips: int = 8  # decoded clips kept in memory per dataset (raise it when the corpus fits in RAM)
    augment: bool = False  # random flip, crop and colour of the training items (SyncNetDataset)
    augment_level: bool = False  # random loudness of the training items' audio (SyncNetDataset)

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ConfigError(
                f"temperature must be > 0, got {self.temperature}; set e.g. --set temperature=1"
            )
        if self.windows < 1 or self.max_offset < 1:
            raise ConfigError(
                f"windows and max_offset must be at least 1, got {self.windows} and {self.max_offset}"
            )
        if min(self.samples_per_clip, self.val_samples_per_clip, self.cache_clips) < 1:
            raise ConfigError("samples_per_clip, val_samples_per_clip and cache_clips must be at least 1")

    @classmethod
    def paper(cls) -> Config:
        """syncnet_python's v2 widths on the 64x128 mouth crops, Adam 1e-3, 4 items of 16 windows."""
        return cls()

    @classmethod
    def small(cls) -> Config:
        """Narrow widths (16-64 channels, 32-d embeddings): trains on a CPU in minutes (the benchmark's)."""
        model = SyncNetConfig(audio_channels=(16, 32, 32, 32, 32, 64), lip_channels=(16, 32, 32, 32, 32, 64),
                              fc_channels=64, embedding_dim=32)  # fmt: skip
        return cls(model=_mouth(model))

    @classmethod
    def tiny(cls) -> Config:
        """The tiny network, offsets up to 3 frames, few steps: seconds on a CPU (tests, demo)."""
        loop = LoopConfig(lr=1e-3, batch_size=4, steps=30, log_every=5, val_every=10, checkpoint_every=10,
                          early_stop_metric="loss", early_stop_patience=5)  # fmt: skip
        return cls(model=_mouth(SyncNetConfig.tiny()), loop=loop, windows=4, max_offset=3,
                   samples_per_clip=4, val_samples_per_clip=2)  # fmt: skip

    @classmethod
    def presets(cls) -> dict[str, Any]:
        """Named starting points for ``preset = ...``."""
        return {"paper": cls.paper, "small": cls.small, "tiny": cls.tiny}


def lip_input(lips: torch.Tensor, config: SyncNetConfig) -> torch.Tensor:
    """Items' mouth crops ``(B, N + 4, h, w, 3)`` RGB uint8 -> the ``B * N`` 5-frame windows the lip stream
    reads, ``(B * N, C, 5, H, W)`` (item ``b``'s window ``i`` at row ``b * N + i``).

    The same conversion as ``evaluate_sync`` (:func:`prepare_lip_frames` to ``config.lip_size``, BGR or
    luma), done for the whole batch at once.
    """
    if lips.dim() != 5 or lips.shape[1] < LIP_FRAMES or lips.shape[-1] != 3:
        raise ValueError(f"lips must be (B, N + {LIP_FRAMES - 1}, h, w, 3), got {tuple(lips.shape)}")
    B, frames = lips.shape[:2]
    N = frames - LIP_FRAMES + 1
    images = prepare_lip_frames(lips.reshape(B * frames, *lips.shape[2:]), config.lip_size, config.grayscale)
    C, _, H, W = images.shape  # (C, B*(N+4), H, W)
    windows = images.reshape(C, B, frames, H, W).unfold(2, LIP_FRAMES, 1)  # (C, B, N, H, W, 5)
    return windows.permute(1, 2, 0, 5, 3, 4).reshape(B * N, C, LIP_FRAMES, H, W)  # (B*N, C, 5, H, W)


def offset_logits(video: torch.Tensor, audio: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Scores of every candidate offset: video (B, N, D), audio (B, N + 2V, D) -> logits (B, N, 2V + 1).

    ``logits[b, i, j] = -||video[b, i] - audio[b, i + j] + 1e-6|| / temperature``: the distance
    ``sync_scores`` uses (``pairwise_distance``), candidate ``j = V`` in sync, ``j`` off by ``j - V`` frames.
    """
    if video.dim() != 3 or audio.dim() != 3 or video.shape[0::2] != audio.shape[0::2]:
        raise ValueError(f"video must be (B, N, D) and audio (B, N + 2V, D), got {tuple(video.shape)} "
                         f"and {tuple(audio.shape)}")  # fmt: skip
    N = video.shape[1]
    candidates = audio.shape[1] - N + 1  # 2V + 1
    if candidates < 1 or candidates % 2 == 0:
        raise ValueError(f"audio must hold N + 2V windows, got {audio.shape[1]} for N = {N}")
    shifted = audio.unfold(1, candidates, 1).permute(0, 1, 3, 2)  # (B, N, 2V+1, D)
    distance = (video.unsqueeze(2) - shifted + 1e-6).norm(dim=-1)  # (B, N, 2V+1)
    return -distance / temperature


def offset_loss(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the middle candidate (offset 0) as the answer: logits (B, N, 2V + 1) -> scalar."""
    target = torch.full(logits.shape[:-1], logits.shape[-1] // 2, dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits.flatten(0, 1), target.flatten())


def build_task(config: Config, data: Path, env: DistEnv) -> TrainTask:
    """SyncNet, Adam, clips' windows with their candidate offsets (train and val), the multi-way loss."""
    model = SyncNet(config.model).to(env.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.loop.lr)
    items = {
        "seed": config.loop.seed,
        "windows": config.windows,
        "max_offset": config.max_offset,
        "cache_size": config.cache_clips,
    }
    train_data = SyncNetDataset(data, "train", samples_per_clip=config.samples_per_clip,
                                augment=config.augment, augment_level=config.augment_level,
                                **items)  # fmt: skip
    val_data = SyncNetDataset(data, "val", samples_per_clip=config.val_samples_per_clip, **items)

    def logits(batch: Batch) -> torch.Tensor:
        B, A = batch["mfcc"].shape[:2]  # (B, N + 2V, 1, 13, 20)
        video = model.forward_lip(lip_input(batch["lips"], config.model))  # (B*N, D)
        audio = model.forward_aud(batch["mfcc"].flatten(0, 1))  # (B*(N+2V), D)
        return offset_logits(video.float().reshape(B, -1, video.shape[-1]),
                             audio.float().reshape(B, A, -1), config.temperature)  # fmt: skip

    def loss(batch: Batch, ctx: StepContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        scores = logits(batch)  # (B, N, 2V+1)
        error = (scores.argmax(-1) != scores.shape[-1] // 2).float().mean()
        return offset_loss(scores), {"error": error.detach()}

    def evaluate(batch: Batch) -> dict[str, torch.Tensor]:
        scores = logits(batch)
        error = (scores.argmax(-1) != scores.shape[-1] // 2).float().mean()
        return {"loss": offset_loss(scores), "error": error}

    def sample(batch: Batch) -> dict[str, np.ndarray]:
        mouths = batch["lips"][0, :LIP_FRAMES]  # (5, h, w, 3)
        return {"mouths": mouths.reshape(-1, *mouths.shape[2:]).cpu().numpy()}  # (5h, w, 3)

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
    return release_spec("syncnet", "syncnet", config.model)
