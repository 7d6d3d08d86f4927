"""The one training loop of CEMNet (STYLE section 6).

Every stage (``train/stages/<stage>.py``) describes itself as a :class:`TrainTask`: the modules it trains,
their optimisers, its datasets and one or more :class:`Phase` loss functions. :func:`fit` runs, per step::

    batch (this rank's slice of the global batch) -> to device
    for each active phase (e.g. generator, then discriminator):
        zero grad -> autocast forward: loss, terms = phase.loss(batch, ctx) -> backward
        -> average gradients over ranks -> unscale -> clip -> optimiser step
    scaler update -> every log_every: averaged metrics to metrics.jsonl + TensorBoard + progress callback
    every val_every: validation (+ early stopping on a validation metric, best.pt)
    every sample_every: sample PNGs -> every checkpoint_every: checkpoints/last.pt

Run folder: ``config.toml`` (written by the caller before the first step), ``metrics.jsonl``, ``tb/``
(TensorBoard events), ``checkpoints/{last,best}.pt``, ``samples/`` (:mod:`~cemnet_core.train.run_writer`).
Only rank 0 writes.

Ctrl-C is caught between steps: the loop writes ``last.pt`` and raises :class:`Interrupted`; ``--resume``
then continues exactly (a second Ctrl-C stops at once, keeping the previous checkpoint). Validation and
sample hooks run with all RNG states saved and restored, so they never change the course of training.
"""

from __future__ import annotations

import contextlib
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, default_collate

from cemnet_core.errors import ConfigError, DataError, Interrupted
from cemnet_core.train.checkpoint import (
    BEST,
    LAST,
    capture_rng_state,
    checkpoint_path,
    load_checkpoint,
    restore_rng_state,
    restore_training_state,
    save_checkpoint,
    training_state,
)
from cemnet_core.train.distributed import (
    DistEnv,
    ResumableBatchSampler,
    all_reduce_mean,
    all_reduce_sum,
    any_rank,
    average_gradients,
    barrier,
    broadcast_module_state,
    shard_indices,
)
from cemnet_core.train.precision import Precision, resolve_precision
from cemnet_core.train.run_writer import RunWriter


@dataclass(frozen=True)
class LoopConfig:
    """Settings of :func:`fit` shared by every stage (``[loop]`` table of a stage config)."""

    steps: int = 100_000  # total optimiser steps of the run (a resumed run continues up to this)
    batch_size: int = 16  # global batch: split evenly over torchrun processes
    seed: int = 0
    lr: float = 1e-4
    grad_clip: float = 1.0  # max global gradient norm per optimiser; 0 disables clipping
    precision: str = "auto"  # auto | native | fp32 | bf16 | fp16 (see precision.py)
    log_every: int = 10
    val_every: int = 1000  # 0: no validation
    checkpoint_every: int = 1000
    sample_every: int = 0  # 0: no sample images
    early_stop_metric: str = ""  # validation metric (lower is better); "" disables early stopping
    early_stop_patience: int = 10  # validation rounds without improvement before stopping
    early_stop_min_delta: float = 0.0
    num_workers: int = 0  # DataLoader worker processes per rank
    progress: bool = True  # progress events (the CLI's bar) on rank 0
    tensorboard: bool = True  # TensorBoard event files beside metrics.jsonl

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"loop.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("val_every", "checkpoint_every", "sample_every", "num_workers", "early_stop_patience"):
            if getattr(self, name) < 0:
                raise ConfigError(f"loop.{name} must be 0 or more, got {getattr(self, name)}")
        if self.lr <= 0 or self.grad_clip < 0:
            raise ConfigError(
                f"loop.lr must be > 0 and loop.grad_clip >= 0, got {self.lr} and {self.grad_clip}"
            )


@dataclass
class StepContext:
    """What a phase's loss function may use besides the batch.

    ``cache`` is shared by the phases of one step (e.g. the generator phase stores its fake images for the
    discriminator phase) and emptied before the next step.
    """

    step: int
    device: torch.device
    precision: Precision
    cache: dict[str, Any] = field(default_factory=dict)


LossFn = Callable[[Any, StepContext], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass(frozen=True)
class Phase:
    """One optimisation phase of a step: ``loss(batch, ctx) -> (total, terms)`` minimised by ``optimizer``.

    Active for ``start_step <= step < stop_step`` (``stop_step=None``: to the end), which expresses
    pre-training and warm-up schedules.
    """

    name: str
    optimizer: str
    loss: LossFn
    start_step: int = 0
    stop_step: int | None = None

    def active(self, step: int) -> bool:
        """Whether this phase runs at (0-based) ``step``."""
        return step >= self.start_step and (self.stop_step is None or step < self.stop_step)


@dataclass
class TrainTask:
    """What a stage hands to :func:`fit`.

    ``models`` are the trained modules (all checkpointed and put in train mode; frozen upstream networks
    stay outside, in the loss closures). ``evaluate(batch) -> {metric: scalar mean over the batch}`` gives
    validation metrics; ``sample(batch) -> {name: (H, W, 3) uint8}`` gives preview images.
    """

    models: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    phases: list[Phase]
    train_data: Dataset
    val_data: Dataset | None = None
    evaluate: Callable[[Any], Mapping[str, torch.Tensor]] | None = None
    sample: Callable[[Any], Mapping[str, np.ndarray]] | None = None
    collate: Callable[[list[Any]], Any] = default_collate


@dataclass(frozen=True)
class FitResult:
    """How a :func:`fit` call ended."""

    step: int
    stopped_early: bool
    best_metric: float | None
    best_step: int
    val_metrics: dict[str, float]
    train_metrics: dict[str, float]


@dataclass(frozen=True)
class TrainProgress:
    """What :func:`fit` reports after each step (and once before the first): the CLI draws it as a bar.

    ``metrics``: the training metrics of the last ``log_every`` window, averaged over ranks (empty before
    the first window ends); ``rate``: steps per second over that window (None before).
    """

    step: int  # finished steps
    total: int
    metrics: Mapping[str, float]
    rate: float | None


ProgressFn = Callable[[TrainProgress], None]


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def move_to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor inside (dicts, lists, tuples) moved to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {key: move_to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(move_to_device(value, device) for value in batch)
    return batch


def _batch_size(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    values = (
        batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, list | tuple) else ()
    )
    for value in values:
        size = _batch_size(value)
        if size:
            return size
    return 0


@contextlib.contextmanager
def _preserved_rng() -> Iterator[None]:
    """Run a side task (validation, samples) without moving any global RNG."""
    state = capture_rng_state()
    try:
        yield
    finally:
        restore_rng_state(state)


class _InterruptFlag:
    """First Ctrl-C sets :attr:`requested` (the loop stops at the next step boundary); a second one raises."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _InterruptFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)


def _validate(task: TrainTask, config: LoopConfig, env: DistEnv, precision: Precision) -> dict[str, float]:
    """Mean of ``task.evaluate`` over the whole validation set (all ranks together)."""
    assert task.val_data is not None and task.evaluate is not None
    loader = DataLoader(
        Subset(task.val_data, shard_indices(len(task.val_data), env)),  # type: ignore[arg-type]
        batch_size=max(1, config.batch_size // env.world_size),
        shuffle=False,
        collate_fn=task.collate,
        num_workers=config.num_workers,
        generator=torch.Generator(),
    )
    sums: dict[str, float] = {}
    count = 0
    modes = {name: module.training for name, module in task.models.items()}
    for module in task.models.values():
        module.eval()
    try:
        with _preserved_rng(), torch.no_grad():
            for batch in loader:
                batch = move_to_device(batch, env.device)
                with precision.autocast():
                    metrics = task.evaluate(batch)
                size = _batch_size(batch)
                for name, value in metrics.items():
                    sums[name] = sums.get(name, 0.0) + float(value) * size
                count += size
    finally:
        for name, module in task.models.items():
            module.train(modes[name])
    totals = all_reduce_sum({**sums, "__count__": float(count)}, env)
    total_count = totals.pop("__count__")
    if total_count == 0:
        raise DataError("the validation set is empty; add validation clips or set --set loop.val_every=0")
    return {name: value / total_count for name, value in totals.items()}


def _first_batch(dataset: Dataset, size: int, collate: Callable[[list[Any]], Any]) -> Any:
    return collate([dataset[i] for i in range(min(size, len(dataset)))])  # type: ignore[arg-type]


def fit(
    task: TrainTask,
    config: LoopConfig,
    run_dir: Path,
    env: DistEnv,
    resume: bool = False,
    on_step_end: Sequence[Callable[[int], None]] = (),
    progress: ProgressFn | None = None,
) -> FitResult:
    """Train ``task`` up to ``config.steps`` steps (or early stopping), checkpointing into ``run_dir``.

    ``resume`` continues from ``run_dir/checkpoints/last.pt`` exactly. ``on_step_end`` callbacks get the
    number of finished steps. ``progress`` gets a :class:`TrainProgress` after each step, on rank 0 and
    when ``config.progress`` is on. Raises :class:`Interrupted` after Ctrl-C (a checkpoint is written first).
    """
    run_dir = Path(run_dir)
    precision = resolve_precision(config.precision, env.device)
    scaler = precision.make_scaler()
    sampler = ResumableBatchSampler(len(task.train_data), config.batch_size, config.seed, env)  # type: ignore[arg-type]
    if sampler.batches_per_epoch == 0:
        raise DataError(
            f"the training set has {len(task.train_data)} items, fewer than one batch of "  # type: ignore[arg-type]
            f"{config.batch_size}; add data or lower --set loop.batch_size"
        )
    loop_state: dict[str, Any] = {"best": None, "best_step": -1, "bad_rounds": 0, "stopped_early": False}
    val_metrics: dict[str, float] = {}
    step = 0
    if resume:
        state = load_checkpoint(checkpoint_path(run_dir, LAST), env.device)
        restore_training_state(state, task.models, task.optimizers, scaler)
        sampler.load_state_dict(state["sampler"])
        loop_state.update(state["loop"])
        step = int(state["step"])
    else:
        broadcast_module_state(task.models.values(), env)
        seed_everything(config.seed + env.rank)  # same init on every rank (built before), own noise per rank
    for module in task.models.values():
        module.train()

    def save(name: str = LAST, models_only: bool = False) -> None:
        if env.is_main:
            if models_only:
                state = {
                    "version": 1,
                    "step": step,
                    "metric": loop_state["best"],
                    "models": {key: module.state_dict() for key, module in task.models.items()},
                }
            else:
                state = training_state(
                    step, task.models, task.optimizers, scaler, sampler.state_dict(), loop_state
                )
            save_checkpoint(checkpoint_path(run_dir, name), state)
        barrier(env)

    writer = RunWriter(run_dir, env, step, config.tensorboard)
    sample_batch = None
    if task.sample is not None and config.sample_every:
        source = task.val_data if task.val_data is not None else task.train_data
        with _preserved_rng():
            sample_batch = _first_batch(source, sampler.local_batch, task.collate)
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}  # per name: phases with a schedule log only while active
    train_metrics: dict[str, float] = {}
    tick, tick_step = time.perf_counter(), step
    report = progress if env.is_main and config.progress else None
    rate: float | None = None
    if report is not None:
        report(TrainProgress(step, config.steps, {}, None))
    try:
        with _InterruptFlag() as interrupt:
            while step < config.steps and not loop_state["stopped_early"]:
                set_epoch = getattr(task.train_data, "set_epoch", None)
                if set_epoch is not None:  # datasets that draw new windows per epoch (data/datasets.py)
                    set_epoch(sampler.epoch)
                loader = DataLoader(
                    task.train_data,
                    batch_sampler=list(sampler.epoch_batches()),
                    collate_fn=task.collate,
                    num_workers=config.num_workers,
                    pin_memory=env.device.type == "cuda",
                    generator=torch.Generator().manual_seed(config.seed * 100_003 + sampler.epoch),
                )
                for batch in loader:
                    terms = _train_step(
                        task, move_to_device(batch, env.device), step, config, precision, scaler, env
                    )
                    sampler.advance()
                    step += 1
                    for name, value in terms.items():
                        sums[name] = sums.get(name, 0.0) + value
                        counts[name] = counts.get(name, 0) + 1
                    if step % config.log_every == 0 or step == config.steps:
                        train_metrics = all_reduce_mean(
                            {k: float(v) / counts[k] for k, v in sums.items()}, env
                        )
                        now = time.perf_counter()
                        rate = (step - tick_step) / max(now - tick, 1e-9)
                        tick, tick_step = now, step
                        writer.scalars(step, "train", {**train_metrics, "it_s": rate})
                        sums, counts = {}, {}
                    if report is not None:
                        report(TrainProgress(step, config.steps, train_metrics, rate))
                    if (
                        config.val_every
                        and task.evaluate is not None
                        and task.val_data is not None
                        and step % config.val_every == 0
                    ):
                        val_metrics = _validate(task, config, env, precision)
                        writer.scalars(step, "val", val_metrics)
                        if _early_stopping(loop_state, val_metrics, config, step):
                            save(BEST, models_only=True)
                    if sample_batch is not None and step % config.sample_every == 0:
                        with _preserved_rng(), torch.no_grad():
                            writer.images(step, task.sample(move_to_device(sample_batch, env.device)))
                    for callback in on_step_end:
                        callback(step)
                    if any_rank(interrupt.requested, env):
                        save()
                        raise Interrupted(
                            f"training stopped at step {step}; checkpoint saved to "
                            f"{checkpoint_path(run_dir)}; continue with --resume"
                        )
                    if config.checkpoint_every and step % config.checkpoint_every == 0:
                        save()
                    if step >= config.steps or loop_state["stopped_early"]:
                        break
                else:
                    sampler.next_epoch()
            save()
    except KeyboardInterrupt:
        raise Interrupted(
            f"training stopped by a second Ctrl-C during step {step + 1}; the last saved "
            f"checkpoint in {checkpoint_path(run_dir).parent} is kept; continue with --resume"
        ) from None
    finally:
        writer.close()
    return FitResult(
        step=step,
        stopped_early=bool(loop_state["stopped_early"]),
        best_metric=loop_state["best"],
        best_step=int(loop_state["best_step"]),
        val_metrics=val_metrics,
        train_metrics=train_metrics,
    )


def _early_stopping(
    loop_state: dict[str, Any], metrics: Mapping[str, float], config: LoopConfig, step: int
) -> bool:
    """Update the early-stopping bookkeeping; True when ``step`` is a new best (write best.pt)."""
    name = config.early_stop_metric
    if not name:
        return False
    if name not in metrics:
        raise ConfigError(
            f"early-stopping metric {name!r} is not a validation metric of this stage; "
            f"choose one of {', '.join(sorted(metrics))} with --set loop.early_stop_metric=..."
        )
    value = metrics[name]
    best = loop_state["best"]
    if best is None or value < best - config.early_stop_min_delta:
        loop_state.update(best=value, best_step=step, bad_rounds=0)
        return True
    loop_state["bad_rounds"] += 1
    if config.early_stop_patience and loop_state["bad_rounds"] >= config.early_stop_patience:
        loop_state["stopped_early"] = True
    return False


def _train_step(
    task: TrainTask,
    batch: Any,
    step: int,
    config: LoopConfig,
    precision: Precision,
    scaler: torch.amp.GradScaler,
    env: DistEnv,
) -> dict[str, torch.Tensor]:
    """One optimisation step over every active phase; returns the detached loss terms to log."""
    context = StepContext(step=step, device=env.device, precision=precision)
    active = [phase for phase in task.phases if phase.active(step)]
    if not active:
        raise ConfigError(f"no training phase is active at step {step}; check the stage's step schedule")
    logged: dict[str, torch.Tensor] = {}
    for phase in active:
        optimizer = task.optimizers[phase.optimizer]
        params = [param for group in optimizer.param_groups for param in group["params"]]
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            loss, terms = phase.loss(batch, context)
        if not torch.isfinite(loss.detach()):
            raise DataError(
                f"the {phase.name} loss became {loss.item()} at step {step + 1} (terms: "
                f"{ {k: float(v) for k, v in terms.items()} }); lower --set loop.lr, check the data, and "
                "continue from the last checkpoint with --resume"
            )
        scaler.scale(loss).backward()
        average_gradients(params, env)
        if config.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        scaler.step(optimizer)
        prefix = f"{phase.name}." if len(task.phases) > 1 else ""
        logged[f"{prefix}loss"] = loss.detach().float()
        for name, value in terms.items():
            logged[f"{prefix}{name}"] = value.detach().float()
    scaler.update()
    broadcast_module_state(task.models.values(), env, buffers_only=True)
    return logged
