"""Audio Emotion Enhancement (AEE): emotion, timbre and content encoders trained by cross-reconstruction.

Sec. III-B, Eqs. (5)-(7); EVP's cross-reconstruction (Ji et al., CVPR 2021) is the model followed. Three
encoders of the same structure (8 Conv2d + 3 FC, ReLU; Sec. IV-B) map a mel segment to an emotion
embedding ``E_e``, a timbre embedding ``E_t`` and a content embedding ``E_c``; a decoder ``D`` rebuilds a
mel segment from (timbre of clip i, emotion of clip j, content of clip k). After training only
:meth:`EmotionEnhancer.emotion` is used: it gives the target emotion of the driving audio.

Choices where the paper is silent:

- The content embedding keeps a time axis, one vector per 4 mel frames ``(B, S/4, Dc)``: the decoder needs
  to know *when* each sound happens. The emotion and timbre encoders average their conv features over
  time before the three FC layers, so their embeddings are vectors ``(B, De)``, ``(B, Dt)``. All three share
  the same layer structure; only that pooling differs.
- Eq. (5) sums over the combinations ``(i, j, k)`` of two clips ``a_0``, ``a_1``; the target of
  ``D(E_t(a_i), E_e(a_j), E_c(a_k))`` is the clip with ``a_i``'s speaker, ``a_j``'s emotion and ``a_k``'s
  sentence. :meth:`EmotionEnhancer.cross_aee_loss` takes the two clips as Fig. 4 draws them (two
  speakers, two emotions, two sentences) and the eight targets, real clips of the corpus DTW-warped onto
  the content source's time axis (:class:`~cemnet_core.data.cross_reconstruction.CrossReconstructionDataset`),
  so swapping each of timbre, emotion and content changes the target. Squared L2 (mean over the 8).
  :meth:`~EmotionEnhancer.aee_loss` keeps the older pairs (one speaker and sentence: the target is ``a_j``).
- Eq. (6) is a triplet loss on content, the distance the mean over time of the per-step L2 distance. In
  :meth:`~EmotionEnhancer.cross_aee_loss` the positive of ``a_0`` is the target with ``a_0``'s sentence
  said by ``a_1``'s speaker in ``a_1``'s emotion, its negative ``a_0``'s speaker and emotion saying ``a_1``'s
  sentence (only the content differs), and symmetrically for ``a_1``; in ``aee_loss`` the positive is the
  other clip of the pair, the negative another sentence.
- Encoder pretraining (Sec. IV-C): emotion and timbre by classification with ``C_e`` / ``C_t``. LRS2's
  audio-to-text is not available, so the content encoder is pretrained by per-step content classification
  (phone or syllable ids of each 4-mel-frame step, ``num_content_classes`` > 0, e.g. from the procedural
  corpus or a forced aligner): see :meth:`EmotionEnhancer.pretraining_losses`.
- The loss weights of Eq. (7) are not given in the paper; all are 1 by default.

Shape notation::

    B  batch      S  mel frames of a segment (segment_frames)      F  mel bins (80)
    S' = S/4      De, Dt, Dc  emotion / timbre / content widths    E  emotion classes (8)
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cemnet_core.configs import config_from_dict, config_to_dict
from cemnet_core.contracts import MEL_BINS, MEL_PER_FRAME, NUM_EMOTIONS
from cemnet_core.errors import ConfigError
from cemnet_core.models.layers import ConvBlock2d

TIME_DOWNSAMPLE = 4  # the encoders' two stride-2 steps along time
FREQ_AFTER_CONVS = MEL_BINS // 16  # four stride-2 steps along frequency: 80 -> 5


@dataclass(frozen=True)
class EmotionEnhancerConfig:
    """Sizes and loss weights of :class:`EmotionEnhancer`; JSON-safe."""

    segment_frames: int = 32
    channels: tuple[int, int, int, int] = (32, 64, 128, 256)
    hidden: int = 512
    emotion_dim: int = 128
    timbre_dim: int = 128
    content_dim: int = 256
    num_emotions: int = NUM_EMOTIONS
    num_speakers: int = 40
    num_content_classes: int = 0
    triplet_margin: float = 1.0
    weight_reconstruction: float = 1.0
    weight_speaker: float = 1.0
    weight_emotion: float = 1.0
    weight_triplet: float = 1.0

    def __post_init__(self) -> None:
        if self.segment_frames < TIME_DOWNSAMPLE or self.segment_frames % TIME_DOWNSAMPLE != 0:
            raise ConfigError(
                f"emotion_enhancer: segment_frames must be a positive multiple of {TIME_DOWNSAMPLE}, "
                f"got {self.segment_frames}"
            )
        if len(self.channels) != 4 or min(self.channels) < 1:
            raise ConfigError("emotion_enhancer: set channels to 4 positive widths, e.g. [32, 64, 128, 256]")
        sizes = (self.hidden, self.emotion_dim, self.timbre_dim, self.content_dim, self.num_emotions)
        if min(sizes) < 1 or self.num_speakers < 1 or self.num_content_classes < 0:
            raise ConfigError("emotion_enhancer: widths and class counts must be >= 1 (content classes >= 0)")

    @classmethod
    def paper(cls) -> EmotionEnhancerConfig:
        """Sizes for MEAD (40 training speakers, 8 emotions); widths are ours (the paper gives none)."""
        return cls()

    @classmethod
    def tiny(cls) -> EmotionEnhancerConfig:
        """A small model for tests."""
        return cls(
            segment_frames=8, channels=(4, 4, 8, 8), hidden=16, emotion_dim=8, timbre_dim=8, content_dim=8,
            num_speakers=3, num_content_classes=5,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict of the fields (:func:`~cemnet_core.configs.config_to_dict`)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmotionEnhancerConfig:
        """Inverse of :meth:`to_dict`, type-checked; ``ConfigError`` naming unknown keys."""
        return config_from_dict(cls, data)


class SegmentEncoder(nn.Module):
    """8 Conv2d + 3 FC (ReLU) over a mel segment; the structure shared by ``E_e``, ``E_t`` and ``E_c``.

    With ``keep_time`` the FC layers run on each of the ``S/4`` time steps (content); without, on the
    time-averaged conv features (emotion, timbre).
    """

    def __init__(
        self, channels: tuple[int, int, int, int], hidden: int, out_dim: int, keep_time: bool
    ) -> None:
        super().__init__()
        c1, c2, c3, c4 = channels
        self.keep_time = keep_time
        self.convs = nn.Sequential(
            ConvBlock2d(1, c1, stride=2),  # (40, S/2)
            ConvBlock2d(c1, c1, residual=True),
            ConvBlock2d(c1, c2, stride=2),  # (20, S/4)
            ConvBlock2d(c2, c2, residual=True),
            ConvBlock2d(c2, c3, stride=(2, 1)),  # (10, S/4)
            ConvBlock2d(c3, c3, residual=True),
            ConvBlock2d(c3, c4, stride=(2, 1)),  # (5, S/4)
            ConvBlock2d(c4, c4, residual=True),
        )
        self.fc1 = nn.Linear(c4 * FREQ_AFTER_CONVS, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, out_dim)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel: (B, S, F) -> (B, S/4, D) if ``keep_time`` else (B, D)."""
        x = self.convs(mel.transpose(1, 2).unsqueeze(1))  # (B, C4, 5, S/4)
        x = x.flatten(1, 2).transpose(1, 2)  # (B, S/4, C4*5)
        if not self.keep_time:
            x = x.mean(dim=1)  # (B, C4*5)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)  # (B, S/4, D) or (B, D)


class UpBlock2d(nn.Module):
    """``ConvTranspose2d -> BatchNorm2d -> ReLU``: doubles the frequency axis (and time if ``up_time``)."""

    def __init__(self, in_channels: int, out_channels: int, up_time: bool) -> None:
        super().__init__()
        kernel, stride, padding = ((4, 4), (2, 2), (1, 1)) if up_time else ((4, 3), (2, 1), (1, 1))
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, kernel, stride, padding)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, H, W) -> (B, C_out, 2H, W or 2W)."""
        return F.relu(self.norm(self.conv(x)))


class MelDecoder(nn.Module):
    """``D(t, e, c)``: the mirror of :class:`SegmentEncoder`, per-step embeddings back to a mel segment."""

    def __init__(self, config: EmotionEnhancerConfig) -> None:
        super().__init__()
        c1, c2, c3, c4 = config.channels
        self.c4 = c4
        self.fc1 = nn.Linear(config.timbre_dim + config.emotion_dim + config.content_dim, config.hidden)
        self.fc2 = nn.Linear(config.hidden, c4 * FREQ_AFTER_CONVS)
        self.ups = nn.Sequential(
            UpBlock2d(c4, c3, up_time=False),  # (10, S/4)
            UpBlock2d(c3, c2, up_time=False),  # (20, S/4)
            UpBlock2d(c2, c1, up_time=True),  # (40, S/2)
            UpBlock2d(c1, c1, up_time=True),  # (80, S)
        )
        self.out = nn.Conv2d(c1, 1, 3, padding=1)

    def forward(self, timbre: torch.Tensor, emotion: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        """timbre (B, Dt), emotion (B, De), content (B, S/4, Dc) -> mel (B, S, F)."""
        steps = content.shape[1]
        fixed = torch.cat([timbre, emotion], dim=-1).unsqueeze(1).expand(-1, steps, -1)  # (B, S/4, Dt+De)
        x = torch.cat([fixed, content], dim=-1)  # (B, S/4, Dt+De+Dc)
        x = F.relu(self.fc2(F.relu(self.fc1(x))))  # (B, S/4, C4*5)
        x = x.transpose(1, 2).unflatten(1, (self.c4, FREQ_AFTER_CONVS))  # (B, C4, 5, S/4)
        return self.out(self.ups(x)).squeeze(1).transpose(1, 2)  # (B, S, F)


class EmotionEnhancer(nn.Module):
    """The AEE module of Sec. III-B: disentangled emotion / timbre / content of a mel segment."""

    def __init__(self, config: EmotionEnhancerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.emotion_encoder = SegmentEncoder(c.channels, c.hidden, c.emotion_dim, keep_time=False)
        self.timbre_encoder = SegmentEncoder(c.channels, c.hidden, c.timbre_dim, keep_time=False)
        self.content_encoder = SegmentEncoder(c.channels, c.hidden, c.content_dim, keep_time=True)
        self.decoder = MelDecoder(c)
        self.emotion_classifier = nn.Sequential(
            nn.Linear(c.emotion_dim, c.emotion_dim), nn.ReLU(), nn.Linear(c.emotion_dim, c.num_emotions)
        )
        self.speaker_classifier = nn.Sequential(
            nn.Linear(c.timbre_dim, c.timbre_dim), nn.ReLU(), nn.Linear(c.timbre_dim, c.num_speakers)
        )
        self.content_classifier = (
            nn.Linear(c.content_dim, c.num_content_classes) if c.num_content_classes else None
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """The inference use of the module: mel (B, S, F) -> target emotion embedding (B, De)."""
        return self.emotion(mel)

    def emotion(self, mel: torch.Tensor) -> torch.Tensor:
        """``E_e``: mel (B, S, F) -> (B, De)."""
        return self.emotion_encoder(self._check_mel(mel))

    def timbre(self, mel: torch.Tensor) -> torch.Tensor:
        """``E_t``: mel (B, S, F) -> (B, Dt)."""
        return self.timbre_encoder(self._check_mel(mel))

    def content(self, mel: torch.Tensor) -> torch.Tensor:
        """``E_c``: mel (B, S, F) -> (B, S/4, Dc)."""
        return self.content_encoder(self._check_mel(mel))

    def decode(self, timbre: torch.Tensor, emotion: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        """``D``: timbre (B, Dt), emotion (B, De), content (B, S/4, Dc) -> mel (B, S, F)."""
        c = self.config
        B = timbre.shape[0]
        if timbre.shape != (B, c.timbre_dim) or emotion.shape != (B, c.emotion_dim):
            raise ValueError(
                f"timbre must be (B, {c.timbre_dim}) and emotion (B, {c.emotion_dim}), "
                f"got {tuple(timbre.shape)} and {tuple(emotion.shape)}"
            )
        if content.ndim != 3 or content.shape[0] != B or content.shape[2] != c.content_dim:
            raise ValueError(f"content must be (B, S/4, {c.content_dim}), got {tuple(content.shape)}")
        return self.decoder(timbre, emotion, content)

    def classify_emotion(self, emotion: torch.Tensor) -> torch.Tensor:
        """``C_e``: emotion embedding (B, De) -> logits (B, E)."""
        return self.emotion_classifier(emotion)

    def classify_speaker(self, timbre: torch.Tensor) -> torch.Tensor:
        """``C_t``: timbre embedding (B, Dt) -> logits (B, num_speakers)."""
        return self.speaker_classifier(timbre)

    def classify_content(self, content: torch.Tensor) -> torch.Tensor:
        """Content pretraining head: (B, S/4, Dc) -> logits (B, S/4, num_content_classes)."""
        if self.content_classifier is None:
            raise ConfigError("emotion_enhancer: set num_content_classes > 0 to pretrain the content encoder")
        return self.content_classifier(content)

    def reconstruct(
        self, timbre_source: torch.Tensor, emotion_source: torch.Tensor, content_source: torch.Tensor
    ) -> torch.Tensor:
        """Fig. 4: ``D(E_t(timbre), E_e(emotion), E_c(content))``: 3 x (B, S, F) -> (B, S, F)."""
        return self.decode(
            self.timbre(timbre_source), self.emotion(emotion_source), self.content(content_source)
        )

    def cross_reconstruction_loss(self, clip_a: torch.Tensor, clip_b: torch.Tensor) -> torch.Tensor:
        """Eq. (5) on a same-speaker, same-sentence pair: ``D(E_t(a_i), E_e(a_j), E_c(a_k))`` against ``a_j``.

        Args:
            clip_a, clip_b: (B, S, F) the same speaker and sentence in two emotions, time-aligned.

        Returns:
            the mean over the 8 combinations ``(i, j, k)`` (scalar).
        """
        if clip_a.shape != clip_b.shape:
            raise ValueError(
                f"clip_a and clip_b must both be (B, S, F), got {clip_a.shape} and {clip_b.shape}"
            )
        pair = torch.cat([clip_a, clip_b])  # (2B, S, F)
        timbres = self.timbre(pair).chunk(2)  # 2 x (B, Dt)
        emotions = self.emotion(pair).chunk(2)  # 2 x (B, De)
        contents = self.content(pair).chunk(2)  # 2 x (B, S/4, Dc)
        return self._cross_reconstruction(
            _emotion_source_targets(clip_a, clip_b), timbres, emotions, contents
        )

    def _cross_reconstruction(
        self,
        targets: torch.Tensor,
        timbres: tuple[torch.Tensor, ...],
        emotions: tuple[torch.Tensor, ...],
        contents: tuple[torch.Tensor, ...],
    ) -> torch.Tensor:
        """Eq. (5): mean squared error of ``D(t_i, e_j, c_k)`` against ``targets[:, i, j, k]``."""
        combos = list(itertools.product(range(2), repeat=3))
        rebuilt = self.decode(
            torch.cat([timbres[i] for i, _, _ in combos]),  # (8B, Dt)
            torch.cat([emotions[j] for _, j, _ in combos]),  # (8B, De)
            torch.cat([contents[k] for _, _, k in combos]),  # (8B, S/4, Dc)
        )  # (8B, S, F)
        target = torch.cat([targets[:, i, j, k] for i, j, k in combos])  # (8B, S, F)
        return F.mse_loss(rebuilt, target)

    def cross_aee_loss(
        self,
        clip_a: torch.Tensor,
        clip_b: torch.Tensor,
        targets: torch.Tensor,
        emotion_a: torch.Tensor,
        emotion_b: torch.Tensor,
        speaker_a: torch.Tensor,
        speaker_b: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Eq. (7) on a Fig. 4 item: ``w_a L_a + w_t L_cls_t + w_e L_cls_e + w_tri L_tri``.

        Args:
            clip_a, clip_b: (B, S, F) ``a_0``, ``a_1``: two clips of (usually) two speakers, two emotions
                and two sentences.
            targets: (B, 2, 2, 2, S, F); ``[:, i, j, k]`` is the clip with the speaker of ``a_i``, the
                emotion of ``a_j`` and the sentence of ``a_k``, time-aligned to ``a_k`` (``[:, 0, 0, 0]`` is
                ``clip_a``, ``[:, 1, 1, 1]`` is ``clip_b``).
            emotion_a, emotion_b, speaker_a, speaker_b: (B,) labels of the two clips.

        Returns:
            total and ``{"reconstruction", "speaker", "emotion", "triplet"}`` (scalars).
        """
        c = self.config
        if (
            clip_a.ndim != 3
            or clip_a.shape != clip_b.shape
            or targets.shape[1:4] != (2, 2, 2)
            or (targets.shape[:1] + targets.shape[4:] != clip_a.shape)
        ):
            raise ValueError(
                f"clip_a and clip_b must be (B, S, F) and targets (B, 2, 2, 2, S, F), got {clip_a.shape}, "
                f"{clip_b.shape}, {targets.shape}"
            )
        pair = torch.cat([clip_a, clip_b])  # (2B, S, F)
        timbre = self.timbre(pair)  # (2B, Dt)
        emotion = self.emotion(pair)  # (2B, De)
        # a_0's sentence by a_1's speaker in a_1's emotion, and a_1's sentence by a_0's in a_0's
        same_as_a, same_as_b = targets[:, 1, 1, 0], targets[:, 0, 0, 1]  # (B, S, F) each
        contents = self.content(torch.cat([pair, same_as_a, same_as_b])).chunk(4)  # 4 x (B, S/4, Dc)
        content_a, content_b, content_pa, content_pb = contents
        reconstruction = self._cross_reconstruction(
            targets, timbre.chunk(2), emotion.chunk(2), (content_a, content_b)
        )  # Eq. (5)
        speaker_loss = classification_loss(self.classify_speaker(timbre), torch.cat([speaker_a, speaker_b]))
        emotion_loss = classification_loss(self.classify_emotion(emotion), torch.cat([emotion_a, emotion_b]))
        triplet = 0.5 * (
            content_triplet_loss(content_a, content_pa, content_pb, c.triplet_margin)
            + content_triplet_loss(content_b, content_pb, content_pa, c.triplet_margin)
        )  # Eq. (6)
        total = (
            c.weight_reconstruction * reconstruction
            + c.weight_speaker * speaker_loss
            + c.weight_emotion * emotion_loss
            + c.weight_triplet * triplet
        )
        parts = {"reconstruction": reconstruction, "speaker": speaker_loss, "emotion": emotion_loss,
                 "triplet": triplet}  # fmt: skip
        return total, parts

    def aee_loss(
        self,
        clip_a: torch.Tensor,
        clip_b: torch.Tensor,
        negative: torch.Tensor,
        emotion_a: torch.Tensor,
        emotion_b: torch.Tensor,
        speaker: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Eq. (7): ``w_a L_a + w_t L_cls_t + w_e L_cls_e + w_tri L_tri`` with the config's weights.

        Args:
            clip_a, clip_b: (B, S, F) one speaker, one sentence, two emotions, time-aligned.
            negative: (B, S, F) a clip of another sentence (the triplet negative of Eq. 6).
            emotion_a, emotion_b: (B,) emotion ids of the two clips.
            speaker: (B,) speaker id of the pair.

        Returns:
            total and ``{"reconstruction", "speaker", "emotion", "triplet"}`` (scalars).
        """
        c = self.config
        if not clip_a.shape == clip_b.shape == negative.shape:
            raise ValueError(
                f"clip_a, clip_b and negative must all be (B, S, F), got {clip_a.shape}, {clip_b.shape}, "
                f"{negative.shape}"
            )
        pair = torch.cat([clip_a, clip_b])  # (2B, S, F)
        timbre = self.timbre(pair)  # (2B, Dt)
        emotion = self.emotion(pair)  # (2B, De)
        content_a, content_b, content_n = self.content(torch.cat([pair, negative])).chunk(3)  # (B, S/4, Dc)
        reconstruction = self._cross_reconstruction(
            _emotion_source_targets(clip_a, clip_b), timbre.chunk(2), emotion.chunk(2), (content_a, content_b)
        )
        speaker_loss = classification_loss(self.classify_speaker(timbre), torch.cat([speaker, speaker]))
        emotion_loss = classification_loss(self.classify_emotion(emotion), torch.cat([emotion_a, emotion_b]))
        triplet = 0.5 * (
            content_triplet_loss(content_a, content_b, content_n, c.triplet_margin)
            + content_triplet_loss(content_b, content_a, content_n, c.triplet_margin)
        )
        total = (
            c.weight_reconstruction * reconstruction
            + c.weight_speaker * speaker_loss
            + c.weight_emotion * emotion_loss
            + c.weight_triplet * triplet
        )
        parts = {
            "reconstruction": reconstruction,
            "speaker": speaker_loss,
            "emotion": emotion_loss,
            "triplet": triplet,
        }
        return total, parts

    def pretraining_losses(
        self,
        mel: torch.Tensor,
        emotion: torch.Tensor,
        speaker: torch.Tensor,
        content_labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Encoder pretraining (Sec. IV-C) by classification.

        Args:
            mel: (B, S, F) segments.
            emotion: (B,) emotion ids; speaker: (B,) speaker ids.
            content_labels: (B, S) per-mel-frame content class ids (-100 = unknown) or None; each step of
                the content embedding is labelled by its centre mel frame.

        Returns:
            ``{"emotion", "speaker"}`` cross-entropies, plus ``"content"`` when labels are given.
        """
        losses = {
            "emotion": classification_loss(self.classify_emotion(self.emotion(mel)), emotion),
            "speaker": classification_loss(self.classify_speaker(self.timbre(mel)), speaker),
        }
        if content_labels is not None:
            if content_labels.shape != mel.shape[:2]:
                raise ValueError(
                    f"content_labels must be (B, S) = {tuple(mel.shape[:2])}, got {content_labels.shape}"
                )
            step_labels = content_labels[:, TIME_DOWNSAMPLE // 2 :: TIME_DOWNSAMPLE]  # (B, S/4)
            logits = self.classify_content(self.content(mel))  # (B, S/4, classes)
            losses["content"] = F.cross_entropy(
                logits.flatten(0, 1), step_labels.flatten(), ignore_index=-100
            )
        return losses

    def example_inputs(self, batch_size: int = 1) -> tuple[torch.Tensor]:
        """A random mel segment of the configured length (profiling, smoke tests)."""
        return (torch.rand(batch_size, self.config.segment_frames, MEL_BINS) * 8 - 4,)

    @property
    def frames_per_example(self) -> float:
        """Video frames covered by one segment (``S / 3.2``): the emotion encoder runs once per segment."""
        return self.config.segment_frames / MEL_PER_FRAME

    def _check_mel(self, mel: torch.Tensor) -> torch.Tensor:
        S = self.config.segment_frames
        if mel.ndim != 3 or mel.shape[1:] != (S, MEL_BINS):
            raise ValueError(f"mel must be (B, {S}, {MEL_BINS}) (segment_frames={S}), got {tuple(mel.shape)}")
        return mel


def _emotion_source_targets(clip_a: torch.Tensor, clip_b: torch.Tensor) -> torch.Tensor:
    """Targets of a same-speaker, same-sentence pair: ``[:, i, j, k]`` is clip ``j``: (B, 2, 2, 2, S, F)."""
    pair = torch.stack([clip_a, clip_b], dim=1)  # (B, 2, S, F)
    return pair[:, None, :, None].expand(-1, 2, -1, 2, -1, -1)  # (B, 2, 2, 2, S, F)


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``L_cls_t`` / ``L_cls_e`` of Eq. (7): cross-entropy of logits (B, classes) against ids (B,)."""
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"logits must be (B, classes) and labels (B,), got {logits.shape} and {labels.shape}"
        )
    return F.cross_entropy(logits, labels)


def content_triplet_loss(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float = 1.0
) -> torch.Tensor:
    """Eq. (6): ``mean(max(margin + d(anchor, positive) - d(anchor, negative), 0))``.

    Args:
        anchor, positive, negative: (B, S/4, Dc) content embeddings (or (B, Dc)); positive has the anchor's
            content, negative another. ``d`` is the L2 distance per time step, averaged over time.

    Returns:
        scalar loss, zero once every negative is ``margin`` farther than its positive.
    """
    if not anchor.shape == positive.shape == negative.shape:
        raise ValueError(
            f"anchor, positive and negative must share a shape (B, S/4, Dc), got {anchor.shape}, "
            f"{positive.shape}, {negative.shape}"
        )
    d_positive = (anchor - positive).norm(dim=-1).reshape(len(anchor), -1).mean(1)  # (B,)
    d_negative = (anchor - negative).norm(dim=-1).reshape(len(anchor), -1).mean(1)  # (B,)
    return F.relu(margin + d_positive - d_negative).mean()
