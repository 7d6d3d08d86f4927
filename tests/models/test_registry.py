"""The model registry and profiler: every kind builds from JSON configs, and sizes/FLOPs are counted."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from cemnet_core.errors import ConfigError
from cemnet_core.models import MODEL_KINDS, build_model
from cemnet_core.models.audio_to_mouth import AudioToMouth, AudioToMouthConfig
from cemnet_core.models.profile import count_parameters, flops_per_frame, profile_kinds, profile_model


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_every_kind_builds_from_its_tiny_config_json(kind: str) -> None:
    config_cls, model_cls = MODEL_KINDS[kind]
    config_json = json.loads(json.dumps(config_cls.tiny().to_dict()))
    model = build_model(kind, config_json)
    assert isinstance(model, model_cls)
    assert model.config == config_cls.tiny()


def test_the_core_kinds_are_registered() -> None:
    assert {"audio_to_mouth", "emotion_enhancer", "emotion_memory"} <= set(MODEL_KINDS)


def test_unknown_kind_and_bad_config_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown model kind 'nope'"):
        build_model("nope", {})
    with pytest.raises(ConfigError, match="unknown keys"):
        build_model("audio_to_mouth", {"depth": 3})
    with pytest.raises(ConfigError, match="multiple of heads"):
        build_model("audio_to_mouth", {"dim": 30})


def test_count_parameters_separates_frozen_ones() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))  # 16 + 10 parameters
    model[0].requires_grad_(False)
    assert count_parameters(model) == (26, 10)


def test_flops_of_a_linear_model_match_the_formula() -> None:
    class Frames(nn.Module):
        """Linear on 4 frames of 8 values: 2*8*16 FLOPs per frame."""

        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(8, 16)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x)

        def example_inputs(self, batch_size: int = 1) -> tuple[torch.Tensor]:
            return (torch.zeros(batch_size, 4, 8),)

        @property
        def frames_per_example(self) -> float:
            return 4.0

    assert flops_per_frame(Frames()) == 2 * 8 * 16
    assert flops_per_frame(nn.Linear(2, 2)) is None  # no example inputs: parameters only


def test_profile_of_a_core_model() -> None:
    model = AudioToMouth(AudioToMouthConfig.tiny())
    profile = profile_model("audio_to_mouth", model)
    assert profile.params == sum(p.numel() for p in model.parameters()) == profile.trainable_params
    assert profile.gflops_per_frame is not None and profile.gflops_per_frame > 0


def test_profile_kinds_covers_the_registry_and_checks_the_preset() -> None:
    profiles = profile_kinds("tiny")
    assert [p.kind for p in profiles] == sorted(MODEL_KINDS)
    by_kind = {p.kind: p for p in profiles}
    for kind in ("audio_to_mouth", "emotion_enhancer", "emotion_memory"):
        assert by_kind[kind].gflops_per_frame is not None and by_kind[kind].gflops_per_frame > 0
    with pytest.raises(ConfigError, match="unknown preset"):
        profile_kinds("huge")
