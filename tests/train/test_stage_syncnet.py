"""Stage syncnet on a tiny corpus with speech: the loss goes down, export -> load_syncnet, exact resume."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from corpus import make_corpus

from cemnet_core.data.clips import load_clip, save_clip
from cemnet_core.data.manifest import read_manifest
from cemnet_core.data.sync_dataset import mouth_region
from cemnet_core.errors import ConfigError
from cemnet_core.eval.lipsync import evaluate_sync
from cemnet_core.models.syncnet import SyncNetConfig
from cemnet_core.pretrained import load_syncnet
from cemnet_core.train.stages import STAGES, export_run, train_stage
from cemnet_core.train.stages.syncnet import Config, lip_input, offset_logits, offset_loss

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


def test_offset_logits_are_negative_distances_to_each_candidate() -> None:
    video = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])  # (B=1, N=2, D=2)
    audio = torch.tensor([[[3.0, 4.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]])  # (1, N + 2V = 4, 2): V = 1
    logits = offset_logits(video, audio, temperature=0.5)
    assert logits.shape == (1, 2, 3)
    # window 0 sees audio 0..2, window 1 audio 1..3: distances [5, 0, sqrt 2] and [sqrt 2, 0, sqrt 2]
    expected = -torch.tensor([[[5.0, 0.0, 2**0.5], [2**0.5, 0.0, 2**0.5]]]) / 0.5
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="N \\+ 2V"):
        offset_logits(video, audio[:, :3])


def test_offset_loss_is_cross_entropy_with_the_middle_candidate() -> None:
    logits = torch.tensor([[[0.0, 2.0, 0.0], [2.0, 0.0, 0.0]]])  # (1, 2, 3)
    right = -torch.log(torch.tensor(torch.e**2 / (torch.e**2 + 2)))
    wrong = -torch.log(torch.tensor(1 / (torch.e**2 + 2)))
    assert offset_loss(logits).item() == pytest.approx(float((right + wrong) / 2))


def test_lip_input_gives_every_window_as_prepare_lip_frames_does() -> None:
    from cemnet_core.models.syncnet import SyncNetConfig, prepare_lip_frames

    lips = torch.randint(0, 256, (2, 7, 64, 128, 3), dtype=torch.uint8)  # 3 windows per item
    for config in (Config.tiny().model, SyncNetConfig.tiny(), replace(Config.tiny().model, grayscale=True)):
        windows = lip_input(lips, config)
        channels = 1 if config.grayscale else 3
        assert windows.shape == (6, channels, 5, *config.lip_size)
        for b in range(2):
            frames = prepare_lip_frames(lips[b], config.lip_size, config.grayscale)  # (C, 7, H, W)
            for i in range(3):
                torch.testing.assert_close(windows[3 * b + i], frames[:, i : i + 5])
    with pytest.raises(ValueError, match="lips must be"):
        lip_input(lips[0], Config.tiny().model)


def test_presets_read_the_mouth_crops_at_their_own_size() -> None:
    for preset in Config.presets().values():
        config = preset()
        assert config.model.input_region == "mouth" and config.model.lip_size == (64, 128)
    assert Config.paper().model.lip_channels == SyncNetConfig.paper().lip_channels


def test_bad_config_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="temperature"):
        Config(temperature=0.0)
    with pytest.raises(ConfigError, match="max_offset"):
        Config(max_offset=0)


def test_syncnet_lowers_its_loss_and_exports_what_load_syncnet_reads(corpus: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    overrides = [*TINY, "loop.val_every=50", "loop.sample_every=150"]
    result = train_stage("syncnet", corpus, run, overrides=overrides, device="cpu", steps=150)
    train = _records(run, "train")
    first, last = np.mean([r["loss"] for r in train[:2]]), np.mean([r["loss"] for r in train[-2:]])
    assert first == pytest.approx(np.log(7), abs=0.3)  # 7 candidate offsets (max_offset 3): chance level
    assert last < 0.7 * first
    val = _records(run, "val")  # noisy on a few windows: early stopping keeps the best round (best.pt)
    assert len(val) == 3 and result.best_metric == min(record["loss"] for record in val)
    assert (run / "samples" / "step_0000150_mouths.png").is_file()

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
