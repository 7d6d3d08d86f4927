"""Stage ``aee``: train Audio Emotion Enhancement (Sec. III-B, Eqs. 5-7) on MEAD-style data.

Paper (Sec. IV-C): the encoders are first pre-trained (emotion encoder by emotion classification, timbre
encoder by identity classification on MEAD, content encoder by audio-to-text on LRS2), then all three are
trained with the cross-reconstruction strategy at learning rate 2e-4. Here, in one run:

1. ``pretrain`` phase (steps ``[0, pretrain_steps)``): emotion and speaker classification of both clips
   of a pair (``L_cls_e``, ``L_cls_t`` of Eq. 7) plus the content triplet (Eq. 6) in place of audio-to-text,
   because processed corpora carry no transcripts; the content encoder thus learns "same sentence close,
   other sentence far", the property the cross-reconstruction needs from it.
2. ``aee`` phase (from ``pretrain_steps``): ``L = w_a L_a + w_t L_cls_t + w_e L_cls_e + w_tri L_tri``
   (Eq. 7) with the cross-reconstruction ``L_a`` of Eq. (5) as Fig. 4 draws it: two clips of two speakers,
   two emotions and two sentences, and the eight targets ``D(E_t(a_i), E_e(a_j), E_c(a_k))`` must rebuild,
   existing clips warped by DTW onto the content source's timeline
   (:class:`~cemnet_core.data.cross_reconstruction.CrossReconstructionDataset`;
   :meth:`~cemnet_core.models.emotion_enhancement.EmotionEnhancer.cross_aee_loss`).

Both phases draw the same items: pre-training uses ``mel_a``, ``mel_b`` (classification, now of two
speakers) and the triplet ``mel_a``/``mel_p``/``mel_n`` (positive: ``a_0``'s sentence by the other speaker
in the other emotion; negative: ``a_0``'s speaker and emotion in the other sentence). ``other_speaker``
(default ``None``): a split with a single speaker (typically the held-out validation speaker, or the quick
demo's one training speaker) draws same-speaker pairs (other emotion, other sentence) with a warning;
``true`` refuses such a split, ``false`` never swaps speakers.

One Adam optimiser (2e-4) serves both phases. Validation reports the Eq. (7) terms and the emotion
classification error of the emotion encoder, the only part used after training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cemnet_core.bundle import release_spec
from cemnet_core.data.cross_reconstruction import CrossReconstructionDataset
from cemnet_core.errors import ConfigError
from cemnet_core.models.emotion_enhancement import (
    EmotionEnhancer,
    EmotionEnhancerConfig,
    classification_loss,
    content_triplet_loss,
)
from cemnet_core.train.distributed import DistEnv
from cemnet_core.train.loop import LoopConfig, Phase, StepContext, TrainTask

Batch = dict[str, torch.Tensor]


def _paper_loop() -> LoopConfig:
    return LoopConfig(lr=2e-4, batch_size=32, steps=100_000, val_every=1000, checkpoint_every=1000)


@dataclass(frozen=True)
class Config:
    """Stage ``aee``: model sizes and loss weights, the loop, the pre-training length, DTW band, pairs."""

    model: EmotionEnhancerConfig = field(default_factory=EmotionEnhancerConfig.paper)
    loop: LoopConfig = field(default_factory=_paper_loop)
    pretrain_steps: int = 20_000  # encoder pre-training steps before cross-reconstruction
    dtw_band: float | None = None  # Sakoe-Chiba band of the pair alignment (fraction); None = full DTW
    other_speaker: bool | None = None  # a_1 from another speaker; None = where the split has two or more

    @classmethod
    def paper(cls) -> Config:
        """Sec. IV-C: pre-trained encoders, then cross-reconstruction at 2e-4."""
        return cls()

    @classmethod
    def tiny(cls) -> Config:
        """The tiny model: seconds on a CPU."""
        loop = LoopConfig(lr=2e-3, batch_size=4, steps=30, log_every=5, val_every=10, checkpoint_every=10)
        return cls(model=EmotionEnhancerConfig.tiny(), loop=loop, pretrain_steps=10)

    @classmethod
    def presets(cls) -> dict[str, Any]:
        """Named starting points for ``preset = ...``."""
        return {"paper": cls.paper, "tiny": cls.tiny}


def build_task(config: Config, data: Path, env: DistEnv) -> TrainTask:
    """The enhancer, Adam, cross-reconstruction items of both splits, the two phases of the docstring."""
    model = EmotionEnhancer(config.model).to(env.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.loop.lr)
    options = {
        "segment_frames": config.model.segment_frames,
        "seed": config.loop.seed,
        "band": config.dtw_band,
        "other_speaker": config.other_speaker,
    }
    train_data = CrossReconstructionDataset(data, "train", **options)
    val_data = CrossReconstructionDataset(data, "val", **options)
    if train_data.num_speakers > config.model.num_speakers:
        raise ConfigError(f"{data} has {train_data.num_speakers} speakers but the timbre classifier has "
                          f"{config.model.num_speakers} classes; set --set model.num_speakers="
                          f"{train_data.num_speakers}")  # fmt: skip

    def pretrain_loss(batch: Batch, ctx: StepContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        mel = torch.cat([batch["mel_a"], batch["mel_b"]])  # (2B, S, F)
        emotion = classification_loss(
            model.classify_emotion(model.emotion(mel)), torch.cat([batch["emotion_a"], batch["emotion_b"]])
        )  # L_cls_e
        speaker = classification_loss(
            model.classify_speaker(model.timbre(mel)), torch.cat([batch["speaker_a"], batch["speaker_b"]])
        )  # L_cls_t
        anchor, positive, negative = model.content(
            torch.cat([batch["mel_a"], batch["mel_p"], batch["mel_n"]])
        ).chunk(3)  # 3 x (B, S/4, Dc)
        triplet = content_triplet_loss(anchor, positive, negative, config.model.triplet_margin)  # Eq. (6)
        terms = {"emotion": emotion, "speaker": speaker, "triplet": triplet}
        detached = {name: value.detach() for name, value in terms.items()}
        return emotion + speaker + triplet, detached

    def cross_loss(batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # Eq. (7): w_a L_a (Eq. 5, the 8 targets of Fig. 4) + w_t L_cls_t + w_e L_cls_e + w_tri L_tri (Eq. 6)
        return model.cross_aee_loss(batch["mel_a"], batch["mel_b"], batch["mel_target"], batch["emotion_a"],
                                    batch["emotion_b"], batch["speaker_a"], batch["speaker_b"])  # fmt: skip

    def aee_loss(batch: Batch, ctx: StepContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total, terms = cross_loss(batch)
        return total, {name: value.detach() for name, value in terms.items()}

    def evaluate(batch: Batch) -> dict[str, torch.Tensor]:
        total, terms = cross_loss(batch)
        predicted = model.classify_emotion(model.emotion(batch["mel_a"])).argmax(-1)  # (B,)
        return {"loss": total, **terms, "emotion_error": (predicted != batch["emotion_a"]).float().mean()}

    return TrainTask(
        models={"emotion_enhancer": model},
        optimizers={"adam": optimizer},
        phases=[
            Phase("pretrain", "adam", pretrain_loss, stop_step=config.pretrain_steps),
            Phase("aee", "adam", aee_loss, start_step=config.pretrain_steps),
        ],
        train_data=train_data,
        val_data=val_data,
        evaluate=evaluate,
    )


def releases(config: Config) -> dict[str, tuple[str, str, Any]]:
    """One release: ``emotion_enhancer/`` (kind ``emotion_enhancer``)."""
    return release_spec("emotion_enhancer", "emotion_enhancer", config.model)
