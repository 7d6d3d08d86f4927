"""Emotion Bridging Memory (EBM): emotional lip displacement retrieved by a cross-emotion query.

Sec. III-C, Eqs. (8)-(13); key and value memories as in External Attention (Guo et al. 2021, [58]): two
learnable slot matrices ``M_k`` (M, Dk) and ``M_v`` (M, D) read by attention.

- Cross-emotion feature ``f_c`` = MLP(target emotion, source emotion, identity, mouth motion), **per
  frame**: the emotion/identity part is the same for the clip, the mouth motion feature (a landmark
  encoder over the Audio2Mouth mouth of that frame) changes with the speech, so each frame can fetch its
  own displacement (a smile stretches an open mouth differently from a closed one).
- Lip displacement feature ``f_Δlip`` = landmark encoder over ``target_mouth - mouth`` (ground truth minus
  Audio2Mouth output), per frame.
- Eq. (8) ``α_v = softmax(cos(f_Δlip, M_v) / τ)``; Eq. (9) ``f^_Δlip = α_v M_v``; Eq. (10)
  ``L_rec = ||f_Δlip - f^_Δlip||²`` (mean over feature entries); Eq. (11)
  ``α_k = softmax(cos(f_c, M_k) / τ)``;
  Eq. (12) ``L_align = KL(α_k || sg(α_v))`` in the paper's direction, ``Σ α_k (log α_k - log α_v)``, with
  the value attention as a fixed target (stop-gradient), so aligning moves the key side (``M_k`` and the
  query network) and never drags the value memory toward the key; Eq. (13) ``f^e_Δlip = α_k M_v``.
- The landmark decoder maps ``concat(feature, mouth motion feature)`` to a **residual** over the
  Audio2Mouth mouth: ``mouth_out = mouth + decoder(...)``, so an untrained decoder starts near the
  emotion-agnostic mouth.
- Training (``target_mouth`` given) decodes twice: from the key path (Eq. 13, what inference uses:
  ``EBMOutput.mouth``) and from the value path (Eq. 9, ``EBMOutput.mouth_value``). The value path keeps
  ``f_Δlip`` informative (``L_rec`` alone would let the encoder collapse to a constant) and the key path
  trains what inference runs. :meth:`EmotionBridgingMemory.loss` supervises both with the Audio2Mouth
  loss (Eq. 4). At inference the memory is read through the key memory alone.
- ``use_memory=False`` is the "w/o EBM" ablation (Table IV): ``f_c`` (width ``dim``) goes straight into
  the landmark decoder; there are no memories and both memory losses are zero.
- The paper gives no memory size, width or temperature: ``paper()`` uses External Attention's 64 slots,
  the Audio2Mouth width 512 and τ = 0.1.
- Loss weights (the paper gives none for this module): the landmark loss is weighted by ``weight_mouth``
  = 128, i.e. measured in pixels of the 128 x 128 crop (the M-LMD unit) instead of crop-normalised
  coordinates. Reason: in normalised coordinates the L1 landmark loss of a 1-pixel error is about 0.008,
  while ``L_rec`` and ``L_align`` at unit weight are 0.02-1.5, so they set the gradients of every shared
  part: the displacement encoder and the value memory learn to rebuild their own features (``L_rec``),
  the query network to copy the value attention (``L_align``), and the lip displacement barely shapes
  either. Measured on the procedural corpus (``benchmarks/learning.py``, 4 training speakers, EBM 1000
  steps, 3 seeds on the same frozen upstream): held-out cross-emotion M-LMD 1.07 / 1.11 / 1.13 px with
  unit weight, 0.89 / 0.81 / 0.86 px with 128, Audio2Mouth alone 1.30 px. With unit weight even the value
  path, which is handed the ground-truth displacement, stayed at 1.0 px on the training speakers
  (0.6 px with 128; Audio2Mouth alone 1.35 px).

Shape notation::

    B  batch    T  video frames    K  mouth landmarks (57)    M  memory slots
    D  displacement / value width   Dk  key width   De, Ds  target / source emotion widths
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cemnet_core.configs import config_from_dict, config_to_dict
from cemnet_core.contracts import IDENTITY_DIM, N_MOUTH
from cemnet_core.errors import ConfigError
from cemnet_core.models.audio_to_mouth import audio2mouth_loss
from cemnet_core.models.layers import LandmarkEncoder

EXAMPLE_FRAMES = 5  # the paper's T, for example_inputs


@dataclass(frozen=True)
class EmotionBridgingMemoryConfig:
    """Sizes and loss weights of :class:`EmotionBridgingMemory`; JSON-safe."""

    target_emotion_dim: int = 128
    source_emotion_dim: int = 128
    identity_dim: int = IDENTITY_DIM
    dim: int = 512
    key_dim: int = 512
    hidden: int = 512
    memory_slots: int = 64
    temperature: float = 0.1
    landmark_base_channels: int = 4
    landmark_residual_blocks: int = 2
    use_memory: bool = True
    weight_mouth: float = 128.0  # landmark loss (Eq. 4) in pixels of the 128 crop; see the module docstring
    weight_rec: float = 1.0
    weight_align: float = 1.0
    velocity_weight: float = 1.0

    def __post_init__(self) -> None:
        sizes = (self.target_emotion_dim, self.source_emotion_dim, self.identity_dim, self.dim, self.key_dim)
        if min(*sizes, self.hidden, self.memory_slots) < 1:
            raise ConfigError("emotion_memory: widths and memory_slots must be >= 1")
        if self.temperature <= 0:
            raise ConfigError(f"emotion_memory: temperature must be > 0, got {self.temperature}")
        if min(self.weight_mouth, self.weight_rec, self.weight_align, self.velocity_weight) < 0:
            raise ConfigError("emotion_memory: loss weights must be >= 0")

    @classmethod
    def paper(cls) -> EmotionBridgingMemoryConfig:
        """Width 512 as Audio2Mouth, 64 slots as External Attention (the paper gives no sizes)."""
        return cls()

    @classmethod
    def tiny(cls) -> EmotionBridgingMemoryConfig:
        """A small model for tests."""
        return cls(
            target_emotion_dim=8, source_emotion_dim=6, identity_dim=IDENTITY_DIM, dim=16, key_dim=12,
            hidden=16, memory_slots=5, landmark_base_channels=2, landmark_residual_blocks=1,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict of the fields (:func:`~cemnet_core.configs.config_to_dict`)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmotionBridgingMemoryConfig:
        """Inverse of :meth:`to_dict`, type-checked; ``ConfigError`` naming unknown keys."""
        return config_from_dict(cls, data)


class EBMOutput(NamedTuple):
    """What :class:`EmotionBridgingMemory` returns.

    mouth: (B, T, K, 2) emotion-aware mouth from the key path (Eq. 13): the inference output.
    loss_rec: scalar Eq. (10), None at inference. loss_align: scalar Eq. (12), None at inference.
    attention: (B, T, M) key attention α_k (None in the ablation).
    mouth_value: (B, T, K, 2) mouth decoded from the value path (Eq. 9), training only.
    value_attention: (B, T, M) value attention α_v, training only.
    """

    mouth: torch.Tensor
    loss_rec: torch.Tensor | None
    loss_align: torch.Tensor | None
    attention: torch.Tensor | None
    mouth_value: torch.Tensor | None = None
    value_attention: torch.Tensor | None = None


class EmotionBridgingMemory(nn.Module):
    """Emotion-agnostic mouth + cross-emotion cues -> emotion-aware mouth, Eqs. (8)-(13)."""

    def __init__(self, config: EmotionBridgingMemoryConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.mouth_encoder = LandmarkEncoder(
            N_MOUTH, c.dim, c.landmark_base_channels, c.landmark_residual_blocks
        )
        query_width = c.key_dim if c.use_memory else c.dim
        condition = c.target_emotion_dim + c.source_emotion_dim + c.identity_dim + c.dim
        self.cross_emotion = nn.Sequential(
            nn.Linear(condition, c.hidden), nn.ReLU(), nn.Linear(c.hidden, query_width)
        )
        if c.use_memory:
            self.displacement_encoder = LandmarkEncoder(
                N_MOUTH, c.dim, c.landmark_base_channels, c.landmark_residual_blocks
            )
            self.key_memory = nn.Parameter(torch.randn(c.memory_slots, c.key_dim))  # (M, Dk)
            self.value_memory = nn.Parameter(torch.randn(c.memory_slots, c.dim))  # (M, D)
        self.decoder = nn.Sequential(
            nn.Linear(2 * c.dim, c.hidden),
            nn.ReLU(),
            nn.Linear(c.hidden, c.hidden),
            nn.ReLU(),
            nn.Linear(c.hidden, N_MOUTH * 2),
        )
        with torch.no_grad():  # a small first residual: training starts from the Audio2Mouth mouth
            self.decoder[-1].weight.mul_(0.01)
            self.decoder[-1].bias.zero_()

    def forward(
        self,
        target_emotion: torch.Tensor,
        source_emotion: torch.Tensor,
        identity: torch.Tensor,
        mouth: torch.Tensor,
        target_mouth: torch.Tensor | None = None,
    ) -> EBMOutput:
        """Add the emotional lip displacement to the Audio2Mouth mouth.

        Args:
            target_emotion: (B, De) emotion of the driving audio (AEE emotion encoder).
            source_emotion: (B, Ds) emotion of the reference images (image emotion extractor).
            identity: (B, 128) identity embedding of the references.
            mouth: (B, T, 57, 2) emotion-agnostic mouth from Audio2Mouth.
            target_mouth: (B, T, 57, 2) ground-truth mouth (training) or None (inference: key path only).

        Returns:
            :class:`EBMOutput`; ``mouth`` is (B, T, 57, 2).
        """
        self._check_inputs(target_emotion, source_emotion, identity, mouth, target_mouth)
        c = self.config
        B, T = mouth.shape[:2]

        motion = self.mouth_encoder(mouth.flatten(0, 1)).view(B, T, c.dim)  # (B, T, D)
        clip_cues = torch.cat([target_emotion, source_emotion, identity], dim=-1)  # (B, De+Ds+128)
        clip_cues = clip_cues.unsqueeze(1).expand(-1, T, -1)  # (B, T, De+Ds+128)
        query = self.cross_emotion(torch.cat([clip_cues, motion], dim=-1))  # f_c: (B, T, Dk)

        if not c.use_memory:  # "w/o EBM": f_c straight into the landmark decoder
            emotional = self._decode(query, motion, mouth)
            zero = None if target_mouth is None else mouth.new_zeros(())
            return EBMOutput(emotional, zero, zero, None)

        key_logits = _cosine(query, self.key_memory) / c.temperature  # (B, T, M)
        key_attention = key_logits.softmax(dim=-1)  # α_k, Eq. (11)
        retrieved = key_attention @ self.value_memory  # f^e_Δlip = α_k M_v, Eq. (13): (B, T, D)
        emotional = self._decode(retrieved, motion, mouth)
        if target_mouth is None:
            return EBMOutput(emotional, None, None, key_attention)

        displacement = (target_mouth - mouth).flatten(0, 1)  # (B*T, 57, 2)
        f_displacement = self.displacement_encoder(displacement).view(B, T, c.dim)  # f_Δlip: (B, T, D)
        value_logits = _cosine(f_displacement, self.value_memory) / c.temperature  # (B, T, M)
        value_attention = value_logits.softmax(dim=-1)  # α_v, Eq. (8)
        rebuilt = value_attention @ self.value_memory  # f^_Δlip = α_v M_v, Eq. (9): (B, T, D)
        loss_rec = F.mse_loss(rebuilt, f_displacement)  # Eq. (10)
        key_log = key_logits.log_softmax(dim=-1)
        value_log = value_logits.detach().log_softmax(dim=-1)  # stop-gradient: α_v is the target
        loss_align = (key_attention * (key_log - value_log)).sum(-1).mean()  # KL(α_k || α_v), Eq. (12)
        from_value = self._decode(rebuilt, motion, mouth)
        return EBMOutput(emotional, loss_rec, loss_align, key_attention, from_value, value_attention)

    def loss(
        self, output: EBMOutput, target_mouth: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """EBM training objective: ``weight_mouth`` x Audio2Mouth loss (Eq. 4) on the key-path and
        value-path mouths + ``weight_rec * L_rec`` (Eq. 10) + ``weight_align * L_align`` (Eq. 12).

        Returns:
            total and ``{"mouth", "mouth_value", "rec", "align"}`` (scalars, unweighted; the mouth terms
            in crop-normalised coordinates as Audio2Mouth logs them).
        """
        if output.loss_rec is None or output.loss_align is None:
            raise ValueError("EBM loss needs an output computed with target_mouth (training mode)")
        c = self.config
        mouth_loss, _ = audio2mouth_loss(output.mouth, target_mouth, c.velocity_weight)
        parts = {"mouth": mouth_loss, "rec": output.loss_rec, "align": output.loss_align}
        landmarks = mouth_loss
        if output.mouth_value is not None:
            parts["mouth_value"], _ = audio2mouth_loss(output.mouth_value, target_mouth, c.velocity_weight)
            landmarks = landmarks + parts["mouth_value"]
        total = (
            c.weight_mouth * landmarks + c.weight_rec * output.loss_rec + c.weight_align * output.loss_align
        )
        return total, parts

    def example_inputs(self, batch_size: int = 1) -> tuple[torch.Tensor, ...]:
        """Random inputs of the configured sizes for ``EXAMPLE_FRAMES`` frames (profiling, smoke tests)."""
        c = self.config
        return (
            torch.randn(batch_size, c.target_emotion_dim),
            torch.randn(batch_size, c.source_emotion_dim),
            torch.randn(batch_size, c.identity_dim),
            torch.rand(batch_size, EXAMPLE_FRAMES, N_MOUTH, 2),
        )

    @property
    def frames_per_example(self) -> float:
        """Video frames produced by one call on :meth:`example_inputs` (batch 1)."""
        return float(EXAMPLE_FRAMES)

    def _decode(self, feature: torch.Tensor, motion: torch.Tensor, mouth: torch.Tensor) -> torch.Tensor:
        """Landmark decoder: concat(feature (B,T,D), motion (B,T,D)) -> residual over mouth (B,T,57,2)."""
        residual = self.decoder(torch.cat([feature, motion], dim=-1))  # (B, T, 57*2)
        return mouth + residual.view(mouth.shape)  # (B, T, 57, 2)

    def _check_inputs(
        self,
        target_emotion: torch.Tensor,
        source_emotion: torch.Tensor,
        identity: torch.Tensor,
        mouth: torch.Tensor,
        target_mouth: torch.Tensor | None,
    ) -> None:
        c = self.config
        if mouth.ndim != 4 or mouth.shape[2:] != (N_MOUTH, 2):
            raise ValueError(f"mouth must be (B, T, {N_MOUTH}, 2), got {tuple(mouth.shape)}")
        B = mouth.shape[0]
        for name, tensor, width in (
            ("target_emotion", target_emotion, c.target_emotion_dim),
            ("source_emotion", source_emotion, c.source_emotion_dim),
            ("identity", identity, c.identity_dim),
        ):
            if tensor.shape != (B, width):
                raise ValueError(f"{name} must be (B, {width}) with B={B}, got {tuple(tensor.shape)}")
        if target_mouth is not None and target_mouth.shape != mouth.shape:
            raise ValueError(
                f"target_mouth must match mouth {tuple(mouth.shape)}, got {tuple(target_mouth.shape)}"
            )


def _cosine(query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every query with every slot: (B, T, D) x (M, D) -> (B, T, M)."""
    return F.normalize(query, dim=-1) @ F.normalize(memory, dim=-1).T
