"""Release folders: model.safetensors + config.json + checksums.json, and save_model / load_model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save
from torch import nn

from cemnet_core import __version__, weights
from cemnet_core.errors import ChecksumError, ConfigError, WeightsError
from cemnet_core.models.audio_to_mouth import AudioToMouth, AudioToMouthConfig
from cemnet_core.models.image_emotion import MiniXception, MiniXceptionConfig
from cemnet_core.release import (
    canonical_safetensors,
    load_model,
    load_release,
    load_state_into,
    save_model,
    save_release,
    verify_manifest,
    write_manifest,
)


class _Tiny(nn.Module):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.encoder = nn.Linear(3, width)
        self.head = nn.Linear(width, 2)
        self.head.weight = self.encoder.weight if width == 3 else self.head.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.encoder(x)))


def test_release_round_trip(tmp_path: Path) -> None:
    model = _Tiny()
    folder = save_release(tmp_path / "release", model, "tiny", {"width": 4})
    assert sorted(p.name for p in folder.iterdir()) == ["checksums.json", "config.json", "model.safetensors"]
    release = load_release(folder, kind="tiny")
    assert release.kind == "tiny" and release.config == {"width": 4} and release.verified
    assert release.metadata == {"cemnet_version": __version__, "kind": "tiny"}
    fresh = load_state_into(_Tiny(**release.config), release)
    x = torch.randn(5, 3)
    assert torch.equal(fresh(x), model(x))


def test_identical_releases_are_identical_files(tmp_path: Path) -> None:
    model = _Tiny()
    folders = [save_release(tmp_path / f"r{i}", model, "tiny", {"width": 4}) for i in range(12)]
    files = {weights.sha256_file(folder / "model.safetensors") for folder in folders}
    assert len(files) == 1  # safetensors alone writes its metadata keys in a varying order
    raw = save(dict(model.state_dict()), metadata={"kind": "tiny", "cemnet_version": __version__})
    canonical = canonical_safetensors(raw)
    assert len(canonical) == len(raw) and canonical[-64:] == raw[-64:]  # data and offsets untouched
    assert canonical_safetensors(canonical) == canonical


def test_release_with_tied_weights_saves(tmp_path: Path) -> None:
    model = _Tiny(width=3)  # head.weight is encoder.weight (shared storage)
    save_release(tmp_path / "tied", model, "tiny", {"width": 3})
    fresh = load_state_into(_Tiny(width=3), load_release(tmp_path / "tied"))
    assert torch.equal(fresh.head.weight, model.head.weight)


def test_release_errors(tmp_path: Path) -> None:
    save_release(tmp_path / "r", _Tiny(), "tiny", {"width": 4})
    with pytest.raises(WeightsError, match="expected 'renderer'"):
        load_release(tmp_path / "r", kind="renderer")
    with pytest.raises(WeightsError, match=r"missing: .*head\.weight|wrong shape"):
        load_state_into(_Tiny(width=5), load_release(tmp_path / "r"))
    other = nn.Sequential(nn.Linear(3, 4))
    with pytest.raises(WeightsError, match=r"unexpected: encoder\.bias"):
        load_state_into(other, load_release(tmp_path / "r"))
    with pytest.raises(WeightsError, match="not a release folder"):
        load_release(tmp_path / "nothing_here")
    (tmp_path / "r" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ChecksumError, match=r"model\.safetensors has 7 bytes where checksums\.json recorded"):
        load_release(tmp_path / "r")
    (tmp_path / "r" / "checksums.json").unlink()  # an older export: no manifest, safetensors' own checks
    with pytest.raises(WeightsError, match="unreadable safetensors"):
        load_release(tmp_path / "r")


def test_release_checksums_catch_silent_data_damage(tmp_path: Path) -> None:
    folder = save_release(tmp_path / "r", _Tiny(width=64), "tiny", {"width": 64})
    model_file = folder / "model.safetensors"
    data = bytearray(model_file.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(255 - b for b in data[middle : middle + 16])  # tensors still parse
    model_file.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=r"does not match the sha256 checksums\.json recorded at export"):
        load_release(folder)
    (folder / "checksums.json").unlink()
    assert not load_release(folder).verified  # an older export loads, unchecked


def test_manifest_covers_added_files_and_refuses_a_missing_one(tmp_path: Path) -> None:
    folder = save_release(tmp_path / "r", _Tiny(), "tiny", {"width": 4})
    (folder / "README.md").write_text("model card\n")
    write_manifest(folder)
    files = json.loads((folder / "checksums.json").read_text())["files"]
    assert sorted(files) == ["README.md", "config.json", "model.safetensors"]
    assert files["README.md"]["sha256"] == weights.sha256_file(folder / "README.md")
    assert verify_manifest(folder)
    (folder / "README.md").unlink()
    with pytest.raises(ChecksumError, match=r"README\.md is missing but listed"):
        verify_manifest(folder)
    (folder / "checksums.json").write_text("{not json")
    with pytest.raises(WeightsError, match=r"checksums\.json is unreadable"):
        load_release(folder)


# ---------------------------------------------------------------- models


def test_save_model_then_load_model_gives_the_same_frozen_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = AudioToMouth(AudioToMouthConfig.tiny()).eval()
    folder = save_model(tmp_path / "a2m", model)
    assert load_release(folder).kind == "audio_to_mouth"  # the kind MODEL_KINDS registers for the class
    loaded = load_model(folder, "audio_to_mouth")
    assert isinstance(loaded, AudioToMouth) and loaded.config == model.config
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    inputs = model.example_inputs(2)
    with torch.no_grad():
        # same weights; not bit-equal on every CPU: a frozen transformer may take PyTorch's fused fast path
        torch.testing.assert_close(loaded(*inputs), model(*inputs), rtol=0, atol=1e-6)
    trainable = load_model(folder, frozen=False)
    assert trainable.training and all(p.requires_grad for p in trainable.parameters())
    on_cpu = load_model(folder, device="cpu")
    assert next(on_cpu.parameters()).device == torch.device("cpu")


def test_load_model_refuses_another_kind_and_a_bad_config(tmp_path: Path) -> None:
    folder = save_model(tmp_path / "fer", MiniXception(MiniXceptionConfig.tiny()))
    assert load_release(folder).kind == "mini_xception"
    with pytest.raises(WeightsError, match="expected 'renderer'"):
        load_model(folder, "renderer")
    save_release(tmp_path / "bad", _Tiny(), "audio_to_mouth", {"depth": 3})
    with pytest.raises(ConfigError, match="unknown keys"):
        load_model(tmp_path / "bad")


def test_load_model_builds_unregistered_kinds_with_build(tmp_path: Path) -> None:
    model = _Tiny(width=6)
    folder = save_release(tmp_path / "tiny", model, "tiny", {"width": 6})
    with pytest.raises(ConfigError, match="unknown model kind 'tiny'"):
        load_model(folder)
    loaded = load_model(folder, "tiny", build=lambda config: _Tiny(**config))
    x = torch.randn(2, 3)
    assert torch.equal(loaded(x), model(x)) and not loaded.training
    with pytest.raises(WeightsError, match="pass kind= to save_model"):
        save_model(tmp_path / "unnamed", _TinyWithConfig())
    named = save_model(tmp_path / "named", _TinyWithConfig(width=5), kind="tiny")
    assert load_release(named).config == {"width": 5}


class _TinyWithConfig(_Tiny):
    def __init__(self, width: int = 4) -> None:
        super().__init__(width)
        self.config = {"width": width}  # save_release takes a plain dict as the config too
