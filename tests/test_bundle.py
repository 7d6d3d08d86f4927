"""The weights-bundle layout: where each role's release folder is, its ablations, and named bundles."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cemnet_core.bundle import (
    ABLATION_LAYOUT,
    OPTIONAL_LAYOUT,
    WEIGHT_BUNDLE_LAYOUT,
    ablation_folder,
    bundle_files,
    find_ablation_release,
    find_optional_release,
    find_release,
    release_spec,
    resolve_bundle,
)
from cemnet_core.errors import ChecksumError, WeightsError
from cemnet_core.models import MODEL_KINDS
from cemnet_core.release import write_manifest
from cemnet_core.train.stages import STAGES


def test_every_stage_exports_into_the_folder_and_kind_of_its_role() -> None:
    layout = {**WEIGHT_BUNDLE_LAYOUT, **OPTIONAL_LAYOUT}
    written = {}
    for module in STAGES.values():
        for folder, (_, kind, _) in module.releases(module.Config.tiny()).items():
            written[folder] = kind
    assert written == {names[0]: kind for kind, names in layout.values()}
    assert set(written.values()) <= set(MODEL_KINDS)
    assert release_spec("emotion_memory", "emotion_memory", None) == {
        "emotion_memory": ("emotion_memory", "emotion_memory", None)
    }


def test_find_release_tries_the_aliases_and_says_what_a_bundle_holds(tmp_path: Path) -> None:
    (tmp_path / "a2m").mkdir()
    assert find_release(tmp_path, "audio_to_mouth") == tmp_path / "a2m"
    (tmp_path / "audio_to_mouth").mkdir()
    assert find_release(tmp_path, "audio_to_mouth") == tmp_path / "audio_to_mouth"  # export's name first
    with pytest.raises(
        WeightsError, match=r"has no renderer/ release folder; a weights folder holds audio_to_mouth/"
    ):
        find_release(tmp_path, "renderer")
    with pytest.raises(WeightsError, match="does not exist"):
        find_release(tmp_path / "missing", "renderer")
    assert find_optional_release(tmp_path, "syncnet") is None
    (tmp_path / "syncnet").mkdir()
    assert find_optional_release(tmp_path, "syncnet") == tmp_path / "syncnet"


@pytest.mark.parametrize("ablation", sorted(ABLATION_LAYOUT))
def test_ablation_folders_and_how_to_make_them(tmp_path: Path, ablation: str) -> None:
    folder, roles = ABLATION_LAYOUT[ablation]
    assert ablation_folder(tmp_path, ablation) == tmp_path / "ablations" / folder
    for role in roles:
        with pytest.raises(WeightsError, match=rf'"w/o {ablation.upper()}" ablation; train .*cemnet export'):
            find_ablation_release(tmp_path, ablation, role)
        (ablation_folder(tmp_path, ablation) / WEIGHT_BUNDLE_LAYOUT[role][1][0]).mkdir(parents=True)
        assert find_ablation_release(tmp_path, ablation, role).parent == ablation_folder(tmp_path, ablation)


def test_resolve_bundle_takes_a_folder_or_a_name_under_the_weights_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_bundle(tmp_path) == tmp_path
    monkeypatch.setenv("CEMNET_WEIGHTS_DIR", str(tmp_path))
    (tmp_path / "cemnet").mkdir()
    (tmp_path / "mine").mkdir()
    assert resolve_bundle(None) == tmp_path / "cemnet"
    assert resolve_bundle("mine") == tmp_path / "mine"
    with pytest.raises(WeightsError, match="no weights folder 'other'"):
        resolve_bundle("other")
    monkeypatch.delenv("CEMNET_WEIGHTS_DIR")
    monkeypatch.chdir(tmp_path / "mine")  # a ./cemnet folder is not the default (the shipped starter is)
    (tmp_path / "mine" / "cemnet").mkdir()
    assert resolve_bundle(None).name == "starter"


def _stand_in_bundle(folder: Path) -> Path:
    """Release folders of every role with stand-in files and their checksums.json (no model loads them)."""
    for _, names in WEIGHT_BUNDLE_LAYOUT.values():
        (folder / names[0]).mkdir(parents=True)
        (folder / names[0] / "model.safetensors").write_bytes(bytes(range(256)))
        (folder / names[0] / "config.json").write_text("{}\n", encoding="utf-8")
        write_manifest(folder / names[0])
    return folder


def test_bundle_files_are_every_checked_release_file(tmp_path: Path) -> None:
    bundle = _stand_in_bundle(tmp_path / "bundle")
    (bundle / "notes.txt").write_text("not part of any release")
    ablation = ablation_folder(bundle, "ebm") / "emotion_memory"
    shutil.copytree(bundle / "emotion_memory", ablation)
    expected = [
        f"{folder}/{name}"
        for folder in [
            *(names[0] for _, names in WEIGHT_BUNDLE_LAYOUT.values()),
            "ablations/wo_ebm/emotion_memory",
        ]
        for name in ("checksums.json", "config.json", "model.safetensors")
    ]
    assert bundle_files(bundle) == expected


def test_bundle_files_refuse_a_missing_role_a_changed_file_or_no_checksums(tmp_path: Path) -> None:
    bundle = _stand_in_bundle(tmp_path / "bundle")
    (bundle / "renderer" / "config.json").write_text('{"changed": true}\n', encoding="utf-8")
    with pytest.raises(ChecksumError, match=r"renderer/config\.json has \d+ bytes where checksums\.json"):
        bundle_files(bundle)
    (bundle / "renderer" / "checksums.json").unlink()
    with pytest.raises(
        WeightsError, match=r"renderer has no checksums\.json, so its files cannot be checked"
    ):
        bundle_files(bundle)
    shutil.rmtree(bundle / "renderer")
    with pytest.raises(WeightsError, match="has no renderer/ release folder"):
        bundle_files(bundle)
