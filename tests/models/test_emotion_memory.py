"""Emotion Bridging Memory (Sec. III-C): memories, Eqs. (8)-(13), key-only retrieval and the ablation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from cemnet_core.errors import ConfigError
from cemnet_core.models.emotion_memory import EmotionBridgingMemory, EmotionBridgingMemoryConfig

B, T = 2, 5


@pytest.fixture
def model() -> EmotionBridgingMemory:
    return EmotionBridgingMemory(EmotionBridgingMemoryConfig.tiny())


def _inputs(model: EmotionBridgingMemory) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    inputs = model.example_inputs(B)
    target_mouth = inputs[3] + 0.02 * torch.randn(B, T, 57, 2)
    return inputs, target_mouth


def test_training_output_shapes_and_finite(model: EmotionBridgingMemory) -> None:
    inputs, target_mouth = _inputs(model)
    out = model(*inputs, target_mouth=target_mouth)
    M = model.config.memory_slots
    assert out.mouth.shape == out.mouth_value.shape == (B, T, 57, 2)
    assert out.attention.shape == out.value_attention.shape == (B, T, M)
    assert out.loss_rec.shape == out.loss_align.shape == ()
    for tensor in out:
        assert torch.isfinite(tensor).all()
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(B, T))
    assert out.loss_align.item() >= 0


def test_gradients_reach_every_parameter(model: EmotionBridgingMemory) -> None:
    inputs, target_mouth = _inputs(model)
    total, parts = model.loss(model(*inputs, target_mouth=target_mouth), target_mouth)
    assert set(parts) == {"mouth", "mouth_value", "rec", "align"}
    total.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_inference_reads_the_key_memory_only(model: EmotionBridgingMemory) -> None:
    inputs, target_mouth = _inputs(model)
    model.eval()
    with torch.no_grad():
        inferred = model(*inputs)
        trained = model(*inputs, target_mouth=target_mouth)
        assert inferred.loss_rec is None and inferred.loss_align is None and inferred.mouth_value is None
        torch.testing.assert_close(inferred.mouth, trained.mouth)  # inference = the training key path
        for p in model.displacement_encoder.parameters():  # the value-path encoder plays no part
            p.add_(torch.randn_like(p))
        assert torch.equal(model(*inputs).mouth, inferred.mouth)
        model.key_memory.add_(torch.randn_like(model.key_memory))
        assert not torch.allclose(model(*inputs).mouth, inferred.mouth)


def test_key_attention_is_softmax_of_cosine_over_temperature(model: EmotionBridgingMemory) -> None:
    inputs, _ = _inputs(model)
    model.eval()
    with torch.no_grad():
        out = model(*inputs)
        target_emotion, source_emotion, identity, mouth = inputs
        motion = model.mouth_encoder(mouth.flatten(0, 1)).view(B, T, -1)
        cues = torch.cat([target_emotion, source_emotion, identity], -1).unsqueeze(1).expand(-1, T, -1)
        query = model.cross_emotion(torch.cat([cues, motion], -1))
        cosine = F.cosine_similarity(query.unsqueeze(2), model.key_memory, dim=-1)  # (B, T, M)
        expected = (cosine / model.config.temperature).softmax(-1)
    torch.testing.assert_close(out.attention, expected)


def test_align_loss_is_kl_of_key_from_value_with_value_as_fixed_target(model: EmotionBridgingMemory) -> None:
    inputs, target_mouth = _inputs(model)
    out = model(*inputs, target_mouth=target_mouth)
    alpha_k, alpha_v = out.attention, out.value_attention
    expected = (alpha_k * (alpha_k.log() - alpha_v.log())).sum(-1).mean()
    torch.testing.assert_close(out.loss_align, expected, rtol=1e-4, atol=1e-6)
    out.loss_align.backward()
    assert all(p.grad is None for p in model.displacement_encoder.parameters())
    assert model.value_memory.grad is None
    assert model.key_memory.grad is not None and model.key_memory.grad.abs().sum() > 0


def test_reconstruction_loss_vanishes_when_a_slot_holds_the_feature(model: EmotionBridgingMemory) -> None:
    inputs, target_mouth = _inputs(model)
    model.eval()
    with torch.no_grad():
        feature = model.displacement_encoder((target_mouth - inputs[3]).flatten(0, 1))  # (B*T, D)
        # One value slot per frame's feature and a tiny temperature: attention is (nearly) one-hot.
        config = EmotionBridgingMemoryConfig.from_dict(
            {**model.config.to_dict(), "memory_slots": B * T, "temperature": 1e-3}
        )
        exact = EmotionBridgingMemory(config).eval()
        exact.load_state_dict({**model.state_dict(), "key_memory": torch.randn(B * T, config.key_dim),
                               "value_memory": feature}, strict=True)  # fmt: skip
        out = exact(*inputs, target_mouth=target_mouth)
    assert out.loss_rec.item() < 1e-6


def test_loss_weights_the_landmark_terms_in_pixels(model: EmotionBridgingMemory) -> None:
    inputs, target_mouth = _inputs(model)
    out = model(*inputs, target_mouth=target_mouth)
    assert (
        model.config.weight_mouth == 128.0
    )  # landmark loss in pixels of the 128 crop (see module docstring)
    weights = {"weight_mouth": 7.0, "weight_rec": 0.5, "weight_align": 2.0}
    weighted = EmotionBridgingMemory(
        EmotionBridgingMemoryConfig.from_dict({**model.config.to_dict(), **weights})
    )
    total, parts = weighted.loss(out, target_mouth)
    expected = 7.0 * (parts["mouth"] + parts["mouth_value"]) + 0.5 * parts["rec"] + 2.0 * parts["align"]
    torch.testing.assert_close(total, expected)
    unweighted, same_parts = model.loss(out, target_mouth)
    assert all(torch.equal(parts[name], same_parts[name]) for name in parts)  # logged terms are unweighted
    assert not torch.allclose(total, unweighted)
    with pytest.raises(ConfigError):
        EmotionBridgingMemoryConfig(weight_mouth=-1.0)


def test_without_memory_ablation(model: EmotionBridgingMemory) -> None:
    config = EmotionBridgingMemoryConfig.from_dict({**model.config.to_dict(), "use_memory": False})
    ablation = EmotionBridgingMemory(config)
    names = {name for name, _ in ablation.named_parameters()}
    assert not any(n.startswith(("key_memory", "value_memory", "displacement_encoder")) for n in names)
    inputs, target_mouth = _inputs(ablation)
    out = ablation(*inputs, target_mouth=target_mouth)
    assert out.mouth.shape == (B, T, 57, 2) and out.attention is None
    assert out.loss_rec.item() == 0.0 and out.loss_align.item() == 0.0
    total, _ = ablation.loss(out, target_mouth)
    total.backward()
    missing = [n for n, p in ablation.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    assert ablation(*inputs).loss_rec is None


def test_a_few_steps_lower_the_loss(model: EmotionBridgingMemory) -> None:
    inputs, target_mouth = _inputs(model)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        total, _ = model.loss(model(*inputs, target_mouth=target_mouth), target_mouth)
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        losses.append(total.item())
    assert losses[-1] < 0.7 * losses[0]


def test_safetensors_round_trip_gives_identical_outputs(model: EmotionBridgingMemory, tmp_path: Path) -> None:
    inputs, target_mouth = _inputs(model)
    model(*inputs, target_mouth=target_mouth)  # batch-norm statistics
    model.eval()
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    config = EmotionBridgingMemoryConfig.from_dict(json.loads(json.dumps(model.config.to_dict())))
    restored = EmotionBridgingMemory(config)
    restored.load_state_dict(load_file(tmp_path / "model.safetensors"))
    restored.eval()
    with torch.no_grad():
        assert torch.equal(model(*inputs).mouth, restored(*inputs).mouth)


def test_config_json_round_trip_and_errors() -> None:
    for config in (EmotionBridgingMemoryConfig.paper(), EmotionBridgingMemoryConfig.tiny()):
        assert EmotionBridgingMemoryConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ConfigError, match="temperature"):
        EmotionBridgingMemoryConfig(temperature=0.0)
    with pytest.raises(ConfigError, match="unknown keys"):
        EmotionBridgingMemoryConfig.from_dict({"slots": 3})


def test_wrong_shapes_raise_value_error(model: EmotionBridgingMemory) -> None:
    (target_emotion, source_emotion, identity, mouth), _ = _inputs(model)
    with pytest.raises(ValueError, match=r"mouth must be \(B, T, 57, 2\)"):
        model(target_emotion, source_emotion, identity, mouth[:, :, :40])
    with pytest.raises(ValueError, match=r"identity must be \(B, 128\)"):
        model(target_emotion, source_emotion, identity[:, :64], mouth)
    with pytest.raises(ValueError, match="target_mouth must match"):
        model(target_emotion, source_emotion, identity, mouth, target_mouth=mouth[:, :2])
    with pytest.raises(ValueError, match="target_mouth"):
        model.loss(model(target_emotion, source_emotion, identity, mouth), mouth)
