"""Stage emotion: fine-tuning the image emotion extractor lowers the classification loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from corpus import make_corpus

from cemnet_core.errors import ConfigError
from cemnet_core.models.image_emotion import MiniXceptionConfig
from cemnet_core.release import load_release
from cemnet_core.train.stages import export_run, train_stage
from cemnet_core.train.stages.emotion import Config, build_extractor

TINY = ["preset=tiny", "loop.progress=false", "loop.tensorboard=false"]


def test_emotion_stage_lowers_its_loss(tmp_path: Path) -> None:
    data = make_corpus(tmp_path / "data", frames=8)
    run = tmp_path / "run"
    train_stage("emotion", data, run, overrides=[*TINY, "loop.sample_every=30"], device="cpu", steps=30)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [record for record in records if record["split"] == "train"]
    val = [record for record in records if record["split"] == "val"]
    assert train[-1]["loss"] < 0.5 * train[0]["loss"]
    assert val[-1]["loss"] < val[0]["loss"]
    assert (run / "samples" / "step_0000030_faces.png").is_file()
    assert load_release(export_run(run, tmp_path / "release")[0]).kind == "image_emotion"


def test_pretrained_extractor_starts_from_the_fer_network(weights_dir: Path) -> None:
    extractor = build_extractor(Config.paper())
    assert all(parameter.requires_grad for parameter in extractor.parameters())
    with pytest.raises(ConfigError, match="pretrained sizes"):
        build_extractor(Config(model=MiniXceptionConfig.tiny()))
