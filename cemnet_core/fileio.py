"""Temporary files beside their target, with the mode an ordinary ``open()`` would give.

Every file CEM-Net writes (videos, clips, checkpoints, configs, releases) goes to a temporary name in the
target's folder and is renamed into place, so a crash never leaves a partial file. ``tempfile.mkstemp``
creates its files with mode 0600 whatever the umask, and a rename keeps that mode: a video made for
someone else could not be read by them. :func:`temp_beside` gives the temporary file the mode
``0o666 & ~umask`` instead, as ``open(path, "w")`` would.

The file hashes every checked file goes through (:func:`sha256_file`, cached per file version) and the
digest of a whole folder (:func:`folder_digest`, a weights bundle's) live here too.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from cemnet_core.errors import OutputError


def current_umask() -> int:
    """The process umask, read without changing it where Linux reports it (``/proc/self/status``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: the only portable way to read it is to set it and put it back
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode a newly created regular file gets under the current umask (usually 0644)."""
    return 0o666 & ~current_umask()


def temp_beside(path: str | os.PathLike[str], suffix: str = ".tmp") -> Path:
    """Create an empty temporary file next to ``path`` (same filesystem, so renaming it is atomic).

    The file's mode is :func:`default_file_mode`, so the renamed result is as readable as any other file
    the user creates. Raises ``OSError`` (callers turn it into ``OutputError``).
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, default_file_mode())
    finally:
        os.close(fd)
    return Path(name)


def make_folder(folder: str | os.PathLike[str], remedy: str = "choose a writable folder") -> Path:
    """Create ``folder`` and its parents (fine if it exists); an :class:`OutputError` ending in ``remedy``
    (what the user should do) if it cannot be created."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {folder}: {exc.strerror or exc}; {remedy}") from exc
    return folder


def disk_full(path: str | os.PathLike[str], exc: BaseException) -> bool:
    """Whether writing ``path`` failed with ``exc`` because its disk (or quota) is full.

    Libraries report a full disk in their own words (safetensors: "I/O error: No space left on device",
    torch.save: "unexpected pos 704 vs 598"), so the disk is also asked how much room is left (call this
    before deleting the partial file).
    """
    text = str(exc)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if "No space left" in text or "quota exceeded" in text.lower():
        return True
    try:
        return shutil.disk_usage(Path(path).parent).free < 64 * 1024
    except OSError:
        return False


def write_error(
    path: str | os.PathLike[str], exc: BaseException, what: str = "", full: bool | None = None
) -> OutputError:
    """The one-line :class:`OutputError` for a failed write of ``path`` (``what``: "clip ", "checkpoint ");
    ``full``: what :func:`disk_full` said before the partial file was deleted (None: ask it now)."""
    if disk_full(path, exc) if full is None else full:
        return OutputError(
            f"cannot write {what}{path}: the disk is full; free some space or write to another disk, "
            "then retry"
        )
    text = str(exc)
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else (text.splitlines() or [""])[0]
    return OutputError(
        f"cannot write {what}{path}: {reason[:120] or type(exc).__name__}; check that its folder is "
        "writable, then retry"
    )


# ---------------------------------------------------------------- hashes

_HASHED: dict[tuple[str, int, int], str] = {}  # (resolved path, size, mtime_ns) -> sha256
_BLOCK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, cached in-process by (path, size, mtime)."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHED:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(_BLOCK):
                digest.update(block)
        _HASHED[key] = digest.hexdigest()
    return _HASHED[key]


def folder_sha256(folder: str | os.PathLike[str]) -> dict[str, str]:
    """Relative path (POSIX) -> sha256 of every visible regular file under ``folder`` (recursively; no
    dot-files or dot-folders), sorted by path."""
    folder = Path(folder)
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    return {path.relative_to(folder).as_posix(): sha256_file(path) for path in files}


def folder_digest(folder: str | os.PathLike[str]) -> tuple[str, int]:
    """(sha256, bytes) of a folder: the sha256 of one ``<relative path> <file sha256>`` line per file of
    :func:`folder_sha256`, and the files' total size (a weights bundle's registry ``sha256`` and ``size``)."""
    hashes = folder_sha256(folder)
    lines = "".join(f"{name} {sha256}\n" for name, sha256 in hashes.items())
    size = sum((Path(folder) / name).stat().st_size for name in hashes)
    return hashlib.sha256(lines.encode("utf-8")).hexdigest(), size
