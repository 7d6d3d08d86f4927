"""Image tensors <-> uint8 pictures: the one conversion between the two forms every part uses.

Networks see ``(n, 3, H, W)`` float images in ``[0, 1]`` (the renderer, the emotion networks, the judges);
files, contact sheets and videos hold ``(n, H, W, 3)`` uint8 RGB.
"""

from __future__ import annotations

import numpy as np
import torch


def to_images(frames: np.ndarray) -> torch.Tensor:
    """(n, H, W, 3) uint8 -> (n, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(n, 3, H, W) float in [0, 1] -> (n, H, W, 3) uint8 (clamped, rounded), on the CPU."""
    return (images.float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
