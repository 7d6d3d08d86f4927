"""Tests of corpus discovery (cemnet_core/data/layouts.py) on small folder trees made here."""

from __future__ import annotations

from pathlib import Path

import pytest

from cemnet_core.data.layouts import discover, parse_mead_name
from cemnet_core.errors import InputError


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_mead_pairs_video_with_audio_and_true_landmarks(tmp_path: Path) -> None:
    video = _touch(tmp_path / "M003/video/front/angry/level_2/001.mp4")
    audio = _touch(tmp_path / "M003/audio/angry/level_2/001.m4a")
    marks = _touch(tmp_path / "M003/video/front/angry/level_2/001.landmarks.npy")
    silent = _touch(tmp_path / "W011/video/front/happy/level_1/004.mp4")
    _touch(tmp_path / "M003/video/left_30/angry/level_2/001.mp4")  # other camera: ignored
    _touch(tmp_path / "M003/video/front/bored/level_1/001.mp4")  # not a MEAD emotion: ignored
    clips = discover("mead", tmp_path)
    assert [clip.video for clip in clips] == [video, silent]
    first, second = clips
    assert (first.audio, first.landmarks, first.speaker, first.emotion, first.level, first.sentence) == (
        audio,
        marks,
        "M003",
        "angry",
        "2",
        "001",
    )
    assert first.clip_id == "M003_angry_level2_001" and first.dataset == "mead"
    assert second.audio is None and second.landmarks is None and second.emotion == "happy"


def test_lrs2_reads_splits_from_filelists(tmp_path: Path) -> None:
    _touch(tmp_path / "main/5535/00001.mp4")
    _touch(tmp_path / "main/5535/00002.mp4")
    _touch(tmp_path / "main/6001/00001.mp4")
    (tmp_path / "train.txt").write_text("5535/00001\n5535/00002\n")
    (tmp_path / "test.txt").write_text("6001/00001 NF\n")
    clips = discover("lrs2", tmp_path)
    assert [(clip.clip_id, clip.split, clip.speaker) for clip in clips] == [
        ("5535_00001", "train", "5535"),
        ("5535_00002", "train", "5535"),
        ("6001_00001", "test", "6001"),
    ]
    assert all(clip.audio == clip.video for clip in clips)
    with pytest.raises(InputError, match="main/"):
        discover("lrs2", tmp_path / "main")


def test_folder_finds_videos_recursively_and_parses_mead_names(tmp_path: Path) -> None:
    _touch(tmp_path / "dreamtalk__M030_front_angry_level3_001.mp4")
    _touch(tmp_path / "sub/talk.MOV")
    _touch(tmp_path / "notes.txt")
    clips = discover("folder", tmp_path)
    assert [clip.clip_id for clip in clips] == ["dreamtalk__M030_front_angry_level3_001", "sub__talk"]
    mead = clips[0]
    assert (mead.speaker, mead.emotion, mead.level, mead.sentence) == ("M030", "angry", "3", "001")
    assert (clips[1].speaker, clips[1].emotion, clips[1].sentence) == ("", "", "talk")


def test_parse_mead_name_variants() -> None:
    assert parse_mead_name("W009_front_surprised_level_1_017") == {
        "speaker": "W009",
        "emotion": "surprised",
        "level": "1",
        "sentence": "017",
    }
    assert parse_mead_name("M030_front_joyful_level3_001") is None
    assert parse_mead_name("Obama_clip1") is None


def test_unknown_layout_and_missing_root(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown layout"):
        discover("voxceleb", tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        discover("folder", tmp_path / "nope")


def test_mead_split_is_the_papers_40_training_and_8_test_speakers() -> None:
    from collections import Counter

    from cemnet_core.data.layouts import mead_speaker_splits

    names = [f"{'MW'[i % 2]}{i:03d}" for i in range(48)]
    splits = mead_speaker_splits(names)
    counts = Counter(splits.values())
    assert counts == {"train": 36, "val": 4, "test": 8}  # 40 training speakers (36 fit + 4 val), 8 test
    assert mead_speaker_splits(names) == splits and mead_speaker_splits(names, seed=1) != splits
    assert Counter(mead_speaker_splits(names[:24]).values()) == {"train": 18, "val": 2, "test": 4}
    assert mead_speaker_splits(names[:2]) == {}  # too few speakers: no corpus split


def test_small_mead_corpus_keeps_the_default_speaker_split(tmp_path: Path) -> None:
    from cemnet_core.data.manifest import split_speakers

    for speaker in ("M001", "M002", "W003", "W004"):
        _touch(tmp_path / f"{speaker}/video/front/happy/level_1/001.mp4")
        _touch(tmp_path / f"{speaker}/video/front/sad/level_1/001.mp4")
    clips = discover("mead", tmp_path)
    splits = ("train", "val", "test")
    by_split = {split: sorted({c.speaker for c in clips if c.split == split}) for split in splits}
    assert by_split == split_speakers(["M001", "M002", "W003", "W004"])  # the demo's corpus: unchanged
    assert all(clip.split for clip in clips) and len(by_split["test"]) == 1
