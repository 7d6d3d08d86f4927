"""The weights registry: every pretrained file by name, fetched and sha256-checked (STYLE section 5).

``weights.toml`` names each third-party file as ``<model>.<tag>`` with its sha256, size, licence, purpose
and a source (a Hugging Face Hub ``repo_id`` + pinned ``revision``, or a ``url``). :func:`resolve` turns a
name into a local path, trying in order:

    1. an explicit ``path``
    2. a local folder (``weights_dir`` or ``CEMNET_WEIGHTS_DIR``), where the file is looked up by its filename
    3. the download caches (Hub: the ``huggingface_hub`` cache; URLs: ``~/.cache/cemnet`` or ``CEMNET_CACHE``)
    4. a download (unless ``download=False`` or ``HF_HUB_OFFLINE=1``)

and refuses any file whose sha256 differs from the pinned one (:class:`ChecksumError`, the file is never
returned; a bad download is deleted). Entries without a pinned sha256 are refused outright. With
:mod:`cemnet_core.hub` (weights bundles on the Hub; it uses this module's endpoint, cache and offline
helpers), this is the only module that touches the network; nothing downloaded is unpickled here.

A ``bundle = true`` entry names a weights *folder* (a CEM-Net weights bundle, :mod:`cemnet_core.bundle`)
instead of one file: its ``sha256`` is :func:`folder_digest` of the folder (every file's path and sha256) and
its ``size`` the folder's bytes. With ``package = true`` the folder ships inside this package
(``cemnet_core/<filename>``, the starter release) and is never downloaded; a Hub bundle
(``repo_id`` + ``revision``) is fetched by :func:`cemnet_core.bundle.resolve_bundle`.

Release folders of our own sub-models (``model.safetensors`` + ``config.json`` + ``checksums.json``) are
:mod:`cemnet_core.release`; both hash with :func:`cemnet_core.fileio.sha256_file`.
"""

from __future__ import annotations

import contextlib
import os
import re
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from cemnet_core import __version__
from cemnet_core.errors import ChecksumError, OutputError, WeightsError
from cemnet_core.fileio import folder_digest, make_folder, sha256_file

_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20  # download block
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
    bundle: bool = False  # a weights bundle folder (sha256: folder_digest), not one file
    package: bool = False  # shipped inside the cemnet_core package: never downloaded

    @property
    def source(self) -> str:
        """Where a download comes from, for messages and ``cemnet weights list``."""
        if self.package:
            return f"shipped with cemnet (cemnet_core/{self.filename})"
        if self.bundle and self.repo_id:
            return f"hf://{self.repo_id}@{self.revision}"
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

    known = {"filename", "sha256", "size", "licence", "purpose", "repo_id", "revision", "path_in_repo", "url",
             "bundle", "package"}  # fmt: skip
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
    bundle, package = table.get("bundle", False), table.get("package", False)
    if not isinstance(bundle, bool) or not isinstance(package, bool):
        raise fail("needs true or false for bundle and package")
    if package and not bundle:
        raise fail("is shipped in the package (package = true), which only a bundle (bundle = true) can be")
    has_hub, has_url = bool(table.get("repo_id")), bool(table.get("url"))
    if has_hub + has_url + package != 1:
        raise fail("needs exactly one source: repo_id + revision, url, or package = true")
    if bundle and has_url:
        raise fail("is a bundle, which comes from the package or the Hub (repo_id + revision), not a url")
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
        bundle=bundle,
        package=package,
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


def _verify_bundle(path: Path, entry: WeightsEntry) -> Path:
    redo = "reinstall cemnet" if entry.package else f"delete {path} and fetch {entry.name} again"
    if not path.is_dir():
        raise WeightsError(f"{entry.name}: {path} is not a folder; {redo}")
    digest, size = folder_digest(path)
    if digest != entry.sha256 or (entry.size and size != entry.size):
        raise ChecksumError(
            f"{path} ({entry.name}) differs from the weights bundle registered in weights.toml "
            f"(digest {digest[:12]}..., expected {entry.sha256[:12]}...; {size} bytes, expected "
            f"{entry.size}): a file was changed, added or removed; {redo}"
        )
    return path


def verify_file(path: str | os.PathLike[str], entry: WeightsEntry) -> Path:
    """Return ``path`` if its size and sha256 match ``entry``; ChecksumError naming the file otherwise.

    For a bundle entry ``path`` is a folder and its :func:`folder_digest` is checked.
    """
    path = Path(path)
    _require_pinned(entry)
    if entry.bundle:
        return _verify_bundle(path, entry)
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
    """Where the file already is (local folder, then the caches), without checking or downloading it.

    A shipped bundle (``package = true``) is always ``cemnet_core/<filename>``; other bundles are looked up
    in the local folder only (a Hub bundle's cache is :mod:`cemnet_core.hub`'s).
    """
    if entry.package:
        shipped = Path(__file__).resolve().parent / entry.filename
        return shipped if shipped.is_dir() else None
    folder = _weights_dir(weights_dir)
    present = Path.is_dir if entry.bundle else Path.is_file
    if folder is not None and present(folder / entry.filename):
        return folder / entry.filename
    if entry.bundle:
        return None
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


def hub_endpoint() -> str | None:
    """The Hub to talk to: ``HF_ENDPOINT`` (a mirror, a private Hub, a test server), else None (the Hub)."""
    return os.environ.get("HF_ENDPOINT") or None


def allow_hub_requests() -> None:
    """Let huggingface_hub send requests; call only when :func:`offline` is False, just before one.

    The library reads HF_HUB_OFFLINE once, at import; this module reads it at every call (:func:`offline`),
    so the library must not keep an offline flag from an earlier environment.
    """
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = False


@contextlib.contextmanager
def hub_quietly() -> Iterator[None]:
    """Turn huggingface_hub's own tqdm bars off for the block: core draws nothing on the console."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()


def _download_hub(entry: WeightsEntry) -> Path:
    from huggingface_hub import hf_hub_download

    allow_hub_requests()
    try:
        with hub_quietly():
            fetched = hf_hub_download(
                entry.repo_id,
                entry.path_in_repo or entry.filename,
                revision=entry.revision,
                cache_dir=hub_cache_dir(),
                endpoint=hub_endpoint(),
            )
        return Path(fetched)
    except Exception as exc:  # huggingface_hub raises HTTP, network and filesystem errors of many types
        raise WeightsError(
            f"cannot download {entry.name} from {entry.source}: {exc}; check the network, "
            f"or put {entry.filename} in a folder given by --weights-dir / CEMNET_WEIGHTS_DIR"
        ) from exc


def _download_url(entry: WeightsEntry, progress: ProgressCallback | None) -> Path:
    """Stream ``entry.url`` into ``<cache>/<name>/<sha>/<filename>.part`` (resumed), verify, rename."""
    target = _url_cache_path(entry)
    partial = target.with_name(target.name + ".part")
    make_folder(target.parent, "set CEMNET_CACHE to a writable folder")  # the download cache
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


def discard_bad_download(path: Path) -> None:
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
        if not Path(path).exists():
            raise WeightsError(f"{name}: {path} does not exist; give the path of {entry.filename}")
        return verify_file(path, entry)
    local = find_local(entry, weights_dir)
    if local is not None:
        return verify_file(local, entry)
    if entry.package:
        raise WeightsError(f"{name} ships with cemnet, but cemnet_core/{entry.filename} is gone; reinstall")
    if entry.bundle:
        raise WeightsError(f"{name} is a Hub weights bundle: pass --weights {name} (it is fetched there)")
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
        discard_bad_download(fetched)
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
