"""Training datasets over a processed folder (cemnet_core/data/datasets.py).

Each test builds a tiny processed folder with ``save_clip`` whose contents encode where they came from:
landmark ``ALL[0]`` (MediaPipe 33) holds ``(0.1 + 0.01 t, 0.1 + 0.01 clip)``, frame pixels hold ``t`` and the
clip number, and the mel of a clip is its sentence's "content" time-stretched by a factor per emotion.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from cemnet_core.contracts import ALL, MOUTH, POSE
from cemnet_core.data.audio import mel_window
from cemnet_core.data.clips import Clip, load_clip, save_clip
from cemnet_core.data.datasets import Audio2MouthDataset, RendererDataset
from cemnet_core.data.emotion_datasets import (
    EBMDataset,
    EmotionAudioDataset,
    EmotionImageDataset,
    augment_face,
)
from cemnet_core.data.landmarks import draw_sketch, select
from cemnet_core.data.manifest import EMOTION_TO_INDEX, read_manifest
from cemnet_core.errors import ConfigError, DataError

SPEAKERS = ("M001", "M002", "W001", "W002")
EMOTION_STRETCH = {"angry": 0.8, "happy": 1.25, "neutral": 1.0}
SENTENCES = ("001", "002")
INVALID = (6, 7)  # frames without a face in every clip
OPEN, CLOSE = ALL.index(14), ALL.index(13)  # lower / upper inner lip in ALL order


def _content(sentence: str, frames: int = 64) -> np.ndarray:
    """A smooth mel-like sequence (S, 80) per sentence: what is said, before tempo changes."""
    rng = np.random.default_rng(int(sentence))
    anchors = rng.uniform(-3.5, 3.5, size=(frames // 6 + 2, 80))
    positions = np.linspace(0, anchors.shape[0] - 1, frames)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, anchors.shape[0] - 1)
    weight = (positions - low)[:, None]
    return (1 - weight) * anchors[low] + weight * anchors[high]


def _clip(number: int, speaker: int, emotion: str, sentence: str, invalid: tuple[int, ...]) -> Clip:
    """Clip ``number`` of the ``speaker``-th speaker (sorted names) saying ``sentence`` in ``emotion``."""
    content = _content(sentence)
    stretch = EMOTION_STRETCH.get(emotion, 1.0)
    positions = np.arange(int(len(content) * stretch)) / stretch
    source = np.minimum(np.round(positions).astype(int), len(content) - 1)
    mel = (content[source] + 0.02 * speaker).astype(np.float32)  # (S, 80): a small timbre shift per speaker
    T = int(np.ceil(len(mel) / 3.2))
    rng = np.random.default_rng(number)
    landmarks = np.repeat(rng.uniform(0.3, 0.7, size=(1, 478, 2)), T, axis=0).astype(np.float32)
    t = np.arange(T)
    landmarks[:, 33, 0], landmarks[:, 33, 1] = 0.1 + 0.01 * t, 0.1 + 0.01 * number  # frame and clip code
    landmarks[:, 14, 1] = landmarks[:, 13, 1] + 0.002 * ((t * 7) % T)  # mouth opening varies over the clip
    frames = np.zeros((T, 128, 128, 3), dtype=np.uint8)
    frames[..., 0] = (t * 9)[:, None, None]
    frames[..., 1] = number
    frames[:, 40:90, 30:100, 2] = 200  # a block so flips and affine transforms change the image
    valid = np.ones(T, dtype=bool)
    valid[list(invalid)] = False
    meta = {"dataset": "test", "emotion": emotion, "level": "1", "sentence": sentence}
    boxes = np.tile([0, 0, 128, 128], (T, 1)).astype(np.float32)
    audio = np.zeros(T * 640, dtype=np.int16)
    return Clip(frames=frames, landmarks=landmarks, boxes=boxes, valid=valid, mel=mel, audio=audio, meta=meta)


def _make_corpus(
    root: Path,
    speakers: tuple[str, ...] = SPEAKERS,
    emotions: tuple[str, ...] = tuple(EMOTION_STRETCH),
    sentences: tuple[str, ...] = SENTENCES,
    invalid: tuple[int, ...] = INVALID,
) -> Path:
    lines = []
    number = 0
    for speaker_number, speaker in enumerate(sorted(speakers)):
        for emotion in emotions:
            for sentence in sentences:
                clip = _clip(number, speaker_number, emotion, sentence, invalid)
                clip.meta["speaker"] = speaker
                relative = f"{speaker}/{emotion or 'none'}_{sentence}.clip.safetensors"
                save_clip(root / relative, clip)
                lines.append(
                    {
                        "path": relative,
                        "dataset": "test",
                        "speaker": speaker,
                        "emotion": emotion,
                        "level": "1",
                        "sentence": sentence,
                        "num_frames": clip.num_frames,
                        "source_sha256": f"{number:064d}",
                        "face_ratio": float(clip.valid.mean()),
                    }
                )
                number += 1
    (root / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_corpus(tmp_path_factory.mktemp("processed"))


def _frame_code(points: torch.Tensor) -> int:
    """The frame number encoded in ALL[0] of ``(135, 2)`` or ``(478, 2)`` landmarks."""
    value = points[0, 0] if points.shape[0] == len(ALL) else points[33, 0]
    return round((float(value) - 0.1) / 0.01)


def _clip_code(points: torch.Tensor) -> int:
    value = points[0, 1] if points.shape[0] == len(ALL) else points[33, 1]
    return round((float(value) - 0.1) / 0.01)


def _contract_window(mel: np.ndarray, t: int) -> np.ndarray:
    """DESIGN section 2, written out: 16 frames from round(3.2 t + 1.6) - 8, edge padded."""
    start = int(np.floor(3.2 * t + 1.6 + 0.5)) - 8
    return mel[np.clip(np.arange(start, start + 16), 0, len(mel) - 1)]


def _chw(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> float (3, H, W) in [0, 1], written independently of the datasets' helper."""
    return image.transpose(2, 0, 1).astype(np.float64) / 255.0


def _same(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


# --------------------------------------------------------------------------------------------- Audio2Mouth


def test_audio2mouth_item_shapes_and_dtypes(corpus: Path) -> None:
    dataset = Audio2MouthDataset(corpus, "all", n_refs=5, t_frames=5)
    assert len(dataset) == len(read_manifest(corpus))
    item = dataset[0]
    expected = {"ref_landmarks": (5, 135, 2), "mel": (5, 16, 80), "pose": (5, 78, 2), "mouth": (5, 57, 2)}
    for key, shape in expected.items():
        assert tuple(item[key].shape) == shape, key
        assert item[key].dtype == torch.float32, key
    batch = next(iter(DataLoader(dataset, batch_size=3)))
    assert tuple(batch["mel"].shape) == (3, 5, 16, 80)


def test_audio2mouth_targets_are_the_clips_window(corpus: Path) -> None:
    dataset = Audio2MouthDataset(corpus, "all", n_refs=4, t_frames=5, samples_per_clip=3)
    assert len(dataset) == 3 * len(dataset.records)
    for index in range(len(dataset)):
        item = dataset[index]
        clip = load_clip(dataset.records[int(item["clip"])].path)
        start = int(item["start"])
        window = range(start, start + 5)
        assert clip.valid[list(window)].all()
        np.testing.assert_array_equal(item["pose"].numpy(), select(clip.landmarks[start : start + 5], POSE))
        np.testing.assert_array_equal(item["mouth"].numpy(), select(clip.landmarks[start : start + 5], MOUTH))
        for k, t in enumerate(window):
            np.testing.assert_array_equal(item["mel"][k].numpy(), mel_window(clip.mel, t))
            np.testing.assert_array_equal(item["mel"][k].numpy(), _contract_window(clip.mel, t))
        for ref in item["ref_landmarks"]:
            frame = _frame_code(ref)
            assert _clip_code(ref) == int(item["clip"])  # references from the same clip ...
            assert clip.valid[frame] and frame not in window  # ... valid frames outside the target window
            np.testing.assert_allclose(ref.numpy(), select(clip.landmarks[frame], ALL))


def test_audio2mouth_references_cover_different_mouth_shapes(corpus: Path) -> None:
    dataset = Audio2MouthDataset(corpus, "all", n_refs=5, t_frames=5)
    for index in range(len(dataset)):
        item = dataset[index]
        clip = load_clip(dataset.records[int(item["clip"])].path, ("landmarks", "valid"))
        start = int(item["start"])
        candidates = [t for t in np.flatnonzero(clip.valid) if not start <= t < start + 5]
        openings = np.sort(clip.landmarks[candidates, 14, 1] - clip.landmarks[candidates, 13, 1])
        chosen = (item["ref_landmarks"][:, OPEN, 1] - item["ref_landmarks"][:, CLOSE, 1]).numpy()
        first, last = -(-len(openings) // 5), len(openings) // 5  # sizes of the first and last fifth
        assert chosen.min() <= openings[first - 1] + 1e-6  # one from the most closed fifth
        assert chosen.max() >= openings[-last] - 1e-6  # one from the most open fifth
        assert len({_frame_code(ref) for ref in item["ref_landmarks"]}) == 5


def test_clips_without_a_valid_window_are_skipped(tmp_path: Path) -> None:
    root = _make_corpus(tmp_path / "gaps", ("A", "B", "C"), emotions=("neutral",), sentences=("001",))
    # make clip 0 unusable: every second frame without a face
    first = read_manifest(root)[0]
    clip = load_clip(first.path)
    clip.valid[::2] = False
    save_clip(first.path, clip)
    dataset = Audio2MouthDataset(root, "all", t_frames=5)
    assert int(dataset[0]["clip"]) == 1
    clip.valid[:] = False
    for record in read_manifest(root):
        save_clip(record.path, clip)
    with pytest.raises(DataError, match="valid"):
        Audio2MouthDataset(root, "all")[0]


# ---------------------------------------------------------------------------------------------- Renderer


def test_renderer_item(corpus: Path) -> None:
    dataset = RendererDataset(corpus, "all", n_refs=3)
    for index in (0, 5, 11):
        item = dataset[index]
        assert tuple(item["ref_images"].shape) == (3, 3, 128, 128)
        assert tuple(item["ref_sketches"].shape) == (3, 3, 128, 128)
        assert tuple(item["target_image"].shape) == (3, 128, 128)
        assert tuple(item["target_sketch"].shape) == (3, 128, 128)
        for key in ("ref_images", "ref_sketches", "target_image", "target_sketch"):
            assert item[key].dtype == torch.float32 and item[key].min() >= 0 and item[key].max() <= 1
        clip = load_clip(dataset.records[int(item["clip"])].path)
        target = int(item["start"])
        assert clip.valid[target]
        np.testing.assert_allclose(item["target_image"].numpy(), _chw(clip.frames[target]), atol=1e-6)
        np.testing.assert_allclose(
            item["target_sketch"].numpy(), _chw(draw_sketch(clip.landmarks[target])), atol=1e-6
        )
        ref_frames = [round(float(image[0, 0, 0]) * 255 / 9) for image in item["ref_images"]]
        for image, sketch, frame in zip(item["ref_images"], item["ref_sketches"], ref_frames, strict=True):
            assert clip.valid[frame] and abs(frame - target) >= 3
            assert round(float(image[1, 0, 0]) * 255) == int(item["clip"])
            np.testing.assert_allclose(sketch.numpy(), _chw(draw_sketch(clip.landmarks[frame])), atol=1e-6)


# ---------------------------------------------------------------------------------------- Emotion (AEE)


def test_emotion_audio_pairs_are_aligned_and_labelled(corpus: Path) -> None:
    dataset = EmotionAudioDataset(corpus, "all", segment_frames=24)
    assert len(dataset) == len(dataset.records)  # every clip has a partner in another emotion
    for index in range(0, len(dataset), 3):
        item = dataset[index]
        for key in ("mel_a", "mel_b", "mel_p", "mel_n"):
            assert tuple(item[key].shape) == (24, 80) and item[key].dtype == torch.float32
        for key in ("emotion_a", "speaker_a", "sentence_b"):
            assert item[key].dtype == torch.int64 and item[key].shape == ()
        assert item["speaker_a"] == item["speaker_b"] and item["sentence_a"] == item["sentence_b"]
        assert item["emotion_a"] != item["emotion_b"]
        assert item["sentence_p"] == item["sentence_a"] and item["speaker_p"] != item["speaker_a"]
        assert item["sentence_n"] != item["sentence_a"] and item["speaker_n"] == item["speaker_a"]
        # b and p say the same thing at another tempo: after DTW they match a frame by frame
        record = dataset.records[int(item["clip"])]
        assert EMOTION_TO_INDEX[record.emotion] == int(item["emotion_a"])
        speaker_shift = 0.02 * (int(item["speaker_p"]) - int(item["speaker_a"]))
        assert (item["mel_b"] - item["mel_a"]).abs().mean() < 0.15
        assert (item["mel_p"] - speaker_shift - item["mel_a"]).abs().mean() < 0.15
        assert (item["mel_n"] - item["mel_a"]).abs().mean() > 0.5


def test_emotion_audio_without_dtw_would_misalign(corpus: Path) -> None:
    """The check above can fail: without time warping, a segment of b is far from the same segment of a."""
    records = read_manifest(corpus)
    angry = load_clip(next(r.path for r in records if r.emotion == "angry"), ("mel",)).mel
    happy = load_clip(next(r.path for r in records if r.emotion == "happy"), ("mel",)).mel
    assert np.abs(angry[20:44] - happy[20:44]).mean() > 0.3


def test_emotion_audio_segments_mode(corpus: Path) -> None:
    dataset = EmotionAudioDataset(corpus, "all", segment_frames=40, mode="segments")
    assert len(dataset) == len(dataset.records)
    item = dataset[2]
    assert tuple(item["mel"].shape) == (40, 80)
    mel = load_clip(dataset.records[2].path, ("mel",)).mel
    start = int(item["start"])
    expected = mel[np.clip(np.arange(start, start + 40), 0, len(mel) - 1)]  # edge-padded past the end
    np.testing.assert_array_equal(item["mel"].numpy(), expected)
    assert int(item["emotion"]) == EMOTION_TO_INDEX[dataset.records[2].emotion]
    assert int(item["speaker"]) == dataset.speaker_to_index[dataset.records[2].speaker]


def test_emotion_datasets_need_labels(tmp_path: Path) -> None:
    root = _make_corpus(tmp_path / "lrs2", speakers=("A", "B", "C"), emotions=("",), sentences=("001",))
    with pytest.raises(DataError, match="emotion label"):
        EmotionImageDataset(root, "all")
    with pytest.raises(DataError, match="emotion label"):
        EmotionAudioDataset(root, "all")
    assert len(Audio2MouthDataset(root, "all")) == 3  # unlabelled data still trains Audio2Mouth


# ------------------------------------------------------------------------------------------ Emotion image


def test_emotion_image_dataset(corpus: Path) -> None:
    plain = EmotionImageDataset(corpus, "all", augment=False)
    augmented = EmotionImageDataset(corpus, "all", augment=True)
    item = plain[4]
    assert tuple(item["image"].shape) == (3, 128, 128) and item["image"].dtype == torch.float32
    record = plain.records[4]
    assert int(item["emotion"]) == EMOTION_TO_INDEX[record.emotion]
    clip = load_clip(record.path)
    frame = int(item["start"])
    assert clip.valid[frame]
    np.testing.assert_allclose(item["image"].numpy(), _chw(clip.frames[frame]), atol=1e-6)
    changed = augmented[4]["image"]
    assert changed.min() >= 0 and changed.max() <= 1
    assert not torch.allclose(changed, item["image"], atol=1e-3)
    assert torch.equal(changed, augmented[4]["image"])  # deterministic


def test_augment_face_is_seeded_and_keeps_range() -> None:
    image = torch.rand(3, 32, 32)
    first = augment_face(image, torch.Generator().manual_seed(1))
    again = augment_face(image, torch.Generator().manual_seed(1))
    other = augment_face(image, torch.Generator().manual_seed(2))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert first.shape == image.shape and first.min() >= 0 and first.max() <= 1
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        augment_face(torch.rand(32, 32, 3), torch.Generator())


# -------------------------------------------------------------------------------------------------- EBM


def test_ebm_references_come_from_another_emotion(corpus: Path) -> None:
    dataset = EBMDataset(corpus, "all", n_refs=5, t_frames=5, segment_frames=32, emotion_segments=3)
    assert len(dataset) == len(dataset.records)
    for index in range(len(dataset)):
        item = dataset[index]
        expected = {
            "ref_landmarks": (5, 135, 2),
            "ref_landmarks_478": (5, 478, 2),
            "ref_images": (5, 3, 128, 128),
            "mel": (5, 16, 80),
            "pose": (5, 78, 2),
            "mouth": (5, 57, 2),
            "emotion_mel": (3, 32, 80),
        }
        for key, shape in expected.items():
            assert tuple(item[key].shape) == shape and item[key].dtype == torch.float32, key
        target = dataset.records[int(item["clip"])]
        source = dataset.records[int(item["ref_clip"])]
        assert source.speaker == target.speaker and source.emotion != target.emotion
        assert int(item["target_emotion"]) == EMOTION_TO_INDEX[target.emotion]
        assert int(item["source_emotion"]) == EMOTION_TO_INDEX[source.emotion]
        assert int(item["speaker"]) == dataset.speaker_to_index[target.speaker]
        source_clip = load_clip(source.path)
        for ref, ref_full in zip(item["ref_landmarks"], item["ref_landmarks_478"], strict=True):
            assert _clip_code(ref) == int(item["ref_clip"]) and source_clip.valid[_frame_code(ref)]
            np.testing.assert_array_equal(ref.numpy(), select(ref_full.numpy(), ALL))
        target_clip = load_clip(target.path)
        start = int(item["start"])
        target_mouth = select(target_clip.landmarks[start : start + 5], MOUTH)
        np.testing.assert_array_equal(item["mouth"].numpy(), target_mouth)
        np.testing.assert_array_equal(item["mel"][0].numpy(), mel_window(target_clip.mel, start))
        np.testing.assert_array_equal(item["emotion_mel"][0].numpy(), target_clip.mel[:32])
        np.testing.assert_array_equal(item["emotion_mel"][-1].numpy(), target_clip.mel[-32:])


def test_ebm_neutral_references(corpus: Path) -> None:
    dataset = EBMDataset(corpus, "all", neutral_refs=True)
    assert len(dataset) == len(dataset.records)  # every speaker has two neutral clips
    for index in range(len(dataset)):
        item = dataset[index]
        assert int(item["source_emotion"]) == EMOTION_TO_INDEX["neutral"]
        assert int(item["ref_clip"]) != int(item["clip"])
        assert dataset.records[int(item["ref_clip"])].speaker == dataset.records[int(item["clip"])].speaker


def test_ebm_needs_two_emotions_per_speaker(tmp_path: Path) -> None:
    root = _make_corpus(tmp_path / "one", speakers=("A", "B", "C"), emotions=("happy",), sentences=("001",))
    with pytest.raises(DataError, match="two emotions"):
        EBMDataset(root, "all")
    with pytest.raises(DataError, match="neutral"):
        EBMDataset(root, "all", neutral_refs=True)


# ------------------------------------------------------------------------------- determinism and splits


@pytest.mark.parametrize(
    "make",
    [
        lambda root, seed: Audio2MouthDataset(root, "all", seed=seed),
        lambda root, seed: RendererDataset(root, "all", seed=seed),
        lambda root, seed: EmotionAudioDataset(root, "all", seed=seed),
        lambda root, seed: EmotionImageDataset(root, "all", seed=seed),
        lambda root, seed: EBMDataset(root, "all", seed=seed),
    ],
    ids=["a2m", "renderer", "aee", "image", "ebm"],
)
def test_items_are_deterministic_for_seed_epoch_and_index(corpus: Path, make) -> None:
    dataset, twin = make(corpus, 7), make(corpus, 7)
    indices = list(range(0, len(dataset), 5))
    first = [dataset[i] for i in reversed(indices)][::-1]  # a different access order gives the same items
    assert all(_same(a, twin[i]) for a, i in zip(first, indices, strict=True))
    restored = pickle.loads(pickle.dumps(dataset))  # what a DataLoader worker gets
    assert all(_same(restored[i], a) for a, i in zip(first, indices, strict=True))
    dataset.set_epoch(1)
    assert not all(_same(dataset[i], a) for a, i in zip(first, indices, strict=True))
    reseeded = make(corpus, 8)
    assert not all(_same(reseeded[i], a) for a, i in zip(first, indices, strict=True))


def test_splits_hold_out_speakers(corpus: Path) -> None:
    fractions = (0.5, 0.25, 0.25)
    parts = {
        split: Audio2MouthDataset(corpus, split, seed=3, fractions=fractions)
        for split in ("train", "val", "test")
    }
    speakers = {split: {r.speaker for r in part.records} for split, part in parts.items()}
    assert [len(speakers[s]) for s in ("train", "val", "test")] == [2, 1, 1]
    assert not speakers["train"] & speakers["val"] and not speakers["train"] & speakers["test"]
    assert not speakers["val"] & speakers["test"]
    assert sum(len(part) for part in parts.values()) == len(read_manifest(corpus))
    ebm_test = EBMDataset(corpus, "test", seed=3, fractions=fractions)
    assert {r.speaker for r in ebm_test.records} == speakers["test"]
    # speaker labels index the whole manifest, so a held-out speaker keeps its number
    assert parts["test"].speaker_to_index == parts["train"].speaker_to_index
    assert parts["test"].num_speakers == 4


def test_bad_arguments(corpus: Path) -> None:
    with pytest.raises(ValueError, match="t_frames"):
        Audio2MouthDataset(corpus, "all", t_frames=0)
    with pytest.raises(ValueError, match="mode"):
        EmotionAudioDataset(corpus, "all", mode="pairs-of-pairs")
    with pytest.raises(DataError, match="unknown split"):
        RendererDataset(corpus, "training")
    with pytest.raises(IndexError):
        EBMDataset(corpus, "all")[10_000]


def test_renderer_single_reference_items_repeat_the_most_closed_mouth(corpus: Path) -> None:
    always = RendererDataset(corpus, "all", n_refs=3, single_reference_rate=1.0)
    never = RendererDataset(corpus, "all", n_refs=3)
    inner = [ALL.index(13), ALL.index(14)]  # upper and lower inner lip in ALL order
    for index in (0, 5, 11):
        refs = always[index]["ref_images"]
        assert all(torch.equal(refs[0], ref) for ref in refs[1:])
        landmarks, spread = always[index]["ref_landmarks"], never[index]["ref_landmarks"]
        assert torch.equal(landmarks[0], landmarks[2])
        opening = float(landmarks[0, inner[1], 1] - landmarks[0, inner[0], 1])
        assert opening == pytest.approx(float((spread[:, inner[1], 1] - spread[:, inner[0], 1]).min()))
    assert any(not torch.equal(never[i]["ref_images"][0], never[i]["ref_images"][1]) for i in (0, 5, 11))
    with pytest.raises(ConfigError, match="single_reference_rate"):
        RendererDataset(corpus, "all", single_reference_rate=1.5)


def test_audio_to_mouth_single_reference_items_repeat_the_most_closed_mouth(corpus: Path) -> None:
    always = Audio2MouthDataset(corpus, "all", n_refs=3, single_reference_rate=1.0)
    spread = Audio2MouthDataset(corpus, "all", n_refs=3)
    inner = [ALL.index(13), ALL.index(14)]  # upper and lower inner lip in ALL order
    for index in (0, 5, 11):
        refs, others = always[index]["ref_landmarks"], spread[index]["ref_landmarks"]
        assert all(torch.equal(refs[0], ref) for ref in refs[1:])  # one photo, repeated
        opening = float(refs[0, inner[1], 1] - refs[0, inner[0], 1])
        assert opening == pytest.approx(float((others[:, inner[1], 1] - others[:, inner[0], 1]).min()))
    assert any(not torch.equal(spread[i]["ref_landmarks"][0], spread[i]["ref_landmarks"][1]) for i in (0, 5))
    with pytest.raises(ConfigError, match="single_reference_rate"):
        Audio2MouthDataset(corpus, "all", single_reference_rate=-0.1)
