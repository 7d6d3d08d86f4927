"""data/images: uint8 pictures <-> float image tensors."""

from __future__ import annotations

import numpy as np
import torch

from cemnet_core.data.images import to_images, to_uint8


def test_round_trip_is_exact_and_out_of_range_values_are_clamped() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    images = to_images(frames)
    assert images.shape == (2, 3, 5, 7) and images.dtype == torch.float32
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    np.testing.assert_array_equal(to_uint8(images), frames)
    clamped = to_uint8(torch.tensor([-0.5, 0.5, 1.5]).view(1, 3, 1, 1))
    np.testing.assert_array_equal(clamped.reshape(-1), [0, 128, 255])
