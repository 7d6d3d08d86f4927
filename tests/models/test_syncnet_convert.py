"""syncnet_python's syncnet_v2.model -> a release folder (cemnet_core/models/syncnet_convert.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cemnet_core.errors import WeightsError
from cemnet_core.models.syncnet import SyncNet, SyncNetConfig
from cemnet_core.pretrained import convert_syncnet_checkpoint, load_syncnet


@pytest.fixture
def model() -> SyncNet:
    return SyncNet(SyncNetConfig.tiny())


def _inputs(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(batch, 3, 5, 224, 224) * 255, torch.randn(batch, 1, 13, 20) * 10


def test_converts_a_syncnet_python_state_dict(model: SyncNet, tmp_path: Path) -> None:
    model(*_inputs(2))  # non-default batch-norm statistics
    model.eval()
    original = {
        f"__S__.{key}": value.clone()
        for key, value in model.state_dict().items()
        if not key.endswith("num_batches_tracked")  # as in checkpoints from PyTorch < 0.4
    }
    source = tmp_path / "syncnet_v2.model"
    torch.save(original, source)
    folder = convert_syncnet_checkpoint(source, tmp_path / "syncnet.v2", SyncNetConfig.tiny())
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    loaded = load_syncnet(folder)
    assert not loaded.training
    for key, value in original.items():
        assert torch.equal(loaded.state_dict()[key.removeprefix("__S__.")], value)
    inputs = _inputs(2)
    with torch.no_grad():
        for before, after in zip(model(*inputs), loaded(*inputs), strict=True):
            assert torch.equal(before, after)


def test_conversion_refuses_pickled_modules_and_foreign_checkpoints(model: SyncNet, tmp_path: Path) -> None:
    pickled = tmp_path / "module.model"
    torch.save(model, pickled)
    with pytest.raises(WeightsError, match=r"whole nn\.Module"):
        convert_syncnet_checkpoint(pickled, tmp_path / "out", SyncNetConfig.tiny())
    foreign = tmp_path / "foreign.model"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, foreign)
    with pytest.raises(WeightsError, match="do not match"):
        convert_syncnet_checkpoint(foreign, tmp_path / "out", SyncNetConfig.tiny())
    with pytest.raises(WeightsError, match="not found"):
        convert_syncnet_checkpoint(tmp_path / "missing.model", tmp_path / "out")
    assert not (tmp_path / "out").exists()
