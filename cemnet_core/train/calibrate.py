"""Audio2Mouth's motion gain, set after training from validation speakers (Sec. III-A; not in the paper).

Audio2Mouth is trained with L1 (Eqs. 2-4), so where the audio leaves the mouth uncertain it predicts the
median: on people it never saw it opens the mouth about 0.6 times as far as they do. The model's
``motion_gain`` ``g`` scales its predicted offset from the reference mouth (``m_t = base_t + g * offset_t``,
:mod:`cemnet_core.models.audio_to_mouth`); :func:`calibrate_motion_gain` chooses it so that, on the
``val`` split (speakers held out of training), the predicted mouth opening spreads as far as the true one:

    g = sum over clips of spread(true opening) / sum over clips of spread(predicted opening at g = 1)

with ``spread`` = p95 - p5 over the clip's frames of the inner-lip opening over mouth width
(:func:`cemnet_core.data.landmarks.mouth_opening`), predicted with one closed-mouth reference (what a
portrait gives ``cemnet generate``) from the clip's own audio and true head pose. A gain leaves the
correlation of predicted and true opening as it was and moves M-LMD a little (measured for the starter in
``benchmarks/a2m_articulation.py``). The renderer damps small openings, so the starter's recipe then refines
the gain on the rendered mouth (:mod:`cemnet_core.eval.mouth_gain`; it runs the whole pipeline and a face
tracker, so it lives with the evaluation).

:func:`predict_clip` is also the benchmark's way of running Audio2Mouth over a clip.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import torch

from cemnet_core.bundle import find_release
from cemnet_core.contracts import ALL, MOUTH, POSE
from cemnet_core.data.audio import driving_mel, loudness, mel_window
from cemnet_core.data.clips import load_clip
from cemnet_core.data.landmarks import mouth_opening, select
from cemnet_core.data.manifest import read_manifest, split_records
from cemnet_core.errors import DataError
from cemnet_core.release import CONFIG_FILE, load_release, load_state_into, save_release

REFERENCE_KINDS = ("video", "one photo")
_UPPER_INNER_LIP, _LOWER_INNER_LIP = 13, 14


def spread(value: np.ndarray) -> float:
    """p95 - p5 over the frames."""
    return float(np.percentile(value, 95) - np.percentile(value, 5))


def references(landmarks: np.ndarray, valid: np.ndarray, n: int, kind: str) -> np.ndarray:
    """Frame indices of the references: ``video`` spread over the openings, ``one photo`` the most closed."""
    frames = np.flatnonzero(valid)
    opening = landmarks[frames, _LOWER_INNER_LIP, 1] - landmarks[frames, _UPPER_INNER_LIP, 1]
    ordered = frames[np.argsort(opening, kind="stable")]
    if kind == "one photo":
        return np.full(n, ordered[0])
    return ordered[np.linspace(0, len(ordered) - 1, n).round().astype(int)]


def windows(valid: np.ndarray, t: int) -> list[int]:
    """Starts of non-overlapping T-frame windows of consecutive valid frames."""
    starts, frame = [], 0
    while frame + t <= len(valid):
        if valid[frame : frame + t].all():
            starts.append(frame)
            frame += t
        else:
            frame += 1
    return starts


def longest_valid_run(valid: np.ndarray) -> tuple[int, int]:
    """(first, end) of the longest run of consecutive valid frames ((0, 0) when there is none)."""
    best, first = (0, 0), None
    for index, ok in enumerate([*valid.tolist(), False]):
        if ok and first is None:
            first = index
        elif not ok and first is not None:
            best = max(best, (first, index), key=lambda run: run[1] - run[0])
            first = None
    return best


@dataclasses.dataclass(frozen=True)
class ClipPrediction:
    """Audio2Mouth over one clip's F window frames: ``mouth`` / ``truth`` (F, 57, 2), crop-normalised."""

    mouth: np.ndarray
    truth: np.ndarray
    references: torch.Tensor  # (N, 135, 2)
    pose: np.ndarray  # (F, 78, 2)


@torch.no_grad()
def predict_clip(model: torch.nn.Module, path: Path, kind: str) -> ClipPrediction | None:
    """Predict the mouth of each T-frame window of consecutive valid frames of the clip at ``path``.

    References of ``kind`` (:data:`REFERENCE_KINDS`, :func:`references`), the clip's own audio and true
    head pose; ``None`` for a clip without one full window.
    """
    clip = load_clip(path, ("landmarks", "valid", "mel", "audio"))
    n, t = model.config.num_refs, model.config.num_frames
    refs = torch.from_numpy(select(clip.landmarks[references(clip.landmarks, clip.valid, n, kind)], ALL))
    starts = windows(clip.valid, t)
    if not starts:
        return None
    frames = np.concatenate([np.arange(s, s + t) for s in starts])
    clip_mel = driving_mel(clip.audio, model.config.speech_lufs, clip.mel)  # at the model's speech level
    mel = np.stack([mel_window(clip_mel, f) for f in frames]).reshape(len(starts), t, 16, -1)
    pose = select(clip.landmarks[frames], POSE).reshape(len(starts), t, -1, 2)
    predicted = []
    for b in range(0, len(starts), 64):
        batch = slice(b, b + 64)
        size = len(starts[batch])
        ref_batch = refs[None].expand(size, -1, -1, -1).float()
        mel_batch, pose_batch = torch.from_numpy(mel[batch]).float(), torch.from_numpy(pose[batch]).float()
        predicted.append(model(ref_batch, mel_batch, pose_batch))
    mouth = torch.cat(predicted).reshape(len(frames), -1, 2).numpy()
    truth = select(clip.landmarks[frames], MOUTH)
    return ClipPrediction(mouth, truth, refs, pose.reshape(len(frames), -1, 2))


def measure_motion_gain(model: torch.nn.Module, data: Path, split: str = "val") -> float:
    """The gain that makes ``model``'s one-photo opening spread as far as the truth's on ``split``.

    ``model`` is used as it is (normally at ``motion_gain`` 1); see the module docstring for the formula.
    """
    clips = split_records(read_manifest(data), split)
    predicted, true = 0.0, 0.0
    for record in clips:
        result = predict_clip(model, record.path, "one photo")
        if result is not None:
            predicted += spread(mouth_opening(result.mouth, "mouth"))
            true += spread(mouth_opening(result.truth, "mouth"))
    if predicted <= 0:
        raise DataError(f"{data} has no {split!r} clip with a moving predicted mouth to calibrate on")
    return true / predicted


def audio_to_mouth_release(path: str | os.PathLike[str]) -> Path:
    """``path`` when it is a release folder, else the ``audio_to_mouth`` release of the bundle there."""
    path = Path(path)
    return path if (path / CONFIG_FILE).is_file() else find_release(path, "audio_to_mouth")


def speech_level(data: Path, split: str = "train") -> float | None:
    """Median loudness (LUFS, :func:`cemnet_core.data.audio.loudness`) of the ``split`` clips' audio.

    None when no clip has one (all silent or shorter than 0.4 s): then no level applies.
    """
    records = split_records(read_manifest(data), split)
    levels = [loudness(load_clip(record.path, ("audio",)).audio) for record in records]
    levels = [level for level in levels if level is not None]
    return round(float(np.median(levels)), 1) if levels else None


def calibrate_motion_gain(
    release: str | os.PathLike[str], data: Path, split: str = "val", level_split: str | None = None
) -> float:
    """Measure the gain of the ``audio_to_mouth`` release folder at gain 1 and write it into its config.

    With ``level_split`` (e.g. ``"train"``, the speech it was trained on), its ``speech_lufs`` first becomes
    the median loudness of those clips (:func:`speech_level`), so the gain is measured at that level; None
    (the default) keeps the release's (:mod:`cemnet_core.data.audio` says why it is not on by default).
    Returns the gain (rounded to 2 decimals), which the release's ``config.json`` then carries.
    """
    from cemnet_core.models.audio_to_mouth import AudioToMouth, AudioToMouthConfig

    loaded = load_release(release, "audio_to_mouth")
    config = dataclasses.replace(AudioToMouthConfig.from_dict(loaded.config), motion_gain=1.0)
    if level_split is not None:
        config = dataclasses.replace(config, speech_lufs=speech_level(data, level_split))
    model = load_state_into(AudioToMouth(config), loaded)
    gain = round(measure_motion_gain(model.eval(), data, split), 2)
    if gain <= 0:
        raise DataError(f"the {split!r} mouths of {data} do not move: no motion gain can be set from them")
    calibrated = dataclasses.replace(config, motion_gain=gain)
    save_release(release, model.state_dict(), "audio_to_mouth", calibrated)
    return gain
