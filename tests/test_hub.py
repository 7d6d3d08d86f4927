"""Weights bundles on the Hub (``hf://OWNER/REPO[@REVISION]``) against the local fake Hub (fake_hub.py)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
from fake_hub import FakeHub

from cemnet_core.bundle import WEIGHT_BUNDLE_LAYOUT, resolve_bundle
from cemnet_core.errors import ChecksumError, InputError, WeightsError
from cemnet_core.fileio import folder_digest
from cemnet_core.hub import HubBundle, UnpinnedBundleWarning, parse_hub_name
from cemnet_core.release import CHECKSUMS_FILE, write_manifest

REPO = "cemnet/tiny-bundle"


def _bundle_files(folder: Path) -> dict[str, bytes]:
    """A bundle of stand-in release folders (random tensors file, config, checksums.json): path -> bytes."""
    for kind, names in WEIGHT_BUNDLE_LAYOUT.values():
        release = folder / names[0]
        release.mkdir(parents=True)
        (release / "model.safetensors").write_bytes(os.urandom(2048))
        (release / "config.json").write_text(f'{{"kind": "{kind}"}}\n', encoding="utf-8")
        write_manifest(release)
    return {
        path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()
    }


@pytest.fixture
def published(fake_hub: FakeHub, tmp_path: Path) -> tuple[FakeHub, str, dict[str, bytes]]:
    """The fake Hub holding one bundle commit on ``main`` of REPO: (hub, commit, files)."""
    files = _bundle_files(tmp_path / "bundle")
    return fake_hub, fake_hub.add_commit(REPO, files), files


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()
    }


def test_pinned_download_is_checked_then_served_from_the_cache(
    published: tuple[FakeHub, str, dict[str, bytes]],
) -> None:
    hub, commit, files = published
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnpinnedBundleWarning)  # pinned: no warning
        folder = resolve_bundle(f"hf://{REPO}@{commit}")
    assert folder.name == commit and _snapshot(folder) == files
    seen = len(hub.requests)
    assert resolve_bundle(f"hf://{REPO}@{commit}") == folder
    assert len(hub.requests) == seen  # second call: the cache, no request


def test_unpinned_download_warns_and_names_the_commit_to_pin(
    published: tuple[FakeHub, str, dict[str, bytes]],
) -> None:
    _, commit, files = published
    with pytest.warns(UnpinnedBundleWarning, match=rf"not pinned.*hf://{REPO}@{commit}"):
        folder = resolve_bundle(f"hf://{REPO}")
    assert folder.name == commit and _snapshot(folder) == files


def test_one_flipped_byte_is_a_checksum_error_naming_the_file(
    published: tuple[FakeHub, str, dict[str, bytes]],
) -> None:
    hub, commit, _ = published
    served = f"/{REPO}/resolve/{commit}/renderer/model.safetensors"
    good = hub.files[served]
    hub.files[served] = good[:100] + bytes([good[100] ^ 1]) + good[101:]
    with pytest.raises(ChecksumError, match=r"renderer/model\.safetensors does not match the sha256"):
        resolve_bundle(f"hf://{REPO}@{commit}")
    hub.files[served] = good  # the damaged copy was dropped from the cache: the next call downloads it again
    assert (resolve_bundle(f"hf://{REPO}@{commit}") / "renderer" / "model.safetensors").read_bytes() == good


def test_offline_uses_a_warm_cache_and_a_cold_one_is_one_clear_error(
    published: tuple[FakeHub, str, dict[str, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, commit, files = published
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        WeightsError, match=r"not \(completely\) in the Hub cache .*HF_HUB_OFFLINE is set; unset"
    ):
        resolve_bundle(f"hf://{REPO}@{commit}")
    assert hub.requests == []
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.warns(UnpinnedBundleWarning):
        folder = resolve_bundle(f"hf://{REPO}")
    seen = len(hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_bundle(f"hf://{REPO}@{commit}") == folder
    with pytest.warns(UnpinnedBundleWarning):
        assert resolve_bundle(f"hf://{REPO}") == folder  # the cached main branch
    assert len(hub.requests) == seen and _snapshot(folder) == files


@pytest.mark.parametrize(
    "name",
    [
        "hf://",
        "hf://cemnet",
        "hf://cemnet/tiny/extra",
        "hf://cemnet/tiny@",
        "hf:/cemnet/tiny",
        "hf://a/b@x y",
    ],
)
def test_malformed_hub_names_get_one_message_with_the_form(name: str) -> None:
    with pytest.raises(
        InputError, match=r"is not a Hub weights bundle; write hf://OWNER/REPO or hf://OWNER/REPO@"
    ):
        resolve_bundle(name)


def test_hub_names_parse_with_and_without_a_revision() -> None:
    assert parse_hub_name("hf://cemnet/tiny") == HubBundle("cemnet/tiny", None)
    assert parse_hub_name("hf://cemnet/tiny@v1.0") == HubBundle("cemnet/tiny", "v1.0")
    assert str(parse_hub_name("hf://cemnet/tiny@main")) == "hf://cemnet/tiny@main"


def test_unknown_repo_or_revision_says_which(published: tuple[FakeHub, str, dict[str, bytes]]) -> None:
    with pytest.raises(WeightsError, match=r"hf://cemnet/nothing: no such model repo on http://127\.0\.0\.1"):
        resolve_bundle("hf://cemnet/nothing")
    with pytest.raises(WeightsError, match=r"the repo has no revision 'v9'"):
        resolve_bundle(f"hf://{REPO}@v9")


def test_a_release_without_checksums_is_refused(fake_hub: FakeHub, tmp_path: Path) -> None:
    files = _bundle_files(tmp_path / "bundle")
    del files[f"renderer/{CHECKSUMS_FILE}"]
    commit = fake_hub.add_commit(REPO, files)
    with pytest.raises(
        WeightsError, match=rf"renderer/ has no {CHECKSUMS_FILE}, so its download cannot be checked"
    ):
        resolve_bundle(f"hf://{REPO}@{commit}")


def test_a_registry_bundle_name_downloads_the_pinned_commit_and_checks_its_digest(
    published: tuple[FakeHub, str, dict[str, bytes]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, commit, files = published
    digest, size = folder_digest(tmp_path / "bundle")
    registry = tmp_path / "weights.toml"
    entry = (f'filename = "tiny"\nbundle = true\nrepo_id = "{REPO}"\nrevision = "{commit}"\nsize = {size}\n'
             'licence = "CC0-1.0"\npurpose = "test bundle"\n')  # fmt: skip
    registry.write_text(f'[tiny.bundle]\n{entry}sha256 = "{digest}"\n', encoding="utf-8")
    monkeypatch.setenv("CEMNET_WEIGHTS_TOML", str(registry))
    folder = resolve_bundle("tiny.bundle")
    assert folder.name == commit and _snapshot(folder) == files
    registry.write_text(f'[tiny.bundle]\n{entry}sha256 = "{"0" * 64}"\n', encoding="utf-8")
    with pytest.raises(ChecksumError, match=r"differs from the weights bundle registered"):
        resolve_bundle("tiny.bundle")
