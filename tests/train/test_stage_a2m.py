"""Stage a2m on a tiny corpus: the loss goes down, stop + resume is exact, export writes a release."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from corpus import make_corpus

from cemnet_core.errors import ConfigError
from cemnet_core.models import build_model
from cemnet_core.release import load_release, load_state_into
from cemnet_core.train.stages import export_run, train_stage
from cemnet_core.train.stages.a2m import Config

TINY = ["preset=tiny", "loop.progress=false", "loop.tensorboard=false"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("a2m_corpus"))


def _records(run: Path, split: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if record["split"] == split]


def test_a2m_lowers_its_loss_and_exports(corpus: Path, tmp_path: Path) -> None:
    result = train_stage("a2m", corpus, tmp_path / "run", overrides=[*TINY, "loop.sample_every=20"],
                         device="cpu", steps=40)  # fmt: skip
    train = _records(tmp_path / "run", "train")
    assert train[-1]["l1"] < 0.8 * train[0]["l1"]  # it starts as "copy the reference mouth", already close
    val = _records(tmp_path / "run", "val")
    assert val[-1]["l1"] < val[0]["l1"] and result.best_metric is not None
    assert (tmp_path / "run" / "samples" / "step_0000020_mouth.png").is_file()

    (folder,) = export_run(tmp_path / "run", tmp_path / "release")
    release = load_release(folder, kind="audio_to_mouth")
    model = load_state_into(build_model(release.kind, release.config), release)
    assert model.config == Config.tiny().model


def test_a2m_stop_and_resume_equals_an_unbroken_run(corpus: Path, tmp_path: Path) -> None:
    unbroken = tmp_path / "unbroken"
    train_stage("a2m", corpus, unbroken, overrides=TINY, device="cpu", steps=8)
    broken = tmp_path / "broken"
    train_stage("a2m", corpus, broken, overrides=TINY, device="cpu", steps=4)
    with pytest.raises(ConfigError, match="--resume"):
        train_stage("a2m", corpus, broken, overrides=TINY, device="cpu", steps=8)
    train_stage("a2m", corpus, broken, resume=True, device="cpu", steps=8)
    first = torch.load(unbroken / "checkpoints" / "last.pt", weights_only=True)["models"]["audio_to_mouth"]
    second = torch.load(broken / "checkpoints" / "last.pt", weights_only=True)["models"]["audio_to_mouth"]
    assert first.keys() == second.keys()
    for name, value in first.items():
        assert torch.equal(value, second[name]), name


def test_a2m_fine_tunes_from_a_release_with_one_photo_references(corpus: Path, tmp_path: Path) -> None:
    train_stage("a2m", corpus, tmp_path / "first", overrides=TINY, device="cpu", steps=2)
    (release,) = export_run(tmp_path / "first", tmp_path / "weights")
    settings = [*TINY, f"init_from={json.dumps(str(release))}", "single_reference_rate=1.0"]
    train_stage("a2m", corpus, tmp_path / "tuned", overrides=settings, device="cpu", steps=1)
    start = torch.load(tmp_path / "tuned" / "checkpoints" / "last.pt", weights_only=True)["models"]
    tuned, trained = start["audio_to_mouth"], load_release(release).state_dict
    assert any(not torch.equal(value, tuned[name]) for name, value in trained.items())  # it trained ...
    weights = [n for n in trained if "running_" not in n and "num_batches" not in n]  # not BatchNorm stats
    assert max(float((trained[n] - tuned[n]).abs().max()) for n in weights) < 0.05  # ... from the release
    with pytest.raises(ConfigError, match="other settings"):
        train_stage("a2m", corpus, tmp_path / "bad", device="cpu", steps=1,
                    overrides=[*settings, "model.layers=2"])  # fmt: skip


def test_a2m_fine_tuning_may_switch_the_base_motion_only(corpus: Path, tmp_path: Path) -> None:
    old = [*TINY, 'model.base_motion="translation"']
    train_stage("a2m", corpus, tmp_path / "first", overrides=old, device="cpu", steps=2)
    (release,) = export_run(tmp_path / "first", tmp_path / "weights")
    settings = [*TINY, f"init_from={json.dumps(str(release))}"]  # the default base: similarity
    train_stage("a2m", corpus, tmp_path / "tuned", overrides=settings, device="cpu", steps=1)
    (tuned,) = export_run(tmp_path / "tuned", tmp_path / "tuned_weights")
    assert load_release(release).config["base_motion"] == "translation"
    assert load_release(tuned).config["base_motion"] == "similarity"
    with pytest.raises(ConfigError, match="other settings"):
        train_stage("a2m", corpus, tmp_path / "bad", device="cpu", steps=1,
                    overrides=[*settings, "model.dim=16"])  # fmt: skip


def test_a2m_refuses_to_train_with_a_motion_gain(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="motion_gain"):
        train_stage("a2m", corpus, tmp_path / "run", device="cpu", steps=1,
                    overrides=[*TINY, "model.motion_gain=1.5"])  # fmt: skip
