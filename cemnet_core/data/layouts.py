"""Discovery of source clips in the corpus layouts CEM-Net reads (DESIGN section 4; paper Sec. IV-A).

- ``mead``: ``<speaker>/video/front/<emotion>/level_<n>/<nnn>.mp4`` with its audio at
  ``<speaker>/audio/<emotion>/level_<n>/<nnn>.m4a`` (MEAD's own layout; ``cemnet synth`` writes the same).
  Only the front camera is used, as in the paper. Emotion folders outside MEAD's 8 are ignored. Each clip
  gets a speaker-held-out split (:func:`mead_speaker_splits`): with MEAD's 48 speakers, the paper's 8 test
  speakers and 40 training speakers (Sec. IV-A), of which 4 are the ``val`` split (validation and the
  evaluation judges' accuracy; never fit); other speaker counts in the same proportions.
- ``lrs2``: ``main/<id>/<clip>.mp4`` (audio inside the mp4) with ``train.txt`` / ``val.txt`` / ``test.txt``
  filelists (``<id>/<clip>`` per line, extra columns ignored) at the root, giving each clip its split.
- ``folder``: every video below a folder. MEAD-style names such as
  ``dreamtalk__M030_front_angry_level3_001.mp4`` give speaker, emotion, level and sentence (a tag after
  the sentence number, as in ``..._level3_001_1080p.mp4``, is ignored).

A synthetic clip's true landmarks (``<nnn>.landmarks.npy`` beside the video) are reported in
``SourceClip.landmarks`` when present.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from cemnet_core.contracts import EMOTIONS
from cemnet_core.data.manifest import split_speakers
from cemnet_core.errors import InputError

LAYOUTS: tuple[str, ...] = ("mead", "lrs2", "folder")
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg")
LANDMARKS_SUFFIX = ".landmarks.npy"
LRS2_FILELISTS: tuple[str, ...] = ("train", "val", "test")
# The paper's MEAD split (Sec. IV-A): 40 training and 8 test speakers of 48; 4 of the 40 are held out as val.
MEAD_SPEAKERS, MEAD_TEST_SPEAKERS, MEAD_VAL_SPEAKERS = 48, 8, 4
MEAD_FRACTIONS: tuple[float, float, float] = (
    (MEAD_SPEAKERS - MEAD_TEST_SPEAKERS - MEAD_VAL_SPEAKERS) / MEAD_SPEAKERS,
    MEAD_VAL_SPEAKERS / MEAD_SPEAKERS,
    MEAD_TEST_SPEAKERS / MEAD_SPEAKERS,
)

# e.g. "dreamtalk__M030_front_angry_level3_001", "M030_front_angry_level_3_001" or, with a tag after the
# sentence number, "M030_front_angry_level3_001_1080p"
_MEAD_NAME = re.compile(
    r"(?:^|_)(?P<speaker>[MW]\d{3})_(?:front_)?(?P<emotion>[a-z]+)_level_?(?P<level>\d+)_(?P<sentence>\d+)"
    r"(?:[_.\- ].*)?$"
)
_LEVEL_DIR = re.compile(r"^level_?(\d+)$")


@dataclass(frozen=True)
class SourceClip:
    """One clip to preprocess.

    ``audio`` is the file holding its sound (the video itself for LRS2 and plain folders; ``None`` when a MEAD
    clip has no matching ``.m4a``). ``clip_id`` is unique within a corpus and names the output file.
    """

    video: Path
    audio: Path | None
    dataset: str
    clip_id: str
    speaker: str = ""
    emotion: str = ""
    level: str = ""
    sentence: str = ""
    split: str = ""
    landmarks: Path | None = None


def _true_landmarks(video: Path) -> Path | None:
    path = video.with_name(video.stem + LANDMARKS_SUFFIX)
    return path if path.is_file() else None


def _check_root(root: Path) -> Path:
    if not root.is_dir():
        raise InputError(f"source folder {root} does not exist or is not a folder; give the corpus root")
    return root


def mead_speaker_splits(speakers: Iterable[str], seed: int = 0) -> dict[str, str]:
    """Speaker -> ``train`` / ``val`` / ``test``: the paper's MEAD split, in proportion for other corpora.

    ``n`` speakers (sorted, shuffled with ``seed`` as :func:`~cemnet_core.data.manifest.split_speakers`
    does): ``test`` = ``max(1, round(8 n / 48))``, ``val`` = ``max(1, round(4 n / 48))``, ``train`` the
    rest; 48 speakers give 36 / 4 / 8, i.e. the paper's 40 training speakers (``train`` + ``val``) and 8
    test speakers. For up to 8 speakers this is the same assignment as the manifest's default
    speaker-held-out split (1 val and 1 test speaker). Fewer than 3 speakers: ``{}`` (no corpus split; the
    manifest then splits clips, see ``manifest.split_records``).
    """
    assigned = split_speakers(speakers, seed, MEAD_FRACTIONS)
    if assigned is None:
        return {}
    return {speaker: split for split, names in assigned.items() for speaker in names}


def discover_mead(root: str | os.PathLike[str]) -> list[SourceClip]:
    """MEAD front-camera clips below ``root`` (see the module docstring), sorted by path, each with its
    speaker's split (:func:`mead_speaker_splits` over the speakers found)."""
    root = _check_root(Path(root))
    clips = []
    for video in sorted(root.glob("*/video/front/*/*/*.mp4")):
        level_dir, emotion_dir = video.parent, video.parent.parent
        speaker = emotion_dir.parent.parent.parent.name
        level_match = _LEVEL_DIR.match(level_dir.name)
        if emotion_dir.name not in EMOTIONS or level_match is None:
            continue
        audio = root / speaker / "audio" / emotion_dir.name / level_dir.name / (video.stem + ".m4a")
        level = level_match.group(1)
        clips.append(
            SourceClip(
                video=video,
                audio=audio if audio.is_file() else None,
                dataset="mead",
                clip_id=f"{speaker}_{emotion_dir.name}_level{level}_{video.stem}",
                speaker=speaker,
                emotion=emotion_dir.name,
                level=level,
                sentence=video.stem,
                landmarks=_true_landmarks(video),
            )
        )
    splits = mead_speaker_splits(clip.speaker for clip in clips)
    return [replace(clip, split=splits.get(clip.speaker, "")) for clip in clips]


def _lrs2_splits(root: Path) -> dict[str, str]:
    splits: dict[str, str] = {}
    for split in LRS2_FILELISTS:
        filelist = root / f"{split}.txt"
        if filelist.is_file():
            for line in filelist.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    splits[line.split()[0]] = split
    return splits


def discover_lrs2(root: str | os.PathLike[str]) -> list[SourceClip]:
    """LRS2 clips ``main/<id>/<clip>.mp4`` below ``root`` with their split from the filelists, sorted."""
    root = _check_root(Path(root))
    if not (root / "main").is_dir():
        raise InputError(f"{root} has no main/ folder; give the LRS2 root (holding main/ and train.txt)")
    splits = _lrs2_splits(root)
    clips = []
    for video in sorted((root / "main").glob("*/*.mp4")):
        key = f"{video.parent.name}/{video.stem}"
        clips.append(
            SourceClip(
                video=video,
                audio=video,
                dataset="lrs2",
                clip_id=f"{video.parent.name}_{video.stem}",
                speaker=video.parent.name,
                sentence=video.stem,
                split=splits.get(key, ""),
                landmarks=_true_landmarks(video),
            )
        )
    return clips


def parse_mead_name(stem: str) -> dict[str, str] | None:
    """``speaker``/``emotion``/``level``/``sentence`` from a MEAD-style file stem, or None."""
    match = _MEAD_NAME.search(stem)
    if match is None or match.group("emotion") not in EMOTIONS:
        return None
    return {key: match.group(key) for key in ("speaker", "emotion", "level", "sentence")}


def discover_folder(root: str | os.PathLike[str]) -> list[SourceClip]:
    """Every video below ``root`` (recursive, sorted); labels parsed from MEAD-style names when possible."""
    root = _check_root(Path(root))
    clips = []
    for video in sorted(path for path in root.rglob("*") if path.suffix.lower() in VIDEO_SUFFIXES):
        if not video.is_file():
            continue
        relative = video.relative_to(root).with_suffix("")
        labels = parse_mead_name(video.stem) or {"sentence": video.stem}
        clips.append(
            SourceClip(
                video=video,
                audio=video,
                dataset="folder",
                clip_id="__".join(relative.parts),
                landmarks=_true_landmarks(video),
                **labels,
            )
        )
    return clips


def discover(layout: str, root: str | os.PathLike[str]) -> list[SourceClip]:
    """Source clips of ``root`` in ``layout`` (one of :data:`LAYOUTS`)."""
    finders = {"mead": discover_mead, "lrs2": discover_lrs2, "folder": discover_folder}
    if layout not in finders:
        raise InputError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    return finders[layout](root)
