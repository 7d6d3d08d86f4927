"""The evaluation protocol of Table II (Sec. IV-D): settings, pairing with a seed, methods, runs.

Settings (DESIGN section 7):

- ``neutral-base``: the references come from a *neutral* clip of the target's speaker (not the target);
- ``cross-emotion``: the references come from a clip of the same speaker whose emotion differs from the
  driving audio's and is not neutral, chosen with the run's seed;
- ``self``: the paper's self-reconstruction setting (its LRS2 evaluation, Tables III and V): the references
  are ``N`` random valid frames (the run's seed) of the target clip itself, the driving audio is its own
  audio and the clip is the ground truth; no emotion label is needed (EA is n/a on unlabelled clips).

``landmarks="truth"`` renders every method from the ground truth's own mouth landmarks instead of the
predicted ones: with ``self`` that measures the renderer alone (Table III's protocol for the renderer).

Ground truth is the clip of the driving audio (its frames, true or tracked landmarks and emotion label).
Targets are the clips of the ``test`` split (speaker-held-out, ``manifest.split_records``)
or of another split chosen by the caller. ``runs`` seeds (0 .. runs-1) each draw a new pairing; the table
reports the mean and standard deviation over runs of the per-run means over clips.

Generation for one (target, reference) pair, all in the 128x128 crop space of the processed clips:
N references = the reference clip's frames with the most different mouths (``choose_references``);
pose landmarks and the upper half of the target image = the ground-truth clip's (as IP-LAP-style
landmark-to-video evaluations do: only the mouth is generated, so the metrics measure the mouth);
mel windows and AEE segments from the driving clip's mel.

Methods (:data:`METHOD_DESCRIPTIONS`; the ablations are the trained models of Table IV, Sec. IV-F, loaded
from the bundle's ``ablations/`` folder by :meth:`CEMNetPipeline.from_bundle`):

- ``cemnet``: the full model;
- ``w/o AEE`` (``--ablate aee``): the AEE emotion encoder replaced by an audio emotion classifier without
  its softmax (the AEE trained by emotion classification only, no cross-reconstruction), with an EBM
  trained on it;
- ``w/o EBM`` (``--ablate ebm``): no memories, the cross-emotion features go straight into the landmark
  decoder (an EBM trained with ``use_memory=false``);
- baselines: ``a2m (no emotion)``, the Audio2Mouth mouth without any emotion model, and
  ``copy-reference``, the first reference's mouth held still; both rendered by the full model's renderer;
- ``ground truth`` (Table II's "Ground Truth" row, run with the baselines): the judges' scores of the target
  clip's own frames, scored once per pair by :func:`score_pair` like every method (frames at its pipeline's
  crop size, the clip's true mouth, the references the methods used). Its EA and EA on the lower face are
  the emotion judges' accuracies on real frames, its LSE-C / LSE-D the expert's on real sync, its CSIM real
  frames vs the references; PSNR of a clip with itself is infinite (shown n/a, Table II's "-"), SSIM 1 and
  M-LMD 0, as in Table II.

EA is reported twice: on the whole face, as the paper does (``ea``), and on the lower face (``ea_lower``),
the region the methods generate; the upper face is the ground truth's for every method, so only
``ea_lower`` says something about what a method made.

Shapes: ``T`` frames, ``N`` references, ``S`` crop side.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from cemnet_core.bundle import find_optional_release
from cemnet_core.contracts import ALL, ALL_MOUTH, MOUTH, POSE
from cemnet_core.data import landmarks as lm
from cemnet_core.data.audio import driving_mel
from cemnet_core.data.clips import Clip, load_clip
from cemnet_core.data.manifest import ClipRecord, read_manifest, split_records
from cemnet_core.data.mel_stream import MelArray
from cemnet_core.errors import ConfigError, DataError
from cemnet_core.eval import metrics
from cemnet_core.eval.judges import (
    EmotionJudge,
    IdentityJudge,
    LipSyncJudge,
    LowerFaceJudge,
    MediaPipeMouthJudge,
)
from cemnet_core.identity import mean_identity
from cemnet_core.pipeline import CEMNetPipeline
from cemnet_core.references import choose_references

SETTINGS = ("neutral-base", "cross-emotion")  # Table II's (``cemnet eval --setting both``)
SELF = "self"  # Table III's self-reconstruction
ALL_SETTINGS = (*SETTINGS, SELF)
LANDMARK_SOURCES = ("predicted", "truth")
ABLATIONS = ("aee", "ebm")
JUDGE_STEPS = 1500  # training steps of each corpus judge (corpus_judges.train_corpus_judge)
A2M_METHOD, COPY_METHOD, TRUTH_METHOD = "a2m (no emotion)", "copy-reference", "ground truth"
METHOD_DESCRIPTIONS = {
    "cemnet": "CEM-Net, the full model (AEE + EBM)",
    "w/o AEE": "AEE replaced by an audio emotion classifier without softmax (no cross-reconstruction), "
    "EBM retrained on it",
    "w/o EBM": "no Emotion Bridging Memory: cross-emotion features straight into the landmark decoder",
    A2M_METHOD: "baseline: Audio2Mouth without emotion (no AEE, no EBM)",
    COPY_METHOD: "baseline: the first reference's mouth held still",
    TRUTH_METHOD: "the target's own frames, scored like every method (Table II's Ground Truth row; "
    "PSNR n/a, SSIM 1 and M-LMD 0: the clip against itself)",
}
METRICS = ("psnr", "ssim", "m_lmd", "ea", "ea_lower", "csim", "lse_c", "lse_d")
CROP = 128


@dataclass(frozen=True)
class Pair:
    """One evaluation item: the driving/ground-truth clip and the clip the references come from."""

    target: ClipRecord
    reference: ClipRecord


def pair_clips(records: list[ClipRecord], targets: list[ClipRecord], setting: str, seed: int) -> list[Pair]:
    """Pair each target with a reference clip of the same speaker for ``setting`` (see module docstring).

    Targets without a candidate (no neutral clip, or no clip in another non-neutral emotion) are skipped.
    The same seed gives the same pairs.
    """
    if setting not in ALL_SETTINGS:
        raise ConfigError(f"unknown setting {setting!r}; use one of {', '.join(ALL_SETTINGS)}")
    rng = np.random.default_rng([seed, ALL_SETTINGS.index(setting)])
    if setting == SELF:  # the clip is its own reference (frames drawn in generate_pair)
        return [Pair(target, target) for target in targets]
    pairs = []
    for target in targets:
        if not target.emotion:
            raise DataError(
                f"{target.path} has no emotion label; evaluation needs an emotional corpus (MEAD)"
            )
        same = [r for r in records if r.speaker == target.speaker and r.path != target.path]
        if setting == "neutral-base":
            candidates = [r for r in same if r.emotion == "neutral"]
        else:
            candidates = [r for r in same if r.emotion not in (target.emotion, "neutral")]
        if candidates:
            pairs.append(Pair(target, candidates[int(rng.integers(len(candidates)))]))
    return pairs


@dataclass
class Judges:
    """The fixed networks that score a method (see :mod:`cemnet_core.eval.judges`).

    mouth: None compares the predicted mouth with the clip's stored landmarks (true landmarks on the
    procedural corpus); a :class:`MediaPipeMouthJudge` runs the same detector on generated and GT frames.
    identity_of_references: the 128-d identity the EBM is conditioned on (dlib on real or drawn faces);
    needed only by methods that use the EBM. emotion_lower: the judge of EA on the lower face
    (``ea_lower``; None: that column is NaN).
    """

    emotion: EmotionJudge
    identity: IdentityJudge
    lipsync: LipSyncJudge | None = None
    mouth: MediaPipeMouthJudge | None = None
    identity_of_references: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    emotion_lower: LowerFaceJudge | None = None


def dlib_reference_identity(images: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Mean dlib embedding (128,) of reference crops (N, S, S, 3); landmarks (N, 478, 2) crop-normalised."""
    from cemnet_core.identity import IdentityEncoder

    side = images.shape[1]
    return mean_identity(IdentityEncoder().embed_batch(images, landmarks=landmarks * side))


@dataclass
class Generated:
    """What a method produced for one pair: frames (T, S, S, 3) uint8 and mouth (T, 57, 2) crop-normalised."""

    frames: np.ndarray
    mouth: np.ndarray
    references: np.ndarray  # (N, S, S, 3) uint8


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """(n, H, W, 3) uint8 -> (n, size, size, 3) (area interpolation; unchanged when already that size)."""
    if frames.shape[1:3] == (size, size):
        return frames
    return np.stack([cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA) for frame in frames])


def pair_references(
    pipeline: CEMNetPipeline, target: Clip, reference: Clip, reference_frames: np.ndarray | None = None
) -> np.ndarray:
    """Frame indices (N,) of ``reference`` that a method of ``pipeline`` uses as its N references:
    ``reference_frames`` when given (the ``self`` setting), else the N most different mouths."""
    usable = np.flatnonzero(reference.valid)
    if usable.size == 0 or not target.valid.any():
        raise DataError("a clip of the pair has no face in any frame; re-run preprocessing or drop the clip")
    if reference_frames is not None:
        return np.asarray(reference_frames, dtype=np.int64)
    count = pipeline.num_refs  # N (5 in the paper)
    return usable[choose_references(lm.select(reference.landmarks[usable], MOUTH), count)]


def ground_truth_pair(
    pipeline: CEMNetPipeline, target: Clip, reference: Clip, reference_frames: np.ndarray | None = None
) -> Generated:
    """The ``ground truth`` method: the target's own frames at ``pipeline``'s crop size, its true mouth
    (T, 57, 2) and the references a method of ``pipeline`` would use, for :func:`score_pair`."""
    chosen = pair_references(pipeline, target, reference, reference_frames)
    return Generated(
        resize_frames(target.frames, pipeline.image_size),
        lm.select(target.landmarks, MOUTH).astype(np.float32),  # (T, 57, 2)
        resize_frames(reference.frames[chosen], pipeline.image_size),  # (N, S, S, 3)
    )


def generate_pair(
    pipeline: CEMNetPipeline,
    target: Clip,
    reference: Clip,
    method: str,
    judges: Judges,
    batch_size: int | None = None,
    reference_frames: np.ndarray | None = None,
    landmarks: str = "predicted",
) -> Generated:
    """Run one method on one pair (module docstring) -> :class:`Generated`.

    reference_frames: frame indices of ``reference`` to use (the ``self`` setting's random frames); None
    picks the N most different mouths. landmarks: ``"predicted"`` or ``"truth"`` (render from the target's
    own mouth landmarks; see the module docstring).
    """
    if landmarks not in LANDMARK_SOURCES:
        raise ConfigError(f"landmarks must be one of {', '.join(LANDMARK_SOURCES)}, got {landmarks!r}")
    T = target.num_frames
    chosen = pair_references(pipeline, target, reference, reference_frames)
    ref_frames = resize_frames(reference.frames[chosen], pipeline.image_size)  # (N, S, S, 3)
    ref_all = lm.select(reference.landmarks[chosen], ALL)  # (N, 135, 2)
    mouth = None  # predicted by the pipeline
    if method == COPY_METHOD:
        mouth = torch.from_numpy(ref_all[0, ALL_MOUTH]).expand(T, -1, -1).clone()  # (T, 57, 2)
    elif landmarks == "truth":
        mouth = torch.from_numpy(lm.select(target.landmarks, MOUTH).astype(np.float32))  # (T, 57, 2)
    identity = None
    if mouth is None and pipeline.use_ebm:
        if judges.identity_of_references is None:
            raise ConfigError(
                "methods with the EBM need identity_of_references (e.g. dlib_reference_identity)"
            )
        identity = judges.identity_of_references(ref_frames, reference.landmarks[chosen])
    animation = pipeline.animate(
        pipeline.references(ref_frames, ref_all, identity),
        MelArray(driving_mel(target.audio, pipeline.speech_lufs, target.mel)),  # generate's speech level
        lm.select(target.landmarks, POSE),  # (T, 78, 2)
        resize_frames(target.frames, pipeline.image_size),
        mouth=mouth,
        batch_size=batch_size,
    )
    return Generated(animation.frames, animation.mouth.numpy(), ref_frames)


def score_pair(generated: Generated, target: Clip, emotion: str, judges: Judges) -> dict[str, float]:
    """Table II metrics of one generated clip against its ground truth, plus ``ea_lower``: EA on the lower
    face, the region the method generates (every method is given the true upper face, so whole-face EA
    is much the same for every row); see :mod:`cemnet_core.eval.corpus_judges` and
    :mod:`cemnet_core.eval.fer` for what each lower-face judge sees."""
    frames, truth = generated.frames, resize_frames(target.frames, generated.frames.shape[1])
    valid = target.valid
    scores = {
        "psnr": metrics.psnr(frames[valid], truth[valid]),
        "ssim": metrics.ssim(frames[valid], truth[valid]),
    }
    if judges.mouth is None:
        true_mouth = lm.select(target.landmarks, MOUTH).astype(np.float64)  # (T, 57, 2)
        true_mouth[~valid] = np.nan
        scores["m_lmd"] = metrics.landmark_distance(generated.mouth, true_mouth, scale=CROP)
    else:
        scores["m_lmd"] = metrics.landmark_distance(
            judges.mouth.mouth(frames), judges.mouth.mouth(truth), scale=frames.shape[2]
        )
    scores["ea"] = scores["ea_lower"] = float("nan")  # unlabelled clips (the self setting on LRS2-like data)
    if emotion:
        label = [judges.emotion.target_index(emotion)] * len(frames)
        scores["ea"] = metrics.emotion_accuracy(judges.emotion.logits(frames), label)
        if judges.emotion_lower is not None:
            lower = judges.emotion_lower.lower_logits(frames, generated.references)
            label = [judges.emotion_lower.target_index(emotion)] * len(frames)
            scores["ea_lower"] = metrics.emotion_accuracy(lower, label)
    reference = judges.identity.embed(generated.references).mean(axis=0)
    scores["csim"] = metrics.identity_similarity(judges.identity.embed(frames), reference)
    scores["lse_c"] = scores["lse_d"] = float("nan")
    if judges.lipsync is not None and len(target.audio) > 0:
        sync = judges.lipsync.scores(frames, target.audio.astype(np.float32) / 32768.0)
        scores["lse_c"], scores["lse_d"] = sync.lse_c, sync.lse_d
    return scores


@dataclass
class EvalResult:
    """Per-clip rows and per (setting, method) aggregates (mean and std over runs of per-run means)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, dict[str, dict[str, tuple[float, float]]]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)
    example_truth: np.ndarray | None = None  # (T, S, S, 3) ground truth of the first pair
    examples: dict[str, np.ndarray] = field(default_factory=dict)  # method -> its (T, S, S, 3) frames


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    """setting -> method -> metric -> (mean, std) over seeds of the mean over that seed's clips.

    Settings follow :data:`ALL_SETTINGS`; methods the order in which they first appear in ``rows``.
    """
    summary: dict[str, dict[str, dict[str, tuple[float, float]]]] = {}
    first_seen = dict.fromkeys((r["setting"], r["method"]) for r in rows)  # methods keep the caller's order
    keys = sorted(first_seen, key=lambda k: ALL_SETTINGS.index(k[0]))
    for setting, method in keys:
        mine = [r for r in rows if r["setting"] == setting and r["method"] == method]
        per_seed = {}
        for seed in sorted({r["seed"] for r in mine}):
            of_seed = [r for r in mine if r["seed"] == seed]
            per_seed[seed] = {m: float(np.nanmean([r[m] for r in of_seed])) if any(
                np.isfinite(r[m]) for r in of_seed) else float("nan") for m in METRICS}  # fmt: skip
        summary.setdefault(setting, {})[method] = {
            m: metrics.mean_std([values[m] for values in per_seed.values()]) for m in METRICS
        }
    return summary


def methods_for(ablate: tuple[str, ...], baselines: bool) -> list[str]:
    """The methods to run: the full model, one row per ablation, and the baselines (``a2m (no emotion)``,
    ``copy-reference``) and ``ground truth`` when ``baselines``; see :data:`METHOD_DESCRIPTIONS`."""
    unknown = sorted(set(ablate) - set(ABLATIONS))
    if unknown:
        raise ConfigError(f"unknown ablation(s) {unknown}; use aee and/or ebm")
    methods = ["cemnet"] + [f"w/o {name.upper()}" for name in ABLATIONS if name in ablate]
    return methods + ([A2M_METHOD, COPY_METHOD, TRUTH_METHOD] if baselines else [])


def evaluate(
    data: str | os.PathLike[str],
    pipelines: dict[str, CEMNetPipeline],
    judges: Judges,
    settings: tuple[str, ...] = SETTINGS,
    runs: int = 1,
    split: str = "test",
    max_clips: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    landmarks: str = "predicted",
) -> EvalResult:
    """Run every method of ``pipelines`` (method name -> pipeline; ``copy-reference`` uses only its
    renderer, ``ground truth`` only its crop size and number of references) on every setting for ``runs``
    seeds; returns per-clip rows and the summary.

    max_clips: keep only the first targets of the split (quick looks); None for all. landmarks:
    ``"truth"`` renders from the ground truth's mouth landmarks (module docstring).
    """
    if runs < 1:
        raise ConfigError(f"--runs must be >= 1, got {runs}")
    records = read_manifest(data)
    targets = split_records(records, split)[:max_clips]
    jobs = [
        (s, seed, p) for s in settings for seed in range(runs) for p in pair_clips(records, targets, s, seed)
    ]
    if not jobs:
        raise DataError(
            f"no evaluation pairs in {data} (split {split!r}): each target needs another clip of "
            "its speaker, neutral or in another emotion; make a corpus with several emotions"
        )
    result = EvalResult(seeds=list(range(runs)))
    cache: dict[Path, Clip] = {}

    def clip(record: ClipRecord) -> Clip:
        if record.path not in cache:
            cache[record.path] = load_clip(record.path)
        return cache[record.path]

    total, done = len(jobs) * len(pipelines), 0
    for setting, seed, pair in jobs:
        target, reference = clip(pair.target), clip(pair.reference)
        frames = self_references(target, pipelines, seed) if setting == SELF else None
        for method, pipeline in pipelines.items():
            if method == TRUTH_METHOD:
                generated = ground_truth_pair(pipeline, target, reference, frames)
            else:
                generated = generate_pair(pipeline, target, reference, method, judges,
                                          reference_frames=frames, landmarks=landmarks)  # fmt: skip
            row = {"setting": setting, "method": method, "seed": seed,
                   "target": pair.target.path.name, "reference": pair.reference.path.name,
                   "speaker": pair.target.speaker, "target_emotion": pair.target.emotion,
                   "reference_emotion": pair.reference.emotion}  # fmt: skip
            row |= score_pair(generated, target, pair.target.emotion, judges)
            if method == TRUTH_METHOD:
                row["psnr"] = math.inf  # a clip vs itself (score_pair caps it at 100 dB); Table II: "-"
            elif (setting, seed, pair) == jobs[0]:  # the figure draws the ground truth from example_truth
                result.example_truth = resize_frames(target.frames, generated.frames.shape[1])
                result.examples[method] = generated.frames
            result.rows.append(row)
            done += 1
            if progress is not None:
                progress(done, total)
    result.summary = summarise(result.rows)
    return result


def self_references(target: Clip, pipelines: dict[str, CEMNetPipeline], seed: int) -> np.ndarray:
    """The ``self`` setting's references: N random valid frames of the target (seeded by run and clip)."""
    count = next(iter(pipelines.values())).num_refs
    valid = np.flatnonzero(target.valid)
    digest = target.meta.get("source_sha256", "")[:8]
    salt = int(digest, 16) if digest and all(c in "0123456789abcdef" for c in digest) else 0
    rng = np.random.default_rng([seed, salt, target.num_frames])
    return np.sort(rng.choice(valid, size=count, replace=len(valid) < count))


def _uses_true_landmarks(records: list[ClipRecord]) -> bool:
    return all(r.extra.get("landmark_source") == "true" for r in records)


def default_judges(
    data: str | os.PathLike[str], weights: str | os.PathLike[str] | None, judge_steps: int = JUDGE_STEPS
) -> Judges:
    """Corpus judges for a ``cemnet synth`` corpus (true landmarks; ``judge_steps`` training steps each,
    cached), pretrained judges otherwise; both with a lower-face emotion judge (``ea_lower``).

    LipSync runs when ``<weights>/syncnet`` holds a ``syncnet`` release folder (converted syncnet_v2 or a
    lip-sync expert trained on the data); otherwise its columns are NaN (shown as n/a).
    """
    from cemnet_core.eval import judges as j

    folder = find_optional_release(weights, "syncnet") if weights is not None else None
    lipsync = j.load_lipsync_judge(folder) if folder is not None else None
    if _uses_true_landmarks(read_manifest(data)):
        emotion, identity = j.corpus_judges(data, steps=judge_steps)
        lower = j.corpus_lower_face_judge(data, steps=judge_steps)
        return Judges(emotion, identity, lipsync, None, dlib_reference_identity, emotion_lower=lower)
    fer = j.FERJudge()
    return Judges(fer, j.DlibIdentityJudge(), lipsync, j.MediaPipeMouthJudge(), dlib_reference_identity,
                  emotion_lower=j.FERLowerFaceJudge(fer))  # fmt: skip


def load_pipelines(
    weights: str | os.PathLike[str], ablate: tuple[str, ...] = (), baselines: bool = True,
    device: str | None = None,
) -> dict[str, CEMNetPipeline]:  # fmt: skip
    """Method name -> pipeline from a weights bundle (``cemnet export`` layout), for :func:`evaluate`.

    Each ablation loads its own trained releases from ``<weights>/ablations/`` (a :class:`WeightsError` says
    how to train them when absent); the baselines share the full model's networks.
    """
    full = CEMNetPipeline.from_bundle(weights, device)
    pipelines = {}
    for method in methods_for(ablate, baselines):
        if method.startswith("w/o "):
            ablation = method.removeprefix("w/o ").lower()
            pipelines[method] = CEMNetPipeline.from_bundle(weights, device, ablation=ablation)
        elif method == A2M_METHOD:
            pipelines[method] = CEMNetPipeline(
                full.audio_to_mouth,
                full.emotion_enhancer,
                full.image_emotion,
                None,
                full.renderer,
                use_ebm=False,
            )
        else:
            pipelines[method] = full
    return pipelines
