"""Torch datasets that feed the training stages (DESIGN sections 4-6), over a processed folder.

A processed folder holds clip files (``clips.py``) and ``manifest.jsonl`` (``manifest.py``). Every dataset
here is map-style and deterministic: item ``i`` is drawn with ``numpy.random.default_rng((seed, epoch, i))``,
so a resumed run that restores the epoch sees exactly the items an unbroken run would. Call
``set_epoch(epoch)`` to draw new windows each epoch. Clips are opened lazily and kept in a small LRU cache
per dataset object (so per DataLoader worker); frames with ``valid=False`` are never used as targets or
references. An item is a dict of tensors; the datasets of this module:

- :class:`Audio2MouthDataset` (Sec. III-A, Eqs. 1-4): ``ref_landmarks (N,135,2)`` ALL points of N reference
  frames of the same clip, ``mel (T,16,80)``, ``pose (T,78,2)``, ``mouth (T,57,2)`` target.
- :class:`RendererDataset` (Sec. III-D, Eqs. 14-17): ``ref_images (N,3,128,128)`` float [0, 1],
  ``ref_sketches (N,3,128,128)``, ``target_image (3,128,128)``, ``target_sketch (3,128,128)``.
- the emotion networks' datasets (``EmotionAudioDataset``, ``EmotionImageDataset``, ``EBMDataset``) live in
  :mod:`cemnet_core.data.emotion_datasets`, the LipSync expert's in :mod:`cemnet_core.data.sync_dataset`;
  both build on :class:`_ClipDataset` and the window helpers here.

Every item also carries ``clip`` (index into ``dataset.records``) and, where a window is drawn, ``start``
(its first video frame), so a sample can be traced back to its clip. Shapes: ``N`` references, ``T`` video
frames, ``S`` mel frames, ``G`` mel segments.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from cemnet_core.contracts import ALL, MOUTH, POSE
from cemnet_core.data.clips import Clip, load_clip
from cemnet_core.data.landmarks import draw_sketch, select
from cemnet_core.data.manifest import (
    DEFAULT_FRACTIONS,
    ClipRecord,
    read_manifest,
    speaker_index,
    split_records,
)
from cemnet_core.errors import ConfigError, DataError

Item = dict[str, torch.Tensor]
_UPPER_INNER_LIP, _LOWER_INNER_LIP = 13, 14  # MediaPipe indices; their distance is the mouth opening


class _ClipCache:
    """LRU cache of loaded clips (only ``keys`` are read); emptied when pickled to a DataLoader worker."""

    def __init__(self, keys: tuple[str, ...], size: int) -> None:
        self.keys, self.size = keys, max(1, size)
        self._clips: OrderedDict[Path, Clip] = OrderedDict()

    def get(self, record: ClipRecord) -> Clip:
        clip = self._clips.pop(record.path, None)
        if clip is None:
            clip = load_clip(record.path, self.keys)
        self._clips[record.path] = clip
        while len(self._clips) > self.size:
            self._clips.popitem(last=False)
        return clip

    def __getstate__(self) -> dict[str, Any]:
        return {"keys": self.keys, "size": self.size, "_clips": OrderedDict()}


class _ClipDataset(Dataset[Item]):
    """What every dataset here shares: records of one split, labels, seeding and the clip cache.

    By default ``samples_per_clip`` items are drawn per clip and epoch, item ``i`` by ``_make(i % clips,
    rng)`` (or the next clip that gives one); a dataset with other items overrides ``__len__`` and
    ``__getitem__``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str,
        keys: tuple[str, ...],
        seed: int,
        fractions: tuple[float, float, float],
        cache_size: int,
        labelled: bool,
        samples_per_clip: int = 1,
    ) -> None:
        self.root = Path(root)
        every = read_manifest(self.root)
        self.speaker_to_index = speaker_index(every)
        self.sentence_to_index = {name: i for i, name in enumerate(sorted({r.sentence for r in every}))}
        records = split_records(every, split, seed, fractions)
        if labelled:
            records = [record for record in records if record.emotion]
            if not records:
                raise DataError(
                    f"split {split!r} of {self.root} has no clip with an emotion label; emotion "
                    "stages need MEAD-style data (`cemnet preprocess mead` or `cemnet synth`)"
                )
        self.records: list[ClipRecord] = records
        self.split, self.seed, self.epoch = split, seed, 0
        self.samples_per_clip = samples_per_clip
        self._cache = _ClipCache(keys, cache_size)

    @property
    def num_speakers(self) -> int:
        """Speaker classes (over the whole manifest, so labels agree between splits)."""
        return len(self.speaker_to_index)

    def set_epoch(self, epoch: int) -> None:
        """Draw a new set of windows/references; item ``i`` of epoch ``e`` is always the same."""
        self.epoch = int(epoch)

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch, index))

    def _first_usable(
        self,
        index: int,
        make: Callable[[int, np.random.Generator], Item | None],
        clips: Sequence[int] | None = None,
        none_usable: str | None = None,
    ) -> Item:
        """``make(clip_index, rng)`` for the item's clip, else for the next clips while it gives ``None``.

        ``clips`` are the clip indices items are drawn from (all records by default), item ``index`` from
        ``clips[index % len(clips)]`` first; ``none_usable`` replaces the message of the ``DataError``
        raised when no clip gives one.
        """
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        rng = self._rng(index)
        clips = range(len(self.records)) if clips is None else clips
        count = len(clips)
        for offset in range(count):
            item = make(clips[(index + offset) % count], rng)
            if item is not None:
                return item
        raise DataError(
            none_usable
            or f"no clip in split {self.split!r} of {self.root} has enough valid (face) frames for "
            "this dataset; check the face_ratio column of manifest.jsonl or preprocess more data"
        )

    def _make(self, clip_index: int, rng: np.random.Generator) -> Item | None:
        """One item drawn from clip ``clip_index``, or ``None`` when that clip cannot give one."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.records) * self.samples_per_clip

    def __getitem__(self, index: int) -> Item:
        return self._first_usable(index, self._make)


# ------------------------------------------------------------------------------------------------ helpers


def _window_starts(valid: np.ndarray, length: int) -> np.ndarray:
    """First frames of every run of ``length`` consecutive valid frames: ``(W,)`` int64."""
    valid = np.asarray(valid, dtype=np.int64)
    if len(valid) < length:
        return np.zeros((0,), dtype=np.int64)
    counts = np.convolve(valid, np.ones(length, dtype=np.int64), mode="valid")  # (T-length+1,)
    return np.flatnonzero(counts == length)


def _draw_window(valid: np.ndarray, length: int, rng: np.random.Generator) -> int | None:
    """First frame of a random run of ``length`` consecutive valid frames; ``None`` if there is none."""
    starts = _window_starts(valid, length)
    if len(starts) == 0:
        return None
    return int(rng.choice(starts))


def _window_targets(clip: Clip, start: int, length: int) -> Item:
    """What Audio2Mouth sees and predicts for frames ``start .. start+length-1`` (Sec. III-A): their mel
    windows ``mel (T,16,80)``, ``pose (T,78,2)`` (input) and ``mouth (T,57,2)`` (target)."""
    window = np.arange(start, start + length)
    return {
        "mel": _f32(_mel_windows_at(clip.mel, start, length)),  # (T, 16, 80)
        "pose": _f32(select(clip.landmarks[window], POSE)),  # (T, 78, 2)
        "mouth": _f32(select(clip.landmarks[window], MOUTH)),  # (T, 57, 2)
    }


def _spread_references(
    landmarks: np.ndarray, candidates: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` frames out of ``candidates`` that cover different mouth shapes: candidates are sorted by mouth
    opening and one frame is drawn from each of ``n`` equal slices (with repeats if fewer than ``n``)."""
    opening = landmarks[candidates, _LOWER_INNER_LIP, 1] - landmarks[candidates, _UPPER_INNER_LIP, 1]
    ordered = candidates[np.argsort(opening, kind="stable")]
    if len(ordered) < n:
        chosen = rng.choice(ordered, size=n, replace=True)
    else:
        chosen = np.array([rng.choice(part) for part in np.array_split(ordered, n)])
    return rng.permutation(chosen).astype(np.int64)


def _most_closed(landmarks: np.ndarray, refs: np.ndarray, n: int) -> np.ndarray:
    """The frame of ``refs`` with the most closed mouth, ``n`` times: what a single portrait gives."""
    opening = landmarks[refs, _LOWER_INNER_LIP, 1] - landmarks[refs, _UPPER_INNER_LIP, 1]
    return np.full(n, refs[int(np.argmin(opening))], dtype=np.int64)


def _mel_windows_at(mel: np.ndarray, start: int, length: int) -> np.ndarray:
    """Mel windows of video frames ``start .. start+length-1``: ``(T, 16, 80)`` (``audio.mel_window``)."""
    from cemnet_core.data.audio import mel_window

    if mel.shape[0] == 0:
        raise DataError("a clip has an empty mel spectrogram; delete it and rerun preprocessing")
    return np.stack([mel_window(mel, t) for t in range(start, start + length)])


def _segment(mel: np.ndarray, start: int, length: int) -> np.ndarray:
    """``length`` mel frames from ``start`` (edge-padded past the end): ``(S, 80)``."""
    indices = np.clip(np.arange(start, start + length), 0, mel.shape[0] - 1)
    return mel[indices]


def _spaced_segments(mel: np.ndarray, length: int, count: int) -> np.ndarray:
    """``count`` segments of ``length`` mel frames spread evenly over the utterance: ``(G, S, 80)``."""
    starts = np.linspace(0, max(mel.shape[0] - length, 0), count).round().astype(np.int64)
    return np.stack([_segment(mel, int(start), length) for start in starts])


def _images(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``(..., H, W, 3)`` -> float ``(..., 3, H, W)`` in [0, 1]."""
    channels_first = np.moveaxis(np.asarray(frames), -1, -3)
    return torch.from_numpy(np.multiply(channels_first, np.float32(1 / 255), dtype=np.float32))


def _sketches(landmarks: np.ndarray) -> torch.Tensor:
    """478-point crop-normalised landmarks ``(N, 478, 2)`` -> sketch images ``(N, 3, 128, 128)``."""
    return _images(np.stack([draw_sketch(points) for points in landmarks]))


def _label(value: int) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.int64)


def _f32(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


# ----------------------------------------------------------------------------------------------- datasets


class Audio2MouthDataset(_ClipDataset):
    """Windows of ``t_frames`` consecutive valid frames for Audio2Mouth (Sec. III-A, Eqs. 1-4).

    Item: ``ref_landmarks (N,135,2)`` ALL points of ``n_refs`` frames of the same clip outside the window,
    chosen to span different mouth openings; ``mel (T,16,80)`` the windows of the target frames;
    ``pose (T,78,2)`` their POSE points (model input); ``mouth (T,57,2)`` their MOUTH points (target).
    Landmarks are crop-normalised. ``samples_per_clip`` items are drawn per clip and epoch.
    With probability ``single_reference_rate`` the N references are one frame repeated, the one with the
    most closed mouth among those drawn: what a single portrait gives ``cemnet generate`` (a closed or
    smiling mouth), from which the model must still open the mouth as far as the speech says.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str,
        n_refs: int = 5,
        t_frames: int = 5,
        *,
        seed: int = 0,
        fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
        samples_per_clip: int = 1,
        cache_size: int = 16,
        single_reference_rate: float = 0.0,
    ) -> None:
        _check_positive(n_refs=n_refs, t_frames=t_frames, samples_per_clip=samples_per_clip)
        if not 0.0 <= single_reference_rate <= 1.0:
            raise ConfigError(f"single_reference_rate must be in [0, 1], got {single_reference_rate}")
        keys = ("landmarks", "valid", "mel")
        super().__init__(root, split, keys, seed, fractions, cache_size, False, samples_per_clip)
        self.n_refs, self.t_frames = n_refs, t_frames
        self.single_reference_rate = single_reference_rate

    def _make(self, clip_index: int, rng: np.random.Generator) -> Item | None:
        clip = self._cache.get(self.records[clip_index])
        start = _draw_window(clip.valid, self.t_frames, rng)
        if start is None:
            return None
        outside = np.flatnonzero(clip.valid)
        outside = outside[(outside < start) | (outside >= start + self.t_frames)]
        if len(outside) == 0:
            return None
        refs = _spread_references(clip.landmarks, outside, self.n_refs, rng)
        if self.single_reference_rate and rng.random() < self.single_reference_rate:
            refs = _most_closed(clip.landmarks, refs, self.n_refs)  # one photo
        return {
            "ref_landmarks": _f32(select(clip.landmarks[refs], ALL)),  # (N, 135, 2)
            **_window_targets(clip, start, self.t_frames),  # mel, pose, mouth
            "clip": _label(clip_index),
            "start": _label(start),
        }


class RendererDataset(_ClipDataset):
    """A target frame and ``n_refs`` reference frames of the same clip for the renderer (Sec. III-D).

    Item: ``ref_images (N,3,128,128)``, ``ref_sketches (N,3,128,128)`` (``draw_sketch`` of the references'
    landmarks), ``target_image (3,128,128)``, ``target_sketch (3,128,128)``; float in [0, 1]; and the
    landmarks the sketches are drawn from, ``ref_landmarks (N,135,2)`` and ``target_landmarks (135,2)``
    (``ALL`` order, crop-normalised; the renderer's landmark motion prior). References are
    valid frames at least 3 frames away from the target when the clip allows it, spread over mouth shapes.
    With probability ``single_reference_rate`` an item's N references are instead one such frame repeated,
    the one with the most closed mouth: what the renderer gets from a single photo (``cemnet generate
    --ref portrait.jpg``), where no reference shows the open mouth and the generator has to synthesise it.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str,
        n_refs: int = 5,
        *,
        seed: int = 0,
        fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
        samples_per_clip: int = 1,
        cache_size: int = 8,
        single_reference_rate: float = 0.0,
    ) -> None:
        _check_positive(n_refs=n_refs, samples_per_clip=samples_per_clip)
        if not 0.0 <= single_reference_rate <= 1.0:
            raise ConfigError(f"single_reference_rate must be in [0, 1], got {single_reference_rate}")
        keys = ("frames", "landmarks", "valid")
        super().__init__(root, split, keys, seed, fractions, cache_size, False, samples_per_clip)
        self.n_refs = n_refs
        self.single_reference_rate = single_reference_rate

    def _make(self, clip_index: int, rng: np.random.Generator) -> Item | None:
        clip = self._cache.get(self.records[clip_index])
        valid = np.flatnonzero(clip.valid)
        if len(valid) < 2:
            return None
        target = int(rng.choice(valid))
        candidates = valid[np.abs(valid - target) >= 3]
        if len(candidates) == 0:
            candidates = valid[valid != target]
        refs = _spread_references(clip.landmarks, candidates, self.n_refs, rng)
        if self.single_reference_rate and rng.random() < self.single_reference_rate:
            refs = _most_closed(clip.landmarks, refs, self.n_refs)  # one photo
        return {
            "ref_images": _images(clip.frames[refs]),  # (N, 3, 128, 128)
            "ref_sketches": _sketches(clip.landmarks[refs]),  # (N, 3, 128, 128)
            "target_image": _images(clip.frames[target]),  # (3, 128, 128)
            "target_sketch": _sketches(clip.landmarks[target][None])[0],  # (3, 128, 128)
            "ref_landmarks": _f32(select(clip.landmarks[refs], ALL)),  # (N, 135, 2)
            "target_landmarks": _f32(select(clip.landmarks[target], ALL)),  # (135, 2)
            "clip": _label(clip_index),
            "start": _label(target),
        }
