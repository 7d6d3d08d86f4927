"""Training items for a lip-sync expert (SyncNet v2, the judge of the LipSync metric, Sec. IV-D).

When the original ``syncnet_v2.model`` weights are unavailable, the LipSync metric needs a lip-sync expert
trained on our own data (stage ``syncnet``). The metric (``eval/lipsync.py``, syncnet_python's
``evaluate``) asks one question of the network: for video window ``t`` (frames ``t .. t+4``), which of the
audio windows ``t - 15 .. t + 15`` is the one in sync? :class:`SyncNetDataset` hands the trainer exactly
that question for ``windows`` consecutive video windows of one clip at once:

- ``lips (N + 4, 64, 128, 3)`` uint8 RGB: the lower halves (:func:`mouth_region`) of the face crops of
  frames ``t0 .. t0 + N + 3``, i.e. the 5-frame video windows ``t0 .. t0 + N - 1`` (``N = windows``), all
  frames valid;
- ``mfcc (N + 2V, 1, 13, 20)`` float32: the audio windows ``s = t0 - V .. t0 + N - 1 + V``
  (``V = max_offset``), each the 20 MFCC frames (0.2 s) ``4 s .. 4 s + 19`` of python_speech_features' MFCC
  (:func:`cemnet_core.data.mfcc.mfcc`) of the whole clip: the window ``evaluate_sync`` pairs with video
  window ``s``. Video window ``t0 + i`` has its candidates at ``mfcc[i : i + 2V + 1]``, the one in sync
  in the middle (``mfcc[i + V]``), the others off by ``-V .. V`` frames: the offsets that syncnet_python's
  search (``vshift = 15``) compares;
- ``clip``, ``start`` (``t0``) int64, to trace an item back.

Sharing the ``N + 2V`` audio windows between ``N`` video windows makes the ``2V + 1``-way question cheap:
46 audio windows instead of 16 x 31 for ``N = 16``, ``V = 15``.

Only the lower half of the face is used (Wav2Lip's expert does the same): the mouth is there, and the upper
face carries no sync signal. A model trained on these items must be scored on the lower halves too:
``evaluate_sync(model, mouth_region(face_crops), audio)``.

Augmentation (``augment``, for training; off by default): each item's mouth crops get one random
appearance change, the same for all its frames, so sync is untouched while the person's look varies: a
horizontal flip (half the items), a crop of 85-100% of the side at a random place resized back (the face
box shifts and scales between people and trackers), and a brightness, contrast and per-channel colour
gain. A lip-sync expert trained on 51 people without it fitted them and got worse on people it had not
seen (``benchmarks/lipsync_shift.py``: the validation loss rose from 2000 steps on). With ``augment_level``
the audio windows of an item get one random loudness too, a gain of up to +-``AUGMENT_LEVEL_DB`` dB. In
these MFCC (python_speech_features with ``appendEnergy``) a gain ``g`` only adds ``2 ln g`` to coefficient
0, the log frame energy: the other coefficients are a DCT of log filter energies, where a gain is a
constant that only the DCT's first term sees, and that term is replaced by the energy. So the offset is
added there, without recomputing the features. Measured on the starter recipe's expert it did not help
(``benchmarks/lipsync_shift.py``: 64 % of the test clips within +-1 frame, against 79 % without it), so it
stays off.

Windows follow ``evaluate_sync``'s range: audio window ``s`` exists for ``0 <= s <= min(T, samples // 640)
- 6`` (and while the MFCC covers it). Items are deterministic per ``(seed, epoch, index)`` like every
dataset of ``datasets.py``; clips too short for ``N + 2V + 4`` frames, or without such a run of valid
frames, are skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from cemnet_core.contracts import (
    LIP_FRAMES,
    MFCC_COEFFICIENTS,
    MFCC_PER_FRAME,
    MFCC_WINDOW,
    SAMPLES_PER_FRAME,
    VSHIFT,
)
from cemnet_core.data.clips import load_clip
from cemnet_core.data.datasets import Item, _check_positive, _ClipDataset, _label, _window_starts
from cemnet_core.data.manifest import DEFAULT_FRACTIONS
from cemnet_core.data.mfcc import mfcc

AUGMENT_CROP = 0.85  # smallest crop side (share of the mouth crop's) of the augmentation
AUGMENT_CONTRAST, AUGMENT_BRIGHTNESS, AUGMENT_COLOUR = 0.3, 25.0, 0.1  # +- ranges (factor, levels, factor)
AUGMENT_LEVEL_DB = 10.0  # +- range of the audio gain of ``augment_level``


def mouth_region(face_crops: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """The lower half of face crops: ``(..., H, W, 3) -> (..., H - H // 2, W, 3)`` (rows ``H // 2 ..``).

    What the lip-sync expert of stage ``syncnet`` sees, in training and when it scores a video.
    """
    if face_crops.ndim < 3 or face_crops.shape[-1] != 3:
        raise ValueError(f"face crops must be (..., H, W, 3), got {tuple(face_crops.shape)}")
    return face_crops[..., face_crops.shape[-3] // 2 :, :, :]


def augment_lips(lips: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random appearance change for a window of mouth crops (module doc): ``(F, h, w, 3)`` uint8 ->
    the same shape, every frame changed alike."""
    import cv2  # opencv comes with mediapipe; imported here to keep `import cemnet_core` light

    h, w = lips.shape[1:3]
    if rng.random() < 0.5:
        lips = lips[:, :, ::-1]
    side = rng.uniform(AUGMENT_CROP, 1.0)
    ch, cw = max(1, round(h * side)), max(1, round(w * side))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    cropped = [cv2.resize(np.ascontiguousarray(frame[y0 : y0 + ch, x0 : x0 + cw]), (w, h),
                          interpolation=cv2.INTER_LINEAR) for frame in lips]  # fmt: skip
    contrast = 1.0 + rng.uniform(-AUGMENT_CONTRAST, AUGMENT_CONTRAST)
    gain = contrast * (1.0 + rng.uniform(-AUGMENT_COLOUR, AUGMENT_COLOUR, size=3))  # (3,)
    shift = rng.uniform(-AUGMENT_BRIGHTNESS, AUGMENT_BRIGHTNESS)
    out = (np.stack(cropped).astype(np.float32) - 128.0) * gain + 128.0 + shift
    return np.clip(out, 0, 255).round().astype(np.uint8)


def audio_windows(coefficients: np.ndarray | torch.Tensor, samples: int) -> int:
    """How many audio windows ``s = 0 .. count - 1`` a clip has: ``coefficients (M, 13)`` its MFCC,
    ``samples`` its length; ``evaluate_sync``'s ``range(min_length - 5)`` as far as the audio goes."""
    by_samples = samples // SAMPLES_PER_FRAME - LIP_FRAMES
    by_mfcc = (coefficients.shape[0] - MFCC_WINDOW) // MFCC_PER_FRAME + 1
    return max(0, min(by_samples, by_mfcc))


class _ClipMfcc:
    """Per-clip MFCC ``(num_mfcc, 13)`` float32 and the clip's sample count, computed once per clip."""

    def __init__(self) -> None:
        self._values: dict[Path, tuple[np.ndarray, int]] = {}

    def get(self, path: Path) -> tuple[np.ndarray, int]:
        if path not in self._values:
            audio = load_clip(path, ("audio",)).audio  # (samples,) int16
            if audio.shape[0] < SAMPLES_PER_FRAME * (LIP_FRAMES + 1):
                coefficients = np.zeros((0, MFCC_COEFFICIENTS), dtype=np.float32)
            else:
                waveform = torch.from_numpy(audio.astype(np.float32) / 32768.0)  # mfcc() rescales to int16
                coefficients = mfcc(waveform).numpy().astype(np.float32)
            self._values[path] = (coefficients, int(audio.shape[0]))
        return self._values[path]


class SyncNetDataset(_ClipDataset):
    """``windows`` consecutive video windows of a clip and their ``2 max_offset + 1`` candidate audio
    windows each; see the module doc.

    Item: ``lips (N + 4, 64, 128, 3)`` uint8, ``mfcc (N + 2V, 1, 13, 20)`` float32 (``N = windows``,
    ``V = max_offset``; video window ``i`` is in sync with ``mfcc[i + V]``), ``clip``, ``start`` int64.
    ``samples_per_clip`` items are drawn per clip and epoch. Clips without audio (preprocessed with
    ``--allow-silent``) or too short for ``N + 2V + 4`` frames are skipped. ``augment`` changes each item's
    look (:func:`augment_lips`), ``augment_level`` the loudness of its audio.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str,
        *,
        seed: int = 0,
        fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
        samples_per_clip: int = 1,
        windows: int = 16,
        max_offset: int = VSHIFT,
        cache_size: int = 8,
        augment: bool = False,
        augment_level: bool = False,
    ) -> None:
        _check_positive(samples_per_clip=samples_per_clip, windows=windows, max_offset=max_offset)
        super().__init__(
            root, split, ("frames", "valid"), seed, fractions, cache_size, False, samples_per_clip
        )
        self.windows, self.max_offset, self.augment = windows, max_offset, augment
        self.augment_level = augment_level
        self._mfcc = _ClipMfcc()

    def _make(self, clip_index: int, rng: np.random.Generator) -> Item | None:
        N, V = self.windows, self.max_offset
        coefficients, samples = self._mfcc.get(self.records[clip_index].path)
        count = audio_windows(coefficients, samples)
        if count < N + 2 * V:
            return None
        clip = self._cache.get(self.records[clip_index])
        # video windows t0 .. t0+N-1 need frames t0 .. t0+N+3 valid and audio windows t0-V .. t0+N-1+V
        starts = _window_starts(clip.valid[: count - V + LIP_FRAMES - 1], N + LIP_FRAMES - 1)  # (W,)
        starts = starts[starts >= V]
        if len(starts) == 0:
            return None
        start = int(rng.choice(starts))
        first = np.arange(start - V, start + N + V) * MFCC_PER_FRAME  # (N + 2V,) first MFCC frame
        windows = coefficients[first[:, None] + np.arange(MFCC_WINDOW)]  # (N + 2V, 20, 13)
        lips = mouth_region(clip.frames[start : start + N + LIP_FRAMES - 1])  # (N + 4, 64, 128, 3)
        if self.augment:
            lips = augment_lips(lips, rng)
        if self.augment_level:  # a gain g adds 2 ln g to the log energy, coefficient 0 (module doc)
            gain_db = rng.uniform(-AUGMENT_LEVEL_DB, AUGMENT_LEVEL_DB)
            windows = windows.copy()
            windows[..., 0] += np.float32(2 * np.log(10 ** (gain_db / 20)))
        return {
            "lips": torch.from_numpy(np.ascontiguousarray(lips)),
            "mfcc": torch.from_numpy(np.ascontiguousarray(windows.transpose(0, 2, 1)[:, None])),
            "clip": _label(clip_index),
            "start": _label(start),
        }
