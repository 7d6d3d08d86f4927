"""The autocast helper: fp32 on CPU by default, forced modes checked against the device."""

from __future__ import annotations

import pytest
import torch

from cemnet_core.errors import ConfigError
from cemnet_core.train.precision import resolve_precision

CPU = torch.device("cpu")


def test_auto_is_fp32_on_cpu_and_changes_nothing() -> None:
    precision = resolve_precision("auto", CPU)
    assert precision.name == "fp32" and precision.dtype is None
    layer = torch.nn.Linear(4, 4)
    with precision.autocast():
        assert layer(torch.randn(2, 4)).dtype == torch.float32
    assert not precision.make_scaler().is_enabled()


def test_bf16_autocasts_matmuls_on_cpu_when_asked() -> None:
    precision = resolve_precision("bf16", CPU)
    layer = torch.nn.Linear(4, 4)
    with precision.autocast():
        assert layer(torch.randn(2, 4)).dtype == torch.bfloat16
    assert not precision.make_scaler().is_enabled()


def test_unknown_and_unsupported_precisions_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="auto"):
        resolve_precision("fp8", CPU)
    with pytest.raises(ConfigError, match="CUDA"):
        resolve_precision("fp16", CPU)


def test_native_is_bf16_only_on_a_cpu_with_amx(monkeypatch: pytest.MonkeyPatch) -> None:
    from cemnet_core.train import precision as module

    monkeypatch.setattr(module, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("native", CPU).name == "bf16"
    monkeypatch.setattr(module, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("native", CPU).name == "fp32"


def test_cpu_has_native_bf16_is_false_without_the_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    from cemnet_core.train import precision as module

    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    assert module.cpu_has_native_bf16() is False
