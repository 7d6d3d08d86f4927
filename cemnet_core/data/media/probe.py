"""What a media file holds, from the stream summary ``ffmpeg -i FILE`` prints (``ffprobe`` is not shipped
with ``imageio-ffmpeg``): :class:`MediaInfo`, :func:`probe`; the ffmpeg binary, the command line every
decode and encode starts with (:func:`ffmpeg_command`) and the input checks every decode shares.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import imageio_ffmpeg

from cemnet_core.contracts import VIDEO_FPS
from cemnet_core.data.ffmpeg_messages import ffmpeg_reason
from cemnet_core.errors import MediaError


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by ``imageio-ffmpeg``."""
    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_command(*args: str) -> list[str]:
    """The argument list of an ffmpeg run that never reads the terminal and prints only errors (the
    decoders' and encoders' stderr is the error's reason): ``ffmpeg -hide_banner -nostdin -v error ARGS``."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", *args]


@dataclass(frozen=True)
class MediaInfo:
    """What :func:`probe` learns about a media file.

    ``width``/``height`` are the displayed size (after the rotation stored in the file, which ffmpeg applies
    when decoding); ``fps`` is the stream's nominal frame rate. Fields of a missing stream are 0 / "".
    """

    path: Path
    duration: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    video_codec: str = ""
    audio_codec: str = ""
    sample_rate: int = 0
    channels: int = 0
    metadata: dict[str, str] = field(default_factory=dict)

    def num_frames(self, fps: float = VIDEO_FPS) -> int:
        """Expected number of frames after resampling to ``fps`` (rounded duration * fps)."""
        return round(self.duration * fps)


def _check_input(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: file not found; check the path")
    if not path.is_file():
        raise MediaError(f"{path}: is not a file; give a media file, not a folder")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: file is empty (0 bytes); re-export or re-download it")
    return path


def _unreadable(path: Path, text: str) -> MediaError:
    """The one-line error for a file ffmpeg cannot open (its stderr ``text`` reduced to the cause)."""
    reason = ffmpeg_reason(text)
    if "truncated" in reason or "incomplete" in reason:
        return MediaError(f"{path}: cannot be read ({reason}); re-download or re-export it")
    return MediaError(
        f"{path}: not a readable audio or video file ({reason}); check that it is the right file, "
        "or convert it to a common format (wav, mp4) and retry"
    )


_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_STREAM = re.compile(r"^\s*Stream #0:\d+\S*: (Video|Audio): ([^\s,]+)(.*)$")
_SIZE = re.compile(r", (\d{2,5})x(\d{2,5})")
_FPS = re.compile(r", (\d+(?:\.\d+)?k?) (?:fps|tbr)")
_RATE = re.compile(r", (\d+) Hz, ([^,]+)")
_ROTATION = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")
_META = re.compile(r"^    (\S[^:]*?)\s*: (.*)$")
_CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "5.0": 5, "5.1": 6, "6.1": 7, "7.1": 8}


def _channels(layout: str) -> int:
    layout = layout.strip()
    match = re.match(r"(\d+) channels", layout)
    if match:
        return int(match.group(1))
    return _CHANNELS.get(layout.split("(")[0], 2)


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Read the duration, streams and container metadata of a media file (parses ``ffmpeg -i`` output).

    Raises MediaError when the file is missing, empty or not a media file ffmpeg can open.
    """
    path = _check_input(path)
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
        process_group=0,  # Ctrl-C reaches Python, which stops ffmpeg (workers.py)
    )
    text = result.stderr
    if "Input #0" not in text:
        raise _unreadable(path, text)
    duration = 0.0
    match = _DURATION.search(text)
    if match:
        hours, minutes, seconds = match.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    info: dict[str, object] = {"has_video": False, "has_audio": False}
    metadata: dict[str, str] = {}
    in_container_meta = False
    video_seen = False
    for line in text.splitlines():
        if line.startswith("  Metadata:") and not video_seen and "audio_codec" not in info:
            in_container_meta = True
            continue
        if in_container_meta:
            meta = _META.match(line)
            if meta:
                metadata[meta.group(1)] = meta.group(2).strip()
                continue
            in_container_meta = False
        stream = _STREAM.match(line)
        if stream is None:
            rotation = _ROTATION.search(line)
            if rotation and video_seen and round(abs(float(rotation.group(1)))) % 180 == 90:
                info["width"], info["height"] = info.get("height", 0), info.get("width", 0)
            continue
        kind, codec, rest = stream.groups()
        if kind == "Video" and not video_seen:
            if "attached pic" in rest:  # cover art in an audio file is not a video
                continue
            video_seen = True
            info["has_video"] = True
            info["video_codec"] = codec
            size = _SIZE.search(rest)
            if size:
                info["width"], info["height"] = int(size.group(1)), int(size.group(2))
            fps = _FPS.search(rest)
            if fps:
                value = fps.group(1)
                info["fps"] = float(value[:-1]) * 1000 if value.endswith("k") else float(value)
        elif kind == "Audio" and not info["has_audio"]:
            info["has_audio"] = True
            info["audio_codec"] = codec
            rate = _RATE.search(rest)
            if rate:
                info["sample_rate"] = int(rate.group(1))
                info["channels"] = _channels(rate.group(2))
    if not info["has_video"] and not info["has_audio"]:
        raise MediaError(f"{path}: contains neither a video nor an audio stream")
    return MediaInfo(path=path, duration=duration, metadata=metadata, **info)  # type: ignore[arg-type]
