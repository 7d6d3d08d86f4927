"""Training pairs for a lip-sync expert (SyncNet v2, the judge of the LipSync metric, Sec. IV-D).

When the original ``syncnet_v2.model`` weights are unavailable, the LipSync metric needs a lip-sync expert
trained on our own data (stage ``syncnet``). :class:`SyncNetDataset` gives it what syncnet_python's ``S``
reads, window by window (``models/syncnet.py``):

- ``lips (5, 64, 128, 3)`` uint8 RGB: the lower halves (:func:`mouth_region`) of 5 consecutive valid
  128x128 face crops, frames ``t .. t+4``; :func:`cemnet_core.models.syncnet.prepare_lip_frames` turns them
  into the network's (3, 5, 224, 224) BGR input, as it does at evaluation;
- ``mfcc (1, 13, 20)`` float32: 20 MFCC frames (0.2 s) of the clip's audio, python_speech_features' MFCC
  (:func:`cemnet_core.models.syncnet.mfcc`) of the whole clip, frames ``4 s .. 4 s+19``: the window that
  ``evaluate_sync`` pairs with video window ``s``;
- ``label`` float32: 1 for a pair in sync (``s = t``), 0 for an off-sync pair: the audio window of the same
  clip shifted by at least ``min_offset`` frames, or (with probability ``other_clip_rate``, and whenever
  the clip is too short for such a shift) a window of another clip of the split.

Only the lower half of the face is used (Wav2Lip's expert does the same): the mouth is there, and the upper
face carries no sync signal. A model trained on these pairs must be scored on the lower halves too:
``evaluate_sync(model, mouth_region(face_crops), audio)``.

Windows follow ``evaluate_sync``'s range: video window ``t`` needs frames ``t .. t+4`` valid and
``t <= min(T, samples // 640) - 6``. Items are deterministic per ``(seed, epoch, index)`` like every dataset
of ``datasets.py``; each also carries ``clip``, ``start`` (first video frame), ``audio_clip`` and
``audio_start`` (the audio window's clip and first frame) so that a pair can be traced back.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from cemnet_core.data.clips import load_clip
from cemnet_core.data.datasets import Item, _check_positive, _ClipDataset, _f32, _label, _window_starts
from cemnet_core.data.manifest import DEFAULT_FRACTIONS
from cemnet_core.models.syncnet import LIP_FRAMES, MFCC_PER_FRAME, MFCC_WINDOW, SAMPLES_PER_FRAME, mfcc


def mouth_region(face_crops: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """The lower half of face crops: ``(..., H, W, 3) -> (..., H - H // 2, W, 3)`` (rows ``H // 2 ..``).

    What the lip-sync expert of stage ``syncnet`` sees, in training and when it scores a video.
    """
    if face_crops.ndim < 3 or face_crops.shape[-1] != 3:
        raise ValueError(f"face crops must be (..., H, W, 3), got {tuple(face_crops.shape)}")
    return face_crops[..., face_crops.shape[-3] // 2 :, :, :]


class _ClipMfcc:
    """Per-clip MFCC ``(num_mfcc, 13)`` float32 and the clip's sample count, computed once per clip."""

    def __init__(self) -> None:
        self._values: dict[Path, tuple[np.ndarray, int]] = {}

    def get(self, path: Path) -> tuple[np.ndarray, int]:
        if path not in self._values:
            audio = load_clip(path, ("audio",)).audio  # (samples,) int16
            if audio.shape[0] < SAMPLES_PER_FRAME * (LIP_FRAMES + 1):
                self._values[path] = (np.zeros((0, 13), dtype=np.float32), int(audio.shape[0]))
            else:
                waveform = torch.from_numpy(audio.astype(np.float32) / 32768.0)  # mfcc() rescales to int16
                self._values[path] = (mfcc(waveform).numpy().astype(np.float32), int(audio.shape[0]))
        return self._values[path]


class SyncNetDataset(_ClipDataset):
    """In-sync and off-sync (5 mouth crops, 0.2 s MFCC) pairs for the lip-sync expert; see the module doc.

    Item: ``lips (5, 64, 128, 3)`` uint8, ``mfcc (1, 13, 20)`` float32, ``label ()`` float32 (1 in sync,
    0 off), ``clip``, ``start``, ``audio_clip``, ``audio_start`` int64. ``positive_rate`` of the items are
    in sync; ``samples_per_clip`` items are drawn per clip and epoch. Clips without audio (preprocessed
    with ``--allow-silent``) or shorter than 6 frames are skipped.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str,
        *,
        seed: int = 0,
        fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
        samples_per_clip: int = 1,
        min_offset: int = 5,
        other_clip_rate: float = 0.25,
        positive_rate: float = 0.5,
        cache_size: int = 8,
    ) -> None:
        _check_positive(samples_per_clip=samples_per_clip, min_offset=min_offset)
        for name, rate in (("other_clip_rate", other_clip_rate), ("positive_rate", positive_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {rate}")
        super().__init__(root, split, ("frames", "valid"), seed, fractions, cache_size, False)
        self.samples_per_clip, self.min_offset = samples_per_clip, min_offset
        self.other_clip_rate, self.positive_rate = other_clip_rate, positive_rate
        self._mfcc = _ClipMfcc()

    def __len__(self) -> int:
        return len(self.records) * self.samples_per_clip

    def __getitem__(self, index: int) -> Item:
        return self._first_usable(index, self._make)

    def _audio_windows(self, clip_index: int) -> int:
        """How many audio windows clip ``clip_index`` has (``s = 0 .. count - 1``)."""
        coefficients, samples = self._mfcc.get(self.records[clip_index].path)
        by_samples = samples // SAMPLES_PER_FRAME - LIP_FRAMES  # evaluate_sync's range(min_length - 5)
        by_mfcc = (coefficients.shape[0] - MFCC_WINDOW) // MFCC_PER_FRAME + 1
        return max(0, min(by_samples, by_mfcc))

    def _make(self, clip_index: int, rng: np.random.Generator) -> Item | None:
        audio_windows = self._audio_windows(clip_index)
        if audio_windows == 0:
            return None
        clip = self._cache.get(self.records[clip_index])
        starts = _window_starts(clip.valid[: audio_windows + LIP_FRAMES - 1], LIP_FRAMES)  # (W,)
        if len(starts) == 0:
            return None
        start = int(rng.choice(starts))
        in_sync = bool(rng.random() < self.positive_rate)
        if in_sync:
            audio_clip, audio_start = clip_index, start
        else:
            negative = self._negative(clip_index, start, audio_windows, rng)
            if negative is None:
                return None
            audio_clip, audio_start = negative
        coefficients, _ = self._mfcc.get(self.records[audio_clip].path)
        first = MFCC_PER_FRAME * audio_start
        window = coefficients[first : first + MFCC_WINDOW].T[None]  # (1, 13, 20)
        lips = mouth_region(clip.frames[start : start + LIP_FRAMES])  # (5, 64, 128, 3)
        return {
            "lips": torch.from_numpy(np.ascontiguousarray(lips)),
            "mfcc": _f32(window),
            "label": torch.tensor(1.0 if in_sync else 0.0),
            "clip": _label(clip_index),
            "start": _label(start),
            "audio_clip": _label(audio_clip),
            "audio_start": _label(audio_start),
        }

    def _negative(
        self, clip_index: int, start: int, audio_windows: int, rng: np.random.Generator
    ) -> tuple[int, int] | None:
        """An off-sync audio window ``(clip, first frame)``: shifted in this clip, or from another clip."""
        shifted = np.arange(audio_windows)
        shifted = shifted[np.abs(shifted - start) >= self.min_offset]
        others = [index for index in range(len(self.records)) if index != clip_index]
        use_other = len(shifted) == 0 or (bool(others) and rng.random() < self.other_clip_rate)
        if not use_other:
            return clip_index, int(rng.choice(shifted))
        for other in rng.permutation(others) if others else ():
            windows = self._audio_windows(int(other))
            if windows > 0:
                return int(other), int(rng.integers(windows))
        return None
