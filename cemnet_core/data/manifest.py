"""The manifest of a processed dataset folder and the labels and splits built from it (DESIGN section 4).

``cemnet preprocess`` writes ``DST/manifest.jsonl``: one JSON object per clip with at least ``path`` (clip
file relative to ``DST``), ``dataset``, ``speaker``, ``emotion``, ``level``, ``sentence``, ``num_frames``,
``source_sha256`` and ``face_ratio``. This module reads it into :class:`ClipRecord` values and derives what
the training stages need from it:

- label indices: :data:`EMOTIONS` (MEAD's 8 emotions, in this order) -> :data:`EMOTION_TO_INDEX`, and
  :func:`speaker_index` (sorted over the whole manifest, so indices agree between splits);
- groupings: :func:`group_by` (e.g. same speaker + same sentence for the AEE pairs of Sec. III-B);
- speaker-held-out splits: :func:`split_records` assigns whole speakers to train / val / test with a seed,
  so evaluation faces and voices are never seen in training (Sec. IV-A). With too few speakers it falls
  back to a clip-level split and logs a warning saying so. A corpus that ships its own split (LRS2's
  filelists, written by preprocessing as a ``split`` key on every line) keeps it.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from cemnet_core.contracts import EMOTIONS
from cemnet_core.errors import DataError

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
EMOTION_TO_INDEX: dict[str, int] = {name: index for index, name in enumerate(EMOTIONS)}
SPLITS: tuple[str, ...] = ("train", "val", "test", "all")
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.8, 0.1, 0.1)

_Item = TypeVar("_Item")
_REQUIRED = ("path", "dataset", "speaker", "emotion", "level", "sentence", "num_frames")


@dataclass(frozen=True)
class ClipRecord:
    """One line of ``manifest.jsonl``; ``path`` is absolute (the folder joined with the relative path).

    ``emotion`` is one of :data:`EMOTIONS` or ``""`` when the corpus does not label it (LRS2, plain folders).
    Keys beyond the required ones are kept in ``extra``.
    """

    path: Path
    dataset: str
    speaker: str
    emotion: str
    level: str
    sentence: str
    num_frames: int
    source_sha256: str = ""
    face_ratio: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def emotion_index(self) -> int:
        """Index of ``emotion`` in :data:`EMOTIONS`; ``DataError`` for an unlabelled clip."""
        return emotion_index(self.emotion)


def emotion_index(name: str) -> int:
    """Index of an emotion name in :data:`EMOTIONS`."""
    try:
        return EMOTION_TO_INDEX[name]
    except KeyError:
        raise DataError(
            f"unknown emotion {name!r}: expected one of {', '.join(EMOTIONS)}; emotion datasets need clips "
            "with an emotion label (MEAD layout or `cemnet synth`)"
        ) from None


def _parse_record(root: Path, line: str, number: int, manifest: Path) -> ClipRecord:
    try:
        values = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{manifest}:{number}: not valid JSON ({exc.msg}); rerun `cemnet preprocess` to "
            "rewrite the manifest"
        ) from None
    if not isinstance(values, dict):
        raise DataError(f"{manifest}:{number}: expected a JSON object per line")
    missing = [key for key in _REQUIRED if key not in values]
    if missing:
        raise DataError(
            f"{manifest}:{number}: missing keys {missing}; rerun `cemnet preprocess` with this "
            "version of cemnet"
        )
    emotion = str(values["emotion"])
    if emotion and emotion not in EMOTION_TO_INDEX:
        raise DataError(f"{manifest}:{number}: emotion {emotion!r} is not one of {', '.join(EMOTIONS)} or ''")
    known = {*_REQUIRED, "source_sha256", "face_ratio"}
    try:
        return ClipRecord(
            path=root / str(values["path"]),
            dataset=str(values["dataset"]),
            speaker=str(values["speaker"]),
            emotion=emotion,
            level=str(values["level"]),
            sentence=str(values["sentence"]),
            num_frames=int(values["num_frames"]),
            source_sha256=str(values.get("source_sha256", "")),
            face_ratio=float(values.get("face_ratio", 1.0)),
            extra={key: value for key, value in values.items() if key not in known},
        )
    except (TypeError, ValueError) as exc:
        raise DataError(f"{manifest}:{number}: bad value ({exc}); rerun `cemnet preprocess`") from None


def read_manifest(root: str | os.PathLike[str]) -> list[ClipRecord]:
    """All clips of a processed folder, sorted by path (blank lines skipped).

    Not in line order: parallel preprocessing appends each clip when its worker finishes, so the line order
    changes from run to run, and with it every dataset's sample order, i.e. training and evaluation.

    Raises ``DataError`` if the folder or its ``manifest.jsonl`` is missing, a line is malformed, or the
    manifest lists no clip.
    """
    root = Path(root)
    manifest = root / MANIFEST_NAME
    if not manifest.is_file():
        raise DataError(
            f"no {MANIFEST_NAME} in {root}: run `cemnet preprocess ... {root}` (or `cemnet synth "
            f"{root}`) first, or point --data at a processed folder"
        )
    records = []
    with manifest.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                records.append(_parse_record(root, line, number, manifest))
    if not records:
        raise DataError(
            f"{manifest} lists no clips: preprocessing found nothing usable; see {root / 'failures.jsonl'}"
        )
    return sorted(records, key=lambda record: record.path.as_posix())


def speakers(records: Iterable[ClipRecord]) -> list[str]:
    """Sorted distinct speakers."""
    return sorted({record.speaker for record in records})


def speaker_index(records: Iterable[ClipRecord]) -> dict[str, int]:
    """Speaker -> class index, sorted by name; build it from the whole manifest so splits agree."""
    return {name: index for index, name in enumerate(speakers(records))}


def group_by(items: Iterable[_Item], key: Callable[[_Item], Hashable]) -> dict[Hashable, list[_Item]]:
    """Items (records, or indices into a record list) grouped by ``key(item)``; groups in first-seen order,
    items in input order."""
    groups: dict[Hashable, list[_Item]] = defaultdict(list)
    for item in items:
        groups[key(item)].append(item)
    return dict(groups)


def _split_counts(total: int, fractions: tuple[float, float, float]) -> tuple[int, int, int] | None:
    """How many of ``total`` units go to (train, val, test); ``None`` if every used split cannot get one."""
    wanted = [fraction > 0 for fraction in fractions]
    if total < sum(wanted):
        return None
    val = max(1, round(fractions[1] * total)) if wanted[1] else 0
    test = max(1, round(fractions[2] * total)) if wanted[2] else 0
    train = total - val - test
    if wanted[0] and train < 1:
        return None
    return train, val, test


def _check_split(split: str, fractions: tuple[float, float, float]) -> None:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    if len(fractions) != 3 or any(fraction < 0 for fraction in fractions) or sum(fractions) <= 0:
        raise DataError(
            f"split fractions must be three non-negative numbers (train, val, test) with a "
            f"positive sum, got {fractions}"
        )


def _normalised(fractions: tuple[float, float, float]) -> tuple[float, float, float]:
    total = sum(fractions)
    return fractions[0] / total, fractions[1] / total, fractions[2] / total


def _assign(units: list[Any], seed: int, counts: tuple[int, int, int]) -> dict[str, list[Any]]:
    order = np.random.default_rng(seed).permutation(len(units))
    shuffled = [units[i] for i in order]
    train, val, _ = counts
    return {"train": shuffled[:train], "val": shuffled[train : train + val], "test": shuffled[train + val :]}


def split_speakers(
    names: Iterable[str], seed: int = 0, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
) -> dict[str, list[str]] | None:
    """Assign whole speakers to ``train`` / ``val`` / ``test`` (sorted lists) with a seed.

    Fractions are normalised; every split with a positive fraction gets at least one speaker. Returns
    ``None`` when there are too few speakers for that.
    """
    _check_split("all", fractions)
    units = sorted(set(names))
    counts = _split_counts(len(units), _normalised(fractions))
    if counts is None:
        return None
    return {name: sorted(group) for name, group in _assign(units, seed, counts).items()}


def corpus_split(record: ClipRecord) -> str:
    """The split the corpus itself gives a clip (``manifest.jsonl`` key ``split``), or ``""``."""
    value = record.extra.get("split", "")
    return value if isinstance(value, str) else ""


def split_records(
    records: list[ClipRecord],
    split: str,
    seed: int = 0,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    use_corpus_split: bool = True,
) -> list[ClipRecord]:
    """The records of one split (``train``, ``val``, ``test`` or ``all``), in manifest order.

    If ``use_corpus_split`` and every record carries a corpus split (``train``/``val``/``test``, e.g. from
    LRS2's filelists), that split is used. Otherwise splits are speaker-held-out (:func:`split_speakers`,
    with ``seed`` and ``fractions``); with fewer speakers than used splits, clips are split instead (a
    warning is logged: val/test then share speakers with train). Raises ``DataError`` for an unknown split
    name or an empty result.
    """
    _check_split(split, fractions)
    if split == "all":
        return list(records)
    by_speaker = split_speakers(speakers(records), seed, fractions)
    if use_corpus_split and all(corpus_split(record) in SPLITS[:3] for record in records):
        selected = [record for record in records if corpus_split(record) == split]
    elif by_speaker is not None:
        chosen = set(by_speaker[split])
        selected = [record for record in records if record.speaker in chosen]
    else:
        counts = _split_counts(len(records), _normalised(fractions))
        if counts is None:
            raise DataError(
                f"{len(records)} clips cannot fill the splits {fractions}: use split='all' or "
                "set the fractions of unused splits to 0"
            )
        log.warning(
            "only %d speaker(s): cannot hold out speakers for fractions %s; splitting clips instead "
            "(val/test share speakers with train)",
            len(speakers(records)),
            fractions,
        )
        paths = sorted(str(record.path) for record in records)
        chosen_paths = set(_assign(paths, seed, counts)[split])
        selected = [record for record in records if str(record.path) in chosen_paths]
    if not selected:
        raise DataError(
            f"split {split!r} is empty (fractions {fractions}, corpus splits used: "
            f"{use_corpus_split}): give it a positive fraction or use split='all'"
        )
    return selected
