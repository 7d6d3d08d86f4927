"""Measurements of the claims test (``benchmarks/claims.py``): module evidence on the EBM's windows and the
Table II protocol figures of one training seed. See the docstring of ``claims.py`` for what and why.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import learning_kit as kit

from cemnet_core.data.clips import Clip, load_clip
from cemnet_core.data.manifest import ClipRecord, read_manifest, split_records
from cemnet_core.eval import protocol
from cemnet_core.eval.metrics import landmark_distance
from cemnet_core.pipeline import CEMNetPipeline
from cemnet_core.train.config import load_config
from cemnet_core.train.stages import ebm as ebm_stage

EVAL_DATA_SEED = 0  # windows and references of the module evidence: the same items for every seed
BATCH = 16


@dataclass
class ModuleEvidence:
    """M-LMD (px) per method on held-out windows; probe name -> (accuracy, chance, 2 standard errors)."""

    lmd: dict[str, float] = field(default_factory=dict)
    probes: dict[str, tuple[float, float, float]] = field(default_factory=dict)


@dataclass
class ProtocolFigures:
    """(setting, method) -> metric -> mean over held-out clips; ``ea_key``: the EA metric of the claims."""

    ea_key: str
    rows: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)


def ea_metric() -> str:
    """``ea_lower`` (EA on the lower face) when the protocol has it, else the whole-face ``ea``."""
    return "ea_lower" if "ea_lower" in protocol.METRICS else "ea"


# ----------------------------------------------------------------------------------- module evidence


def _windows(
    upstream: ebm_stage.FrozenUpstream, config: ebm_stage.Config, data: Path, split: str, epochs: int,
    extra: Callable[[dict[str, torch.Tensor], tuple[torch.Tensor, ...]], dict[str, np.ndarray]],
) -> dict[str, np.ndarray]:  # fmt: skip
    """Every window of ``split`` for ``epochs`` passes: the EBM inputs, labels, and ``extra``'s outputs."""
    dataset = upstream.dataset(config, data, split)
    identities = ebm_stage.clip_identities(dataset.records, config.identity_frames)
    out: dict[str, list[np.ndarray]] = {}
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        for first in range(0, len(dataset), BATCH):
            items = [dataset[index] for index in range(first, min(first + BATCH, len(dataset)))]
            batch = {key: torch.stack([item[key] for item in items]) for key in items[0]}
            conditions = upstream.conditions(batch, identities)
            target, source, identity, mouth = conditions
            values = {
                "truth": batch["mouth"].numpy(), "a2m": mouth.numpy(), "target": target.numpy(),
                "source": source.numpy(), "identity": identity.numpy(),
                "target_emotion": batch["target_emotion"].numpy(),
                "source_emotion": batch["source_emotion"].numpy(),
                "speaker": batch["speaker"].numpy(), "clip": batch["clip"].numpy(),
                "ref_clip": batch["ref_clip"].numpy(), **extra(batch, conditions),
            }  # fmt: skip
            for key, value in values.items():
                out.setdefault(key, []).append(value)
    return {key: np.concatenate(value) for key, value in out.items()}


def _mean_lmd(predicted: np.ndarray, truth: np.ndarray) -> float:
    pairs = zip(predicted, truth, strict=True)
    return float(np.mean([landmark_distance(p, t, kit.PIXELS) for p, t in pairs]))


def _probe(name: str, evidence: ModuleEvidence, train: tuple, test: tuple, groups: np.ndarray) -> None:
    accuracy, chance = kit.linear_probe(*train, *test)
    n = max(len(np.unique(groups)), 1)  # independent held-out units (clips), not windows
    evidence.probes[name] = (accuracy, chance, 2.0 * float(np.sqrt(chance * (1 - chance) / n)))


def module_evidence(data: Path, a2m: Path, releases: dict[str, Path], epochs: int) -> ModuleEvidence:
    """Part 4 of issue 14 for one seed (see ``claims.py``): M-LMD of each method and the linear probes."""
    config = load_config(ebm_stage.Config, releases["ebm_run"], ignore=["stage"])
    config = dataclasses.replace(config, loop=dataclasses.replace(config.loop, seed=EVAL_DATA_SEED))
    upstream = ebm_stage.FrozenUpstream.load(config, torch.device("cpu"))
    classifier = kit.load(releases["classifier"], "emotion_enhancer").eval()
    memories = {
        "cemnet": kit.load(releases["ebm"], "emotion_memory").eval(),
        "w/o EBM (trained, use_memory=false)": kit.load(releases["ebm_wo_ebm"], "emotion_memory").eval(),
        "w/o AEE (trained, EBM on the classifier)": kit.load(releases["ebm_wo_aee"], "emotion_memory").eval(),
    }  # fmt: skip

    @torch.no_grad()
    def outputs(batch: dict[str, torch.Tensor], conditions: tuple[torch.Tensor, ...]) -> dict[str, Any]:
        target, source, identity, mouth = conditions
        B, G = batch["emotion_mel"].shape[:2]
        segments = batch["emotion_mel"].flatten(0, 1)
        target_wo_aee = classifier.emotion(segments).view(B, G, -1).mean(1)
        logits = upstream.aee.classify_emotion(upstream.aee.emotion(segments)).view(B, G, -1)
        values = {"predicted_emotion": torch.log_softmax(logits, -1).sum(1).argmax(-1).numpy(),
                  "target_wo_aee": target_wo_aee.numpy()}  # fmt: skip
        for name, memory in memories.items():
            emotion = target_wo_aee if name.startswith("w/o AEE") else target
            values[name] = memory(emotion, source, identity, mouth).mouth.numpy()
        return values

    train = _windows(upstream, config, data, "train", epochs, outputs)
    held = [_windows(upstream, config, data, split, epochs, outputs) for split in kit.HELD_OUT]
    test = {key: np.concatenate([h[key] for h in held]) for key in held[0]}
    # ref_clip / clip index the records of their own split: make them unique across the held-out splits
    offset = max(int(held[0]["ref_clip"].max()), int(held[0]["clip"].max())) + 1
    for key in ("ref_clip", "clip"):
        test[key] = np.concatenate([held[0][key], held[1][key] + offset]) if len(held) > 1 else held[0][key]

    evidence = ModuleEvidence()
    truth = test["truth"]
    for name in memories:
        evidence.lmd[name] = _mean_lmd(test[name], truth)
    residual = train["truth"] - train["a2m"]
    per_target = kit.fit_mean_displacement(residual, train["target_emotion"].tolist())
    pairs = list(zip(train["target_emotion"].tolist(), train["source_emotion"].tolist(), strict=True))
    per_pair = kit.fit_mean_displacement(residual, pairs)
    test_pairs = list(zip(test["target_emotion"].tolist(), test["source_emotion"].tolist(), strict=True))
    baselines = {
        "mean displacement / target emotion (true label)": (per_target, test["target_emotion"].tolist()),
        "mean displacement / (target, source) (true labels)": (per_pair, test_pairs),
        "mean displacement / AEE-predicted target emotion": (per_target, test["predicted_emotion"].tolist()),
    }
    for name, (table, keys) in baselines.items():
        evidence.lmd[name] = _mean_lmd(kit.apply_mean_displacement(test["a2m"], keys, table), truth)
    evidence.lmd["Audio2Mouth alone"] = _mean_lmd(test["a2m"], truth)

    for name, features, label, groups in [
        ("source-emotion features -> source emotion", "source", "source_emotion", "ref_clip"),
        ("identity -> source emotion", "identity", "source_emotion", "ref_clip"),
        ("AEE target emotion -> target emotion", "target", "target_emotion", "clip"),
        ("w/o-AEE classifier features -> target emotion", "target_wo_aee", "target_emotion", "clip"),
    ]:  # fmt: skip
        _probe(f"{name} (held-out speakers)", evidence, (train[features], train[label]),
               (test[features], test[label]), test[groups])  # fmt: skip
    keep = train["ref_clip"] % 4 != 0  # identity -> speaker: held-out clips of the training speakers
    _probe("identity -> speaker (training speakers, 1 clip in 4 held out)", evidence,
           (train["identity"][keep], train["speaker"][keep]),
           (train["identity"][~keep], train["speaker"][~keep]), train["ref_clip"][~keep])  # fmt: skip
    return evidence


# ----------------------------------------------------------------------------------- protocol figures

_SHARED: dict[tuple[str, ...], list[dict[str, Any]]] = {}  # rows of the methods every seed shares


def _summarise(rows: list[dict[str, Any]], figures: ProtocolFigures) -> None:
    for key in dict.fromkeys((row["setting"], row["method"]) for row in rows):
        mine = [row for row in rows if (row["setting"], row["method"]) == key]
        figures.rows[key] = {
            metric: float(np.nanmean([row[metric] for row in mine]))
            if any(np.isfinite(row[metric]) for row in mine) else float("nan")
            for metric in protocol.METRICS
        }  # fmt: skip


def spread_targets(records: list[ClipRecord], per_emotion: int, start: int = 0) -> list[ClipRecord]:
    """``per_emotion`` clips of each emotion of ``records`` (one split), sentences taken in turn, the
    emotions in name order rotated by ``start`` (so that a capped list of two splits covers more emotions).

    The protocol's ``max_clips`` keeps the first clips of a split, which are one or two emotions in manifest
    order; the claims need every emotion, so the targets are spread over them.
    """
    by_emotion: dict[str, list[ClipRecord]] = {}
    for record in records:
        by_emotion.setdefault(record.emotion, []).append(record)
    names = sorted(by_emotion)
    names = names[start % len(names) :] + names[: start % len(names)] if names else names
    chosen = []
    for emotion in names:
        clips, rank = by_emotion[emotion], sorted(by_emotion).index(emotion)
        chosen += [clips[(rank + k) % len(clips)] for k in range(min(per_emotion, len(clips)))]
    return chosen


def _evaluate(
    data: Path, pipelines: dict[str, CEMNetPipeline], judges: protocol.Judges, setting: str,
    targets: list[ClipRecord], cache: dict[Path, Clip],
) -> list[dict[str, Any]]:  # fmt: skip
    """:func:`protocol.evaluate`'s loop (pairing seed 0, :func:`protocol.generate_pair` and
    :func:`protocol.score_pair`) on the given targets -> one row per (pair, method)."""
    records = read_manifest(data)
    rows = []
    for pair in protocol.pair_clips(records, targets, setting, seed=0):
        clips = []
        for record in (pair.target, pair.reference):
            if record.path not in cache:
                cache[record.path] = load_clip(record.path)
            clips.append(cache[record.path])
        target, reference = clips
        for method, pipeline in pipelines.items():
            if method == protocol.TRUTH_METHOD:
                generated = protocol.ground_truth_pair(pipeline, target, reference)
            else:
                generated = protocol.generate_pair(pipeline, target, reference, method, judges)
            scores = protocol.score_pair(generated, target, pair.target.emotion, judges)
            rows.append({"setting": setting, "method": method, **scores})
    return rows


def protocol_figures(
    data: Path, a2m: Path, renderer: Path, releases: dict[str, Path], per_emotion: int,
    max_targets: int | None = None,
) -> ProtocolFigures:  # fmt: skip
    """Part 5 of issue 14 for one seed: Table II protocol rows on the held-out splits.

    Targets: ``per_emotion`` clips of each emotion of each held-out split (:func:`spread_targets`), at most
    ``max_targets`` of them per split (None: all).
    Cross-emotion: CEM-Net, w/o AEE, w/o EBM (this seed's networks); Audio2Mouth alone, copy-reference and
    the ground truth (shared by all seeds: evaluated once per process). Neutral-base: Audio2Mouth alone.
    """
    judges = protocol.default_judges(data, None)
    audio_to_mouth = kit.load(a2m, "audio_to_mouth")
    render = kit.load(renderer, "renderer").to(memory_format=torch.channels_last)
    aee = kit.load(releases["aee"], "emotion_enhancer")
    image_emotion = kit.load(releases["image_emotion"], "image_emotion")

    def pipeline(enhancer: torch.nn.Module, memory: str | None) -> CEMNetPipeline:
        ebm = kit.load(releases[memory], "emotion_memory") if memory else None
        return CEMNetPipeline(audio_to_mouth, enhancer, image_emotion, ebm, render, use_ebm=ebm is not None)

    seeded = {
        "cemnet": pipeline(aee, "ebm"),
        "w/o AEE": pipeline(kit.load(releases["classifier"], "emotion_enhancer"), "ebm_wo_aee"),
        "w/o EBM": pipeline(aee, "ebm_wo_ebm"),
    }
    baseline = pipeline(aee, None)
    shared = {protocol.A2M_METHOD: baseline, protocol.COPY_METHOD: baseline, protocol.TRUTH_METHOD: baseline}
    records = read_manifest(data)
    cache: dict[Path, Clip] = {}
    rows: list[dict[str, Any]] = []
    for index, split in enumerate(kit.HELD_OUT):
        start = index * (max_targets or 0)  # capped: the second split takes the next emotions
        targets = spread_targets(split_records(records, split), per_emotion, start)[:max_targets]
        rows += _evaluate(data, seeded, judges, "cross-emotion", targets, cache)
        key = (str(data), str(a2m), str(renderer), split, str(per_emotion), str(max_targets))
        if key not in _SHARED:
            _SHARED[key] = [
                *_evaluate(data, shared, judges, "cross-emotion", targets, cache),
                *_evaluate(data, {protocol.A2M_METHOD: baseline}, judges, "neutral-base", targets, cache),
            ]
        rows += _SHARED[key]
    figures = ProtocolFigures(ea_metric())
    _summarise(rows, figures)
    return figures
