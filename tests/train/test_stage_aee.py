"""Stage aee: pre-training then cross-reconstruction lower their losses on a tiny MEAD-style corpus."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from corpus import make_corpus

from cemnet_core.data.cross_reconstruction import CrossReconstructionDataset
from cemnet_core.errors import ConfigError, DataError
from cemnet_core.train.checkpoint import LAST, checkpoint_path, load_checkpoint
from cemnet_core.train.distributed import DistEnv
from cemnet_core.train.stages import aee, train_stage

TINY = ["preset=tiny", "loop.progress=false", "loop.tensorboard=false"]


def test_aee_phases_lower_their_losses(tmp_path: Path) -> None:
    data = make_corpus(tmp_path / "data", frames=20)
    run = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"model\.num_speakers=4"):
        train_stage("aee", data, run, overrides=TINY, device="cpu")
    overrides = [*TINY, "model.num_speakers=4", "loop.log_every=2", "pretrain_steps=10"]
    train_stage("aee", data, run, overrides=overrides, device="cpu", steps=30)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [record for record in records if record["split"] == "train"]
    pretrain = [record for record in train if "pretrain.loss" in record]
    cross = [record for record in train if "aee.loss" in record]
    assert [record["step"] for record in pretrain] == [2, 4, 6, 8, 10]
    assert pretrain[-1]["pretrain.loss"] < pretrain[0]["pretrain.loss"]
    assert cross[-1]["aee.reconstruction"] < cross[0]["aee.reconstruction"]
    val = [record for record in records if record["split"] == "val"]
    assert {"reconstruction", "emotion_error"} <= set(val[-1])


def test_aee_pairs_come_from_different_speakers_and_sentences(tmp_path: Path) -> None:
    """Issue 14: the stage's cross-reconstruction items swap timbre, emotion and content (Fig. 4)."""
    data = make_corpus(tmp_path / "data", frames=20)  # 4 speakers: 2 train / 1 val / 1 test
    config = aee.Config.tiny()
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, num_speakers=4))
    task = aee.build_task(
        config, data, DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    )
    train, val = task.train_data, task.val_data
    assert isinstance(train, CrossReconstructionDataset) and train.other_speaker
    assert len(train) > 0
    for index in range(len(train)):
        item = train[index]
        assert item["speaker_a"] != item["speaker_b"] and item["sentence_a"] != item["sentence_b"]
        assert item["emotion_a"] != item["emotion_b"]
        assert item["mel_target"].shape[:3] == (2, 2, 2)
    # the held-out validation split has one speaker: its pairs swap emotion and content only
    assert isinstance(val, CrossReconstructionDataset) and not val.other_speaker
    with pytest.raises(DataError, match="two speakers"):
        aee.build_task(dataclasses.replace(config, other_speaker=True), data,
                       DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu")))  # fmt: skip


def test_aee_stop_and_resume_is_bit_identical(tmp_path: Path) -> None:
    """Stopped in pre-training and resumed into cross-reconstruction (as the demo's w/o-AEE snapshot does)."""
    data = make_corpus(tmp_path / "data", frames=20)
    overrides = [*TINY, "model.num_speakers=4", "pretrain_steps=6", "loop.checkpoint_every=100"]
    train_stage("aee", data, tmp_path / "a", overrides=overrides, device="cpu", steps=12)
    train_stage("aee", data, tmp_path / "b", overrides=overrides, device="cpu", steps=5)
    train_stage("aee", data, tmp_path / "b", device="cpu", steps=12, resume=True)
    unbroken, resumed = (load_checkpoint(checkpoint_path(tmp_path / run, LAST)) for run in ("a", "b"))
    assert unbroken["step"] == resumed["step"] == 12
    weights = unbroken["models"]["emotion_enhancer"]
    for name, value in weights.items():
        assert torch.equal(value, resumed["models"]["emotion_enhancer"][name]), name
