"""Stage renderer on a tiny corpus: warm-up then adversarial phases lower the reconstruction error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from corpus import make_corpus

from cemnet_core.errors import ConfigError
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


def _fine_tune(tmp_path: Path, *settings: str) -> tuple[Path, list[str], dict, dict]:
    """Train 2 steps, export, fine-tune 1 step from that release with ``settings``: (corpus, the
    fine-tuning's overrides, the release's state, the fine-tuned state)."""
    data = make_corpus(tmp_path / "data", frames=16)
    first = tmp_path / "first"
    train_stage("renderer", data, first, overrides=TINY, device="cpu", steps=2)
    release = export_run(first, tmp_path / "weights")[0]
    overrides = [*TINY, f"init_from={json.dumps(str(release))}", *settings]
    train_stage("renderer", data, tmp_path / "tuned", overrides=overrides, device="cpu", steps=1)
    checkpoint = torch.load(tmp_path / "tuned" / "checkpoints" / "last.pt", weights_only=True)
    start = checkpoint["models"]["renderer"]
    return data, overrides, load_release(release).state_dict, start


def test_renderer_fine_tunes_from_a_release_with_one_photo_references(tmp_path: Path) -> None:
    data, settings, trained, start = _fine_tune(tmp_path, "single_reference_rate=1.0")
    assert any(not torch.equal(value, start[name]) for name, value in trained.items())  # it trained ...
    assert max(float((trained[n] - start[n]).abs().max()) for n in trained) < 0.05  # ... from the release
    with pytest.raises(ConfigError, match="other settings"):
        train_stage("renderer", data, tmp_path / "bad", device="cpu", steps=1,
                    overrides=[*settings, "model.generator_res_blocks=2"])  # fmt: skip


def test_renderer_fine_tunes_at_another_motion_resolution(tmp_path: Path) -> None:
    """RendererConfig.FINE_TUNABLE: motion resolution and loss weights may differ from the release."""
    _, _, trained, start = _fine_tune(tmp_path, "model.flow_scale=0.5", "model.pixel_weight=4.0")
    assert max(float((trained[n] - start[n]).abs().max()) for n in trained) < 0.05  # from the release
    assert load_release(export_run(tmp_path / "tuned", tmp_path / "out")[0]).config["flow_scale"] == 0.5
