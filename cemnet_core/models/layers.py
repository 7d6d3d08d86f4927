"""Blocks shared by two or more CEM-Net models.

- :class:`ConvBlock2d` / :class:`ConvBlock1d`: convolution + batch norm + activation, optionally residual
  (the Wav2Lip / IP-LAP building block). Used by Audio2Mouth (Sec. III-A, audio encoder) and the Audio
  Emotion Enhancement encoders (Sec. III-B); the 1-D one by every landmark encoder.
- :class:`LandmarkEncoder`: a Conv1d stack over the ``K`` points of one landmark set -> one ``D`` vector.
  Audio2Mouth uses it for the reference (``K=135``) and pose (``K=78``) encoders, the Emotion Bridging
  Memory (Sec. III-C) for its lip displacement and mouth motion encoders (``K=57``).

Shape notation::

    B  batch        K  landmarks      D  feature width
    C  channels     L  length of a 1-D signal (points along the landmark set)
"""

from __future__ import annotations

import torch
from torch import nn


class _ConvBlock(nn.Module):
    """``conv -> batch norm -> activation``, with the input added before the activation if residual.

    The one body of :class:`ConvBlock2d` and :class:`ConvBlock1d`, which only choose the layers.
    """

    def __init__(
        self,
        conv: nn.Conv1d | nn.Conv2d,
        norm: nn.BatchNorm1d | nn.BatchNorm2d,
        residual: bool,
        final_tanh: bool,
    ) -> None:
        super().__init__()
        if residual and (conv.in_channels != conv.out_channels or any(step != 1 for step in conv.stride)):
            raise ValueError(
                f"a residual {type(self).__name__} needs in_channels == out_channels and stride 1"
            )
        self.conv = conv
        self.norm = norm
        self.activation = nn.Tanh() if final_tanh else nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, H, W) -> (B, C_out, H', W') for the 2-D block, (B, C_in, L) -> (B, C_out, L') 1-D."""
        out = self.norm(self.conv(x))
        if self.residual:
            out = out + x
        return self.activation(out)


class ConvBlock2d(_ConvBlock):
    """``Conv2d -> BatchNorm2d -> activation``, with the input added before the activation if residual."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int | tuple[int, int] = 1,
        padding: int = 1,
        residual: bool = False,
        final_tanh: bool = False,
    ) -> None:
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)
        super().__init__(conv, nn.BatchNorm2d(out_channels), residual, final_tanh)


class ConvBlock1d(_ConvBlock):
    """``Conv1d -> BatchNorm1d -> activation``, with the input added before the activation if residual."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        residual: bool = False,
        final_tanh: bool = False,
    ) -> None:
        conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride, padding)
        super().__init__(conv, nn.BatchNorm1d(out_channels), residual, final_tanh)


class LandmarkEncoder(nn.Module):
    """One landmark set ``(K, 2)`` -> one ``D`` vector, IP-LAP style (Conv1d over the point axis).

    The ``(x, y)`` coordinates are the two input channels and the ``K`` points the length. A first block
    lifts 2 -> ``base_channels``; then each stage halves the length with a stride-2 block (doubling the
    channels, capped at ``dim``) followed by ``residual_blocks`` residual blocks, until at most 3 points
    remain; a last convolution as wide as the remaining length reduces it to 1 and a 1x1 block with tanh
    gives the embedding (IP-LAP ends its landmark encoders the same way).
    """

    def __init__(self, num_points: int, dim: int, base_channels: int = 4, residual_blocks: int = 2) -> None:
        super().__init__()
        if num_points < 1 or dim < 1 or base_channels < 1:
            raise ValueError("LandmarkEncoder needs num_points >= 1, dim >= 1 and base_channels >= 1")
        self.num_points = num_points
        blocks: list[nn.Module] = [ConvBlock1d(2, base_channels)]
        channels, length = base_channels, num_points
        while length > 3:
            wider = min(channels * 2, dim)
            blocks.append(ConvBlock1d(channels, wider, stride=2))
            blocks.extend(ConvBlock1d(wider, wider, residual=True) for _ in range(residual_blocks))
            channels, length = wider, (length + 1) // 2
        blocks.append(ConvBlock1d(channels, dim, kernel_size=length, padding=0))
        blocks.append(ConvBlock1d(dim, dim, kernel_size=1, padding=0, final_tanh=True))
        self.blocks = nn.Sequential(*blocks)

    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        """landmarks: (B, K, 2) -> (B, D)."""
        if landmarks.ndim != 3 or landmarks.shape[1:] != (self.num_points, 2):
            raise ValueError(f"landmarks must be (B, {self.num_points}, 2), got {tuple(landmarks.shape)}")
        x = landmarks.transpose(1, 2)  # (B, 2, K)
        return self.blocks(x).squeeze(-1)  # (B, D)
