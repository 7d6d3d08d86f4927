"""SyncNet v2 (syncnet_python ``S``, models/syncnet.py): shapes, gradients, round trips, lip-stream inputs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from cemnet_core.errors import ConfigError
from cemnet_core.eval.lipsync import evaluate_sync
from cemnet_core.models import build_model
from cemnet_core.models.syncnet import SyncNet, SyncNetConfig, lip_feature_size, prepare_lip_frames


@pytest.fixture
def model() -> SyncNet:
    return SyncNet(SyncNetConfig.tiny())


def _inputs(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(batch, 3, 5, 224, 224) * 255, torch.randn(batch, 1, 13, 20) * 10


def test_embedding_shapes_and_finite(model: SyncNet) -> None:
    lips, mfcc_windows = _inputs(2)
    video, audio = model(lips, mfcc_windows)
    assert video.shape == audio.shape == (2, model.config.embedding_dim)
    assert torch.isfinite(video).all() and torch.isfinite(audio).all()


def test_paper_network_is_syncnet_v2_sized() -> None:
    paper = SyncNet(SyncNetConfig.paper()).eval()
    lips, mfcc_windows = _inputs(1)
    with torch.no_grad():
        video, audio = paper(lips, mfcc_windows)
    assert video.shape == audio.shape == (1, 1024)
    keys = paper.state_dict()
    assert tuple(keys["netcnnaud.18.weight"].shape) == (512, 256, 5, 4)
    assert tuple(keys["netcnnlip.0.weight"].shape) == (96, 3, 5, 7, 7)
    assert tuple(keys["netfclip.3.weight"].shape) == (1024, 512)


def test_wrong_shapes_raise_value_error(model: SyncNet) -> None:
    with pytest.raises(ValueError, match="224"):
        model.forward_lip(torch.rand(1, 3, 5, 112, 112))
    with pytest.raises(ValueError, match="13, 20"):
        model.forward_aud(torch.rand(1, 1, 13, 16))


def test_gradients_reach_every_parameter(model: SyncNet) -> None:
    video, audio = model(*_inputs(2))
    torch.nn.functional.pairwise_distance(video, audio).mean().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_safetensors_round_trip_gives_identical_outputs(model: SyncNet, tmp_path: Path) -> None:
    inputs = _inputs(2)
    model(*inputs)  # batch-norm running statistics move away from their defaults
    model.eval()
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    restored = build_model("syncnet", json.loads(json.dumps(model.config.to_dict())))
    restored.load_state_dict(load_file(tmp_path / "model.safetensors"))
    restored.eval()
    with torch.no_grad():
        for before, after in zip(model(*inputs), restored(*inputs), strict=True):
            assert torch.equal(before, after)


def test_config_json_round_trip() -> None:
    mouth = replace(SyncNetConfig.tiny(), input_region="mouth", lip_size=(64, 128), grayscale=True)
    for config in (SyncNetConfig.paper(), SyncNetConfig.tiny(), mouth):
        assert SyncNetConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ConfigError, match="unknown"):
        SyncNetConfig.from_dict({"vshift": 15})
    with pytest.raises(ConfigError, match="lip_size"):
        SyncNetConfig(lip_size=(48, 96))


def test_lip_stream_reads_other_sizes_and_grayscale() -> None:
    assert lip_feature_size((224, 224)) == (6, 6)  # syncnet_python's last lip conv: 6x6 kernel
    assert lip_feature_size((64, 128)) == (1, 3)
    config = replace(SyncNetConfig.tiny(), lip_size=(64, 128), grayscale=True)
    model = SyncNet(config)
    video = model.forward_lip(torch.rand(2, 1, 5, 64, 128) * 255)
    assert video.shape == (2, config.embedding_dim) and torch.isfinite(video).all()
    assert tuple(model.state_dict()["netcnnlip.0.weight"].shape) == (4, 1, 5, 7, 7)
    with pytest.raises(ValueError, match="1, 5, 64, 128"):
        model.forward_lip(torch.rand(2, 3, 5, 64, 128))
    frames = torch.randint(0, 256, (12, 64, 128, 3), dtype=torch.uint8)
    scores = evaluate_sync(model, frames, torch.randn(11 * 640) * 0.1)  # frames kept at 64x128, luma
    assert scores.distances.shape == (6, 31)


def test_prepare_lip_frames_is_bgr_224() -> None:
    frames = torch.zeros(6, 224, 224, 3, dtype=torch.uint8)
    frames[..., 0], frames[..., 1], frames[..., 2] = 10, 20, 30
    lips = prepare_lip_frames(frames)
    assert lips.shape == (3, 6, 224, 224)
    assert lips[:, 0, 0, 0].tolist() == [30.0, 20.0, 10.0]
    assert prepare_lip_frames(torch.zeros(2, 128, 128, 3, dtype=torch.uint8)).shape == (3, 2, 224, 224)
    gray = prepare_lip_frames(frames[:, :64, :128], size=(64, 128), grayscale=True)
    assert gray.shape == (1, 6, 64, 128)
    assert gray[0, 0, 0, 0].item() == pytest.approx(0.299 * 10 + 0.587 * 20 + 0.114 * 30)
