"""Multi-scale patch discriminator and the GAN / feature-matching losses (Sec. III-D, Eq. 17)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from cemnet_core.errors import ConfigError
from cemnet_core.models import build_model
from cemnet_core.models.discriminator import (
    PatchDiscriminator,
    PatchDiscriminatorConfig,
    discriminator_loss,
    feature_matching_loss,
    gan_loss,
)


@pytest.fixture
def model() -> PatchDiscriminator:
    return PatchDiscriminator(PatchDiscriminatorConfig.tiny())


def test_outputs_per_scale_and_block(model: PatchDiscriminator) -> None:
    outputs = model(torch.rand(2, 3, 32, 32))
    config = model.config
    assert len(outputs) == config.num_scales
    for scale in outputs:
        assert len(scale) == config.num_layers + 2
        assert scale[-1].shape[:2] == (2, 1)
        assert all(torch.isfinite(feature).all() for feature in scale)
    assert outputs[1][0].shape[-1] < outputs[0][0].shape[-1]  # the second scale sees a downsampled image


def test_wrong_channels_raise_value_error(model: PatchDiscriminator) -> None:
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(2, 4, 32, 32))


def test_gradients_reach_every_parameter(model: PatchDiscriminator) -> None:
    real = model(torch.rand(2, 3, 32, 32))
    fake = model(torch.rand(2, 3, 32, 32))
    discriminator_loss(real, fake).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_lsgan_and_hinge_values_on_known_logits() -> None:
    logits = [[torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5)]]
    assert gan_loss(logits, True, "lsgan").item() == pytest.approx(0.25)
    assert gan_loss(logits, False, "lsgan").item() == pytest.approx(0.25)
    assert gan_loss(logits, True, "hinge").item() == pytest.approx(0.5)
    assert gan_loss(logits, False, "hinge").item() == pytest.approx(1.5)
    assert gan_loss(logits, True, "hinge", for_discriminator=False).item() == pytest.approx(-0.5)
    with pytest.raises(ConfigError, match="lsgan"):
        gan_loss(logits, True, "wgan")  # type: ignore[arg-type]


def test_feature_matching_zero_on_identical_features_ignoring_logits(model: PatchDiscriminator) -> None:
    images = torch.rand(2, 3, 32, 32)
    outputs = model(images)
    assert feature_matching_loss(outputs, outputs).item() == 0.0
    changed_logits = [[*scale[:-1], scale[-1] + 1.0] for scale in outputs]
    assert feature_matching_loss(changed_logits, outputs).item() == 0.0
    assert feature_matching_loss(model(images + 0.5), outputs).item() > 0.0


def test_training_steps_separate_real_from_fake(model: PatchDiscriminator) -> None:
    real_images = torch.rand(4, 3, 32, 32) * 0.2 + 0.8
    fake_images = torch.rand(4, 3, 32, 32) * 0.2
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(10):
        loss = discriminator_loss(model(real_images), model(fake_images))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_safetensors_round_trip_gives_identical_outputs(model: PatchDiscriminator, tmp_path: Path) -> None:
    images = torch.rand(2, 3, 32, 32)
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    restored = build_model("patch_discriminator", json.loads(json.dumps(model.config.to_dict())))
    restored.load_state_dict(load_file(tmp_path / "model.safetensors"))
    with torch.no_grad():
        for before, after in zip(model(images), restored(images), strict=True):
            assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_config_json_round_trip() -> None:
    for config in (PatchDiscriminatorConfig.paper(), PatchDiscriminatorConfig.tiny()):
        assert PatchDiscriminatorConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ConfigError, match="unknown"):
        PatchDiscriminatorConfig.from_dict({"ndf": 64})
