"""Audio2Mouth (Sec. III-A): shapes, gradients, persistence and the loss of Eqs. (2)-(4)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from cemnet_core.contracts import ALL_MOUTH, ALL_POSE, MOUTH, N_ALL
from cemnet_core.errors import ConfigError
from cemnet_core.models.audio_to_mouth import (
    AudioToMouth,
    AudioToMouthConfig,
    audio2mouth_loss,
    mouth_opening,
    reference_mouth_base,
)


@pytest.fixture
def model() -> AudioToMouth:
    return AudioToMouth(AudioToMouthConfig.tiny())


def test_forward_shapes_and_finite(model: AudioToMouth) -> None:
    ref, mel, pose = model.example_inputs(batch_size=3)
    mouth = model(ref, mel, pose)
    assert mouth.shape == (3, model.config.num_frames, 57, 2)
    assert torch.isfinite(mouth).all()


def test_any_number_of_references_and_shorter_chunks(model: AudioToMouth) -> None:
    ref, mel, pose = model.example_inputs(batch_size=2)
    model.eval()
    more_refs = torch.cat([ref, ref[:, :1]], dim=1)  # (B, N+1, 135, 2)
    assert model(more_refs, mel, pose).shape == (2, 3, 57, 2)
    assert model(ref, mel[:, :1], pose[:, :1]).shape == (2, 1, 57, 2)


def test_references_are_an_unordered_set(model: AudioToMouth) -> None:
    ref, mel, pose = model.example_inputs(batch_size=2)
    model.eval()
    with torch.no_grad():
        forward = model(ref, mel, pose)
        flipped = model(ref.flip(1), mel, pose)
    torch.testing.assert_close(forward, flipped, rtol=1e-4, atol=1e-5)


def test_audio_changes_the_mouth(model: AudioToMouth) -> None:
    ref, mel, pose = model.example_inputs(batch_size=2)
    model.eval()
    with torch.no_grad():
        silent = model(ref, torch.full_like(mel, -4.0), pose)
        loud = model(ref, mel, pose)
    assert (silent - loud).abs().max() > 1e-4


def test_gradients_reach_every_parameter(model: AudioToMouth) -> None:
    ref, mel, pose = model.example_inputs(batch_size=2)
    target = torch.rand(2, 3, 57, 2)
    total, _ = model.loss(model(ref, mel, pose), target)
    total.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_safetensors_round_trip_gives_identical_outputs(model: AudioToMouth, tmp_path: Path) -> None:
    inputs = model.example_inputs(batch_size=2)
    model(*inputs)  # one training step's worth of batch-norm statistics
    model.eval()
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    restored = AudioToMouth(AudioToMouthConfig.from_dict(json.loads(json.dumps(model.config.to_dict()))))
    restored.load_state_dict(load_file(tmp_path / "model.safetensors"))
    restored.eval()
    with torch.no_grad():
        assert torch.equal(model(*inputs), restored(*inputs))


def test_config_json_round_trip() -> None:
    for config in (AudioToMouthConfig.paper(), AudioToMouthConfig.tiny()):
        assert AudioToMouthConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_paper_preset_uses_the_paper_sizes() -> None:
    config = AudioToMouthConfig.paper()
    assert (config.dim, config.heads, config.num_refs, config.num_frames) == (512, 4, 5, 5)
    audio_convs = [m for m in AudioToMouth(config).audio_encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(audio_convs) == 13


def test_bad_config_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="multiple of heads"):
        AudioToMouthConfig(dim=30, heads=4)
    with pytest.raises(ConfigError, match="unknown keys"):
        AudioToMouthConfig.from_dict({"dim": 32, "width": 3})


def test_wrong_shapes_raise_value_error_naming_the_expected_shape(model: AudioToMouth) -> None:
    ref, mel, pose = model.example_inputs(batch_size=2)
    with pytest.raises(ValueError, match=r"\(B, N, 135, 2\)"):
        model(ref[:, :, :57], mel, pose)
    with pytest.raises(ValueError, match=r"\(B, T, 16, 80\)"):
        model(ref, mel.transpose(2, 3), pose)
    with pytest.raises(ValueError, match="1 <= T <= 3"):
        model(ref, torch.cat([mel, mel], 1), torch.cat([pose, pose], 1))
    with pytest.raises(ValueError, match="disagree"):
        model(ref, mel, pose[:1])


def test_loss_reference_values() -> None:
    target = torch.zeros(1, 3, 57, 2)
    pred = target.clone()
    pred[:, 1] = 0.5  # one frame off by 0.5: L1 = 0.5/3, motion error 0.5 on both steps
    total, parts = audio2mouth_loss(pred, target, lam=2.0)
    torch.testing.assert_close(parts["l1"], torch.tensor(0.5 / 3))
    torch.testing.assert_close(parts["velocity"], torch.tensor(0.5))
    torch.testing.assert_close(total, torch.tensor(0.5 / 3 + 2.0 * 0.5))


def test_velocity_loss_is_zero_for_a_constant_offset() -> None:
    target = torch.rand(2, 5, 57, 2)
    total, parts = audio2mouth_loss(target + 0.3, target)
    assert parts["velocity"].abs().item() < 1e-6
    torch.testing.assert_close(parts["l1"], torch.tensor(0.3))
    torch.testing.assert_close(total, parts["l1"] + parts["velocity"])


def test_velocity_loss_is_zero_for_a_single_frame() -> None:
    _, parts = audio2mouth_loss(torch.ones(2, 1, 57, 2), torch.zeros(2, 1, 57, 2))
    assert parts["velocity"].item() == 0.0


def _mouths(openings: list[float]) -> torch.Tensor:
    """(1, T, 57, 2) mouths 0.5 wide whose inner lips are ``openings`` x width apart."""
    mouth = torch.rand(len(openings), 57, 2)
    left, right, upper, lower = (MOUTH.index(i) for i in (61, 291, 13, 14))
    mouth[:, left], mouth[:, right] = torch.tensor([0.25, 0.6]), torch.tensor([0.75, 0.6])
    mouth[:, upper] = torch.tensor([0.5, 0.6])
    mouth[:, lower, 0] = 0.5
    mouth[:, lower, 1] = 0.6 + 0.5 * torch.tensor(openings)
    return mouth[None]


def test_spread_term_is_the_gap_between_the_opening_spreads() -> None:
    target, flat = _mouths([0.0, 0.2, 0.4]), _mouths([0.2, 0.2, 0.2])
    torch.testing.assert_close(mouth_opening(target), torch.tensor([[0.0, 0.2, 0.4]]))
    total, parts = audio2mouth_loss(flat, target, lam=0.0, spread=3.0)
    torch.testing.assert_close(parts["spread"], torch.tensor([0.0, 0.2, 0.4]).std())
    torch.testing.assert_close(total, parts["l1"] + 3.0 * parts["spread"])
    # the same spread, shifted: no spread penalty; the paper's loss (spread 0) has no such term
    _, shifted = audio2mouth_loss(_mouths([0.1, 0.3, 0.5]), target, spread=1.0)
    assert shifted["spread"].item() < 1e-6
    assert "spread" not in audio2mouth_loss(flat, target)[1]


def test_spread_term_pushes_a_flat_prediction_to_open_wider() -> None:
    target, pred = _mouths([0.0, 0.2, 0.4]), _mouths([0.15, 0.2, 0.25]).requires_grad_()
    audio2mouth_loss(pred, target, lam=0.0, spread=1.0)[1]["spread"].backward()
    lower = MOUTH.index(14)
    step = -pred.grad[0, :, lower, 1]  # descent direction of the lower lip's y
    assert step[0] < 0 < step[2]  # the most closed frame closes further, the most open opens further


def test_motion_gain_scales_the_offset_from_the_moved_reference_mouth() -> None:
    torch.manual_seed(0)
    model = AudioToMouth(AudioToMouthConfig.tiny()).eval()
    with torch.no_grad():
        model.to_mouth.weight.normal_(0, 0.1)  # a trained-looking offset, not the near-zero start
    ref, mel, pose = model.example_inputs(batch_size=2)
    base = reference_mouth_base(ref, pose, model.config.base_motion)
    with torch.no_grad():
        plain = model(ref, mel, pose)
        model.config = dataclasses.replace(model.config, motion_gain=1.5)
        gained = model(ref, mel, pose)
    assert (plain - base).abs().max() > 1e-3
    torch.testing.assert_close(gained - base, 1.5 * (plain - base), rtol=1e-4, atol=1e-6)


def test_motion_gain_must_be_positive_and_needs_the_reference_base() -> None:
    with pytest.raises(ConfigError, match="motion_gain"):
        AudioToMouthConfig(motion_gain=0.0)
    with pytest.raises(ConfigError, match="motion_gain"):
        AudioToMouthConfig(motion_gain=1.5, mouth_from_reference=False)


def test_negative_spread_weight_is_refused() -> None:
    with pytest.raises(ConfigError, match="spread_weight"):
        AudioToMouthConfig(spread_weight=-1.0)


def test_loss_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(B, T, K, 2\)"):
        audio2mouth_loss(torch.zeros(1, 2, 57, 2), torch.zeros(1, 3, 57, 2))


def test_untrained_model_starts_near_the_reference_mouth_moved_with_the_head() -> None:
    model = AudioToMouth(AudioToMouthConfig.tiny()).eval()
    ref, mel, pose = model.example_inputs(batch_size=2)
    with torch.no_grad():
        mouth = model(ref, mel, pose)
    base = reference_mouth_base(ref, pose)
    assert (mouth - base).abs().max() < 0.05  # the offset head starts small
    plain = AudioToMouth(dataclasses.replace(AudioToMouthConfig.tiny(), mouth_from_reference=False)).eval()
    with torch.no_grad():
        assert (plain(ref, mel, pose) - base).abs().max() > 0.05


def test_translation_base_shifts_the_mean_reference_mouth_by_the_pose_centroid() -> None:
    ref, _, pose = AudioToMouth(AudioToMouthConfig.tiny()).example_inputs(batch_size=2)
    pose = pose.clone()
    pose[:, 1] = pose[:, 0] + 0.1  # frame 1: the head of frame 0 moved right and down by 0.1
    base = reference_mouth_base(ref, pose, "translation")
    shift0 = pose[:, 0].mean(dim=1) - ref[:, :, ALL_POSE].mean(dim=(1, 2))  # (B, 2)
    expected_frame0 = ref[:, :, ALL_MOUTH].mean(dim=1) + shift0[:, None]
    torch.testing.assert_close(base[:, 0], expected_frame0)
    torch.testing.assert_close(base[:, 1] - base[:, 0], torch.full_like(base[:, 0], 0.1), rtol=0, atol=1e-5)


def _similarity(points: torch.Tensor, angle: float, scale: float, shift: tuple[float, float]) -> torch.Tensor:
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    centre = torch.tensor([0.5, 0.5])
    return (points - centre) @ (scale * rotation).T + centre + torch.tensor(shift)


def test_similarity_base_follows_a_turned_and_scaled_head_exactly() -> None:
    # Two references of one face in different poses; the frame is the face in a third pose. Each
    # reference's mouth, moved with its own POSE -> frame POSE similarity, lands on the frame's mouth.
    face = 0.3 + 0.4 * torch.rand(1, N_ALL, 2, generator=torch.Generator().manual_seed(3))
    poses = ((0.2, 1.1, (0.02, -0.01)), (-0.1, 0.9, (0.0, 0.03)))
    ref = torch.stack([_similarity(face, *pose) for pose in poses], 1)  # (1, N=2, 135, 2)
    frame = _similarity(face, 0.35, 1.2, (-0.03, 0.02))  # (1, 135, 2)
    pose = frame[:, ALL_POSE].unsqueeze(1)  # (1, T=1, 78, 2)
    base = reference_mouth_base(ref, pose)
    torch.testing.assert_close(base[:, 0], frame[:, ALL_MOUTH], rtol=0, atol=1e-5)
    shifted = reference_mouth_base(ref, pose, "translation")
    assert (shifted[:, 0] - frame[:, ALL_MOUTH]).abs().max() > 0.02  # a shift cannot turn the mouth


def test_similarity_base_of_a_set_without_a_face_is_a_shift() -> None:
    ref = torch.full((1, 1, N_ALL, 2), 0.5)  # every point in one place (no face found)
    pose = torch.rand(1, 2, 78, 2, generator=torch.Generator().manual_seed(0))
    base = reference_mouth_base(ref, pose)
    assert torch.isfinite(base).all()
    torch.testing.assert_close(base, pose.mean(dim=2, keepdim=True).expand(1, 2, 57, 2))


def test_config_without_base_motion_loads_as_the_translation_base_it_was_trained_with() -> None:
    data = AudioToMouthConfig.tiny().to_dict()
    assert data["base_motion"] == "similarity"
    del data["base_motion"]
    assert AudioToMouthConfig.from_dict(data).base_motion == "translation"
    with pytest.raises(ConfigError, match="base_motion"):
        dataclasses.replace(AudioToMouthConfig.tiny(), base_motion="affine")
