"""The one training loop: learning, run folder, exact resume, Ctrl-C, early stopping, errors."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
from toy_task import build_toy_task

from cemnet_core.errors import ConfigError, DataError, Interrupted
from cemnet_core.train.checkpoint import BEST, LAST, checkpoint_path, load_checkpoint
from cemnet_core.train.distributed import DistEnv
from cemnet_core.train.loop import LoopConfig, Phase, TrainProgress, TrainTask, fit, seed_everything

CPU = DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def _config(**changes: object) -> LoopConfig:
    base = dict(steps=12, batch_size=4, log_every=2, val_every=4, checkpoint_every=5, progress=False)
    return LoopConfig(**{**base, **changes})  # type: ignore[arg-type]


def _train(
    run: Path, config: LoopConfig, resume: bool = False, seed: int = 0, **callbacks: object
) -> TrainTask:
    seed_everything(seed)
    task = build_toy_task(noise=0.1, dropout=0.2)
    fit(task, config, run, CPU, resume=resume, **callbacks)  # type: ignore[arg-type]
    return task


def _weights(task: TrainTask) -> dict[str, torch.Tensor]:
    return task.models["toy"].state_dict()


def _records(run: Path, split: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if record["split"] == split]


def test_loss_goes_down_and_run_folder_is_complete(tmp_path: Path) -> None:
    seed_everything(0)
    task = build_toy_task()
    result = fit(task, _config(steps=60, val_every=20, sample_every=30, log_every=5), tmp_path, CPU)
    train = _records(tmp_path, "train")
    assert train[-1]["l1"] < 0.5 * train[0]["l1"]
    assert [record["step"] for record in _records(tmp_path, "val")] == [20, 40, 60]
    assert result.step == 60 and set(result.val_metrics) == {"l1"}
    assert all(record["it_s"] > 0 for record in train)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert sorted(path.name for path in (tmp_path / "samples").iterdir()) == [
        "step_0000030_preview.png",
        "step_0000060_preview.png",
    ]
    assert load_checkpoint(checkpoint_path(tmp_path, LAST))["step"] == 60


def test_stop_and_resume_is_bit_identical(tmp_path: Path) -> None:
    unbroken = _train(tmp_path / "a", _config())
    # stopped at an epoch boundary (24 items / batch 4 = 6 steps) and mid-epoch, then resumed
    _train(tmp_path / "b", _config(steps=6))
    resumed = _train(tmp_path / "b", _config(), resume=True)
    _train(tmp_path / "c", _config(steps=3))
    _train(tmp_path / "c", _config(steps=8), resume=True)
    twice = _train(tmp_path / "c", _config(), resume=True)
    for name, value in _weights(unbroken).items():
        assert torch.equal(value, _weights(resumed)[name]), name
        assert torch.equal(value, _weights(twice)[name]), name
    other_seed = _train(tmp_path / "d", _config(), seed=1)  # the comparison above can fail
    assert not torch.equal(_weights(unbroken)["net.0.weight"], _weights(other_seed)["net.0.weight"])
    steps = [record["step"] for record in _records(tmp_path / "c", "train")]
    assert steps == [2, 3, 4, 6, 8, 10, 12]  # each run logs its last step; no duplicates after resumes


def test_ctrl_c_saves_a_checkpoint_and_resume_continues_exactly(tmp_path: Path) -> None:
    unbroken = _train(tmp_path / "a", _config())

    def press_ctrl_c(step: int) -> None:
        if step == 7:
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(Interrupted, match="--resume"):
        _train(tmp_path / "b", _config(), on_step_end=[press_ctrl_c])
    assert load_checkpoint(checkpoint_path(tmp_path / "b", LAST))["step"] == 7
    resumed = _train(tmp_path / "b", _config(), resume=True)
    for name, value in _weights(unbroken).items():
        assert torch.equal(value, _weights(resumed)[name]), name


def test_early_stopping_stops_after_patience_and_keeps_best(tmp_path: Path) -> None:
    seed_everything(0)
    task = build_toy_task(lr=1e-9)  # no visible progress: every round after the first is "no improvement"
    config = _config(
        steps=100, val_every=2, early_stop_metric="l1", early_stop_patience=3, early_stop_min_delta=0.1
    )
    result = fit(task, config, tmp_path, CPU)
    assert result.stopped_early and result.step == 8 and result.best_step == 2
    best = load_checkpoint(checkpoint_path(tmp_path, BEST))
    assert best["step"] == 2 and best["metric"] == pytest.approx(result.best_metric)
    # resuming a run that stopped early does not train further
    seed_everything(0)
    again = fit(build_toy_task(lr=1e-9), config, tmp_path, CPU, resume=True)
    assert again.step == 8 and again.stopped_early


def test_unknown_early_stopping_metric_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="l1"):
        fit(build_toy_task(), _config(early_stop_metric="psnr"), tmp_path, CPU)


def test_non_finite_loss_and_tiny_dataset_are_data_errors(tmp_path: Path) -> None:
    task = build_toy_task()
    model = task.models["toy"]

    def broken(batch: dict, ctx: object) -> tuple[torch.Tensor, dict]:
        return model(batch["x"]).sum() * float("nan"), {}

    task.phases = [Phase("fit", "adam", broken)]
    with pytest.raises(DataError, match="--resume"):
        fit(task, _config(), tmp_path / "nan", CPU)
    with pytest.raises(DataError, match="batch_size"):
        fit(build_toy_task(count=3), _config(), tmp_path / "tiny", CPU)


def test_phases_follow_their_step_schedule(tmp_path: Path) -> None:
    task = build_toy_task()
    model = task.models["toy"]
    seen: list[tuple[str, int]] = []

    def make(name: str):
        def loss(batch: dict, ctx: object) -> tuple[torch.Tensor, dict]:
            seen.append((name, ctx.step))  # type: ignore[attr-defined]
            return (model(batch["x"]) - batch["y"]).abs().mean(), {}

        return loss

    task.phases = [
        Phase("warmup", "adam", make("warmup"), stop_step=2),
        Phase("main", "adam", make("main"), 2),
    ]
    fit(task, _config(steps=4, val_every=0), tmp_path, CPU)
    assert seen == [("warmup", 0), ("warmup", 1), ("main", 2), ("main", 3)]
    logged = _records(tmp_path, "train")
    assert "warmup.loss" in logged[0] and "main.loss" in logged[1]


def test_progress_events_follow_the_steps_and_the_logged_loss(tmp_path: Path) -> None:
    events: list[TrainProgress] = []
    _train(tmp_path / "on", _config(steps=6, val_every=0, progress=True), progress=events.append)
    assert [event.step for event in events] == list(range(7))  # one before the first step, one per step
    assert events[0].metrics == {} and events[0].rate is None
    assert events[1].metrics == {}  # log_every=2: nothing logged after the first step yet
    assert next(iter(events[-1].metrics)) == "loss" and events[-1].rate is not None and events[-1].rate > 0
    assert all(event.total == 6 for event in events)
    silent: list[TrainProgress] = []
    _train(tmp_path / "off", _config(steps=2, val_every=0), progress=silent.append)  # loop.progress=false
    assert silent == []
