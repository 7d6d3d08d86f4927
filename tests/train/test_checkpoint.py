"""Checkpoints: atomic writes, RNG round trips, clear errors for foreign or mismatched files."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from toy_task import ToyModel

from cemnet_core.errors import InputError
from cemnet_core.train.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    restore_training_state,
    save_checkpoint,
    training_state,
)


def _draws() -> tuple[float, float, torch.Tensor]:
    return random.random(), float(np.random.rand()), torch.rand(3)


def test_rng_state_round_trip_through_a_file(tmp_path: Path) -> None:
    np.random.randn()  # leaves a cached Gaussian in NumPy's state
    path = save_checkpoint(tmp_path / "rng.pt", {"version": 1, "rng": capture_rng_state()})
    first = _draws()
    restore_rng_state(load_checkpoint(path)["rng"])
    second = _draws()
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(target, {"version": 1, "step": 1})
    save_checkpoint(target, {"version": 1, "step": 2})
    assert load_checkpoint(target)["step"] == 2
    assert [path.name for path in target.parent.iterdir()] == ["last.pt"]

    class Unsaveable:  # torch.save fails midway: the old checkpoint must survive
        def __reduce__(self) -> tuple:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        save_checkpoint(target, {"version": 1, "step": 3, "bad": Unsaveable()})
    assert load_checkpoint(target)["step"] == 2
    assert [path.name for path in target.parent.iterdir()] == ["last.pt"]


def test_missing_corrupt_and_foreign_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="without --resume"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="delete it"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(InputError, match="not a CEMNet"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_training_state_restores_models_and_optimisers(tmp_path: Path) -> None:
    model = ToyModel()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    state = training_state(1, {"toy": model}, {"adam": optimizer}, scaler, {"epoch": 0}, {"best": None})
    path = save_checkpoint(tmp_path / "last.pt", state)

    fresh = ToyModel()
    fresh_optimizer = torch.optim.Adam(fresh.parameters(), lr=0.1)
    restore_training_state(load_checkpoint(path), {"toy": fresh}, {"adam": fresh_optimizer}, scaler)
    for name, value in model.state_dict().items():
        assert torch.equal(value, fresh.state_dict()[name])
    assert fresh_optimizer.state_dict()["state"][0]["step"] == 1

    with pytest.raises(InputError, match="same stage"):
        restore_training_state(load_checkpoint(path), {"other": fresh}, {"adam": fresh_optimizer}, scaler)
    wider = torch.nn.Sequential(
        torch.nn.Linear(4, 32), torch.nn.ReLU(), torch.nn.Dropout(), torch.nn.Linear(32, 2)
    )
    wrapper = torch.nn.Module()
    wrapper.net = wider
    with pytest.raises(InputError, match="do not fit"):
        restore_training_state(load_checkpoint(path), {"toy": wrapper}, {"adam": fresh_optimizer}, scaler)
