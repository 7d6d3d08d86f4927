"""SyncNet v2, syncnet_python's ``S``: the lip-sync network behind the LipSync metric of Sec. IV-D.

This file reproduces, layer for layer, the network ``S`` of ``joonson/syncnet_python/SyncNetModel.py``
(same module names and indices, so ``syncnet_v2.model`` maps key for key) and the conversion of face crops
into its lip stream's input. Around it:

- the MFCC audio front end: :mod:`cemnet_core.data.mfcc`;
- the LSE-C / LSE-D scoring of ``SyncNetInstance.evaluate``: :mod:`cemnet_core.eval.lipsync`;
- syncnet_python's checkpoint read safely and mapped onto this network:
  :mod:`cemnet_core.models.syncnet_convert`; its release folders written and loaded:
  :mod:`cemnet_core.pretrained`.

The two streams:

1. lip stream: 5 consecutive 224x224 face crops, BGR (cv2 order), float 0..255 unnormalised -> 1024-d;
2. audio stream: MFCC (13 coefficients, 100 frames/s) windows of 20 frames (0.2 s) -> 1024-d;
   window ``t`` covers video frames t..t+4 and MFCC frames 4t..4t+19.

Shapes::

    lips    (B, 3, 5, 224, 224)  BGR 0..255        mfcc  (B, 1, 13, 20)
    embeddings (B, D), D = config.embedding_dim (1024 for v2)

A lip-sync expert trained here (stage ``syncnet``) may read other lip inputs: ``SyncNetConfig.lip_size``
(H, W) sets the frame size (the last lip convolution's kernel becomes the size of the map it sees, 6x6 at
224x224, so the paper configuration keeps syncnet_python's layers exactly) and ``grayscale`` one luma
channel; :func:`cemnet_core.eval.lipsync.evaluate_sync` prepares the frames for whatever the model's config
says. The expert of ``cemnet train syncnet`` reads the 64x128 mouth crops at their own size: upsampling them
to 224x224, as syncnet_python does with its face crops, adds no information and costs about 8x the lip
stream's time (16 windows forward + backward, ``small`` widths, 1 CPU thread: 0.095 s at 224x224, 0.012 s at
64x128).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cemnet_core.configs import config_from_dict, config_to_dict
from cemnet_core.contracts import LIP_FRAMES, MFCC_COEFFICIENTS, MFCC_WINDOW
from cemnet_core.errors import ConfigError

LIP_SIZE = 224  # syncnet_python's face crops


@dataclass(frozen=True)
class SyncNetConfig:
    """Widths of SyncNet v2; ``paper()`` is syncnet_python's ``S`` (the only one pretrained weights fit)."""

    audio_channels: tuple[int, ...] = (64, 192, 384, 256, 256, 512)
    lip_channels: tuple[int, ...] = (96, 256, 256, 256, 256, 512)
    fc_channels: int = 512
    embedding_dim: int = 1024
    # What the lip stream was trained on: "face" = whole face crops (syncnet_python's weights), "mouth" = the
    # lower half of the 128x128 face crops (the lip-sync expert of `cemnet train syncnet`).
    input_region: str = "face"
    # The lip stream's input (H, W), frames are resized to it; syncnet_python: 224x224. The expert of
    # `cemnet train syncnet` reads the 64x128 mouth crops as they are (12x fewer pixels than 224x224).
    lip_size: tuple[int, int] = (LIP_SIZE, LIP_SIZE)
    grayscale: bool = False  # one luma channel instead of BGR (syncnet_python: BGR)

    def __post_init__(self) -> None:
        if len(self.audio_channels) != 6 or len(self.lip_channels) != 6:
            raise ConfigError("SyncNetConfig needs 6 audio and 6 lip channel widths (the v2 layout).")
        if len(self.lip_size) != 2 or min(lip_feature_size(self.lip_size)) < 1:
            raise ConfigError(
                f"SyncNetConfig.lip_size {tuple(self.lip_size)} is too small for the lip stream; "
                "use at least (64, 64) (height, width)"
            )
        if self.input_region not in ("face", "mouth"):
            raise ConfigError(
                f"SyncNetConfig.input_region must be 'face' or 'mouth', got {self.input_region!r}"
            )

    @classmethod
    def paper(cls) -> SyncNetConfig:
        """syncnet_python's ``S(num_layers_in_fc_layers=1024)``."""
        return cls()

    @classmethod
    def tiny(cls) -> SyncNetConfig:
        """Same layout, few channels: for CPU tests (inputs keep their real sizes)."""
        return cls(
            audio_channels=(4, 8, 8, 8, 8, 16),
            lip_channels=(4, 8, 8, 8, 8, 16),
            fc_channels=16,
            embedding_dim=8,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict of the fields (:func:`~cemnet_core.configs.config_to_dict`)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SyncNetConfig:
        """Inverse of :meth:`to_dict`, type-checked; ``ConfigError`` naming unknown keys."""
        return config_from_dict(cls, data)


def lip_feature_size(lip_size: tuple[int, int]) -> tuple[int, int]:
    """(H, W) of the lip stream's input -> (h, w) of its last pooled map (224 -> 6), the last conv's kernel.

    Follows ``netcnnlip``'s convolutions and poolings: k7 s2, pool k3 s2, k5 s2 p1, pool k3 s2 p1,
    three 'same' k3 convs, pool k3 s2.
    """

    def size(s: int) -> int:
        s = (s - 7) // 2 + 1  # conv 7x7 stride 2
        s = (s - 3) // 2 + 1  # max pool 3x3 stride 2
        s = (s + 2 - 5) // 2 + 1  # conv 5x5 stride 2 pad 1
        s = (s + 2 - 3) // 2 + 1  # max pool 3x3 stride 2 pad 1
        return (s - 3) // 2 + 1  # max pool 3x3 stride 2

    height, width = lip_size
    return size(int(height)), size(int(width))


class SyncNet(nn.Module):
    """syncnet_python's ``S``: ``forward_aud`` (MFCC window -> embedding), ``forward_lip`` (5 frames ->
    embedding).

    Attribute names and ``nn.Sequential`` indices are the original ones, so its state dict keys are
    ``netcnnaud.0.weight`` ... exactly as in ``syncnet_v2.model``.
    """

    def __init__(self, config: SyncNetConfig) -> None:
        super().__init__()
        self.config = config
        a1, a2, a3, a4, a5, a6 = config.audio_channels
        v1, v2, v3, v4, v5, v6 = config.lip_channels
        self.netcnnaud = nn.Sequential(
            nn.Conv2d(1, a1, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)),
            nn.BatchNorm2d(a1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=(1, 1), stride=(1, 1)),
            nn.Conv2d(a1, a2, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)),
            nn.BatchNorm2d(a2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=(3, 3), stride=(1, 2)),
            nn.Conv2d(a2, a3, kernel_size=(3, 3), padding=(1, 1)),
            nn.BatchNorm2d(a3),
            nn.ReLU(),
            nn.Conv2d(a3, a4, kernel_size=(3, 3), padding=(1, 1)),
            nn.BatchNorm2d(a4),
            nn.ReLU(),
            nn.Conv2d(a4, a5, kernel_size=(3, 3), padding=(1, 1)),
            nn.BatchNorm2d(a5),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=(3, 3), stride=(2, 2)),
            nn.Conv2d(a5, a6, kernel_size=(5, 4), padding=(0, 0)),
            nn.BatchNorm2d(a6),
            nn.ReLU(),
        )
        self.netfcaud = nn.Sequential(
            nn.Linear(a6, config.fc_channels),
            nn.BatchNorm1d(config.fc_channels),
            nn.ReLU(),
            nn.Linear(config.fc_channels, config.embedding_dim),
        )
        self.netfclip = nn.Sequential(
            nn.Linear(v6, config.fc_channels),
            nn.BatchNorm1d(config.fc_channels),
            nn.ReLU(),
            nn.Linear(config.fc_channels, config.embedding_dim),
        )
        in_channels = 1 if config.grayscale else 3
        last_kernel = lip_feature_size(config.lip_size)  # (6, 6) for 224x224 input
        self.netcnnlip = nn.Sequential(
            nn.Conv3d(in_channels, v1, kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=0),
            nn.BatchNorm3d(v1),
            nn.ReLU(),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
            nn.Conv3d(v1, v2, kernel_size=(1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)),
            nn.BatchNorm3d(v2),
            nn.ReLU(),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            nn.Conv3d(v2, v3, kernel_size=(1, 3, 3), padding=(0, 1, 1)),
            nn.BatchNorm3d(v3),
            nn.ReLU(),
            nn.Conv3d(v3, v4, kernel_size=(1, 3, 3), padding=(0, 1, 1)),
            nn.BatchNorm3d(v4),
            nn.ReLU(),
            nn.Conv3d(v4, v5, kernel_size=(1, 3, 3), padding=(0, 1, 1)),
            nn.BatchNorm3d(v5),
            nn.ReLU(),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
            nn.Conv3d(v5, v6, kernel_size=(1, *last_kernel), padding=0),
            nn.BatchNorm3d(v6),
            nn.ReLU(),
        )

    def forward_aud(self, mfcc_windows: torch.Tensor) -> torch.Tensor:
        """mfcc_windows: (B, 1, 13, 20) -> audio embeddings (B, D)."""
        if mfcc_windows.dim() != 4 or mfcc_windows.shape[1:] != (1, MFCC_COEFFICIENTS, MFCC_WINDOW):
            raise ValueError(f"mfcc windows must be (B, 1, 13, 20), got {tuple(mfcc_windows.shape)}")
        hidden = self.netcnnaud(mfcc_windows)  # (B, a6, 1, 1)
        return self.netfcaud(hidden.flatten(1))  # (B, D)

    def forward_lip(self, lips: torch.Tensor) -> torch.Tensor:
        """lips: (B, C, 5, H, W) BGR (C = 3) or luma (C = 1, ``grayscale``) 0..255, (H, W) = ``lip_size``
        (224x224 for syncnet_python's weights) -> video embeddings (B, D)."""
        expected = (1 if self.config.grayscale else 3, LIP_FRAMES, *self.config.lip_size)
        if lips.dim() != 5 or tuple(lips.shape[1:]) != expected:
            raise ValueError(f"lips must be (B, {', '.join(map(str, expected))}), got {tuple(lips.shape)}")
        hidden = self.netcnnlip(lips)  # (B, v6, 1, 1, 1)
        return self.netfclip(hidden.flatten(1))  # (B, D)

    def forward(self, lips: torch.Tensor, mfcc_windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, 5, 224, 224), (B, 1, 13, 20) -> (video embeddings (B, D), audio embeddings (B, D))."""
        return self.forward_lip(lips), self.forward_aud(mfcc_windows)


def prepare_lip_frames(
    frames: torch.Tensor, size: tuple[int, int] = (LIP_SIZE, LIP_SIZE), grayscale: bool = False
) -> torch.Tensor:
    """RGB uint8 face crops (T, H, W, 3) -> the lip stream's input (C, T, size) float 0..255.

    Default: syncnet_python's (3, T, 224, 224) BGR. ``size`` resizes bilinearly (nothing when the frames
    already have it); ``grayscale`` gives one luma channel (ITU-R BT.601 weights, as cv2's BGR2GRAY).
    """
    if frames.dim() != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) RGB, got {tuple(frames.shape)}")
    images = frames.permute(0, 3, 1, 2).float()  # (T, 3, H, W)
    if tuple(images.shape[-2:]) != tuple(size):
        images = F.interpolate(images, size=tuple(size), mode="bilinear", align_corners=False)
    images = images.clamp(0.0, 255.0)
    if grayscale:
        luma = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype)
        images = (images * luma[:, None, None]).sum(dim=1, keepdim=True)  # (T, 1, h, w)
    else:
        images = images.flip(1)  # RGB -> BGR as cv2.imread gives
    return images.permute(1, 0, 2, 3).contiguous()  # (C, T, h, w)
