"""AEE cross-reconstruction items (Sec. III-B, Eq. 5, Fig. 4): two speakers, two emotions, two sentences."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from test_datasets import _make_corpus

from cemnet_core.data.alignment import warp_to
from cemnet_core.data.clips import load_clip
from cemnet_core.data.cross_reconstruction import COMBINATIONS, CrossReconstructionDataset
from cemnet_core.data.manifest import EMOTION_TO_INDEX
from cemnet_core.errors import DataError

S = 24


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_corpus(tmp_path_factory.mktemp("cross"))


def _drop(root: Path, keep: Callable[[dict[str, Any]], bool]) -> Path:
    """Rewrite ``root``'s manifest keeping the lines ``keep(line)`` accepts."""
    manifest = root / "manifest.jsonl"
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines if keep(line)))
    return root


def _check_item(dataset: CrossReconstructionDataset, item: dict[str, torch.Tensor]) -> None:
    a, b = dataset.records[int(item["clip"])], dataset.records[int(item["clip_b"])]
    assert a.speaker != b.speaker and a.emotion != b.emotion and a.sentence != b.sentence
    assert int(item["speaker_a"]) != int(item["speaker_b"])
    assert int(item["sentence_a"]) != int(item["sentence_b"])
    assert EMOTION_TO_INDEX[a.emotion] == int(item["emotion_a"]) and EMOTION_TO_INDEX[b.emotion] == int(
        item["emotion_b"]
    )
    sources = (a, b)
    for i, j, k in COMBINATIONS:
        target = dataset.records[int(item["target_clip"][i, j, k])]
        assert target.speaker == sources[i].speaker  # timbre of a_i
        assert (target.emotion, target.level) == (sources[j].emotion, sources[j].level)  # emotion of a_j
        assert target.sentence == sources[k].sentence  # content of a_k
    assert torch.equal(item["mel_target"][0, 0, 0], item["mel_a"])
    assert torch.equal(item["mel_target"][1, 1, 1], item["mel_b"])
    assert torch.equal(item["mel_target"][1, 1, 0], item["mel_p"])
    assert torch.equal(item["mel_target"][0, 0, 1], item["mel_n"])


def test_every_item_has_three_different_sources_and_existing_targets(corpus: Path) -> None:
    dataset = CrossReconstructionDataset(corpus, "all", segment_frames=S)
    assert dataset.other_speaker and len(dataset) == len(dataset.records)  # the corpus has every combination
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            item = dataset[index]
            assert (
                tuple(item["mel_target"].shape) == (2, 2, 2, S, 80)
                and item["mel_target"].dtype == torch.float32
            )
            _check_item(dataset, item)


def test_targets_are_dtw_aligned_to_the_content_source(corpus: Path) -> None:
    """Each target says a_k's sentence at another tempo; warped onto a_k it matches a_k frame by frame, up to
    the corpus's per-speaker shift of 0.02 (the check can fail: unwarped, the tempo differs by 25 %)."""
    dataset = CrossReconstructionDataset(corpus, "all", segment_frames=S)
    for index in range(0, len(dataset), 5):
        item = dataset[index]
        clips = (int(item["clip"]), int(item["clip_b"]))
        speakers = (int(item["speaker_a"]), int(item["speaker_b"]))
        starts = (int(item["start"]), int(item["start_b"]))
        for i, j, k in COMBINATIONS:
            shift = 0.02 * (speakers[i] - speakers[k])
            source = item["mel_target"][k, k, k]
            assert (item["mel_target"][i, j, k] - shift - source).abs().mean() < 0.15
        target = int(item["target_clip"][0, 1, 0])
        mel_a, mel_t = (load_clip(dataset.records[c].path, ("mel",)).mel for c in (clips[0], target))
        expected = warp_to(mel_a, mel_t)[starts[0] : starts[0] + S]
        if len(expected) == S:
            np.testing.assert_allclose(item["mel_target"][0, 1, 0].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_items_are_deterministic(corpus: Path) -> None:
    first = CrossReconstructionDataset(corpus, "all", segment_frames=S, seed=3)
    second = CrossReconstructionDataset(corpus, "all", segment_frames=S, seed=3)
    for index in (0, 7):
        one, two = first[index], second[index]
        assert all(torch.equal(one[key], two[key]) for key in one)


def test_anchors_whose_combinations_are_missing_are_skipped(tmp_path: Path) -> None:
    """W002 never says sentence 002 in anger: no item may need that clip, and items still exist."""
    root = _drop(
        _make_corpus(tmp_path),
        lambda line: (
            not (line["speaker"] == "W002" and line["emotion"] == "angry" and line["sentence"] == "002")
        ),
    )
    dataset = CrossReconstructionDataset(root, "all", segment_frames=S)
    assert 0 < len(dataset) < len(dataset.records)
    for index in range(len(dataset)):
        _check_item(dataset, dataset[index])
    missing = [a for a in range(len(dataset.records)) if a not in dataset.anchors]
    assert all(dataset.partners(a) == [] for a in missing)


def test_no_valid_combination_is_a_data_error(tmp_path: Path) -> None:
    # two speakers, each with sentences of its own: no clip has a speaker's voice on the other's sentence
    corpus = _make_corpus(
        tmp_path / "disjoint", speakers=("M001", "W001"), sentences=("001", "002", "003", "004")
    )
    root = _drop(corpus, lambda line: (line["speaker"] == "M001") == (line["sentence"] in ("001", "002")))
    with pytest.raises(DataError, match="no cross-reconstruction pair"):
        CrossReconstructionDataset(root, "all", segment_frames=S)
    one_sentence = _make_corpus(tmp_path / "one", sentences=("001",))
    with pytest.raises(DataError, match=r"1 sentence\(s\)"):
        CrossReconstructionDataset(one_sentence, "all", segment_frames=S)
    one_emotion = _make_corpus(tmp_path / "neutral", emotions=("neutral",))
    with pytest.raises(DataError, match=r"1 emotion\(s\)"):
        CrossReconstructionDataset(one_emotion, "all", segment_frames=S)


def test_a_single_speaker_split_swaps_emotion_and_content_only(tmp_path: Path) -> None:
    root = _make_corpus(tmp_path, speakers=("M001",))
    with pytest.raises(DataError, match="two speakers"):
        CrossReconstructionDataset(root, "all", segment_frames=S, other_speaker=True)
    dataset = CrossReconstructionDataset(root, "all", segment_frames=S)  # other_speaker=None: one speaker
    assert not dataset.other_speaker and len(dataset) == len(dataset.records)
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["speaker_a"] == item["speaker_b"]
        assert item["emotion_a"] != item["emotion_b"] and item["sentence_a"] != item["sentence_b"]
