"""Manifest reading, labels and speaker-held-out splits (cemnet_core/data/manifest.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cemnet_core.data.manifest import (
    EMOTION_TO_INDEX,
    EMOTIONS,
    ClipRecord,
    emotion_index,
    group_by,
    read_manifest,
    speaker_index,
    split_records,
    split_speakers,
)
from cemnet_core.errors import DataError


def _line(speaker: str, emotion: str, sentence: str, **extra: object) -> dict[str, object]:
    return {
        "path": f"{speaker}/{emotion or 'none'}_{sentence}.clip.safetensors",
        "dataset": "mead",
        "speaker": speaker,
        "emotion": emotion,
        "level": "1",
        "sentence": sentence,
        "num_frames": 40,
        "source_sha256": "ab" * 32,
        "face_ratio": 0.9,
        **extra,
    }


def _write(root: Path, lines: list[dict[str, object]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root


def _corpus(root: Path, n_speakers: int = 10, per_speaker: int = 3) -> list[ClipRecord]:
    lines = [
        _line(f"S{s:02d}", EMOTIONS[c % 8], f"{c:03d}") for s in range(n_speakers) for c in range(per_speaker)
    ]
    return read_manifest(_write(root, lines))


def test_emotions_are_meads_eight_in_order() -> None:
    assert EMOTIONS == ("angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised")
    assert [EMOTION_TO_INDEX[name] for name in EMOTIONS] == list(range(8))
    assert emotion_index("sad") == 6
    with pytest.raises(DataError, match="unknown emotion"):
        emotion_index("")


def test_read_manifest_parses_records(tmp_path: Path) -> None:
    root = _write(tmp_path / "data", [_line("M030", "happy", "001", extra_key=5), _line("W009", "", "002")])
    (root / "manifest.jsonl").write_text((root / "manifest.jsonl").read_text() + "\n")  # trailing blank line
    first, second = read_manifest(root)
    assert first.path == root / "M030/happy_001.clip.safetensors"
    assert (first.speaker, first.emotion, first.sentence, first.num_frames) == ("M030", "happy", "001", 40)
    assert first.face_ratio == pytest.approx(0.9) and first.extra == {"extra_key": 5}
    assert first.emotion_index == EMOTION_TO_INDEX["happy"]
    assert second.emotion == ""


def test_read_manifest_order_does_not_depend_on_line_order(tmp_path: Path) -> None:
    lines = [_line("S0", "sad", f"00{c}") for c in range(9)]
    ordered = [r.path.name for r in read_manifest(_write(tmp_path / "a", lines))]
    shuffled = [r.path.name for r in read_manifest(_write(tmp_path / "b", lines[::-1][3:] + lines[::-1][:3]))]
    assert ordered == shuffled == sorted(ordered)  # parallel workers append lines in finishing order


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json\n", "not valid JSON"),
        ('{"path": "a"}\n', "missing keys"),
        (json.dumps(_line("A", "bored", "001")) + "\n", "bored"),
        (json.dumps(_line("A", "sad", "001", num_frames="many")) + "\n", "bad value"),
        ("\n", "lists no clips"),
    ],
)
def test_read_manifest_rejects_bad_files(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "manifest.jsonl").write_text(content)
    with pytest.raises(DataError, match=message):
        read_manifest(tmp_path)


def test_missing_manifest_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cemnet preprocess"):
        read_manifest(tmp_path)


def test_speaker_index_and_group_by(tmp_path: Path) -> None:
    records = _corpus(tmp_path, n_speakers=3, per_speaker=4)
    assert speaker_index(reversed(records)) == {"S00": 0, "S01": 1, "S02": 2}
    groups = group_by(records, lambda r: (r.speaker, r.sentence))
    assert len(groups) == 12 and all(len(group) == 1 for group in groups.values())
    by_speaker = group_by(records, lambda r: r.speaker)
    assert list(by_speaker) == ["S00", "S01", "S02"] and len(by_speaker["S01"]) == 4


def test_speaker_splits_are_disjoint_cover_all_and_follow_the_seed(tmp_path: Path) -> None:
    records = _corpus(tmp_path, n_speakers=10)
    parts = {split: split_records(records, split, seed=3) for split in ("train", "val", "test")}
    speakers_of = {split: {r.speaker for r in part} for split, part in parts.items()}
    assert len(speakers_of["train"]) == 8 and len(speakers_of["val"]) == 1 and len(speakers_of["test"]) == 1
    assert not speakers_of["train"] & speakers_of["val"]
    assert not speakers_of["train"] & speakers_of["test"]
    assert not speakers_of["val"] & speakers_of["test"]
    assert sum(len(part) for part in parts.values()) == len(records)
    assert split_records(records, "all") == records
    assert split_records(records, "val", seed=3) == parts["val"]  # same seed, same split
    names = [f"S{s:02d}" for s in range(10)]
    held_out = {tuple(split_speakers(names, seed=seed)["test"]) for seed in range(8)}
    assert len(held_out) > 1  # the seed changes which speakers are held out


def test_split_fractions(tmp_path: Path) -> None:
    records = _corpus(tmp_path, n_speakers=10)
    parts = split_speakers({r.speaker for r in records}, seed=0, fractions=(0.6, 0.4, 0.0))
    assert parts is not None
    assert (len(parts["train"]), len(parts["val"]), len(parts["test"])) == (6, 4, 0)
    with pytest.raises(DataError, match="empty"):
        split_records(records, "test", fractions=(0.6, 0.4, 0.0))
    with pytest.raises(DataError, match="unknown split"):
        split_records(records, "dev")
    with pytest.raises(DataError, match="fractions"):
        split_records(records, "train", fractions=(1.0, -0.5, 0.5))


def test_too_few_speakers_falls_back_to_clip_split_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    records = _corpus(tmp_path, n_speakers=2, per_speaker=10)
    with caplog.at_level(logging.WARNING, logger="cemnet_core.data.manifest"):
        parts = {split: split_records(records, split, seed=1) for split in ("train", "val", "test")}
    assert "splitting clips instead" in caplog.text
    paths = {split: {r.path for r in part} for split, part in parts.items()}
    assert (len(paths["train"]), len(paths["val"]), len(paths["test"])) == (16, 2, 2)
    assert not paths["train"] & paths["val"] and not paths["train"] & paths["test"]
    assert not paths["val"] & paths["test"]


def test_corpus_split_is_kept_when_every_clip_has_one(tmp_path: Path) -> None:
    lines = [_line(f"V{i:02d}", "", "00001", split=("train", "val", "test")[i % 3]) for i in range(9)]
    records = read_manifest(_write(tmp_path / "lrs2", lines))
    assert [r.speaker for r in split_records(records, "val", seed=5)] == ["V01", "V04", "V07"]
    own = split_records(records, "val", seed=5, use_corpus_split=False)  # speaker-held-out instead
    assert len(own) == 1
    lines[0]["split"] = ""  # one clip without a corpus split: the seeded speaker split applies
    records = read_manifest(_write(tmp_path / "mixed", lines))
    assert [r.speaker for r in split_records(records, "val", seed=5)] == [r.speaker for r in own]
