"""SyncNet v2 (syncnet_python ``S``), MFCC front end, LSE-C / LSE-D scoring and checkpoint conversion."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torchaudio
from safetensors.torch import load_file, save_file

from cemnet_core.errors import ConfigError, WeightsError
from cemnet_core.models import build_model
from cemnet_core.models.syncnet import (
    SyncNet,
    SyncNetConfig,
    convert_syncnet_checkpoint,
    dct_matrix,
    evaluate_sync,
    lip_feature_size,
    load_syncnet,
    mfcc,
    prepare_lip_frames,
    sync_scores,
)

# python_speech_features 0.6 ``mfcc(int16 signal, 16000)[3]`` for the signal of ``_reference_signal``.
PSF_FRAME_3 = [
    21.6147833987, 34.0173677448, -32.1998489627, -24.2608956425, 7.9289938905, 7.8990485765,
    -27.3232349694, -35.5684041908, -7.4975007758, 16.5988133672, 19.1300455757, 18.0275316683,
    17.622523749,
]  # fmt: skip


def _reference_signal() -> torch.Tensor:
    t = torch.arange(1600, dtype=torch.float64) / 16000
    chirp = 0.5 * torch.sin(2 * math.pi * 440 * t) + 0.25 * torch.sin(2 * math.pi * 1500 * t * t * 10)
    return chirp.float()


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


def test_mfcc_matches_python_speech_features_reference_values() -> None:
    coefficients = mfcc(_reference_signal())
    assert coefficients.shape == (9, 13)  # 1 + ceil((1600 - 400) / 160) frames
    torch.testing.assert_close(
        coefficients[3], torch.tensor(PSF_FRAME_3, dtype=torch.float64), rtol=0, atol=1e-6
    )


def test_mfcc_frame_count_and_dct_matrix() -> None:
    for samples, frames in ((100, 1), (400, 1), (401, 2), (16000, 99)):
        assert mfcc(torch.zeros(samples)).shape == (frames, 13)
    assert torch.isfinite(mfcc(torch.zeros(800))).all()  # silence: log of eps, as python_speech_features
    torch.testing.assert_close(dct_matrix(13, 26).float(), torchaudio.functional.create_dct(13, 26, "ortho"))


def _calc_pdist_loop(video: torch.Tensor, audio: torch.Tensor, vshift: int) -> torch.Tensor:
    """syncnet_python's ``calc_pdist``, written as its loop, for comparison."""
    window = 2 * vshift + 1
    padded = torch.nn.functional.pad(audio, (0, 0, vshift, vshift))
    rows = [
        torch.nn.functional.pairwise_distance(video[[i], :].repeat(window, 1), padded[i : i + window, :])
        for i in range(len(video))
    ]
    return torch.stack(rows)


def test_scores_on_random_embeddings_follow_syncnet_python() -> None:
    video, audio = torch.randn(40, 16), torch.randn(40, 16)
    scores = sync_scores(video, audio)
    assert scores.distances.shape == (40, 31)
    assert scores.mean_distances.shape == (31,)
    expected = _calc_pdist_loop(video, audio, 15)
    torch.testing.assert_close(scores.distances, expected)
    mean = expected.mean(dim=0)
    assert scores.lse_d == pytest.approx(float(mean.min()), rel=1e-6)
    assert scores.lse_c == pytest.approx(float(mean.median() - mean.min()), rel=1e-5, abs=1e-6)
    assert scores.offset == 15 - int(mean.argmin())


def test_scores_find_a_known_offset() -> None:
    base = torch.randn(43, 32)
    video, audio = base[:40], base[3:]  # audio[m] = video[m + 3]: audio leads by 3 frames
    scores = sync_scores(video, audio)
    assert scores.offset == 3
    assert scores.lse_c > 1.0
    in_sync = sync_scores(video, video)
    assert in_sync.offset == 0 and in_sync.lse_d < 1e-3


def test_scores_reject_mismatched_embeddings() -> None:
    with pytest.raises(ValueError, match=r"\(W, D\)"):
        sync_scores(torch.randn(4, 8), torch.randn(5, 8))


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


def test_evaluate_sync_uses_syncnet_python_windows(model: SyncNet) -> None:
    frames = torch.randint(0, 256, (12, 96, 96, 3), dtype=torch.uint8)
    audio = torch.randn(11 * 640 + 100) * 0.1  # audio covers 11 frames: min_length 11
    model.train()
    scores = evaluate_sync(model, frames, audio, batch_size=4)
    assert model.training  # mode restored
    assert scores.distances.shape == (11 - 5, 31)
    assert math.isfinite(scores.lse_c) and math.isfinite(scores.lse_d)
    with pytest.raises(ValueError, match="at least 6"):
        evaluate_sync(model, frames[:5], audio)


def test_converts_a_syncnet_python_state_dict(model: SyncNet, tmp_path: Path) -> None:
    model(*_inputs(2))  # non-default batch-norm statistics
    model.eval()
    original = {
        f"__S__.{key}": value.clone()
        for key, value in model.state_dict().items()
        if not key.endswith("num_batches_tracked")  # as in checkpoints from PyTorch < 0.4
    }
    source = tmp_path / "syncnet_v2.model"
    torch.save(original, source)
    folder = convert_syncnet_checkpoint(source, tmp_path / "syncnet.v2", SyncNetConfig.tiny())
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    loaded = load_syncnet(folder)
    assert not loaded.training
    for key, value in original.items():
        assert torch.equal(loaded.state_dict()[key.removeprefix("__S__.")], value)
    inputs = _inputs(2)
    with torch.no_grad():
        for before, after in zip(model(*inputs), loaded(*inputs), strict=True):
            assert torch.equal(before, after)


def test_conversion_refuses_pickled_modules_and_foreign_checkpoints(model: SyncNet, tmp_path: Path) -> None:
    pickled = tmp_path / "module.model"
    torch.save(model, pickled)
    with pytest.raises(WeightsError, match=r"whole nn\.Module"):
        convert_syncnet_checkpoint(pickled, tmp_path / "out", SyncNetConfig.tiny())
    foreign = tmp_path / "foreign.model"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, foreign)
    with pytest.raises(WeightsError, match="do not match"):
        convert_syncnet_checkpoint(foreign, tmp_path / "out", SyncNetConfig.tiny())
    with pytest.raises(WeightsError, match="not found"):
        convert_syncnet_checkpoint(tmp_path / "missing.model", tmp_path / "out")
    assert not (tmp_path / "out").exists()
