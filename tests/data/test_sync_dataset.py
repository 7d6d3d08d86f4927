"""SyncNetDataset: items hold evaluate_sync's windows and candidate offsets, unusable clips are skipped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cemnet_core.data.clips import Clip, save_clip
from cemnet_core.data.mfcc import mfcc
from cemnet_core.data.sync_dataset import (
    AUGMENT_LEVEL_DB,
    SyncNetDataset,
    audio_windows,
    augment_lips,
    mouth_region,
)
from cemnet_core.errors import DataError

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


def test_items_hold_the_candidate_offsets_evaluate_sync_compares(corpus: Path) -> None:
    N, V = 4, 3
    dataset = SyncNetDataset(corpus, "all", samples_per_clip=12, windows=N, max_offset=V)
    coefficients = {clip: mfcc(_audio(corpus, clip)).float() for clip in (0, 1, 2)}  # (num_mfcc, 13)
    clips = set()
    for index in range(len(dataset)):
        item = dataset[index]
        clip, start = int(item["clip"]), int(item["start"])
        assert item["lips"].shape == (N + 4, 64, 128, 3) and item["lips"].dtype == torch.uint8
        assert item["mfcc"].shape == (N + 2 * V, 1, 13, 20) and item["mfcc"].dtype == torch.float32
        first_frames = item["lips"][:, 0, 0, 0].long()  # (N+4,) frame t is drawn with value 3t + 10
        assert torch.equal(first_frames, (torch.arange(start, start + N + 4) * 3 + 10))
        assert clip in (0, 1, 2)  # silent clip 3, short clip 4 and clip 5 (7 audio windows) never used
        # audio windows start - V .. start + N - 1 + V: video window start + i is in sync with mfcc[i + V]
        assert start >= V and start + N - 1 + V <= FRAMES - 6  # evaluate_sync's range(min_length - 5)
        for j in range(N + 2 * V):
            s = start - V + j
            torch.testing.assert_close(item["mfcc"][j, 0], coefficients[clip][4 * s : 4 * s + 20].T)
        if clip == 2:
            assert not set(range(start, start + N + 4)) & set(range(10, 15))  # no missing face
        clips.add(clip)
    assert clips == {0, 1, 2}


def test_items_are_deterministic_per_epoch(corpus: Path) -> None:
    dataset = SyncNetDataset(corpus, "all", samples_per_clip=4, seed=3, windows=4, max_offset=3)
    again = SyncNetDataset(corpus, "all", samples_per_clip=4, seed=3, windows=4, max_offset=3)

    def draws(data: SyncNetDataset) -> list[tuple[int, int]]:
        return [(int(data[i]["clip"]), int(data[i]["start"])) for i in range(len(data))]

    first = draws(dataset)
    assert first == draws(again)
    dataset.set_epoch(1)
    assert draws(dataset) != first


def test_augmented_items_change_the_look_alike_in_every_frame_and_keep_the_audio(corpus: Path) -> None:
    sizes = {"samples_per_clip": 4, "seed": 3, "windows": 4, "max_offset": 3}
    plain = SyncNetDataset(corpus, "all", **sizes)
    augmented = SyncNetDataset(corpus, "all", augment=True, **sizes)
    for index in range(len(plain)):
        a, b = plain[index], augmented[index]
        assert (int(a["clip"]), int(a["start"])) == (int(b["clip"]), int(b["start"]))  # same window drawn
        assert torch.equal(a["mfcc"], b["mfcc"])
        assert b["lips"].shape == a["lips"].shape and b["lips"].dtype == torch.uint8
        assert not torch.equal(a["lips"], b["lips"])
    assert torch.equal(augmented[0]["lips"], augmented[0]["lips"])  # deterministic per (seed, epoch, index)


def test_level_augmentation_moves_only_the_log_energy_alike_in_every_window(corpus: Path) -> None:
    sizes = {"samples_per_clip": 4, "seed": 3, "windows": 4, "max_offset": 3}
    plain = SyncNetDataset(corpus, "all", **sizes)
    louder = SyncNetDataset(corpus, "all", augment_level=True, **sizes)
    offsets = []
    for index in range(len(plain)):
        a, b = plain[index], louder[index]
        assert torch.equal(a["lips"], b["lips"])  # the look is augment's, not augment_level's
        assert torch.equal(a["mfcc"][..., 1:, :], b["mfcc"][..., 1:, :])  # (N + 2V, 1, 13, 20): c1..c12 kept
        shift = b["mfcc"][..., 0, :] - a["mfcc"][..., 0, :]
        assert torch.allclose(shift, shift.flatten()[0].expand_as(shift), atol=1e-5)  # one gain per item
        offsets.append(float(shift.flatten()[0]))
    limit = 2 * np.log(10 ** (AUGMENT_LEVEL_DB / 20))
    assert all(abs(offset) <= limit + 1e-5 for offset in offsets) and len(set(offsets)) > 1


def test_a_gain_moves_only_coefficient_0_of_the_mfcc_by_2_ln_g() -> None:
    audio = 0.05 * torch.randn(16000, generator=torch.Generator().manual_seed(0))
    plain, quieter = mfcc(audio), mfcc(0.5 * audio)  # (frames, 13)
    assert torch.allclose(
        quieter[:, 0] - plain[:, 0], torch.full_like(plain[:, 0], 2 * np.log(0.5)), atol=1e-3
    )
    assert torch.allclose(quieter[:, 1:], plain[:, 1:], atol=0.05)  # int16 rounding only


def test_augment_lips_applies_one_change_to_all_frames() -> None:
    frame = np.random.default_rng(0).integers(0, 256, size=(64, 128, 3), dtype=np.uint8)
    window = np.stack([frame, frame, frame])  # three identical frames
    out = augment_lips(window, np.random.default_rng(1))
    assert out.shape == window.shape and out.dtype == np.uint8
    assert np.array_equal(out[0], out[1]) and np.array_equal(out[1], out[2])
    assert not np.array_equal(out[0], frame)


def test_clips_too_short_for_every_candidate_are_skipped(corpus: Path) -> None:
    # 4 windows +- 10 frames need 24 audio windows and 14 valid frames from frame 10 to 23: clips 0 and 1
    dataset = SyncNetDataset(corpus, "all", samples_per_clip=4, windows=4, max_offset=10)
    assert {int(dataset[i]["clip"]) for i in range(len(dataset))} == {0, 1}
    with pytest.raises(DataError, match="valid"):
        SyncNetDataset(corpus, "all", windows=4, max_offset=11)[0]  # 26 windows: no clip has them


def test_audio_windows_follow_evaluate_sync() -> None:
    assert audio_windows(np.zeros((119, 13)), 30 * 640) == 25  # range(min_length - 5)
    assert audio_windows(np.zeros((99, 13)), 30 * 640) == 20  # the MFCC ends first
    assert audio_windows(np.zeros((0, 13)), 0) == 0


def test_mouth_region_is_the_lower_half() -> None:
    crops = np.arange(2 * 128 * 128 * 3, dtype=np.int64).reshape(2, 128, 128, 3)
    np.testing.assert_array_equal(mouth_region(crops), crops[:, 64:])
    assert mouth_region(torch.zeros(5, 9, 4, 3)).shape == (5, 5, 4, 3)
    with pytest.raises(ValueError, match="face crops"):
        mouth_region(np.zeros((128, 128)))


def test_bad_arguments_are_refused(corpus: Path) -> None:
    with pytest.raises(ValueError, match="max_offset"):
        SyncNetDataset(corpus, "all", max_offset=0)
    with pytest.raises(ValueError, match="windows"):
        SyncNetDataset(corpus, "all", windows=0)
