"""Cross-reconstruction items of Audio Emotion Enhancement as Fig. 4 draws them (Sec. III-B, Eq. 5).

Eq. (5) rebuilds ``a_{e_j, t_i, c_k}`` from ``D(E_t(a_i), E_e(a_j), E_c(a_k))`` for the eight ``(i, j, k)``
in ``{0, 1}^3``: the timbre of one clip, the emotion of one and the content of one. The target is a clip
that must exist: speaker ``t_i`` saying sentence ``c_k`` in emotion ``e_j``. MEAD records the same
sentences for every speaker, and ``cemnet synth`` makes every (speaker, emotion, level, sentence), so
such targets are in the corpus. An item of :class:`CrossReconstructionDataset`:

- ``a_0`` (the anchor: speaker A, emotion e0 at level l0, sentence s0) and ``a_1`` (speaker B != A,
  emotion e1 != e0 at level l1, sentence s1 != s0), chosen so that all eight combinations exist: A or B,
  (e0, l0) or (e1, l1), s0 or s1. The emotion source gives its level too (MEAD's intensity is part of the
  emotion a clip carries). Combinations that do not exist are never drawn; an anchor without any valid
  ``a_1`` is not an item; a split without any valid pair raises ``DataError``.
- ``mel_target (2, 2, 2, S, F)``: ``[i, j, k]`` is a segment of the target clip warped by DTW onto the time
  axis of the content source ``a_k`` (:mod:`cemnet_core.data.alignment`), the segment at the same frames as
  ``a_k``'s (``start`` for ``a_0``, ``start_b`` for ``a_1``). The decoder thus rebuilds the target on the
  content clip's timeline: the content embedding keeps time (:mod:`cemnet_core.models.emotion_enhancement`),
  timbre and emotion are vectors. ``[0, 0, 0]`` is ``mel_a``, ``[1, 1, 1]`` is ``mel_b``.
- For the triplet (Eq. 6) and the encoder pretraining, the fields of the older pairs keep their names:
  ``mel_a``, ``mel_b`` ``(S, F)``; ``mel_p = mel_target[1, 1, 0]`` (``a_0``'s sentence by B in ``a_1``'s
  emotion: same content, nothing else shared) and ``mel_n = mel_target[0, 0, 1]`` (``a_0``'s speaker and
  emotion saying ``a_1``'s sentence: only the content differs). Labels ``emotion_x``, ``speaker_x``,
  ``sentence_x`` for ``x`` in ``a, b, p, n``; ``clip``/``clip_b`` and ``target_clip (2, 2, 2)`` index
  :attr:`records`.

A split with a single speaker (a held-out validation speaker; the quick demo's training split) has no pair
of two speakers. ``other_speaker=None`` (the stage's default) then draws ``a_1`` from the same speaker
(other emotion, other sentence: emotion and content still swap) and logs a warning; ``True`` insists on
two speakers (``DataError`` without), ``False`` always uses one.

Shapes: ``S`` mel frames of a segment, ``F`` mel bins (80).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cemnet_core.data.alignment import dtw_path, warp_along
from cemnet_core.data.datasets import Item, _check_positive, _ClipDataset, _f32, _label, _segment
from cemnet_core.data.manifest import DEFAULT_FRACTIONS, ClipRecord
from cemnet_core.errors import DataError

log = logging.getLogger(__name__)

COMBINATIONS: tuple[tuple[int, int, int], ...] = tuple(itertools.product(range(2), repeat=3))  # (i, j, k)

Style = tuple[str, str]  # (emotion, level): what an emotion source gives


def _style(record: ClipRecord) -> Style:
    return record.emotion, record.level


class CrossReconstructionDataset(_ClipDataset):
    """Fig. 4 items for Eq. (5): two clips differing in speaker, emotion and sentence, and the 8 targets.

    See the module docstring for the item. ``segment_frames`` = S; ``band`` the Sakoe-Chiba band of the
    DTW (None = full); ``path_cache_size`` DTW paths kept (a path is small; the warp itself is cheap).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str,
        segment_frames: int = 32,
        *,
        other_speaker: bool | None = None,
        seed: int = 0,
        fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
        band: float | None = None,
        cache_size: int = 64,
        path_cache_size: int = 8192,
    ) -> None:
        _check_positive(segment_frames=segment_frames, path_cache_size=path_cache_size)
        super().__init__(root, split, ("mel",), seed, fractions, cache_size, True)
        self.segment_frames, self.band = segment_frames, band
        self._paths: OrderedDict[tuple[Path, Path], np.ndarray] = OrderedDict()
        self._path_cache_size = path_cache_size
        records = self.records
        self._clip_of: dict[tuple[str, Style, str], int] = {}
        for index, record in enumerate(records):  # the first clip (manifest order) of a duplicate label
            self._clip_of.setdefault((record.speaker, _style(record), record.sentence), index)
        self.split_speakers = sorted({record.speaker for record in records})
        self._styles = sorted({_style(record) for record in records})
        self._sentences = sorted({record.sentence for record in records})
        if other_speaker is None:
            other_speaker = len(self.split_speakers) > 1
            if not other_speaker:
                log.warning(
                    "split %r of %s has one speaker (%s): its cross-reconstruction pairs share the speaker "
                    "(emotion and sentence still differ), so timbre is not swapped",
                    split, self.root, self.split_speakers[0],
                )  # fmt: skip
        self.other_speaker = other_speaker
        self.anchors: list[int] = [
            a for a in range(len(records)) if next(self._partner_iter(a), None) is not None
        ]
        if not self.anchors:
            speaker_rule = "two speakers, " if other_speaker else "one speaker, "
            emotions = sorted({record.emotion for record in records})
            raise DataError(
                f"split {split!r} of {self.root} has no cross-reconstruction pair (Fig. 4, Eq. 5): two clips "
                f"of {speaker_rule}two emotions and two sentences whose mixed combinations all exist as "
                f"clips (it has {len(self.split_speakers)} speaker(s), {len(emotions)} emotion(s), "
                f"{len(self._sentences)} sentence(s)); the AEE needs MEAD-style data where speakers say the "
                "same sentences in several emotions (`cemnet synth` makes every combination)"
            )

    def _has(self, speaker: str, style: Style, sentence: str) -> bool:
        return (speaker, style, sentence) in self._clip_of

    def _partner_iter(self, a: int) -> Iterator[int]:
        """Clips ``a_1`` for the anchor ``a``, in label order, whose eight combinations all exist."""
        anchor = self.records[a]
        A, E0, s0 = anchor.speaker, _style(anchor), anchor.sentence
        speakers = [B for B in self.split_speakers if B != A] if self.other_speaker else [A]
        for E1 in self._styles:
            if E1[0] == E0[0] or not self._has(A, E1, s0):
                continue
            for s1 in self._sentences:
                if s1 == s0 or not (self._has(A, E0, s1) and self._has(A, E1, s1)):
                    continue
                for B in speakers:
                    if all(self._has(B, E, s) for E in (E0, E1) for s in (s0, s1)):
                        yield self._clip_of[(B, E1, s1)]

    def partners(self, a: int) -> list[int]:
        """Indices into :attr:`records` of the clips that may be ``a_1`` for the anchor clip ``a``."""
        return list(self._partner_iter(a))

    def target(self, timbre: int, emotion: int, content: int) -> int:
        """The clip with the speaker of ``timbre``, the emotion (and level) of ``emotion`` and the sentence of
        ``content`` (indices into :attr:`records`); ``DataError`` if the corpus has none."""
        t, e, c = self.records[timbre], self.records[emotion], self.records[content]
        key = (t.speaker, _style(e), c.sentence)
        if key not in self._clip_of:
            raise DataError(
                f"split {self.split!r} of {self.root} has no clip {key} (speaker, emotion, sentence)"
            )
        return self._clip_of[key]

    def __len__(self) -> int:
        return len(self.anchors)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_paths"] = OrderedDict()
        return state

    def __getitem__(self, index: int) -> Item:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        rng = self._rng(index)
        a = self.anchors[index]
        b = int(rng.choice(self.partners(a)))
        clips = (a, b)
        mels = [self._cache.get(self.records[clip]).mel for clip in clips]
        starts = [int(rng.integers(0, max(len(mel) - self.segment_frames, 0) + 1)) for mel in mels]
        targets = np.zeros((2, 2, 2, self.segment_frames, mels[0].shape[1]), dtype=np.float32)
        target_clips = np.zeros((2, 2, 2), dtype=np.int64)
        for i, j, k in COMBINATIONS:
            clip = clips[k] if i == j == k else self.target(clips[i], clips[j], clips[k])
            aligned = mels[k] if clip == clips[k] else self._aligned(clips[k], clip)  # (S_k, F)
            targets[i, j, k] = _segment(aligned, starts[k], self.segment_frames)
            target_clips[i, j, k] = clip
        positive, negative = int(target_clips[1, 1, 0]), int(target_clips[0, 0, 1])
        return {
            "mel_a": _f32(targets[0, 0, 0]),  # (S, F)
            "mel_b": _f32(targets[1, 1, 1]),  # (S, F)
            "mel_p": _f32(targets[1, 1, 0]),  # (S, F)
            "mel_n": _f32(targets[0, 0, 1]),  # (S, F)
            "mel_target": _f32(targets),  # (2, 2, 2, S, F)
            **self._labels("_a", a),
            **self._labels("_b", b),
            **self._labels("_p", positive),
            **self._labels("_n", negative),
            "clip": _label(a),
            "clip_b": _label(b),
            "target_clip": torch.from_numpy(target_clips),  # (2, 2, 2)
            "start": _label(starts[0]),
            "start_b": _label(starts[1]),
        }

    def _labels(self, suffix: str, clip_index: int) -> Item:
        record = self.records[clip_index]
        return {
            f"emotion{suffix}": _label(record.emotion_index),
            f"speaker{suffix}": _label(self.speaker_to_index[record.speaker]),
            f"sentence{suffix}": _label(self.sentence_to_index[record.sentence]),
        }

    def _aligned(self, onto: int, clip: int) -> np.ndarray:
        """Clip ``clip``'s mel warped onto clip ``onto``'s frames by DTW (path cached): ``(S_onto, F)``."""
        mel_onto, mel = self._cache.get(self.records[onto]).mel, self._cache.get(self.records[clip]).mel
        key = (self.records[onto].path, self.records[clip].path)
        path = self._paths.pop(key, None)
        if path is None:
            path = dtw_path(mel_onto, mel, self.band)[0].astype(np.int32)  # (L, 2)
        self._paths[key] = path
        while len(self._paths) > self._path_cache_size:
            self._paths.popitem(last=False)
        return warp_along(path, mel, mel_onto.shape[0])
