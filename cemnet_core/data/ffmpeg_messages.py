"""ffmpeg's stderr turned into one short reason a user can act on (for :mod:`cemnet_core.data.media`).

ffmpeg reports one problem on several lines, each prefixed with the component and its memory address::

    [in#0 @ 0x557b...] Error opening input: Invalid data found when processing input
    Error opening input file corrupt.wav.
    Error opening input files: Invalid data found when processing input

:func:`ffmpeg_reason` keeps the cause ("moov atom not found", "No space left on device", ...) and says it
in plain words; :func:`disk_full` tells an output error that more space is the fix.
"""

from __future__ import annotations

import re

_PREFIX = re.compile(r"^(?:\[[^\]]*@ 0x[0-9a-f]+\]\s*)+", re.IGNORECASE)  # "[in#0 @ 0x55...] " (nested)
_ADDRESS = re.compile(r"\s*@ 0x[0-9a-f]+", re.IGNORECASE)
# (pattern in ffmpeg's text, plain explanation), most specific first
_KNOWN: tuple[tuple[str, str], ...] = (
    ("No space left on device", "no space left on the device"),
    ("Disk quota exceeded", "the disk quota is exceeded"),
    ("Permission denied", "permission denied"),
    ("Read-only file system", "the file system is read-only"),
    ("moov atom not found", "the mp4 index (moov atom) is missing: the file is incomplete"),
    ("partial file", "the file is truncated"),
    ("Invalid NAL unit size", "the video data is damaged"),
    ("Invalid data found when processing input", "not an audio/video format ffmpeg recognises"),
    ("does not contain any stream", "the file has no audio or video stream"),
    ("End of file", "the file ends early"),
)
_NOISE = ("Error opening input file", "Error opening output file", "Conversion failed")  # restate the cause


def ffmpeg_reason(text: str, limit: int = 120) -> str:
    """The cause in ffmpeg's stderr ``text``, in plain words, on one line of at most ``limit`` characters."""
    for pattern, explanation in _KNOWN:
        if pattern.lower() in text.lower():
            return explanation
    lines = []
    for raw in text.splitlines():
        line = _ADDRESS.sub("", _PREFIX.sub("", raw.strip())).strip()
        if line and not line.startswith(_NOISE) and line not in lines:
            lines.append(line)
    if not lines:
        return "ffmpeg gave no reason"
    reason = lines[-1].rstrip(".")
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."


def disk_full(text: str) -> bool:
    """Whether ffmpeg's (or the OS's) message says the disk or quota is full."""
    lowered = text.lower()
    return "no space left" in lowered or "quota exceeded" in lowered
