"""Audio2Mouth: emotion-agnostic mouth landmarks from reference landmarks, audio and pose (Sec. III-A).

Implements Eq. (1) (transformer over reference, pose and audio tokens; ``m_t = Linear(z_{N+T+t})``) and the
loss of Eqs. (2)-(4) (L1 + lambda * velocity consistency). IP-LAP's landmark generator (Zhong et al.,
CVPR 2023) is the model followed for the encoders and the token fusion; where it differs from the paper
the paper wins:

- Tokens are ordered ``[N reference | T pose | T audio]``. The paper predicts the mouth from "the last T
  output tokens" with index ``N+T+t`` (Eq. 1), so the last ``T`` tokens are the audio tokens; frame ``t``'s
  pose token and audio token share the learned frame-position embedding ``P_t``, so attention can fuse
  each frame's pose with its audio. IP-LAP instead reads lips from audio tokens and jaw from pose tokens.
- Reference tokens get no position embedding (the ``N`` references are an unordered set), only their
  modality embedding; so any ``N >= 1`` works. ``T`` may be shorter than ``num_frames`` (a last chunk).
- One ``Linear`` maps each of the last ``T`` tokens to the 57 mouth points (``LIPS + JAW`` order of
  :data:`cemnet_core.contracts.MOUTH`). With ``mouth_from_reference`` (default) that Linear gives an
  offset from a base mouth, each reference's mouth moved with the head to the frame and averaged over the
  N references, so ``m_t = base_t + Linear(z_{N+T+t})``. The Linear starts near zero, so an untrained model
  copies the reference mouth, where the head now is. Without it, a small model on few speakers learned the
  speaker's mouth shape worse than copying a reference did (learning benchmark).
- ``base_motion`` says how the base follows the head. ``"similarity"`` (default): for every reference the
  least-squares similarity (rotation, scale, shift) that maps its POSE points (rigid upper face) onto the
  frame's, applied to its mouth (:func:`reference_mouth_base`). ``"translation"``: the shift of the frame's
  POSE centroid from the references' mean one, applied to the references' mean mouth (the base before
  2026-12; configs without the field load with it). Measured with no learning at all, the base alone on the
  real held-out clips (``benchmarks/a2m_articulation.py``, row ``base``): M-LMD 3.37 px by translation against
  1.86 px by similarity on the 14 test clips (3.37 against 1.64 on the 8 val clips, where it was chosen); a
  head that turns or leans moves the mouth in ways a shift misses, and the renderer then warps the lower face
  away from the given upper face (a doubled nose at the mid-face seam).
- ``motion_gain`` ``g`` (1 in the paper and in every training run): ``m_t = base_t + g * Linear(z_{N+T+t})``.
  An L1 regressor predicts the median mouth where the audio leaves it uncertain, so it opens the mouth far
  less than people do (on held-out speakers p95-p5 opening 0.13-0.17 against 0.26-0.27). A gain on the
  learned offset widens the motion without changing where it goes: the correlation with the true opening
  stays as it was, M-LMD rises a little. :func:`cemnet_core.train.calibrate.calibrate_motion_gain` sets it
  after training, from validation speakers, so the predicted opening spreads as far as theirs does, and
  ``cemnet_core.eval.mouth_gain`` then so the mouth rendered from one photo does (the starter release:
  ``benchmarks/a2m_articulation.py``). The stage refuses to train with ``g != 1``: the
  model would learn to undo it. A term that asks for the truth's spread in training instead
  (``spread_weight``, :func:`audio2mouth_loss`) was tried and halved the correlation.
- ``speech_lufs`` (None in the paper, in training and by default): the loudness of the speech the model was
  trained on (the median of its training clips, ``cemnet calibrate --speech-level``); the driving audio is
  then scaled to it before its mel features (:func:`cemnet_core.data.audio.driving_mel`, whose docstring
  has the measurement that keeps it off in the starter). None leaves the audio's level as it is.
- ``paper()``: width 512 and 4 heads (Sec. IV-B); 4 layers and feed-forward 1024 as IP-LAP trains its
  landmark transformer (the paper does not give them); ``N = T = 5`` (Sec. IV-C).

Shape notation::

    B  batch             N  reference landmark sets      T  video frames
    S  mel frames (16)   F  mel bins (80)                K  landmarks (135 ALL, 78 POSE, 57 MOUTH)
    D  token width
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cemnet_core.configs import config_from_dict, config_to_dict
from cemnet_core.contracts import (
    ALL_MOUTH,
    ALL_POSE,
    MEL_BINS,
    MEL_WINDOW,
    MOUTH,
    N_ALL,
    N_MOUTH,
    N_POSE,
)
from cemnet_core.errors import ConfigError
from cemnet_core.models.layers import ConvBlock2d, LandmarkEncoder

BASE_MOTIONS = ("similarity", "translation")  # AudioToMouthConfig.base_motion (module docstring)

# Modality ids of the tokens (index into AudioToMouth.modality).
_REFERENCE, _POSE, _AUDIO = 0, 1, 2


@dataclass(frozen=True)
class AudioToMouthConfig:
    """Sizes of :class:`AudioToMouth`; JSON-safe."""

    dim: int = 512
    heads: int = 4
    layers: int = 4
    feedforward: int = 1024
    dropout: float = 0.1
    num_refs: int = 5
    num_frames: int = 5
    audio_channels: tuple[int, int, int, int] = (32, 64, 128, 256)
    landmark_base_channels: int = 4
    landmark_residual_blocks: int = 2
    velocity_weight: float = 1.0
    spread_weight: float = 0.0  # opening-spread term (audio2mouth_loss); 0 = the paper's loss
    motion_gain: float = 1.0  # scale of the predicted offset from the base mouth (docstring); 1 = the paper
    mouth_from_reference: bool = True
    base_motion: str = "similarity"  # how the reference mouth follows the head: "similarity"/"translation"
    speech_lufs: float | None = None  # loudness the driving audio is scaled to (docstring); None = as given

    def __post_init__(self) -> None:
        if self.base_motion not in BASE_MOTIONS:
            raise ConfigError(
                f"audio_to_mouth: base_motion must be one of {', '.join(BASE_MOTIONS)}, "
                f"got {self.base_motion!r}"
            )
        if not self.motion_gain > 0 or (self.motion_gain != 1.0 and not self.mouth_from_reference):
            raise ConfigError(
                "audio_to_mouth: motion_gain must be > 0, and 1 without mouth_from_reference "
                f"(it scales the offset from the reference mouth), got {self.motion_gain}"
            )
        if self.dim % self.heads != 0:
            raise ConfigError(f"audio_to_mouth: dim ({self.dim}) must be a multiple of heads ({self.heads})")
        if len(self.audio_channels) != 4 or min(self.audio_channels) < 1:
            raise ConfigError(
                "audio_to_mouth: set audio_channels to 4 positive widths, e.g. [32, 64, 128, 256]"
            )
        if min(self.layers, self.feedforward, self.num_refs, self.num_frames) < 1:
            raise ConfigError("audio_to_mouth: layers, feedforward, num_refs and num_frames must be >= 1")
        if not 0.0 <= self.dropout < 1.0 or min(self.velocity_weight, self.spread_weight) < 0:
            raise ConfigError(
                "audio_to_mouth: dropout must be in [0, 1), velocity_weight and spread_weight >= 0"
            )

    @classmethod
    def paper(cls) -> AudioToMouthConfig:
        """The paper's sizes (Sec. IV-B/C) with IP-LAP's depth and feed-forward width."""
        return cls()

    @classmethod
    def tiny(cls) -> AudioToMouthConfig:
        """A few-thousand-parameter model for tests."""
        return cls(
            dim=32, heads=4, layers=1, feedforward=64, dropout=0.0, num_refs=2, num_frames=3,
            audio_channels=(4, 8, 8, 16), landmark_base_channels=2, landmark_residual_blocks=1,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict of the fields (:func:`~cemnet_core.configs.config_to_dict`)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AudioToMouthConfig:
        """Inverse of :meth:`to_dict`, type-checked; ``ConfigError`` naming unknown keys.

        The upgrade hook of :mod:`cemnet_core.configs`: a config written before ``base_motion`` existed is a
        model trained with the translation base, so it loads with that.
        """
        if "base_motion" not in data:
            data = {**data, "base_motion": "translation"}
        return config_from_dict(cls, data)

    #: Fields a fine-tuning run (a stage's ``init_from``) may change: they change what the model computes
    #: from its weights, not which weights it has.
    FINE_TUNABLE = (
        "base_motion", "dropout", "velocity_weight", "spread_weight", "motion_gain", "speech_lufs",
    )  # fmt: skip


class AudioEncoder(nn.Module):
    """Wav2Lip-style residual stack of 13 Conv2d layers: one mel window (16, 80) -> one D vector.

    The window is laid out as a (F=80, S=16) image; strides (3,1), 3 and (3,2) take it to 3x3 and a last
    3x3 convolution to 1x1 (Wav2Lip's audio encoder with its last layer widened to ``dim``).
    """

    def __init__(self, channels: tuple[int, int, int, int], dim: int) -> None:
        super().__init__()
        c1, c2, c3, c4 = channels
        self.blocks = nn.Sequential(
            ConvBlock2d(1, c1),
            ConvBlock2d(c1, c1, residual=True),
            ConvBlock2d(c1, c1, residual=True),
            ConvBlock2d(c1, c2, stride=(3, 1)),  # (27, 16)
            ConvBlock2d(c2, c2, residual=True),
            ConvBlock2d(c2, c2, residual=True),
            ConvBlock2d(c2, c3, stride=3),  # (9, 6)
            ConvBlock2d(c3, c3, residual=True),
            ConvBlock2d(c3, c3, residual=True),
            ConvBlock2d(c3, c4, stride=(3, 2)),  # (3, 3)
            ConvBlock2d(c4, c4, residual=True),
            ConvBlock2d(c4, dim, padding=0),  # (1, 1)
            ConvBlock2d(dim, dim, kernel_size=1, padding=0, final_tanh=True),
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel: (B, S=16, F=80) -> (B, D)."""
        x = mel.transpose(1, 2).unsqueeze(1)  # (B, 1, F, S)
        return self.blocks(x).flatten(1)  # (B, D)


class AudioToMouth(nn.Module):
    """Emotion-agnostic mouth landmarks for ``T`` frames, Eq. (1) of Sec. III-A."""

    def __init__(self, config: AudioToMouthConfig) -> None:
        super().__init__()
        self.config = config
        d = config.dim
        self.audio_encoder = AudioEncoder(config.audio_channels, d)
        self.reference_encoder = LandmarkEncoder(
            N_ALL, d, config.landmark_base_channels, config.landmark_residual_blocks
        )
        self.pose_encoder = LandmarkEncoder(
            N_POSE, d, config.landmark_base_channels, config.landmark_residual_blocks
        )
        self.audio_norm = nn.LayerNorm(d)
        self.reference_norm = nn.LayerNorm(d)
        self.pose_norm = nn.LayerNorm(d)
        self.frame_position = nn.Parameter(torch.randn(config.num_frames, d) * 0.02)  # (T, D)
        self.modality = nn.Parameter(torch.randn(3, d) * 0.02)  # reference, pose, audio
        layer = nn.TransformerEncoderLayer(
            d, config.heads, config.feedforward, config.dropout, batch_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.to_mouth = nn.Linear(d, N_MOUTH * 2)
        if config.mouth_from_reference:  # start as "copy the reference mouth"; still lets gradients through
            with torch.no_grad():
                self.to_mouth.weight.mul_(0.01)
                self.to_mouth.bias.zero_()

    def forward(self, ref_landmarks: torch.Tensor, mel: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        """Predict mouth landmarks.

        Args:
            ref_landmarks: (B, N, 135, 2) ``ALL`` landmarks of the N reference images, crop-normalised.
            mel: (B, T, 16, 80) mel window of each frame.
            pose: (B, T, 78, 2) ``POSE`` landmarks of each frame.

        Returns:
            mouth: (B, T, 57, 2) ``MOUTH`` landmarks (LIPS then JAW), crop-normalised.
        """
        _check_inputs(ref_landmarks, mel, pose, self.config.num_frames)
        B, N = ref_landmarks.shape[:2]
        T = mel.shape[1]

        reference = self.reference_norm(self.reference_encoder(ref_landmarks.flatten(0, 1)))  # (B*N, D)
        pose_feat = self.pose_norm(self.pose_encoder(pose.flatten(0, 1)))  # (B*T, D)
        audio = self.audio_norm(self.audio_encoder(mel.flatten(0, 1)))  # (B*T, D)

        position = self.frame_position[:T]  # (T, D)
        reference_tokens = reference.view(B, N, -1) + self.modality[_REFERENCE]  # (B, N, D)
        pose_tokens = pose_feat.view(B, T, -1) + position + self.modality[_POSE]  # (B, T, D)
        audio_tokens = audio.view(B, T, -1) + position + self.modality[_AUDIO]  # (B, T, D)
        tokens = torch.cat([reference_tokens, pose_tokens, audio_tokens], dim=1)  # (B, N+2T, D)

        z = self.transformer(tokens)  # (B, N+2T, D)
        mouth = self.to_mouth(z[:, N + T :]).view(B, T, N_MOUTH, 2)  # m_t = Linear(z_{N+T+t}), Eq. (1)
        if self.config.mouth_from_reference:  # m_t = base_t + g * Linear(...), g = motion_gain (docstring)
            base = reference_mouth_base(ref_landmarks, pose, self.config.base_motion)
            mouth = base + self.config.motion_gain * mouth
        return mouth  # (B, T, 57, 2)

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Eq. (4), lambda = ``config.velocity_weight``, + the spread term: :func:`audio2mouth_loss`."""
        return audio2mouth_loss(pred, target, self.config.velocity_weight, self.config.spread_weight)

    def example_inputs(self, batch_size: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Random inputs of the configured sizes (profiling, smoke tests)."""
        c = self.config
        return (
            torch.rand(batch_size, c.num_refs, N_ALL, 2),
            torch.rand(batch_size, c.num_frames, MEL_WINDOW, MEL_BINS) * 8 - 4,
            torch.rand(batch_size, c.num_frames, N_POSE, 2),
        )

    @property
    def frames_per_example(self) -> float:
        """Video frames generated by one call on :meth:`example_inputs` (batch 1)."""
        return float(self.config.num_frames)


def reference_mouth_base(
    ref_landmarks: torch.Tensor, pose: torch.Tensor, motion: str = "similarity"
) -> torch.Tensor:
    """The references' mouth moved with the head: ref_landmarks (B, N, 135, 2), pose (B, T, 78, 2) ->
    (B, T, 57, 2) (``base_motion`` in the module docstring).

    ``"similarity"``: reference i's mouth mapped by the least-squares similarity ``z -> a z + b`` (complex
    ``a``: rotation and scale) from its POSE points to frame t's, then the mean over i. ``"translation"``:
    the references' mean mouth shifted by frame t's POSE centroid minus the references' mean centroid.
    """
    if motion == "translation":
        ref_mouth = ref_landmarks[:, :, ALL_MOUTH].mean(dim=1)  # (B, 57, 2)
        ref_centre = ref_landmarks[:, :, ALL_POSE].mean(dim=(1, 2))  # (B, 2)
        shift = pose.mean(dim=2) - ref_centre[:, None]  # (B, T, 2)
        return ref_mouth[:, None] + shift[:, :, None]  # (B, T, 57, 2)
    if motion != "similarity":
        raise ValueError(f"motion must be one of {', '.join(BASE_MOTIONS)}, got {motion!r}")
    ref_pose = ref_landmarks[:, :, ALL_POSE]  # (B, N, 78, 2)
    ref_centre = ref_pose.mean(dim=2, keepdim=True)  # (B, N, 1, 2)
    frame_centre = pose.mean(dim=2, keepdim=True)  # (B, T, 1, 2)
    src = torch.view_as_complex((ref_pose - ref_centre).contiguous())[:, :, None]  # (B, N, 1, 78)
    dst = torch.view_as_complex((pose - frame_centre).contiguous())[:, None]  # (B, 1, T, 78)
    # a = sum conj(s) d / sum |s|^2 minimises sum |a s - d|^2 (no reflection); a set of coincident points
    # (no face) gets a = 1, i.e. a shift only.
    energy = src.abs().square().sum(-1)  # (B, N, 1)
    a = (src.conj() * dst).sum(-1) / energy.clamp_min(1e-12)  # (B, N, T)
    a = torch.where(energy > 1e-12, a, torch.ones_like(a))
    mouth = torch.view_as_complex((ref_landmarks[:, :, ALL_MOUTH] - ref_centre).contiguous())  # (B, N, 57)
    moved = a[..., None] * mouth[:, :, None] + torch.view_as_complex(frame_centre.contiguous())[:, None]
    return torch.view_as_real(moved).mean(dim=1)  # (B, T, 57, 2)


# Positions in MOUTH of the inner upper / lower lip midpoints (13, 14) and the mouth corners (61, 291).
_OPENING = tuple(MOUTH.index(point) for point in (13, 14, 61, 291))


def mouth_opening(mouth: torch.Tensor) -> torch.Tensor:
    """``(..., 57, 2)`` MOUTH landmarks -> ``(...)`` inner-lip gap over mouth width (scale-free).

    The torch twin of :func:`cemnet_core.data.landmarks.mouth_opening` (same points), differentiable.
    """
    upper, lower, left, right = (mouth[..., i, :] for i in _OPENING)
    return (lower - upper).norm(dim=-1) / (right - left).norm(dim=-1).clamp_min(1e-6)


def audio2mouth_loss(
    pred: torch.Tensor, target: torch.Tensor, lam: float = 1.0, spread: float = 0.0
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Audio2Mouth loss, Eqs. (2)-(4): ``L1 + lam * L_velocity`` (+ ``spread * L_spread``, not in the paper).

    ``L1`` (Eq. 2) is the mean absolute landmark error; ``L_velocity`` (Eq. 3) the mean absolute difference
    between predicted and true frame-to-frame motion ``m_{t+1} - m_t``, averaged over the ``T-1`` steps
    (zero when ``T == 1``). Both are means over points and coordinates so that ``lam`` is scale-free.

    ``L_spread`` (a deviation from the paper, off at ``spread = 0``): the absolute difference between the
    standard deviations, over the batch's B x T frames, of the predicted and the true mouth opening
    (:func:`mouth_opening`). Where the audio leaves the mouth uncertain, an L1 regressor predicts the
    median, a mouth that opens far less than people do (on held-out real speakers 0.10-0.13 p95-p5 against
    0.27: ``benchmarks/a2m_articulation.py``); matching the spread of the openings asks for the truth's
    range of motion while L1 keeps each frame near its own target. Measured (2026-12-04, 1000 one-photo
    fine-tuning steps from the starter at weight 1 against the same run at 0): the one-photo opening rose
    (val 0.158 -> 0.215, test 0.142 -> 0.172) but the correlation with the true opening fell from 0.45 to
    0.26 (val) and from 0.23 to 0.10 (test): much of the truth's spread is what the audio does not tell
    (and tracking jitter), so the model learnt motion that does not follow the speech. The starter does not
    use it; ``motion_gain`` (module docstring) widens the motion without that cost.

    Args:
        pred: (B, T, K, 2) predicted landmarks.
        target: (B, T, K, 2) ground truth.
        lam: weight of the velocity term (the paper's lambda, 1).
        spread: weight of the opening-spread term (needs the 57 MOUTH points; ignored at 0).

    Returns:
        total and ``{"l1": ..., "velocity": ..., "spread": ...}`` (scalars).
    """
    if pred.shape != target.shape or pred.ndim != 4 or pred.shape[-1] != 2:
        raise ValueError(
            f"pred and target must both be (B, T, K, 2), got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    l1 = F.l1_loss(pred, target)
    if pred.shape[1] > 1:
        velocity = F.l1_loss(pred[:, 1:] - pred[:, :-1], target[:, 1:] - target[:, :-1])
    else:
        velocity = pred.new_zeros(())
    total = l1 + lam * velocity
    terms = {"l1": l1, "velocity": velocity}
    if spread > 0:
        if pred.shape[-2] != N_MOUTH:
            raise ValueError(f"the spread term needs the {N_MOUTH} MOUTH points, got {pred.shape[-2]}")
        if pred.shape[0] * pred.shape[1] > 1:
            gap = (mouth_opening(pred).std() - mouth_opening(target).std()).abs()
        else:
            gap = pred.new_zeros(())
        total = total + spread * gap
        terms["spread"] = gap
    return total, terms


def _check_inputs(
    ref_landmarks: torch.Tensor, mel: torch.Tensor, pose: torch.Tensor, max_frames: int
) -> None:
    if ref_landmarks.ndim != 4 or ref_landmarks.shape[2:] != (N_ALL, 2) or ref_landmarks.shape[1] < 1:
        raise ValueError(f"ref_landmarks must be (B, N, {N_ALL}, 2), got {tuple(ref_landmarks.shape)}")
    if mel.ndim != 4 or mel.shape[2:] != (MEL_WINDOW, MEL_BINS):
        raise ValueError(f"mel must be (B, T, {MEL_WINDOW}, {MEL_BINS}), got {tuple(mel.shape)}")
    if pose.ndim != 4 or pose.shape[2:] != (N_POSE, 2):
        raise ValueError(f"pose must be (B, T, {N_POSE}, 2), got {tuple(pose.shape)}")
    B, T = mel.shape[:2]
    if ref_landmarks.shape[0] != B or pose.shape[:2] != (B, T):
        raise ValueError(
            f"batch/frame sizes disagree: ref_landmarks {tuple(ref_landmarks.shape)}, "
            f"mel {tuple(mel.shape)}, pose {tuple(pose.shape)}; expected (B,N,..), (B,T,..), (B,T,..)"
        )
    if not 1 <= T <= max_frames:
        raise ValueError(f"mel/pose must have 1 <= T <= {max_frames} frames (config num_frames), got {T}")
