"""Temporary files beside their target, with the mode an ordinary ``open()`` would give.

Every file CEM-Net writes (videos, clips, checkpoints, configs, releases) goes to a temporary name in the
target's folder and is renamed into place, so a crash never leaves a partial file. ``tempfile.mkstemp``
creates its files with mode 0600 whatever the umask, and a rename keeps that mode: a video made for
someone else could not be read by them. :func:`temp_beside` gives the temporary file the mode
``0o666 & ~umask`` instead, as ``open(path, "w")`` would.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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
