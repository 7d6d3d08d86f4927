"""Atomic, exactly-resumable training checkpoints.

A checkpoint is one file ``<run>/checkpoints/last.pt`` (plus ``best.pt`` holding the models at the best
validation score) with::

    version      int
    step         int                      optimiser steps done
    models       {name: state_dict}       every trained module of the stage
    optimizers   {name: state_dict}
    scaler       GradScaler state (empty when fp16 is off)
    sampler      {epoch, position, seed, num_items, global_batch}
    rng          {python, numpy, torch, cuda}   generator states of every RNG the loop uses
    loop         {best, best_step, bad_rounds, ...}   early-stopping bookkeeping of the loop
    extra        anything a stage adds (plain tensors / numbers / strings)

Restoring all of it makes a stopped and resumed run end bit-identical to an unbroken run (tested).
Files are written to a temporary name in the same folder, flushed to disk and renamed over the old one, so a
crash while saving leaves the previous checkpoint intact. These are our own files: ``torch.save`` of plain
state dicts and ``torch.load(weights_only=True)``; nothing downloaded is ever loaded here.
"""

from __future__ import annotations

import os
import pickle
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cemnet_core.errors import InputError
from cemnet_core.fileio import disk_full, temp_beside, write_error

CHECKPOINT_VERSION = 1
CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"


def checkpoint_path(run_dir: Path, name: str = LAST) -> Path:
    """``<run>/checkpoints/<name>``."""
    return Path(run_dir) / CHECKPOINT_DIR / name


def capture_rng_state() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's global generators (and CUDA's when in use)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Put every global generator back to what :func:`capture_rng_state` recorded."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state: Mapping[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file + fsync + rename)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_beside(path)
    except OSError as exc:
        raise write_error(path, exc, "checkpoint ") from exc
    try:
        with open(tmp, "wb") as stream:
            torch.save(dict(state), stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch.save reports a full disk as a RuntimeError
        full = disk_full(path, exc)  # asked while the temp file still fills the disk
        tmp.unlink(missing_ok=True)
        if isinstance(exc, RuntimeError) and not full:
            raise  # a bug (something torch cannot save), not the user's disk
        raise write_error(path, exc, "checkpoint ", full) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: plain data only)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"no checkpoint at {path}; start the run without --resume (or check the --run folder)"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch's own text is pages of advice (ANSI codes, "weights_only=False")
        if isinstance(exc, pickle.UnpicklingError) and "Unsupported global" in str(exc):
            raise InputError(  # Python objects beyond plain data: never unpickled, whatever torch suggests
                f"checkpoint {path} holds pickled Python objects, not plain tensors, so it is not loaded "
                "(unpickling can run code); use a checkpoint written by `cemnet train`"
            ) from None
        raise InputError(
            f"checkpoint {path} cannot be read (truncated, corrupt or not a PyTorch file); delete it and "
            "train again, or use the run's other checkpoint"
        ) from None
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise InputError(f"{path} is not a CEMNet v{CHECKPOINT_VERSION} checkpoint; start a new --run")
    return state


def training_state(
    step: int,
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    scaler: torch.amp.GradScaler,
    sampler_state: Mapping[str, int],
    loop_state: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything needed to continue training exactly, as one plain dict (see the module docstring)."""
    return {
        "version": CHECKPOINT_VERSION,
        "step": int(step),
        "models": {name: module.state_dict() for name, module in models.items()},
        "optimizers": {name: optimizer.state_dict() for name, optimizer in optimizers.items()},
        "scaler": scaler.state_dict(),
        "sampler": dict(sampler_state),
        "rng": capture_rng_state(),
        "loop": dict(loop_state),
        "extra": dict(extra or {}),
    }


def restore_training_state(
    state: Mapping[str, Any],
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    scaler: torch.amp.GradScaler,
) -> None:
    """Load models, optimisers, scaler and RNG states from ``state`` (sampler and loop state: the caller).

    Raises :class:`InputError` when the checkpoint holds other modules than the stage builds (a different
    stage or config).
    """
    if set(state["models"]) != set(models) or set(state["optimizers"]) != set(optimizers):
        raise InputError(
            f"the checkpoint holds models {sorted(state['models'])} and optimisers "
            f"{sorted(state['optimizers'])}, this stage builds {sorted(models)} and {sorted(optimizers)}; "
            "resume with the same stage and config"
        )
    for name, module in models.items():
        try:
            module.load_state_dict(state["models"][name])
        except RuntimeError as exc:
            raise InputError(
                f"checkpoint weights of {name!r} do not fit the configured model ({exc}); "
                "resume with the config the run started with"
            ) from exc
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(state["optimizers"][name])
    if state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    restore_rng_state(state["rng"])
