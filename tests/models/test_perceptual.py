"""VGG19 perceptual network (Eq. 17 term L_per): layers, loss, frozen weights, safetensors loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from cemnet_core.errors import WeightsError
from cemnet_core.models.perceptual import VGG19Features, perceptual_loss


@pytest.fixture(scope="module")
def vgg() -> VGG19Features:
    torch.manual_seed(0)
    return VGG19Features()


def test_five_relu_activations_with_vgg19_shapes(vgg: VGG19Features) -> None:
    features = vgg(torch.rand(2, 3, 32, 32))
    assert [tuple(f.shape) for f in features] == [
        (2, 64, 32, 32),
        (2, 128, 16, 16),
        (2, 256, 8, 8),
        (2, 512, 4, 4),
        (2, 512, 2, 2),
    ]
    assert all((f >= 0).all() and torch.isfinite(f).all() for f in features)


def test_torchvision_layout_has_sixteen_conv_weights_up_to_relu5_1(vgg: VGG19Features) -> None:
    keys = list(vgg.state_dict())
    assert keys[0] == "features.0.weight" and keys[-1] == "features.28.bias"
    assert len(keys) == 26  # 13 convolutions up to conv5_1


def test_loss_is_zero_on_identical_images_and_frozen(vgg: VGG19Features) -> None:
    images = torch.rand(2, 3, 32, 32)
    assert perceptual_loss(vgg, images, images.clone()).item() == 0.0
    assert all(not p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training


def test_gradients_reach_the_prediction_only(vgg: VGG19Features) -> None:
    prediction = torch.rand(2, 3, 32, 32, requires_grad=True)
    target = torch.rand(2, 3, 32, 32, requires_grad=True)
    loss = perceptual_loss(vgg, prediction, target)
    loss.backward()
    assert loss.item() > 0
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0
    assert target.grad is None


def test_imagenet_normalisation_is_applied(vgg: VGG19Features) -> None:
    grey = torch.full((1, 3, 16, 16), 0.5)
    first_conv = vgg.features[0]
    normalised = (grey - vgg.mean) / vgg.std
    expected = torch.relu(first_conv(normalised))
    torch.testing.assert_close(vgg(grey)[0], expected)


def test_loads_torchvision_and_timm_style_files(vgg: VGG19Features, tmp_path: Path) -> None:
    state = {key: value.clone() for key, value in vgg.state_dict().items()}
    torchvision_file = tmp_path / "tv.safetensors"
    save_file(
        {**state, "classifier.0.weight": torch.zeros(4, 4), "features.30.weight": torch.zeros(1)},
        torchvision_file,
    )
    timm_file = tmp_path / "timm.safetensors"
    save_file({**{f"model.{k}": v for k, v in state.items()}, "head.fc.weight": torch.zeros(2, 2)}, timm_file)
    images = torch.rand(1, 3, 16, 16)
    for path in (torchvision_file, timm_file):
        loaded = VGG19Features.from_file(path)
        for expected, got in zip(vgg(images), loaded(images), strict=True):
            assert torch.equal(expected, got)


def test_bad_files_raise_weights_error(vgg: VGG19Features, tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        VGG19Features.from_file(tmp_path / "missing.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="not a readable"):
        VGG19Features.from_file(garbage)
    partial = tmp_path / "vgg16.safetensors"
    save_file({"features.0.weight": torch.zeros(64, 3, 3, 3)}, partial)
    with pytest.raises(WeightsError, match="lacks"):
        VGG19Features.from_file(partial)
    wrong = tmp_path / "wrong.safetensors"
    state = dict(vgg.state_dict())
    state["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    save_file(state, wrong)
    with pytest.raises(WeightsError, match="shape"):
        VGG19Features.from_file(wrong)
