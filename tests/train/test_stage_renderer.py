"""Stage renderer on a tiny corpus: warm-up then adversarial phases lower the reconstruction error."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from corpus import make_corpus

from cemnet_core.release import load_release
from cemnet_core.train.stages import export_run, train_stage

TINY = ["preset=tiny", "loop.progress=false", "loop.tensorboard=false", "loop.log_every=4"]


def _records(run: Path, split: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if record["split"] == split]


def test_renderer_learns_and_resumes_exactly(tmp_path: Path) -> None:
    data = make_corpus(tmp_path / "data", frames=16)
    run = tmp_path / "run"
    train_stage(
        "renderer",
        data,
        run,
        overrides=[*TINY, "loop.sample_every=12", "loop.val_every=6"],
        device="cpu",
        steps=12,
    )
    train = _records(run, "train")
    assert (
        "warmup.warp" in train[0]
        and "generator.perceptual" in train[-1]
        and "discriminator.loss" in train[-1]
    )
    assert train[-1]["generator.perceptual"] < train[1]["generator.perceptual"]
    val = _records(run, "val")
    assert val[-1]["l1"] < val[0]["l1"]
    assert (run / "samples" / "step_0000012_render.png").is_file()
    assert load_release(export_run(run, tmp_path / "release")[0]).kind == "renderer"

    broken = tmp_path / "broken"
    train_stage("renderer", data, broken, overrides=TINY, device="cpu", steps=7)
    train_stage("renderer", data, broken, resume=True, device="cpu", steps=12)
    first = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["models"]
    second = torch.load(broken / "checkpoints" / "last.pt", weights_only=True)["models"]
    for model in ("renderer", "discriminator"):
        for name, value in first[model].items():
            assert torch.equal(value, second[model][name]), (model, name)
