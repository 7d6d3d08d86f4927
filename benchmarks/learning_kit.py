"""Shared pieces of the learning benchmarks (``benchmarks/learning.py``, ``benchmarks/claims.py``).

The procedural corpus (DESIGN section 9) and the stage runs (:func:`build_corpus`, :func:`train`), the
model sizes both benchmarks train, and the pure functions of the claims test: the mean-displacement
baselines of the EBM (Sec. III-C: the EBM adds an emotional lip displacement to Audio2Mouth's mouth, so a
table of mean displacements per emotion is the simplest thing it must beat), a linear probe
(multinomial logistic regression); the holds / does-not-hold verdict of a claim over seeds is
:func:`cemnet_core.eval.claims.verdict`, re-exported here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np
import torch

from cemnet_core.contracts import EMOTIONS
from cemnet_core.data.synthetic import SynthConfig, synth
from cemnet_core.errors import ConfigError
from cemnet_core.eval.claims import verdict  # noqa: F401 (re-exported for the benchmarks)
from cemnet_core.preprocess import PreprocessOptions, preprocess
from cemnet_core.train.checkpoint import LAST, checkpoint_path
from cemnet_core.train.stages import export_run, train_stage

HELD_OUT = ("val", "test")
PIXELS = 128.0  # crop-normalised landmarks -> pixels of the 128x128 crop
COMMON = ['preset="tiny"', "loop.progress=false", "loop.tensorboard=false", 'loop.early_stop_metric=""']
# Audio2Mouth a little larger than the tiny preset (5 references, 5 frames as in the paper).
A2M_MODEL = ["model.dim=64", "model.feedforward=128", "model.layers=2", "model.num_refs=5",
             "model.num_frames=5", "model.audio_channels=[8, 16, 32, 32]", "loop.batch_size=16",
             "loop.lr=1e-3"]  # fmt: skip
AEE_MODEL = ["model.segment_frames=32", "model.channels=[8, 8, 16, 16]", "model.hidden=32",
             "model.emotion_dim=16", "model.timbre_dim=16", "model.content_dim=16", "loop.batch_size=16",
             "loop.lr=1e-3"]  # fmt: skip
EBM_MODEL = ["model.target_emotion_dim=16", "model.dim=32", "model.key_dim=32", "model.hidden=64",
             "model.memory_slots=16", "loop.batch_size=16", "loop.lr=1e-3", "emotion_segments=4"]  # fmt: skip
# The renderer of the demo's default (128 px, starts from its landmark warp; FER2013 perceptual network).
RENDERER_MODEL = ["model.image_size=128", "model.flow_scale=0.5", "model.flow_channels=[16, 32]",
                  "model.generator_channels=[16, 32]", 'vgg_weights="fer2013.mini_xception"',
                  "loop.batch_size=4"]  # fmt: skip


def log(message: str) -> None:
    """Progress line with a wall-clock stamp."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------------------------- corpus


def build_corpus(work: Path, speakers: int, sentences: int, workers: int) -> Path:
    """``cemnet synth`` (emotions at level 3, neutral at 1), ``cemnet preprocess mead --landmarks true``."""
    data = work / "data"
    if (data / "manifest.jsonl").is_file():
        log(f"corpus: reusing {data}")
        return data
    emotional = tuple(name for name in EMOTIONS if name != "neutral")
    size = {"speakers": speakers, "sentences": sentences}
    parts = {"src_emotional": SynthConfig(**size, emotions=emotional, levels=(3,)),
             "src_neutral": SynthConfig(**size, emotions=("neutral",), levels=(1,))}  # fmt: skip
    for name, config in parts.items():
        start = time.perf_counter()
        synth(config, work / name, workers=workers, overwrite=True)
        log(f"synth {name}: {time.perf_counter() - start:.0f} s")
    for name in parts:
        start = time.perf_counter()
        summary = preprocess("mead", work / name, data, workers=workers,
                             options=PreprocessOptions(landmarks="true"), show_progress=False)  # fmt: skip
        log(f"preprocess {name}: {summary.processed} clips, {summary.failed} failed, "
            f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    return data


# --------------------------------------------------------------------------------------------- training


def train(
    stage: str, data: Path, work: Path, name: str, steps: int, overrides: Sequence[str],
    export_as: str | None = None,
) -> Path:  # fmt: skip
    """Train (or resume) run ``work/runs/name`` to ``steps``, export it to ``work/weights/<export_as>``.

    ``export_as`` defaults to ``name``; a run trained further later (a snapshot, e.g. the AEE after its
    pre-training only) exports each stop under its own name. A weights folder already there is reused.
    """
    run = work / "runs" / name
    weights = work / "weights" / (export_as or name)
    if (weights / "done").is_file():
        return weights
    start = time.perf_counter()
    settings = [*COMMON, f"loop.val_every={steps}", f"loop.checkpoint_every={steps}",
                f"loop.log_every={max(1, steps // 10)}", *overrides]  # fmt: skip
    if checkpoint_path(run, LAST).exists():
        train_stage(stage, data, run, resume=True, device="cpu", steps=steps)
    else:
        train_stage(stage, data, run, overrides=settings, device="cpu", steps=steps)
    export_run(run, weights)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_records = [record for record in records if record["split"] == "train"]
    first, final = train_records[0], train_records[-1]
    begin, end = (next(k for k in record if k.endswith("loss")) for record in (first, final))
    (weights / "done").write_text(f"{steps}\n")
    log(f"trained {export_as or name} ({stage}): {steps} steps in {time.perf_counter() - start:.0f} s; "
        f"{begin} {first[begin]:.4g} -> {end} {final[end]:.4g}")  # fmt: skip
    return weights


def load(folder: Path, kind: str) -> torch.nn.Module:
    """The model of a release folder (:func:`cemnet_core.release.load_model`)."""
    from cemnet_core.release import load_model

    return load_model(folder, kind)


# ----------------------------------------------------------------------- mean-displacement baselines


def fit_mean_displacement(residuals: np.ndarray, keys: Sequence[Hashable]) -> dict[Hashable, np.ndarray]:
    """Mean lip displacement per key: the table of the mean-displacement baselines.

    residuals: (W, T, K, 2) ground-truth mouth minus Audio2Mouth's mouth of W training windows (the
    displacement the EBM must add, Sec. III-C); keys: W keys (a target emotion, or a (target, source)
    pair). Returns key -> (K, 2), the mean over the windows and frames of that key; the key ``None`` holds
    the mean over all windows (used for a key never seen in training).
    """
    residuals = np.asarray(residuals, dtype=np.float64)
    if residuals.ndim != 4 or len(residuals) != len(keys) or len(keys) == 0:
        raise ConfigError(
            f"residuals must be (W, T, K, 2) with one key per window; got {residuals.shape} and "
            f"{len(keys)} keys"
        )
    table: dict[Hashable, np.ndarray] = {None: residuals.mean(axis=(0, 1))}
    for key in dict.fromkeys(keys):
        chosen = [i for i, k in enumerate(keys) if k == key]
        table[key] = residuals[chosen].mean(axis=(0, 1))
    return table


def apply_mean_displacement(
    mouth: np.ndarray, keys: Sequence[Hashable], table: dict[Hashable, np.ndarray]
) -> np.ndarray:
    """Audio2Mouth's mouth (B, T, K, 2) plus the table's displacement of each item's key (B keys)."""
    shift = np.stack([table.get(key, table[None]) for key in keys])  # (B, K, 2)
    return np.asarray(mouth, dtype=np.float64) + shift[:, None]


# ------------------------------------------------------------------------------------- linear probe


def linear_probe(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
    steps: int = 300, weight_decay: float = 1e-3, seed: int = 0,
) -> tuple[float, float]:  # fmt: skip
    """Multinomial logistic regression fitted on (train_x, train_y) -> (held-out accuracy, chance).

    Features are standardised with the training mean and std; full-batch L-BFGS on the cross-entropy with
    an L2 penalty ``weight_decay``. Chance is the held-out frequency of the most frequent held-out class:
    the best a constant guess can score there, so a probe above it has read something from the features.
    """
    train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)
    train_y, test_y = np.asarray(train_y, np.int64), np.asarray(test_y, np.int64)
    if train_x.ndim != 2 or test_x.ndim != 2 or train_x.shape[1] != test_x.shape[1]:
        raise ConfigError(f"probe features must be (n, D), one D; got {train_x.shape} and {test_x.shape}")
    if len(train_x) != len(train_y) or len(test_x) != len(test_y) or len(test_y) == 0:
        raise ConfigError("probe: one label per feature row and at least one held-out row are needed")
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    x = torch.from_numpy((train_x - mean) / std).float()
    y = torch.from_numpy(train_y)
    classes = int(max(train_y.max(), test_y.max())) + 1
    generator = torch.Generator().manual_seed(seed)
    weight = (0.01 * torch.randn(x.shape[1], classes, generator=generator)).requires_grad_(True)
    bias = torch.zeros(classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight + bias, y) + weight_decay * weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        predicted = (torch.from_numpy((test_x - mean) / std).float() @ weight + bias).argmax(-1).numpy()
    return float(np.mean(predicted == test_y)), float(np.bincount(test_y).max() / len(test_y))


# ------------------------------------------------------------------------------------------- claims


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """(mean, population std) of per-seed values, NaN-free input expected."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std())
