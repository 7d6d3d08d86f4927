"""Deterministic resumable sampling, and a 2-process torchrun run matching a 1-process run."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from toy_task import build_toy_task

from cemnet_core.errors import ConfigError
from cemnet_core.train.distributed import DistEnv, ResumableBatchSampler, pick_device, shard_indices
from cemnet_core.train.loop import LoopConfig, fit, seed_everything

CPU = torch.device("cpu")
REPO = Path(__file__).resolve().parents[2]


def _env(rank: int, world_size: int) -> DistEnv:
    return DistEnv(rank=rank, world_size=world_size, local_rank=rank, device=CPU)


def test_rank_slices_compose_the_single_process_batches() -> None:
    single = list(ResumableBatchSampler(23, 6, seed=3, env=_env(0, 1)).epoch_batches())
    ranks = [list(ResumableBatchSampler(23, 6, seed=3, env=_env(rank, 2)).epoch_batches()) for rank in (0, 1)]
    assert len(single) == 3  # 23 // 6, the tail is dropped
    for step, batch in enumerate(single):
        assert ranks[0][step] + ranks[1][step] == batch
    assert len(set(itertools.chain(*single))) == 18  # no index twice in an epoch


def test_epochs_reshuffle_and_state_resumes_the_order() -> None:
    sampler = ResumableBatchSampler(12, 4, seed=0, env=_env(0, 1))
    first = list(sampler.epoch_batches())
    sampler.next_epoch()
    second = list(sampler.epoch_batches())
    assert first != second and sorted(itertools.chain(*first)) == sorted(itertools.chain(*second)) == list(
        range(12)
    )
    sampler.advance()
    resumed = ResumableBatchSampler(12, 4, seed=0, env=_env(0, 1))
    resumed.load_state_dict(sampler.state_dict())
    assert list(resumed.epoch_batches()) == second[1:]
    with pytest.raises(ConfigError, match="same --data"):
        ResumableBatchSampler(13, 4, seed=0, env=_env(0, 1)).load_state_dict(sampler.state_dict())


def test_batch_must_split_over_processes_and_devices_are_checked() -> None:
    with pytest.raises(ConfigError, match="multiple of 2"):
        ResumableBatchSampler(10, 5, seed=0, env=_env(0, 2))
    assert pick_device("cpu") == CPU
    with pytest.raises(ConfigError, match="cpu"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--device cpu"):
            pick_device("cuda")


def test_validation_shards_cover_every_item_once() -> None:
    assert sorted(shard_indices(7, _env(0, 2)) + shard_indices(7, _env(1, 2))) == list(range(7))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_process_torchrun_matches_one_process(tmp_path: Path) -> None:
    steps, global_batch = 8, 8
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "OMP_NUM_THREADS": "1",
    }
    command = [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(_free_port()), str(Path(__file__).parent / "toy_task.py"),
               str(tmp_path / "ddp"), str(steps), str(global_batch)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    two_process = torch.load(tmp_path / "ddp" / "final.pt", weights_only=True)

    seed_everything(0)
    task = build_toy_task()
    config = LoopConfig(steps=steps, batch_size=global_batch, val_every=3, checkpoint_every=0, progress=False)
    result = fit(task, config, tmp_path / "single", _env(0, 1))
    one_process = task.models["toy"].state_dict()
    start = build_toy_task().models["toy"].state_dict()
    for name, value in one_process.items():
        torch.testing.assert_close(two_process[name], value, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(start[name], value)  # training moved the weights: the match is not trivial
    val = torch.load(tmp_path / "ddp" / "val.pt", weights_only=True)
    assert val["l1"] == pytest.approx(result.val_metrics["l1"], rel=1e-5)
