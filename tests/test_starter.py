"""The starter release shipped in ``cemnet_core/starter`` (issue #13): found by default, checked, loadable."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import cemnet_core
from cemnet_core import weights
from cemnet_core.bundle import MODEL_CARD, STARTER, WEIGHT_BUNDLE_LAYOUT, load_bundle, resolve_bundle
from cemnet_core.errors import ChecksumError, WeightsError
from cemnet_core.fileio import folder_digest

SHIPPED = Path(cemnet_core.__file__).resolve().parent / "starter"


def _flip_byte(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.seek(path.stat().st_size // 2)
        value = handle.read(1)[0]
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([value ^ 0xFF]))


def test_the_default_bundle_is_the_shipped_starter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEMNET_WEIGHTS_DIR", str(tmp_path))  # no cemnet/ folder there
    assert resolve_bundle(None) == SHIPPED
    assert resolve_bundle(STARTER) == SHIPPED
    monkeypatch.delenv("CEMNET_WEIGHTS_DIR")
    assert resolve_bundle(None) == SHIPPED
    (tmp_path / "cemnet").mkdir()  # a user's own default bundle comes first
    monkeypatch.setenv("CEMNET_WEIGHTS_DIR", str(tmp_path))
    assert resolve_bundle(None) == tmp_path / "cemnet"


def test_the_registry_entry_pins_the_shipped_folder() -> None:
    entry = weights.get_entry(STARTER)
    assert entry.bundle and entry.package and entry.pinned
    digest, size = folder_digest(SHIPPED)
    assert (entry.sha256, entry.size) == (digest, size)
    assert size <= 25 * 1024 * 1024  # issue #13: package data <= 25 MB
    assert weights.status(STARTER).verified is True


def test_every_role_loads_and_every_file_is_listed_in_its_checksums() -> None:
    models = load_bundle(SHIPPED)
    assert set(WEIGHT_BUNDLE_LAYOUT) <= {role for role, model in models.items() if model is not None}
    for _, names in WEIGHT_BUNDLE_LAYOUT.values():
        assert (SHIPPED / names[0] / "checksums.json").is_file()
    for ablation in ("aee", "ebm"):
        assert load_bundle(SHIPPED, ablation)["emotion_memory"] is not None


def test_the_model_card_says_what_the_release_is() -> None:
    card = (SHIPPED / MODEL_CARD).read_text(encoding="utf-8")
    for needed in ("## Intended use", "## Training data", "## Sizes", "## Measured", "## What it cannot do",
                   "CC BY-NC", "watermark", "scripts/build_starter.py"):  # fmt: skip
        assert needed in card, needed


def test_a_flipped_byte_in_a_shipped_tensor_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "starter"
    shutil.copytree(SHIPPED, copy)
    _flip_byte(copy / "renderer" / "model.safetensors")
    with pytest.raises(ChecksumError, match=r"renderer/model\.safetensors does not match the sha256"):
        load_bundle(copy)
    with pytest.raises(ChecksumError, match=r"differs from the weights bundle registered in weights\.toml"):
        weights.verify_file(copy, weights.get_entry(STARTER))


def test_bundle_entries_are_validated(tmp_path: Path) -> None:
    registry = tmp_path / "weights.toml"
    head = '[m.t]\nfilename = "f"\nlicence = "x"\npurpose = "y"\nsize = 1\n'
    for body, problem in (
        ("package = true\n", "only a bundle"),
        ('bundle = true\nurl = "http://x/y"\n', "not a url"),
        ('bundle = true\npackage = true\nurl = "http://x/y"\n', "exactly one source"),
        ('bundle = "yes"\npackage = true\n', "true or false"),
    ):
        registry.write_text(head + body, encoding="utf-8")
        with pytest.raises(WeightsError, match=problem):
            weights.load_registry(registry)


def test_a_file_entry_is_not_a_bundle() -> None:
    with pytest.raises(WeightsError, match="not a weights bundle"):
        resolve_bundle("fer2013.mini_xception")


def test_the_starter_ships_a_lip_sync_expert_that_scores_real_sync() -> None:
    import numpy as np

    from cemnet_core.bundle import find_optional_release
    from cemnet_core.eval.judges import load_lipsync_judge

    folder = find_optional_release(SHIPPED, "syncnet")
    assert folder is not None, "the starter has no syncnet/ release (the LipSync judge)"
    judge = load_lipsync_judge(folder)
    assert judge.model.config.input_region == "mouth"  # trained on the lower half of the face crops
    frames = np.zeros((20, 128, 128, 3), dtype=np.uint8)
    scores = judge.scores(frames, np.zeros(20 * 640, dtype=np.float32))
    assert np.isfinite(scores.lse_d) and -15 <= scores.offset <= 15
