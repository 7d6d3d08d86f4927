"""Stage syncnet on a tiny corpus with speech: the loss goes down, export -> load_syncnet, exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from corpus import make_corpus

from cemnet_core.data.clips import load_clip, save_clip
from cemnet_core.data.manifest import read_manifest
from cemnet_core.data.sync_dataset import mouth_region
from cemnet_core.errors import ConfigError
from cemnet_core.models.syncnet import evaluate_sync, load_syncnet
from cemnet_core.train.stages import STAGES, export_run, train_stage
from cemnet_core.train.stages.syncnet import Config, contrastive_loss, lip_input

TINY = ["preset=tiny", "loop.progress=false", "loop.tensorboard=false"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/train/corpus.py's clips with a random mouth opening per frame, drawn as the brightness of the
    mouth patch and heard as the loudness of noise bursts (in sync, 640 samples per frame)."""
    root = make_corpus(tmp_path_factory.mktemp("syncnet_corpus"), emotions=("neutral",), sentences=2)
    for number, record in enumerate(read_manifest(root)):
        clip = load_clip(record.path)
        rng = np.random.default_rng(number)
        opening = rng.uniform(0.0, 1.0, clip.num_frames)  # (T,): not periodic, so shifts are off-sync
        clip.frames[:, 80:100, 40:90, 0] = (255 * opening).astype(np.uint8)[:, None, None]
        envelope = np.repeat(opening, 640)  # (T * 640,)
        clip.audio = (8000 * envelope * rng.normal(0.0, 1.0, envelope.shape[0])).astype(np.int16)
        save_clip(record.path, clip)
    return root


def _records(run: Path, split: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if record["split"] == split]


def test_syncnet_is_registered() -> None:
    assert STAGES["syncnet"].Config is Config


def test_contrastive_loss_pulls_positives_and_pushes_negatives_to_the_margin() -> None:
    distance = torch.tensor([0.0, 3.0, 3.0, 12.0])
    label = torch.tensor([1.0, 1.0, 0.0, 0.0])
    # terms: 0, 9, (10-3)^2 = 49, 0 -> mean 14.5, / 100
    assert contrastive_loss(distance, label, margin=10.0).item() == pytest.approx(0.145)


def test_lip_input_matches_prepare_lip_frames_per_item() -> None:
    from cemnet_core.models.syncnet import prepare_lip_frames

    lips = torch.randint(0, 256, (2, 5, 64, 128, 3), dtype=torch.uint8)
    batched = lip_input(lips)
    assert batched.shape == (2, 3, 5, 224, 224)
    for b in range(2):
        torch.testing.assert_close(batched[b], prepare_lip_frames(lips[b]))
    with pytest.raises(ValueError, match="lips must be"):
        lip_input(lips[0])


def test_bad_config_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="margin"):
        Config(margin=0.0)
    with pytest.raises(ConfigError, match="min_offset"):
        Config(min_offset=0)


def test_syncnet_lowers_its_loss_and_exports_what_load_syncnet_reads(corpus: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = train_stage("syncnet", corpus, run, overrides=[*TINY, "loop.sample_every=30"], device="cpu",
                         steps=30)  # fmt: skip
    train = _records(run, "train")
    first, last = np.mean([r["loss"] for r in train[:2]]), np.mean([r["loss"] for r in train[-2:]])
    assert last < 0.7 * first
    val = _records(run, "val")  # noisy on 8 pairs: early stopping keeps the best round (best.pt)
    assert len(val) == 3 and result.best_metric == min(record["loss"] for record in val)
    assert (run / "samples" / "step_0000030_mouths.png").is_file()

    (folder,) = export_run(run, tmp_path / "release")
    assert folder.name == "syncnet"
    model = load_syncnet(folder)
    assert model.config == Config.tiny().model and not model.training
    best = torch.load(run / "checkpoints" / "best.pt", weights_only=True)["models"]["syncnet"]
    for name, value in model.state_dict().items():
        assert torch.equal(value, best[name]), name

    clip = load_clip(read_manifest(corpus)[0].path)
    audio = torch.from_numpy(clip.audio.astype(np.float32) / 32768.0)
    scores = evaluate_sync(model, torch.from_numpy(mouth_region(clip.frames)), audio)
    assert np.isfinite(scores.lse_c) and np.isfinite(scores.lse_d) and scores.lse_c >= 0


def test_syncnet_stop_and_resume_equals_an_unbroken_run(corpus: Path, tmp_path: Path) -> None:
    unbroken = tmp_path / "unbroken"
    train_stage("syncnet", corpus, unbroken, overrides=TINY, device="cpu", steps=4)
    broken = tmp_path / "broken"
    train_stage("syncnet", corpus, broken, overrides=TINY, device="cpu", steps=2)
    with pytest.raises(ConfigError, match="--resume"):
        train_stage("syncnet", corpus, broken, overrides=TINY, device="cpu", steps=4)
    train_stage("syncnet", corpus, broken, resume=True, device="cpu", steps=4)
    first = torch.load(unbroken / "checkpoints" / "last.pt", weights_only=True)["models"]["syncnet"]
    second = torch.load(broken / "checkpoints" / "last.pt", weights_only=True)["models"]["syncnet"]
    assert first.keys() == second.keys()
    for name, value in first.items():
        assert torch.equal(value, second[name]), name
