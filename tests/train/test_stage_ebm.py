"""Stage ebm on a tiny corpus with tiny frozen upstream releases: the loss goes down, resume is exact,
the "w/o EBM" ablation trains, export writes a release, missing or mismatched upstream nets are refused."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from corpus import make_corpus

from cemnet_core.errors import ConfigError
from cemnet_core.models import build_model
from cemnet_core.models.audio_to_mouth import AudioToMouth, AudioToMouthConfig
from cemnet_core.models.emotion_enhancement import EmotionEnhancer, EmotionEnhancerConfig
from cemnet_core.models.image_emotion import ImageEmotionExtractor, MiniXceptionConfig
from cemnet_core.release import load_release, load_state_into, save_release
from cemnet_core.train.stages import export_run, train_stage
from cemnet_core.train.stages.ebm import Config

TINY = ["preset=tiny", "loop.progress=false", "loop.tensorboard=false"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("ebm_corpus"), frames=20)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Randomly initialised tiny releases of the three frozen networks, as ``--set`` overrides."""
    root = tmp_path_factory.mktemp("ebm_upstream")
    torch.manual_seed(0)
    models = {
        # an untrained Audio2Mouth that does not start from the reference mouth: a displacement to learn
        "a2m": (
            AudioToMouth(replace(AudioToMouthConfig.tiny(), mouth_from_reference=False)),
            "audio_to_mouth",
        ),
        "aee": (EmotionEnhancer(EmotionEnhancerConfig.tiny()), "emotion_enhancer"),
        "image_emotion": (ImageEmotionExtractor(MiniXceptionConfig.tiny()), "image_emotion"),
    }
    return [f'{key}="{save_release(root / kind, model, kind, model.config)}"'
            for key, (model, kind) in models.items()]  # fmt: skip


@pytest.fixture(autouse=True)
def _dlib_weights(weights_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The identity encoder (dlib) finds its pretrained files through the weights registry."""
    monkeypatch.setenv("CEMNET_WEIGHTS_DIR", str(weights_dir))


def _records(run: Path, split: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if record["split"] == split]


def test_ebm_lowers_its_loss_and_exports(corpus: Path, upstream: list[str], tmp_path: Path) -> None:
    run = tmp_path / "run"
    overrides = [*TINY, *upstream, "loop.log_every=2", "loop.sample_every=20"]
    train_stage("ebm", corpus, run, overrides=overrides, device="cpu", steps=20)
    train = _records(run, "train")
    assert train[-1]["mouth"] < 0.85 * train[0]["mouth"]  # L_a2m of the emotion-aware mouth (Eqs. 2-4)
    val = _records(run, "val")
    assert val[-1]["l1"] < val[0]["l1"]
    assert val[-1]["l1"] < val[-1]["a2m_l1"]  # the learnt displacement improves on the frozen Audio2Mouth
    assert {"a2m_l1", "align", "mouth_value"} <= set(val[-1])
    assert (run / "samples" / "step_0000020_mouth.png").is_file()

    (folder,) = export_run(run, tmp_path / "release")
    release = load_release(folder, kind="emotion_memory")
    model = load_state_into(build_model(release.kind, release.config), release)
    assert model.config == Config.tiny().model


def test_ebm_memory_loss_is_optimised_and_landmark_weight_applies(
    corpus: Path, upstream: list[str], tmp_path: Path
) -> None:
    """With ``model.weight_mouth=0`` the memory losses alone drive training: ``L_rec`` (Eq. 10) falls and the
    emotion-aware mouth stays put (the landmark decoder only learns from the landmark terms). With the
    default weight the landmark terms lead, and on this random upstream (displacements of ~90 pixels that
    the displacement encoder is still learning) ``L_rec`` need not fall within a few steps."""
    run = tmp_path / "memory_only"
    overrides = [*TINY, *upstream, "model.weight_mouth=0", "loop.log_every=2", "loop.val_every=0"]
    train_stage("ebm", corpus, run, overrides=overrides, device="cpu", steps=20)
    train = _records(run, "train")
    assert train[-1]["rec"] < 0.9 * train[0]["rec"]
    assert train[-1]["mouth"] > 0.95 * train[0]["mouth"]


def test_ebm_resume_equals_an_unbroken_run(corpus: Path, upstream: list[str], tmp_path: Path) -> None:
    overrides = [*TINY, *upstream, "loop.val_every=0"]
    unbroken = tmp_path / "unbroken"
    train_stage("ebm", corpus, unbroken, overrides=overrides, device="cpu", steps=4)
    broken = tmp_path / "broken"
    train_stage("ebm", corpus, broken, overrides=overrides, device="cpu", steps=2)
    train_stage("ebm", corpus, broken, resume=True, device="cpu", steps=4)
    first = torch.load(unbroken / "checkpoints" / "last.pt", weights_only=True)["models"]["emotion_memory"]
    second = torch.load(broken / "checkpoints" / "last.pt", weights_only=True)["models"]["emotion_memory"]
    assert first.keys() == second.keys()
    for name, value in first.items():
        assert torch.equal(value, second[name]), name


def test_ebm_ablation_without_memory_trains(corpus: Path, upstream: list[str], tmp_path: Path) -> None:
    run = tmp_path / "ablation"
    overrides = [*TINY, *upstream, "model.use_memory=false", "loop.log_every=2", "loop.val_every=0"]
    train_stage("ebm", corpus, run, overrides=overrides, device="cpu", steps=10)
    train = _records(run, "train")
    assert train[-1]["mouth"] < train[0]["mouth"]
    assert all(record["rec"] == 0 and record["align"] == 0 for record in train)
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["models"]["emotion_memory"]
    assert not any("memory" in name for name in state)


def test_ebm_refuses_bad_upstream(corpus: Path, upstream: list[str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--set a2m=PATH"):
        train_stage("ebm", corpus, tmp_path / "missing", overrides=TINY, device="cpu", steps=1)
    widths = [*TINY, *upstream, "model.source_emotion_dim=6"]
    with pytest.raises(ConfigError, match=r"--set model\.source_emotion_dim=16"):
        train_stage("ebm", corpus, tmp_path / "widths", overrides=widths, device="cpu", steps=1)
