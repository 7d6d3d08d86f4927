"""Tests of corpus preprocessing (cemnet_core/preprocess.py) on short cuts of the real clips.

The sources are written into ``tmp_path`` by the tests (first 1.6 s of real clips, a corrupt file, a video
without a face), so each run takes seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cemnet_core.data import landmarks as lm
from cemnet_core.data.clips import load_clip
from cemnet_core.data.layouts import discover
from cemnet_core.data.manifest import read_manifest
from cemnet_core.data.media import load_audio, read_video, write_video
from cemnet_core.data.tracking import FaceTracker
from cemnet_core.errors import InputError
from cemnet_core.preprocess import (
    FAILURES_NAME,
    MANIFEST_NAME,
    PreprocessOptions,
    in_shard,
    parse_shard,
    preprocess,
    rebuild_manifest,
)

FRAMES = 40  # 1.6 s at 25 fps
TALKING = ("styletalk__feifeili_clip3", "styletalk__KristiNoem")
SILENT_MEAD = "video_silent/dreamtalk__M030_front_angry_level3_001.mp4"


def cut(source: Path, target: Path, with_audio: bool = True) -> Path:
    """Write the first FRAMES frames (and matching audio) of ``source`` to ``target``."""
    frames = read_video(source)[:FRAMES]
    audio = load_audio(source)[: FRAMES * 640] if with_audio else None
    return write_video(target, frames, audio=audio)


@pytest.fixture(scope="module")
def folder_corpus(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("folder_corpus")
    for name in TALKING:
        cut(real_data / "video" / f"{name}.mp4", root / f"{name}.mp4")
    cut(real_data / SILENT_MEAD, root / "dreamtalk__M030_front_angry_level3_001.mp4", with_audio=False)
    (root / "corrupt.mp4").write_bytes((real_data / "video" / f"{TALKING[0]}.mp4").read_bytes()[:4000])
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(FRAMES * 640) / 16000)).astype(np.float32)
    write_video(root / "noface.mp4", np.full((FRAMES, 128, 128, 3), 90, np.uint8), audio=tone)
    return root


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_folder_real_clips_failures_and_resume(
    weights_dir: Path, folder_corpus: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "out"
    summary = preprocess("folder", folder_corpus, dst, show_progress=False)
    assert (summary.total, summary.processed, summary.failed, summary.skipped) == (5, 2, 3, 0)
    assert set(summary.face_ratios) == set(TALKING)
    assert all(ratio >= 0.95 for ratio in summary.face_ratios.values())
    reasons = {line["clip_id"]: line["reason"] for line in _lines(dst / FAILURES_NAME)}
    assert "no audio track" in reasons["dreamtalk__M030_front_angry_level3_001"]
    assert "corrupt" in reasons["corrupt"]
    assert "no face" in reasons["noface"]

    records = read_manifest(dst)
    assert sorted(record.extra["clip_id"] for record in records) == sorted(TALKING)
    clip = load_clip(records[0].path)
    assert clip.frames.shape == (FRAMES, 128, 128, 3) and clip.valid.all()
    assert clip.mel.shape == (1 + FRAMES * 640 // 200, 80) and clip.audio.shape == (FRAMES * 640,)
    face = clip.landmarks[:, list(lm.ALL)]
    assert face.min() > 0.0 and face.max() < 1.0
    assert clip.meta["landmark_source"] == "mediapipe" and clip.meta["landmark_engine"] == "litert"
    assert clip.meta["source_sha256"] == records[0].source_sha256

    again = preprocess("folder", folder_corpus, dst, show_progress=False)
    assert (again.skipped, again.processed, again.failed) == (2, 0, 3)  # failures are retried
    assert len(_lines(dst / MANIFEST_NAME)) == 2

    (dst / MANIFEST_NAME).unlink()
    assert rebuild_manifest(dst) == 2
    rebuilt = read_manifest(dst)
    assert sorted(r.source_sha256 for r in rebuilt) == sorted(r.source_sha256 for r in records)
    assert sorted(r.num_frames for r in rebuilt) == [FRAMES, FRAMES]


def test_mead_silent_clip_with_allow_silent(weights_dir: Path, real_data: Path, tmp_path: Path) -> None:
    video = tmp_path / "mead/M030/video/front/angry/level_3/001.mp4"
    video.parent.mkdir(parents=True)
    cut(real_data / SILENT_MEAD, video, with_audio=False)
    failed = preprocess("mead", tmp_path / "mead", tmp_path / "strict", show_progress=False)
    assert failed.failed == 1 and "no audio track" in failed.failures["M030_angry_level3_001"]
    options = PreprocessOptions(allow_silent=True, preview=True)
    summary = preprocess("mead", tmp_path / "mead", tmp_path / "out", options=options, show_progress=False)
    assert summary.processed == 1 and summary.face_ratios["M030_angry_level3_001"] >= 0.95
    (record,) = read_manifest(tmp_path / "out")
    assert (record.speaker, record.emotion, record.level, record.sentence) == ("M030", "angry", "3", "001")
    assert any("no audio track" in note for note in record.extra["notes"])
    clip = load_clip(record.path)
    assert clip.mel.shape == (0, 80) and clip.audio.shape == (0,) and clip.frames.shape[0] == FRAMES
    assert len(list((tmp_path / "out/preview").glob("*.png"))) == 3


def test_true_landmarks_are_used_instead_of_mediapipe(
    weights_dir: Path, real_data: Path, tmp_path: Path
) -> None:
    video = cut(real_data / "video" / f"{TALKING[0]}.mp4", tmp_path / "src/clip.mp4")
    with FaceTracker(weights_dir / "face_landmarker.task") as tracker:
        # shifted, so not what MediaPipe would say
        truth = tracker.track(read_video(video)).landmarks + np.float32(3.0)
    np.save(tmp_path / "src/clip.landmarks.npy", truth)
    options = PreprocessOptions(landmarks="true")
    summary = preprocess("folder", tmp_path / "src", tmp_path / "out", options=options, show_progress=False)
    assert summary.processed == 1
    (record,) = read_manifest(tmp_path / "out")
    clip = load_clip(record.path)
    np.testing.assert_allclose(lm.to_frame(clip.landmarks, clip.boxes), truth, atol=1e-3)
    assert clip.meta["landmark_source"] == "true"

    np.save(tmp_path / "src/clip.landmarks.npy", truth[:10])
    bad = preprocess("folder", tmp_path / "src", tmp_path / "bad", options=options, show_progress=False)
    assert bad.failed == 1 and "expected (40, 478, 2)" in bad.failures["clip"]


def test_shards_partition_the_corpus(folder_corpus: Path, weights_dir: Path, tmp_path: Path) -> None:
    ids = [clip.clip_id for clip in discover("folder", folder_corpus)]
    for count in (1, 2, 3):
        owners = [[index for index in range(count) if in_shard(clip_id, (index, count))] for clip_id in ids]
        assert all(len(owner) == 1 for owner in owners)  # every clip in exactly one shard
    assert parse_shard("1/3") == (1, 3)
    for text in ("3/3", "1-3", "0/0"):
        with pytest.raises(InputError, match="--shard"):
            parse_shard(text)
    # the corrupt and the no-face clip are cheap to run: check a real run follows in_shard
    cheap = tmp_path / "cheap"
    cheap.mkdir()
    for name in ("corrupt.mp4", "noface.mp4"):
        (cheap / name).write_bytes((folder_corpus / name).read_bytes())
    seen = []
    for index in range(2):
        out = tmp_path / f"shard{index}"
        summary = preprocess("folder", cheap, out, shard=(index, 2), show_progress=False)
        seen += sorted(summary.failures)
        assert sorted(summary.failures) == sorted(c for c in ("corrupt", "noface") if in_shard(c, (index, 2)))
    assert sorted(seen) == ["corrupt", "noface"]


def test_bad_options_raise_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--landmarks"):
        preprocess("folder", tmp_path, tmp_path / "o", options=PreprocessOptions(landmarks="dlib"))
    with pytest.raises(InputError, match="--workers"):
        preprocess("folder", tmp_path, tmp_path / "o", workers=0)
