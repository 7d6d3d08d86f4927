"""Stage aee: pre-training then cross-reconstruction lower their losses on a tiny MEAD-style corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from corpus import make_corpus

from cemnet_core.errors import ConfigError
from cemnet_core.train.stages import train_stage

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
