"""The weights registry: every pretrained file by name, fetched and sha256-checked; release folders.

``weights.toml`` names each third-party file as ``<model>.<tag>`` with its sha256, size, licence, purpose
and a source (a Hugging Face Hub ``repo_id`` + pinned ``revision``, or a ``url``). :func:`resolve` turns a
name into a local path, trying in order:

    1. an explicit ``path``
    2. a local folder (``weights_dir`` or ``CEMNET_WEIGHTS_DIR``), where the file is looked up by its filename
    3. the download caches (Hub: the ``huggingface_hub`` cache; URLs: ``~/.cache/cemnet`` or ``CEMNET_CACHE``)
    4. a download (unless ``download=False`` or ``HF_HUB_OFFLINE=1``)

and refuses any file whose sha256 differs from the pinned one (:class:`ChecksumError`, the file is never
returned; a bad download is deleted). Entries without a pinned sha256 are refused outright. This is the only
module that touches the network; nothing downloaded is unpickled here.

Release folders of our own sub-models (STYLE section 5): ``model.safetensors`` (metadata ``cemnet_version``
and ``kind``) + ``config.json`` (``{"kind", "config", "cemnet_version"}``) + ``checksums.json`` (size and
sha256 of every other file, :func:`write_manifest`), written atomically by :func:`save_release` and read by
:func:`load_release`, which first checks every file against ``checksums.json`` (:func:`verify_manifest`), so
data damaged after export (a flipped block inside the tensors, which still parse) is refused instead of
giving a broken face. A folder without ``checksums.json`` (exported before it existed) still loads, unchecked
(``Release.verified`` is False); safetensors' own header checks still catch truncation there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from cemnet_core import __version__
from cemnet_core.errors import ChecksumError, OutputError, WeightsError
from cemnet_core.fileio import temp_beside, write_error

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CHECKSUMS_FILE = "checksums.json"  # {"format": 1, "files": {name: {"size": int, "sha256": hex}}}
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
ProgressCallback = Callable[[int, int | None], None]  # (bytes so far, total bytes or None)


@dataclass(frozen=True)
class WeightsEntry:
    """One pretrained file of ``weights.toml``; its source is (``repo_id``, ``revision``) or ``url``."""

    name: str
    filename: str
    sha256: str
    size: int
    licence: str
    purpose: str
    repo_id: str = ""
    revision: str = ""
    path_in_repo: str = ""
    url: str = ""

    @property
    def source(self) -> str:
        """Where a download comes from, for messages and ``cemnet weights list``."""
        if self.repo_id:
            return f"hf://{self.repo_id}@{self.revision[:7]}/{self.path_in_repo or self.filename}"
        return self.url

    @property
    def pinned(self) -> bool:
        """True when a sha256 is pinned (only pinned files are ever returned)."""
        return bool(self.sha256)


def _registry_file() -> Path:
    """``CEMNET_WEIGHTS_TOML`` if set (a private registry), else the project's ``weights.toml``."""
    override = os.environ.get("CEMNET_WEIGHTS_TOML")
    if override:
        if not Path(override).is_file():
            raise WeightsError(f"CEMNET_WEIGHTS_TOML={override} is not a file; unset it or fix the path")
        return Path(override)
    here = Path(__file__).resolve().parent
    for candidate in (here / "weights.toml", here.parent / "weights.toml"):  # installed wheel, then checkout
        if candidate.is_file():
            return candidate
    raise WeightsError(f"weights.toml not found next to {here}; reinstall cemnet")


def _parse_entry(name: str, table: Mapping[str, Any], origin: Path) -> WeightsEntry:
    def fail(problem: str) -> WeightsError:
        return WeightsError(f"{origin}: entry [{name}] {problem}; fix weights.toml")

    known = {"filename", "sha256", "size", "licence", "purpose", "repo_id", "revision", "path_in_repo", "url"}
    unknown = set(table) - known
    if unknown:
        raise fail(f"has unknown keys {sorted(unknown)}")
    for key in ("filename", "licence", "purpose"):
        if not isinstance(table.get(key), str) or not table[key]:
            raise fail(f"needs a non-empty string {key!r}")
    sha256 = str(table.get("sha256", "")).lower()
    if sha256 and not _HEX64.match(sha256):
        raise fail("has a sha256 that is not 64 hex digits")
    size = table.get("size", 0)
    if not isinstance(size, int) or size < 0:
        raise fail("needs an integer size >= 0 (0 = unknown)")
    has_hub, has_url = bool(table.get("repo_id")), bool(table.get("url"))
    if has_hub == has_url:
        raise fail("needs exactly one source: repo_id + revision, or url")
    if has_hub and not _HEX40.match(str(table.get("revision", ""))):
        raise fail("needs a pinned 40-hex commit as revision (never a branch name)")
    return WeightsEntry(
        name=name,
        filename=table["filename"],
        sha256=sha256,
        size=size,
        licence=table["licence"],
        purpose=table["purpose"],
        repo_id=str(table.get("repo_id", "")),
        revision=str(table.get("revision", "")),
        path_in_repo=str(table.get("path_in_repo", "")),
        url=str(table.get("url", "")),
    )


def load_registry(path: str | os.PathLike[str] | None = None) -> dict[str, WeightsEntry]:
    """Parse a ``weights.toml`` (default: the active one) into ``{"<model>.<tag>": WeightsEntry}``."""
    origin = Path(path) if path is not None else _registry_file()
    try:
        data = tomllib.loads(origin.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WeightsError(f"cannot read the weights registry {origin}: {exc}") from exc
    entries: dict[str, WeightsEntry] = {}
    for model, tags in data.items():
        if not isinstance(tags, dict):
            raise WeightsError(f"{origin}: top-level key {model!r} must hold [{model}.<tag>] tables")
        for tag, table in tags.items():
            if not isinstance(table, dict):
                raise WeightsError(f"{origin}: [{model}.{tag}] must be a table")
            entries[f"{model}.{tag}"] = _parse_entry(f"{model}.{tag}", table, origin)
    return entries


def registry() -> dict[str, WeightsEntry]:
    """The active registry (see ``_registry_file``), parsed once per file version."""
    path = _registry_file()
    stat = path.stat()
    return _cached_registry(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@cache
def _cached_registry(path: str, size: int, mtime_ns: int) -> dict[str, WeightsEntry]:
    return load_registry(path)


def get_entry(name: str, entries: Mapping[str, WeightsEntry] | None = None) -> WeightsEntry:
    """The registry entry called ``name``; WeightsError listing the known names otherwise."""
    entries = registry() if entries is None else entries
    if name not in entries:
        raise WeightsError(
            f"unknown weights {name!r}; known: {', '.join(sorted(entries))} (see `cemnet weights list`)"
        )
    return entries[name]


# ---------------------------------------------------------------- checksums

_VERIFIED: dict[tuple[str, int, int], str] = {}  # (resolved path, size, mtime_ns) -> sha256


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, cached in-process by (path, size, mtime)."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(_CHUNK):
                digest.update(block)
        _VERIFIED[key] = digest.hexdigest()
    return _VERIFIED[key]


def verify_file(path: str | os.PathLike[str], entry: WeightsEntry) -> Path:
    """Return ``path`` if its size and sha256 match ``entry``; ChecksumError naming the file otherwise."""
    path = Path(path)
    _require_pinned(entry)
    if not path.is_file():
        raise WeightsError(f"{entry.name}: {path} does not exist")
    size = path.stat().st_size
    if entry.size and size != entry.size:
        raise ChecksumError(
            f"{path} ({entry.name}) has {size} bytes, expected {entry.size}: the file is "
            "truncated or a different version; delete it and run `cemnet weights pull "
            f"{entry.name}`"
        )
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise ChecksumError(
            f"{path} ({entry.name}) has sha256 {actual[:12]}..., expected "
            f"{entry.sha256[:12]}...: the file is corrupt or a different version; delete it "
            f"and run `cemnet weights pull {entry.name}`"
        )
    return path


def _require_pinned(entry: WeightsEntry) -> None:
    if not entry.pinned:
        raise WeightsError(
            f"{entry.name} has no pinned sha256 in weights.toml, so it is never loaded; "
            f"verify a copy of {entry.filename} from {entry.source}, then add its sha256 to "
            "weights.toml"
        )


# ---------------------------------------------------------------- locations


def _truthy(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() in ("1", "true", "yes", "on")


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set: no download is attempted."""
    return _truthy("HF_HUB_OFFLINE")


def hub_cache_dir() -> Path:
    """The Hub cache: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(home) / "hub"


def url_cache_dir() -> Path:
    """Where URL downloads are kept (``CEMNET_CACHE``, else ``~/.cache/cemnet``)."""
    return Path(os.environ.get("CEMNET_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "cemnet"))


def _weights_dir(weights_dir: str | os.PathLike[str] | None) -> Path | None:
    value = weights_dir if weights_dir is not None else os.environ.get("CEMNET_WEIGHTS_DIR")
    return Path(value) if value else None


def _url_cache_path(entry: WeightsEntry) -> Path:
    return url_cache_dir() / entry.name / entry.sha256[:16] / entry.filename


def find_local(entry: WeightsEntry, weights_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """Where the file already is (local folder, then the caches), without checking or downloading it."""
    folder = _weights_dir(weights_dir)
    if folder is not None and (folder / entry.filename).is_file():
        return folder / entry.filename
    if entry.repo_id:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(
            entry.repo_id,
            entry.path_in_repo or entry.filename,
            cache_dir=hub_cache_dir(),
            revision=entry.revision,
        )
        if isinstance(cached, str) and Path(cached).is_file():
            return Path(cached)
    elif entry.sha256 and _url_cache_path(entry).is_file():
        return _url_cache_path(entry)
    return None


# ---------------------------------------------------------------- downloads


def _download_hub(entry: WeightsEntry) -> Path:
    from huggingface_hub import constants, hf_hub_download

    # huggingface_hub reads HF_HUB_OFFLINE once, at import; this module reads it at every call (is_offline)
    # and only gets here when it is unset, so the library must not keep an offline flag from an earlier env.
    constants.HF_HUB_OFFLINE = False
    try:
        return Path(
            hf_hub_download(
                entry.repo_id,
                entry.path_in_repo or entry.filename,
                revision=entry.revision,
                cache_dir=hub_cache_dir(),
                endpoint=os.environ.get("HF_ENDPOINT") or None,
            )
        )
    except Exception as exc:  # huggingface_hub raises HTTP, network and filesystem errors of many types
        raise WeightsError(
            f"cannot download {entry.name} from {entry.source}: {exc}; check the network, "
            f"or put {entry.filename} in a folder given by --weights-dir / CEMNET_WEIGHTS_DIR"
        ) from exc


def _download_url(entry: WeightsEntry, progress: ProgressCallback | None) -> Path:
    """Stream ``entry.url`` into ``<cache>/<name>/<sha>/<filename>.part`` (resumed), verify, rename."""
    target = _url_cache_path(entry)
    partial = target.with_name(target.name + ".part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create the download cache {target.parent}: {exc.strerror or exc}; set "
            "CEMNET_CACHE to a writable folder"
        ) from exc
    done = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(entry.url, headers={"User-Agent": f"cemnet/{__version__}"})
    if done:
        request.add_header("Range", f"bytes={done}-")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            if response.status != 206:  # the server ignored the range: start over
                done = 0
            length = response.headers.get("Content-Length")
            total = done + int(length) if length is not None else (entry.size or None)
            with partial.open("ab" if done else "wb") as handle:
                while block := response.read(_CHUNK):
                    handle.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # asked to resume past the end: the partial file is complete (or bad)
            pass
        else:
            raise WeightsError(
                f"cannot download {entry.name} from {entry.url}: HTTP {exc.code}; check the "
                f"URL or put {entry.filename} in --weights-dir / CEMNET_WEIGHTS_DIR"
            ) from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise WeightsError(
            f"cannot download {entry.name} from {entry.url}: {exc}; check the network and "
            "rerun (the download resumes)"
        ) from exc
    except OSError as exc:
        raise OutputError(f"cannot write {partial}: {exc.strerror or exc}; free disk space, rerun") from exc
    try:
        verify_file(partial, entry)
    except ChecksumError:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return target


def _discard_bad_download(path: Path) -> None:
    """Delete a downloaded file that failed its checksum (and the Hub blob behind a cache symlink)."""
    real = path.resolve()
    path.unlink(missing_ok=True)
    if real != path:
        real.unlink(missing_ok=True)


def resolve(
    name: str,
    *,
    path: str | os.PathLike[str] | None = None,
    weights_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: ProgressCallback | None = None,
) -> Path:
    """Local, sha256-verified path of the registered file ``name`` (see the module docstring for the order).

    Raises WeightsError when the file cannot be found or fetched (the message says how to get it) and
    ChecksumError when a file differs from the pinned sha256.
    """
    entry = get_entry(name)
    _require_pinned(entry)
    if path is not None:
        if not Path(path).is_file():
            raise WeightsError(f"{name}: {path} does not exist; give the path of {entry.filename}")
        return verify_file(path, entry)
    local = find_local(entry, weights_dir)
    if local is not None:
        return verify_file(local, entry)
    how = (
        f"download {entry.filename} from {entry.source} with `cemnet weights pull {name}` where the "
        "network is reachable, or put it in a folder given by --weights-dir / CEMNET_WEIGHTS_DIR"
    )
    if not download:
        raise WeightsError(f"{name} is not available locally; {how}")
    if offline():
        raise WeightsError(f"{name} is not available locally and HF_HUB_OFFLINE is set; {how}")
    fetched = _download_hub(entry) if entry.repo_id else _download_url(entry, progress)
    try:
        return verify_file(fetched, entry)
    except ChecksumError:
        _discard_bad_download(fetched)
        raise


@dataclass(frozen=True)
class WeightsStatus:
    """Where a registered file is and whether it passed its checksum (for ``cemnet weights list/verify``)."""

    entry: WeightsEntry
    path: Path | None
    verified: bool | None  # None: not checked (file absent or no pinned sha256)
    problem: str = ""


def status(name: str, weights_dir: str | os.PathLike[str] | None = None, check: bool = True) -> WeightsStatus:
    """Locate ``name`` without downloading; with ``check``, verify its sha256 (never raises ChecksumError)."""
    entry = get_entry(name)
    local = find_local(entry, weights_dir)
    if local is None or not check or not entry.pinned:
        problem = "" if entry.pinned else "no pinned sha256"
        return WeightsStatus(entry, local, None, problem)
    try:
        verify_file(local, entry)
    except WeightsError as exc:
        return WeightsStatus(entry, local, False, str(exc))
    return WeightsStatus(entry, local, True)


# ---------------------------------------------------------------- release folders


@dataclass
class Release:
    """A loaded release folder: tensors, the model ``kind``, its config dict and the safetensors metadata."""

    state_dict: dict[str, torch.Tensor]
    kind: str
    config: dict[str, Any]
    metadata: dict[str, str] = field(default_factory=dict)
    verified: bool = False  # every file matched checksums.json (False: an older folder without one)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    try:
        temp = temp_beside(path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; choose a writable folder") from exc
    try:
        write(temp)
        os.replace(temp, path)
    except OSError as exc:
        error = write_error(path, exc)  # before the partial file frees its space
        temp.unlink(missing_ok=True)
        raise error from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def canonical_safetensors(data: bytes) -> bytes:
    """safetensors bytes with a canonical header: metadata keys sorted, tensors in data order.

    The library writes its metadata map from a hash map, in a different order from one call to the next,
    so identical weights gave different file bytes (and ``sha256``, e.g. ``results.json``'s
    ``weights_sha256``). Same JSON, same length: the data part and every offset stay as they are.
    """
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    metadata = header.pop("__metadata__", None)
    ordered: dict[str, Any] = {} if metadata is None else {"__metadata__": dict(sorted(metadata.items()))}
    ordered.update(sorted(header.items(), key=lambda item: (item[1]["data_offsets"][0], item[0])))
    text = json.dumps(ordered, separators=(",", ":")).encode("utf-8")
    if len(text) > length:  # not the library's compact JSON: keep its bytes
        return data
    return data[:8] + text + b" " * (length - len(text)) + data[8 + length :]


def save_release(
    folder: str | os.PathLike[str],
    model: torch.nn.Module | Mapping[str, torch.Tensor],
    kind: str,
    config: Mapping[str, Any] | Any,
) -> Path:
    """Write ``folder/model.safetensors`` + ``folder/config.json`` atomically; returns the folder.

    ``config`` is a JSON-safe dict or a config object with ``to_dict()``.
    """
    folder = Path(folder)
    config_dict = dict(config.to_dict()) if hasattr(config, "to_dict") else dict(config)
    state = model.state_dict() if isinstance(model, torch.nn.Module) else model
    # Clone so that tied/shared tensors are stored separately (safetensors refuses shared storage).
    tensors = {key: value.detach().to("cpu").contiguous().clone() for key, value in state.items()}
    metadata = {"cemnet_version": __version__, "kind": kind}
    document = json.dumps({"kind": kind, "config": config_dict, "cemnet_version": __version__}, indent=2)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {folder}: {exc.strerror or exc}; choose a writable folder") from exc
    data = canonical_safetensors(safetensors_bytes(tensors, metadata=metadata))
    _atomic_write(folder / MODEL_FILE, lambda temp: temp.write_bytes(data))
    _atomic_write(folder / CONFIG_FILE, lambda temp: temp.write_text(document + "\n", encoding="utf-8"))
    write_manifest(folder)
    return folder


def _release_files(folder: Path) -> list[Path]:
    """The files a manifest covers: every visible regular file of ``folder`` except the manifest."""
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.name != CHECKSUMS_FILE
    )


def write_manifest(folder: str | os.PathLike[str]) -> Path:
    """Record the size and sha256 of every file of a release folder in ``folder/checksums.json``.

    Called by :func:`save_release` once the files are in place; call it again after adding a file (a model
    card, say) to a release. Returns the manifest's path.
    """
    folder = Path(folder)
    files = {
        path.name: {"size": path.stat().st_size, "sha256": sha256_file(path)}
        for path in _release_files(folder)
    }
    document = json.dumps({"format": 1, "files": files}, indent=2, sort_keys=True) + "\n"
    target = folder / CHECKSUMS_FILE
    _atomic_write(target, lambda temp: temp.write_text(document, encoding="utf-8"))
    return target


def verify_manifest(folder: str | os.PathLike[str]) -> bool:
    """Check every file listed in ``folder/checksums.json``; False when there is no manifest (not checked).

    Raises:
        ChecksumError: a listed file is missing, has another size or another sha256 (the message names it).
        WeightsError: the manifest itself cannot be read.
    """
    folder = Path(folder)
    manifest = folder / CHECKSUMS_FILE
    if not manifest.is_file():
        return False
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        expected = {
            str(name): (int(item["size"]), str(item["sha256"]).lower()) for name, item in files.items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WeightsError(
            f"{manifest} is unreadable ({exc}); export the release again or download it again"
        ) from exc
    redo = "export it again (`cemnet export RUN DST`) or download the release again"
    for name, (size, sha256) in sorted(expected.items()):
        path = folder / name
        if not path.is_file():
            raise ChecksumError(f"{path} is missing but listed in {CHECKSUMS_FILE}; {redo}")
        actual_size = path.stat().st_size
        if actual_size != size:
            raise ChecksumError(
                f"{path} has {actual_size} bytes where {CHECKSUMS_FILE} recorded {size} at export: "
                f"the file is truncated or was changed; {redo}"
            )
        if sha256_file(path) != sha256:
            raise ChecksumError(
                f"{path} does not match the sha256 {CHECKSUMS_FILE} recorded at export: the file is "
                f"damaged or was changed; {redo}"
            )
    return True


def load_release(folder: str | os.PathLike[str], kind: str | None = None) -> Release:
    """Read a release folder written by :func:`save_release`; ``kind``, if given, must match its kind."""
    folder = Path(folder)
    model_file, config_file = folder / MODEL_FILE, folder / CONFIG_FILE
    missing = [p.name for p in (model_file, config_file) if not p.is_file()]
    if missing:
        raise WeightsError(
            f"{folder} is not a release folder (missing {', '.join(missing)}); give a folder "
            "written by `cemnet train ... ` export or `save_release`"
        )
    verified = verify_manifest(folder)
    try:
        document = json.loads(config_file.read_text(encoding="utf-8"))
        stored_kind, config = str(document["kind"]), dict(document["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"{config_file}: unreadable release config ({exc}); re-export it") from exc
    try:
        with safe_open(str(model_file), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise WeightsError(f"{model_file}: unreadable safetensors file ({exc}); re-export it") from exc
    if metadata.get("kind", stored_kind) != stored_kind:
        raise WeightsError(
            f"{folder}: model.safetensors says kind {metadata.get('kind')!r} but config.json "
            f"says {stored_kind!r}; the two files come from different releases"
        )
    if kind is not None and stored_kind != kind:
        raise WeightsError(f"{folder} holds a {stored_kind!r} release, expected {kind!r}; check the path")
    return Release(state_dict=state, kind=stored_kind, config=config, metadata=metadata, verified=verified)


def load_state_into(model: torch.nn.Module, release: Release) -> torch.nn.Module:
    """Copy the release's tensors into ``model``; WeightsError naming missing/unexpected/mis-shaped keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(release.state_dict))
    unexpected = sorted(set(release.state_dict) - set(expected))
    mismatched = sorted(
        key
        for key in set(expected) & set(release.state_dict)
        if tuple(expected[key].shape) != tuple(release.state_dict[key].shape)
    )
    if missing or unexpected or mismatched:

        def show(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")

        parts = [
            f"{label}: {show(keys)}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched))
            if keys
        ]
        raise WeightsError(
            f"the {release.kind!r} release does not fit this model ({'; '.join(parts)}); "
            "build the model from the release's config.json"
        )
    model.load_state_dict(release.state_dict, strict=True)
    return model
