"""Training stages (DESIGN section 6) and the two entry points of ``cemnet train`` / ``cemnet export``.

A stage is a module of this package that provides (the :class:`Stage` protocol):

- ``Config``: its frozen config dataclass, with a ``[loop]`` table (:class:`LoopConfig`), its model config(s)
  and the paper's hyper-parameters; ``Config.presets()`` names ``paper`` and ``tiny``;
- ``build_task(config, data, env) -> TrainTask``: models, optimisers, datasets and the loss step (with the
  paper's equation numbers beside each term);
- ``releases(config) -> {folder: (model name in the task, model kind, model config)}``: what ``cemnet export``
  writes as release folders.

Register a stage with one line in :data:`STAGES`.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from cemnet_core.errors import ConfigError, InputError
from cemnet_core.train.checkpoint import BEST, LAST, checkpoint_path, load_checkpoint
from cemnet_core.train.config import CONFIG_FILE, load_config, resolve_config, save_config
from cemnet_core.train.distributed import init_distributed, shutdown_distributed
from cemnet_core.train.loop import FitResult, ProgressFn, TrainTask, fit, seed_everything
from cemnet_core.train.stages import a2m, aee, ebm, emotion, renderer, syncnet

ReleaseSpec = dict[str, tuple[str, str, Any]]


class Stage(Protocol):
    """What a stage module provides (see the module docstring)."""

    Config: type

    def build_task(self, config: Any, data: Path, env: Any) -> TrainTask: ...

    def releases(self, config: Any) -> ReleaseSpec: ...


STAGES: dict[str, ModuleType] = {
    "a2m": a2m,
    "renderer": renderer,
    "aee": aee,
    "emotion": emotion,
    "ebm": ebm,
    "syncnet": syncnet,
}


def get_stage(name: str) -> ModuleType:
    """The stage module called ``name``; :class:`ConfigError` listing the known ones otherwise."""
    if name not in STAGES:
        raise ConfigError(f"unknown training stage {name!r}; choose one of {', '.join(STAGES)}")
    return STAGES[name]


def train_stage(
    stage: str,
    data: Path,
    run: Path,
    config_file: Path | None = None,
    overrides: Sequence[str] = (),
    resume: bool = False,
    device: str | None = None,
    steps: int | None = None,
    on_step_end: Sequence[Callable[[int], None]] = (),
    progress: ProgressFn | None = None,
) -> FitResult:
    """Train ``stage`` on the processed folder ``data`` into the run folder ``run``.

    A new run resolves its config (preset, ``config_file``, ``overrides``) and writes it to
    ``run/config.toml`` before the first step; ``resume`` reads that file back (``steps`` may extend the
    run; other changes are refused so that the resumed run is the run that was started). Works alone or
    under ``torchrun`` (every process calls this; rank 0 writes). ``progress``: see :func:`fit`.
    """
    module = get_stage(stage)
    run = Path(run)
    if resume:
        if config_file is not None or overrides:
            raise ConfigError(
                "a resumed run keeps the config it started with (run/config.toml); drop "
                "--config/--set, or start a new --run"
            )
        saved_stage = _saved_stage(run)
        if saved_stage != stage:
            raise ConfigError(f"{run} is a {saved_stage!r} run, not {stage!r}; resume it with that stage")
        config = load_config(module.Config, run, ignore=["stage"])
    else:
        if checkpoint_path(run, LAST).exists():
            raise ConfigError(
                f"{run} already holds a training run; continue it with --resume or choose a new --run folder"
            )
        config = resolve_config(module.Config, config_file, overrides, stage=stage)
    if steps is not None:
        config = dataclasses.replace(config, loop=dataclasses.replace(config.loop, steps=steps))
    env = init_distributed(device)
    try:
        if env.is_main:
            save_config(config, run, extra={"stage": stage})
        seed_everything(config.loop.seed)  # the same initial weights on every rank
        task = module.build_task(config, Path(data), env)
        return fit(task, config.loop, run, env, resume=resume, on_step_end=on_step_end, progress=progress)
    finally:
        shutdown_distributed(env)


def _saved_stage(run: Path) -> str:
    path = run / CONFIG_FILE
    try:
        return str(tomllib.loads(path.read_text(encoding="utf-8"))["stage"])
    except FileNotFoundError as exc:
        raise InputError(f"{run} is not a training run folder (no {CONFIG_FILE}); check the path") from exc
    except (tomllib.TOMLDecodeError, KeyError) as exc:
        raise InputError(f"{path} is damaged ({exc}); it cannot be resumed or exported") from exc


def export_run(run: Path, dst: Path) -> list[Path]:
    """Write the release folders of a run (best validation checkpoint if any, else the last) under ``dst``."""
    from cemnet_core.release import save_release  # the release format is only needed here

    run, dst = Path(run), Path(dst)
    stage = _saved_stage(run)
    module = get_stage(stage)
    config = load_config(module.Config, run, ignore=["stage"])
    best, last = checkpoint_path(run, BEST), checkpoint_path(run, LAST)
    if not best.exists() and not last.exists():
        raise InputError(f"{run} has no checkpoint yet ({last}); train it for at least one step first")
    state = load_checkpoint(best if best.exists() else last)
    folders = []
    for folder, (model_name, kind, model_config) in module.releases(config).items():
        folders.append(save_release(dst / folder, state["models"][model_name], kind, model_config))
    return folders
