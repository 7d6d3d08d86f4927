"""Torch datasets of the emotion networks (DESIGN sections 4-6), over a processed folder.

Built on :mod:`cemnet_core.data.datasets` (same clip cache, seeding and item conventions):

- :class:`EmotionAudioDataset` (Sec. III-B, Eqs. 5-7): DTW-aligned mel segments ``(S,80)`` of the same
  speaker saying the same sentence in two emotions, a same-content positive and a different-content
  negative for the triplet loss; or single segments for encoder pretraining and evaluation. In these
  pairs timbre and content agree, so swapping them carries no signal: the ``aee`` stage trains on
  :class:`~cemnet_core.data.cross_reconstruction.CrossReconstructionDataset` instead (Fig. 4: two
  speakers, two emotions, two sentences, and the eight targets of Eq. 5).
- :class:`EmotionImageDataset`: augmented face crops (:func:`augment_face`) and MEAD emotion labels for the
  image emotion extractor.
- :class:`EBMDataset` (Sec. III-C, Eqs. 8-13): references from a clip of the same speaker in another
  emotion (cross-emotion; or neutral), a target window and the target utterance's mel segments.

Shapes: ``N`` references, ``T`` video frames, ``S`` mel frames, ``G`` mel segments.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cemnet_core.contracts import ALL
from cemnet_core.data.alignment import warp_to
from cemnet_core.data.datasets import (
    Item,
    _check_positive,
    _ClipDataset,
    _draw_window,
    _f32,
    _images,
    _label,
    _segment,
    _spaced_segments,
    _spread_references,
    _window_targets,
)
from cemnet_core.data.landmarks import select
from cemnet_core.data.manifest import DEFAULT_FRACTIONS, group_by
from cemnet_core.errors import DataError


class EmotionAudioDataset(_ClipDataset):
    """Mel segments for Audio Emotion Enhancement (Sec. III-B, Eqs. 5-7); ``segment_frames`` = S mel frames.

    ``mode="pairs"`` (cross-reconstruction): an anchor clip ``a`` and a clip ``b`` of the same speaker and
    sentence in another emotion, ``b`` warped onto ``a``'s time axis by DTW, the same segment of both:
    ``mel_a``, ``mel_b`` ``(S,80)``. For the content triplet (Eq. 6): ``mel_p``, the same sentence by another
    speaker when there is one (else the same speaker in a third emotion, else ``b``), DTW-aligned to ``a``
    (the positive), and ``mel_n``, a segment of a different sentence of ``a``'s speaker (the negative; any
    other sentence if that speaker has none). Labels ``emotion_x``, ``speaker_x``, ``sentence_x`` for
    ``x`` in ``a, b, p, n``. Items are the anchors that have such a ``b``.

    ``mode="segments"`` (encoder pretraining): one random segment ``mel (S,80)`` of a clip with its
    ``emotion``, ``speaker`` and ``sentence`` labels.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str,
        segment_frames: int = 32,
        *,
        mode: str = "pairs",
        seed: int = 0,
        fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
        band: float | None = None,
        cache_size: int = 64,
    ) -> None:
        _check_positive(segment_frames=segment_frames)
        if mode not in ("pairs", "segments"):
            raise ValueError(f"mode must be 'pairs' or 'segments', got {mode!r}")
        super().__init__(root, split, ("mel",), seed, fractions, cache_size, True)
        self.segment_frames, self.mode, self.band = segment_frames, mode, band
        self._warped: OrderedDict[tuple[Path, Path], np.ndarray] = OrderedDict()
        self._warp_cache_size = cache_size
        if mode == "pairs":
            self._pair_candidates()

    def _pair_candidates(self) -> None:
        """Index groups for drawing ``b``, ``p`` and ``n``; anchors are the clips with a partner ``b``."""
        records = self.records
        indices = range(len(records))
        self._by_speaker_sentence = group_by(indices, lambda i: (records[i].speaker, records[i].sentence))
        self._by_sentence = group_by(range(len(records)), lambda i: records[i].sentence)
        self._by_speaker = group_by(range(len(records)), lambda i: records[i].speaker)
        self.anchors: list[int] = [i for i in range(len(records)) if self._partners(i)]
        if not self.anchors:
            raise DataError(
                f"split {self.split!r} of {self.root} has no pair of clips with the same speaker "
                "and sentence in two emotions; AEE needs MEAD-style data, or mode='segments'"
            )
        if len(self._by_sentence) < 2:
            raise DataError(
                f"split {self.split!r} of {self.root} has a single sentence; the content triplet "
                "(Eq. 6) needs at least two (or use mode='segments')"
            )

    def _partners(self, a: int) -> list[int]:
        """Same speaker, same sentence, another emotion."""
        anchor = self.records[a]
        return [
            j
            for j in self._by_speaker_sentence[(anchor.speaker, anchor.sentence)]
            if self.records[j].emotion != anchor.emotion
        ]

    def _positives(self, a: int, b: int) -> list[int]:
        """Same sentence by other speakers; else the same speaker in a third emotion; else ``b``."""
        anchor, partner = self.records[a], self.records[b]
        others = [j for j in self._by_sentence[anchor.sentence] if self.records[j].speaker != anchor.speaker]
        third = [j for j in self._partners(a) if self.records[j].emotion != partner.emotion]
        return others or third or [b]

    def _negatives(self, a: int) -> list[int]:
        """Other sentences of the anchor's speaker; else other sentences of anyone."""
        anchor = self.records[a]
        same_speaker = [
            j for j in self._by_speaker[anchor.speaker] if self.records[j].sentence != anchor.sentence
        ]
        return same_speaker or [j for j, rec in enumerate(self.records) if rec.sentence != anchor.sentence]

    def __len__(self) -> int:
        return len(self.anchors) if self.mode == "pairs" else len(self.records)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_warped"] = OrderedDict()
        return state

    def __getitem__(self, index: int) -> Item:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        rng = self._rng(index)
        if self.mode == "segments":
            record = self.records[index]
            mel = self._cache.get(record).mel
            start = int(rng.integers(0, max(mel.shape[0] - self.segment_frames, 0) + 1))
            return {
                "mel": _f32(_segment(mel, start, self.segment_frames)),
                **self._labels("", index),
                "clip": _label(index),
                "start": _label(start),
            }
        a = self.anchors[index]
        b = int(rng.choice(self._partners(a)))
        p = int(rng.choice(self._positives(a, b)))
        n = int(rng.choice(self._negatives(a)))
        mel_a, mel_n = self._cache.get(self.records[a]).mel, self._cache.get(self.records[n]).mel
        start = int(rng.integers(0, max(mel_a.shape[0] - self.segment_frames, 0) + 1))
        n_start = int(rng.integers(0, max(mel_n.shape[0] - self.segment_frames, 0) + 1))
        return {
            "mel_a": _f32(_segment(mel_a, start, self.segment_frames)),  # (S, 80)
            "mel_b": _f32(_segment(self._aligned(a, b), start, self.segment_frames)),  # (S, 80)
            "mel_p": _f32(_segment(self._aligned(a, p), start, self.segment_frames)),  # (S, 80)
            "mel_n": _f32(_segment(mel_n, n_start, self.segment_frames)),  # (S, 80)
            **self._labels("_a", a),
            **self._labels("_b", b),
            **self._labels("_p", p),
            **self._labels("_n", n),
            "clip": _label(a),
            "start": _label(start),
        }

    def _labels(self, suffix: str, clip_index: int) -> Item:
        record = self.records[clip_index]
        return {
            f"emotion{suffix}": _label(record.emotion_index),
            f"speaker{suffix}": _label(self.speaker_to_index[record.speaker]),
            f"sentence{suffix}": _label(self.sentence_to_index[record.sentence]),
        }

    def _aligned(self, a: int, b: int) -> np.ndarray:
        """Clip ``b``'s mel warped onto clip ``a``'s frames by DTW (cached): ``(S_a, 80)``."""
        key = (self.records[a].path, self.records[b].path)
        warped = self._warped.pop(key, None)
        if warped is None:
            warped = warp_to(
                self._cache.get(self.records[a]).mel, self._cache.get(self.records[b]).mel, self.band
            )
        self._warped[key] = warped
        while len(self._warped) > self._warp_cache_size:
            self._warped.popitem(last=False)
        return warped


class EmotionImageDataset(_ClipDataset):
    """Face crops with their clip's MEAD emotion, for fine-tuning the image emotion extractor.

    Item: ``image (3,128,128)`` float [0, 1] of a random valid frame (augmented with a horizontal flip,
    colour jitter and a small affine transform when ``augment``), ``emotion`` index into ``EMOTIONS``,
    ``speaker``. ``samples_per_clip`` frames are drawn per clip and epoch.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str,
        augment: bool = True,
        *,
        seed: int = 0,
        fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
        samples_per_clip: int = 1,
        cache_size: int = 8,
    ) -> None:
        _check_positive(samples_per_clip=samples_per_clip)
        super().__init__(
            root, split, ("frames", "valid"), seed, fractions, cache_size, True, samples_per_clip
        )
        self.augment = augment

    def _make(self, clip_index: int, rng: np.random.Generator) -> Item | None:
        record = self.records[clip_index]
        clip = self._cache.get(record)
        valid = np.flatnonzero(clip.valid)
        if len(valid) == 0:
            return None
        frame = int(rng.choice(valid))
        image = _images(clip.frames[frame])  # (3, 128, 128)
        if self.augment:
            generator = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
            image = augment_face(image, generator)
        return {
            "image": image,
            "emotion": _label(record.emotion_index),
            "speaker": _label(self.speaker_to_index[record.speaker]),
            "clip": _label(clip_index),
            "start": _label(frame),
        }


def augment_face(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip, colour jitter (brightness, contrast, saturation +-20%) and a small affine
    transform (rotation +-10 degrees, scale 0.9-1.1, shift +-5%) of one face crop.

    image: ``(3, H, W)`` float in [0, 1]. Returns ``(3, H, W)`` float in [0, 1]. Draws only from
    ``generator``, so a seeded generator gives the same augmentation.
    """
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"augment_face: expected an image of shape (3, H, W), got {tuple(image.shape)}")

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=generator))

    if uniform(0.0, 1.0) < 0.5:
        image = image.flip(-1)
    image = image * uniform(0.8, 1.2)  # brightness
    mean = image.mean()
    image = (image - mean) * uniform(0.8, 1.2) + mean  # contrast
    gray = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None]  # (1, H, W)
    image = (image - gray) * uniform(0.8, 1.2) + gray  # saturation
    angle = np.deg2rad(uniform(-10.0, 10.0))
    scale = uniform(0.9, 1.1)
    shift_x, shift_y = uniform(-0.1, 0.1), uniform(-0.1, 0.1)  # in [-1, 1] grid units: +-5% of the size
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    theta = torch.tensor([[cos, -sin, shift_x], [sin, cos, shift_y]], dtype=image.dtype)[None]  # (1, 2, 3)
    grid = F.affine_grid(theta, [1, *image.shape], align_corners=False)  # (1, H, W, 2)
    image = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    return image.clamp(0.0, 1.0)


class EBMDataset(_ClipDataset):
    """Cross-emotion samples for the Emotion Bridging Memory (Sec. III-C, Eqs. 8-13).

    For a target clip (emotion labelled) and a window of ``t_frames`` valid frames: ``mel (T,16,80)``,
    ``pose (T,78,2)``, ``mouth (T,57,2)`` (the ground truth the EBM output is compared with), and
    ``emotion_mel (G,S,80)``: ``emotion_segments`` segments of ``segment_frames`` mel frames spread over the
    whole utterance, for the audio emotion encoder. References come from ANOTHER clip of the same speaker with
    a different emotion (or, with ``neutral_refs``, a neutral clip; the Sec. IV-D settings):
    ``ref_landmarks (N,135,2)``, ``ref_landmarks_478 (N,478,2)`` (for the identity encoder),
    ``ref_images (N,3,128,128)`` float [0, 1]. Labels: ``target_emotion``, ``source_emotion``, ``speaker``;
    ``ref_clip`` indexes ``records`` like ``clip``. Items are the target clips that have a reference clip.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str,
        n_refs: int = 5,
        t_frames: int = 5,
        *,
        neutral_refs: bool = False,
        segment_frames: int = 32,
        emotion_segments: int = 3,
        seed: int = 0,
        fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
        cache_size: int = 16,
    ) -> None:
        _check_positive(
            n_refs=n_refs, t_frames=t_frames, segment_frames=segment_frames, emotion_segments=emotion_segments
        )
        keys = ("frames", "landmarks", "valid", "mel")
        super().__init__(root, split, keys, seed, fractions, cache_size, True)
        self.n_refs, self.t_frames, self.neutral_refs = n_refs, t_frames, neutral_refs
        self.segment_frames, self.emotion_segments = segment_frames, emotion_segments
        self._by_speaker = group_by(range(len(self.records)), lambda i: self.records[i].speaker)
        self.targets: list[int] = [i for i in range(len(self.records)) if self._references(i)]
        if not self.targets:
            wanted = "a neutral clip" if neutral_refs else "clips in two emotions"
            raise DataError(
                f"no speaker in split {split!r} of {self.root} has {wanted}; the EBM stage needs "
                "MEAD-style data with several emotions per speaker"
            )

    def _references(self, target: int) -> list[int]:
        """Clips the references of ``target`` may come from: same speaker, another emotion (or neutral)."""
        record = self.records[target]
        if self.neutral_refs:
            return [
                j
                for j in self._by_speaker[record.speaker]
                if j != target and self.records[j].emotion == "neutral"
            ]
        return [j for j in self._by_speaker[record.speaker] if self.records[j].emotion != record.emotion]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> Item:
        none_usable = (
            f"no target clip in split {self.split!r} of {self.root} has {self.t_frames} valid "
            "frames in a row and a reference clip with valid frames; preprocess more data"
        )
        return self._first_usable(index, self._make, self.targets, none_usable)

    def _make(self, target_index: int, rng: np.random.Generator) -> Item | None:
        target_record = self.records[target_index]
        target = self._cache.get(target_record)
        start = _draw_window(target.valid, self.t_frames, rng)
        if start is None:
            return None
        for ref_index in rng.permutation(self._references(target_index)):
            ref_record = self.records[int(ref_index)]
            ref = self._cache.get(ref_record)
            valid = np.flatnonzero(ref.valid)
            if len(valid) == 0:
                continue
            frames = _spread_references(ref.landmarks, valid, self.n_refs, rng)
            return {
                "ref_landmarks": _f32(select(ref.landmarks[frames], ALL)),  # (N, 135, 2)
                "ref_landmarks_478": _f32(ref.landmarks[frames]),  # (N, 478, 2)
                "ref_images": _images(ref.frames[frames]),  # (N, 3, 128, 128)
                **_window_targets(target, start, self.t_frames),  # mel, pose, mouth
                "emotion_mel": _f32(
                    _spaced_segments(target.mel, self.segment_frames, self.emotion_segments)
                ),  # (G, S, 80)
                "target_emotion": _label(target_record.emotion_index),
                "source_emotion": _label(ref_record.emotion_index),
                "speaker": _label(self.speaker_to_index[target_record.speaker]),
                "clip": _label(target_index),
                "ref_clip": _label(int(ref_index)),
                "start": _label(start),
            }
        return None
