"""The weights registry against a local HTTP server playing the Hub (and a URL host)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from fake_hub import REVISION, FakeHub

from cemnet_core import weights
from cemnet_core.errors import ChecksumError, WeightsError

PAYLOAD = bytes(range(256)) * 64  # 16 KiB
SHARED_ASSETS = (
    "mediapipe.face_landmarker",
    "fer2013.mini_xception",
    "dlib.face_recognition_resnet_v1",
    "dlib.shape_predictor_5",
)


@pytest.fixture
def hub(fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    """The fake Hub + URL host (``fake_hub``), serving a registry of two tiny files."""
    state = fake_hub
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    registry = tmp_path / "weights.toml"
    registry.write_text(
        f"""
[tiny.hub]
filename = "tiny_hub.safetensors"
sha256 = "{digest}"
size = {len(PAYLOAD)}
licence = "CC0-1.0"
purpose = "test file served by the fake Hub"
repo_id = "cemnet/tiny"
revision = "{REVISION}"
path_in_repo = "model.safetensors"

[tiny.url]
filename = "tiny_url.bin"
sha256 = "{digest}"
size = {len(PAYLOAD)}
licence = "CC0-1.0"
purpose = "test file served by URL"
url = "{state.url}/files/tiny_url.bin"
""",
        encoding="utf-8",
    )
    state.files[f"/cemnet/tiny/resolve/{REVISION}/model.safetensors"] = PAYLOAD
    state.files["/files/tiny_url.bin"] = PAYLOAD
    monkeypatch.setenv("CEMNET_WEIGHTS_TOML", str(registry))
    return state


def _flip_one_byte(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    with target.open("r+b") as handle:
        handle.seek(target.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    return target


# ---------------------------------------------------------------- the registry file


def test_project_registry_lists_every_pretrained_file() -> None:
    entries = weights.load_registry(Path(__file__).parents[1] / "weights.toml")
    assert set(entries) == {*SHARED_ASSETS, "vgg19.imagenet", "syncnet.v2", "cemnet.starter"}
    assert entries["cemnet.starter"].bundle and entries["cemnet.starter"].package
    for name in SHARED_ASSETS:
        assert entries[name].pinned and entries[name].size > 0 and entries[name].url.startswith("https://")
    vgg = entries["vgg19.imagenet"]
    assert vgg.repo_id == "timm/vgg19.tv_in1k" and len(vgg.revision) == 40 and vgg.pinned
    assert not entries["syncnet.v2"].pinned  # no trustworthy hash found: known but refused
    assert all(entry.licence and entry.purpose for entry in entries.values())


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ('repo_id = "a/b"\nrevision = "main"', "40-hex"),
        ('repo_id = "a/b"\nrevision = "' + REVISION + '"\nurl = "http://x/y"', "exactly one source"),
        ('url = "http://x/y"\nsha256 = "abc"', "64 hex"),
    ],
)
def test_registry_rejects_bad_entries(tmp_path: Path, source: str, problem: str) -> None:
    path = tmp_path / "weights.toml"
    path.write_text(f'[m.t]\nfilename = "f"\nlicence = "x"\npurpose = "y"\nsize = 1\n{source}\n')
    with pytest.raises(WeightsError, match=problem):
        weights.load_registry(path)


def test_unknown_and_unpinned_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"unknown weights 'nope\.x'"):
        weights.resolve("nope.x")
    fake = tmp_path / "syncnet_v2.model"
    fake.write_bytes(b"anything")
    with pytest.raises(WeightsError, match="no pinned sha256"):
        weights.resolve("syncnet.v2", path=fake)


# ---------------------------------------------------------------- local folders (the shared assets)


def test_shared_assets_verify_from_a_local_folder(weights_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # must not need the network
    for name in SHARED_ASSETS:
        path = weights.resolve(name, weights_dir=weights_dir)
        assert path.parent == weights_dir and path.name == weights.get_entry(name).filename
    monkeypatch.setenv("CEMNET_WEIGHTS_DIR", str(weights_dir))
    assert weights.resolve("fer2013.mini_xception").parent == weights_dir
    assert weights.status("fer2013.mini_xception").verified is True


def test_one_changed_byte_is_a_checksum_error(weights_dir: Path, tmp_path: Path) -> None:
    entry = weights.get_entry("fer2013.mini_xception")
    _flip_one_byte(weights_dir / entry.filename, tmp_path / entry.filename)
    with pytest.raises(ChecksumError, match=entry.filename):
        weights.resolve(entry.name, weights_dir=tmp_path, download=False)
    bad = weights.status(entry.name, weights_dir=tmp_path)
    assert bad.verified is False and entry.filename in bad.problem
    assert (tmp_path / entry.filename).exists()  # a user's file is reported, never deleted


def test_checksum_cache_notices_a_rewritten_file(tmp_path: Path, hub: FakeHub) -> None:
    path = tmp_path / "tiny_url.bin"
    path.write_bytes(PAYLOAD)
    entry = weights.get_entry("tiny.url")
    assert weights.verify_file(path, entry) == path
    path.write_bytes(PAYLOAD[:-1] + b"\x00")  # same size, new mtime
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10_000_000))
    with pytest.raises(ChecksumError):
        weights.verify_file(path, entry)


# ---------------------------------------------------------------- downloads from the fake Hub / URL host


def test_hub_download_then_cache_reuse(hub: FakeHub) -> None:
    path = weights.resolve("tiny.hub")
    assert path.read_bytes() == PAYLOAD
    assert any(method == "GET" and "/resolve/" + REVISION in url for method, url, _ in hub.requests)
    seen = len(hub.requests)
    assert weights.resolve("tiny.hub") == path
    assert len(hub.requests) == seen  # second call: from the cache, no request


def test_offline_mode(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match=r"HF_HUB_OFFLINE.*cemnet weights pull tiny\.hub"):
        weights.resolve("tiny.hub")
    assert hub.requests == []
    monkeypatch.delenv("HF_HUB_OFFLINE")
    weights.resolve("tiny.hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert weights.resolve("tiny.hub").read_bytes() == PAYLOAD  # cached copies still work offline


def test_download_false_never_touches_the_network(hub: FakeHub) -> None:
    with pytest.raises(WeightsError, match="not available locally"):
        weights.resolve("tiny.url", download=False)
    assert hub.requests == []


@pytest.mark.parametrize("name", ["tiny.hub", "tiny.url"])
def test_corrupted_download_is_refused_and_removed(hub: FakeHub, name: str) -> None:
    wrong = bytes(reversed(PAYLOAD))  # same size, other bytes
    hub.files = {key: wrong for key in hub.files}
    with pytest.raises(ChecksumError, match=weights.get_entry(name).name):
        weights.resolve(name)
    assert weights.find_local(weights.get_entry(name)) is None  # nothing bad left for the next call
    hub.files = {key: PAYLOAD for key in hub.files}
    assert weights.resolve(name).read_bytes() == PAYLOAD


def test_url_download_then_cache_reuse_and_progress(hub: FakeHub) -> None:
    seen: list[tuple[int, int | None]] = []
    path = weights.resolve("tiny.url", progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == PAYLOAD and seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    count = len(hub.requests)
    assert weights.resolve("tiny.url") == path and len(hub.requests) == count


def test_url_download_resumes_a_partial_file(hub: FakeHub) -> None:
    entry = weights.get_entry("tiny.url")
    target = weights.url_cache_dir() / entry.name / entry.sha256[:16] / entry.filename
    target.parent.mkdir(parents=True)
    target.with_name(target.name + ".part").write_bytes(PAYLOAD[:5000])
    assert weights.resolve("tiny.url").read_bytes() == PAYLOAD
    assert hub.requests[-1][2] == "bytes=5000-"
    assert not target.with_name(target.name + ".part").exists()


def test_missing_remote_file_is_a_weights_error(hub: FakeHub) -> None:
    hub.files = {}
    with pytest.raises(WeightsError, match="HTTP 404"):
        weights.resolve("tiny.url")
    with pytest.raises(WeightsError, match=r"cannot download tiny\.hub"):
        weights.resolve("tiny.hub")
