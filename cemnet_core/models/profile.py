"""Model size and cost: parameter counts and FLOPs per generated video frame.

FLOPs come from :class:`torch.utils.flop_counter.FlopCounterMode` over one eval-mode forward pass at batch
1 on the model's own ``example_inputs``, divided by the video frames that pass covers
(``frames_per_example``). FlopCounterMode counts a multiply-add as 2 FLOPs and covers matmuls,
convolutions and attention; element-wise ops (norms, activations) are not counted, so the figures are
slightly low. A model without ``example_inputs`` gets parameters only.

Shape notation: inputs are whatever each model's ``example_inputs`` documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cemnet_core.errors import ConfigError
from cemnet_core.models import MODEL_KINDS

Preset = Literal["paper", "tiny"]
PRESETS: tuple[str, ...] = ("paper", "tiny")


@runtime_checkable
class Profilable(Protocol):
    """What a model offers so that its FLOPs per frame can be measured."""

    def example_inputs(self, batch_size: int = 1) -> tuple[torch.Tensor, ...]:
        """Inputs for one forward pass of ``batch_size`` examples."""
        ...

    @property
    def frames_per_example(self) -> float:
        """Video frames one example (batch 1) generates or covers."""
        ...


@dataclass(frozen=True)
class ModelProfile:
    """Size and cost of one model kind at one preset."""

    kind: str
    model_class: str
    params: int
    trainable_params: int
    gflops_per_frame: float | None  # None: the model offers no example inputs


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(all parameters, trainable parameters) of ``model``."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def flops_per_frame(model: nn.Module) -> float | None:
    """FLOPs of one forward pass on ``model.example_inputs(1)`` / ``model.frames_per_example``.

    Returns None when the model does not implement :class:`Profilable`. The model is left in eval mode.
    """
    if not isinstance(model, Profilable):
        return None
    model.eval()
    inputs = model.example_inputs(1)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    return counter.get_total_flops() / model.frames_per_example


def profile_model(kind: str, model: nn.Module) -> ModelProfile:
    """Parameters and GFLOPs per frame of an already built model."""
    params, trainable = count_parameters(model)
    flops = flops_per_frame(model)
    gflops = None if flops is None else flops / 1e9
    return ModelProfile(kind, type(model).__name__, params, trainable, gflops)


def profile_kinds(preset: str = "paper") -> list[ModelProfile]:
    """Profile every kind of :data:`cemnet_core.models.MODEL_KINDS` built from its ``paper()``/``tiny()``.

    Raises:
        ConfigError: ``preset`` is not "paper" or "tiny".
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    profiles = []
    for kind, (config_cls, model_cls) in sorted(MODEL_KINDS.items()):
        config = config_cls.paper() if preset == "paper" else config_cls.tiny()
        profiles.append(profile_model(kind, model_cls(config)))
    return profiles
