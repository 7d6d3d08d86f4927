"""SyncNetDataset: pairs match evaluate_sync's windows, negatives are off-sync, unusable clips are skipped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cemnet_core.data.clips import Clip, save_clip
from cemnet_core.data.sync_dataset import SyncNetDataset, mouth_region
from cemnet_core.models.syncnet import mfcc

FRAMES = 30


def _clip(frames: int, samples: int, seed: int, valid: np.ndarray | None = None) -> Clip:
    rng = np.random.default_rng(seed)
    images = np.zeros((frames, 128, 128, 3), dtype=np.uint8)
    images[:, :64] = 7  # upper face: never part of the lips
    images[:, 64:] = (np.arange(frames, dtype=np.uint8) * 3 + 10)[:, None, None, None]  # frame t is readable
    return Clip(
        frames=images,
        landmarks=np.zeros((frames, 478, 2), dtype=np.float32),
        boxes=np.zeros((frames, 4), dtype=np.float32),
        valid=np.ones(frames, dtype=bool) if valid is None else valid,
        mel=np.zeros((max(1, int(frames * 3.2)), 80), dtype=np.float32),
        audio=rng.integers(-9000, 9000, samples).astype(np.int16),
        meta={},
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Clips 0-1 complete, 2 with a gap of missing faces, 3 silent, 4 too short, 5 with short audio."""
    root = tmp_path_factory.mktemp("sync_corpus")
    gap = np.ones(FRAMES, dtype=bool)
    gap[10:15] = False
    clips = [
        _clip(FRAMES, FRAMES * 640, 0),
        _clip(FRAMES, FRAMES * 640 + 300, 1),
        _clip(FRAMES, FRAMES * 640, 2, valid=gap),
        _clip(FRAMES, 0, 3),
        _clip(4, 4 * 640, 4),
        _clip(FRAMES, 12 * 640, 5),  # audio for 12 frames only: windows start at 0 .. 6
    ]
    lines = []
    for number, clip in enumerate(clips):
        relative = f"clip{number}.clip.safetensors"
        save_clip(root / relative, clip)
        lines.append({"path": relative, "dataset": "test", "speaker": f"S{number}", "emotion": "",
                      "level": "", "sentence": "000", "num_frames": clip.num_frames})  # fmt: skip
    (root / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root


def _audio(corpus: Path, clip: int) -> torch.Tensor:
    from cemnet_core.data.clips import load_clip

    audio = load_clip(corpus / f"clip{clip}.clip.safetensors", ("audio",)).audio
    return torch.from_numpy(audio.astype(np.float32) / 32768.0)


def test_pairs_match_evaluate_sync_windows(corpus: Path) -> None:
    dataset = SyncNetDataset(corpus, "all", samples_per_clip=12, min_offset=4)
    coefficients = {clip: mfcc(_audio(corpus, clip)).float() for clip in (0, 1, 2, 5)}  # (num_mfcc, 13)
    labels = []
    for index in range(len(dataset)):
        item = dataset[index]
        clip, start = int(item["clip"]), int(item["start"])
        audio_clip, audio_start = int(item["audio_clip"]), int(item["audio_start"])
        assert item["lips"].shape == (5, 64, 128, 3) and item["lips"].dtype == torch.uint8
        assert item["mfcc"].shape == (1, 13, 20) and item["mfcc"].dtype == torch.float32
        first_frames = item["lips"][:, 0, 0, 0].long()  # (5,) frame t is drawn with value 3t + 10
        assert torch.equal(first_frames, (torch.arange(start, start + 5) * 3 + 10))
        assert clip in (0, 1, 2, 5) and audio_clip in (0, 1, 2, 5)  # silent and short clips never used
        expected = coefficients[audio_clip][4 * audio_start : 4 * audio_start + 20].T[None]  # (1, 13, 20)
        torch.testing.assert_close(item["mfcc"], expected)
        if clip == 2:
            assert not set(range(start, start + 5)) & set(range(10, 15))  # no missing face in the window
        last = {5: 12 - 6}  # evaluate_sync's windows: range(min(T, samples // 640) - 5)
        assert start <= last.get(clip, FRAMES - 6) and audio_start <= last.get(audio_clip, FRAMES - 6)
        if item["label"] == 1:
            assert (audio_clip, audio_start) == (clip, start)
        else:
            assert audio_clip != clip or abs(audio_start - start) >= 4
        labels.append(float(item["label"]))
    assert 0.3 < np.mean(labels) < 0.7


def test_items_are_deterministic_per_epoch(corpus: Path) -> None:
    dataset = SyncNetDataset(corpus, "all", samples_per_clip=4, seed=3)
    again = SyncNetDataset(corpus, "all", samples_per_clip=4, seed=3)
    keys = ("start", "audio_clip", "audio_start", "label")

    def draws(data: SyncNetDataset) -> list[tuple[int, ...]]:
        return [tuple(int(data[i][key]) for key in keys) for i in range(len(data))]

    first = draws(dataset)
    assert first == draws(again)
    dataset.set_epoch(1)
    assert draws(dataset) != first


def test_rates_choose_the_kind_of_pair(corpus: Path) -> None:
    positives = SyncNetDataset(corpus, "all", samples_per_clip=3, positive_rate=1.0)
    assert all(positives[i]["label"] == 1 for i in range(len(positives)))
    others = SyncNetDataset(corpus, "all", samples_per_clip=3, positive_rate=0.0, other_clip_rate=1.0)
    for index in range(len(others)):
        item = others[index]
        assert item["label"] == 0 and item["audio_clip"] != item["clip"]


def test_a_clip_too_short_for_a_shift_takes_its_negative_from_another_clip(corpus: Path) -> None:
    # clip 5 has 7 audio windows: no shift of 10 frames fits, so its negatives come from other clips
    dataset = SyncNetDataset(corpus, "all", samples_per_clip=6, positive_rate=0.0, other_clip_rate=0.0,
                             min_offset=10)  # fmt: skip
    items = [dataset[i] for i in range(len(dataset))]
    from_five = [item for item in items if item["clip"] == 5]
    assert from_five and all(item["audio_clip"] != 5 for item in from_five)
    assert any(item["audio_clip"] == item["clip"] for item in items)


def test_mouth_region_is_the_lower_half() -> None:
    crops = np.arange(2 * 128 * 128 * 3, dtype=np.int64).reshape(2, 128, 128, 3)
    np.testing.assert_array_equal(mouth_region(crops), crops[:, 64:])
    assert mouth_region(torch.zeros(5, 9, 4, 3)).shape == (5, 5, 4, 3)
    with pytest.raises(ValueError, match="face crops"):
        mouth_region(np.zeros((128, 128)))


def test_bad_arguments_are_refused(corpus: Path) -> None:
    with pytest.raises(ValueError, match="min_offset"):
        SyncNetDataset(corpus, "all", min_offset=0)
    with pytest.raises(ValueError, match="positive_rate"):
        SyncNetDataset(corpus, "all", positive_rate=1.5)
