"""Media I/O through the ffmpeg binary of ``imageio-ffmpeg`` (DESIGN section 2).

Every decode and encode runs ``ffmpeg`` as a child process with an argument list (never a shell string), in
its own process group (a terminal's Ctrl-C goes to Python, which stops ffmpeg and removes partial output),
and streams raw samples through a pipe, so memory stays flat in the length of the input:

    iter_video_frames   file -> chunks (n, H, W, 3) uint8 RGB, resampled to 25 fps (ffmpeg ``fps`` filter)
    iter_audio          file -> chunks (n,) float32 mono at 16 kHz (any audio file or a video's track)
    VideoWriter         chunks (n, H, W, 3) uint8 -> H.264 yuv420p (+ AAC) mp4, temp file + rename

``ffprobe`` is not shipped with ``imageio-ffmpeg``, so :func:`probe` parses the stream summary that
``ffmpeg -i FILE`` prints on stderr. Still images are read with Pillow (:func:`read_image`).

Errors: an unusable input (missing, empty, corrupt, truncated, lacking the needed stream) raises
:class:`~cemnet_core.errors.MediaError` naming the file; an output that cannot be written (read-only or
missing folder, disk full) raises :class:`~cemnet_core.errors.OutputError`, and no partial file is left
behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

import imageio_ffmpeg
import numpy as np

from cemnet_core.contracts import SAMPLE_RATE, VIDEO_FPS
from cemnet_core.data.ffmpeg_messages import disk_full, ffmpeg_reason
from cemnet_core.errors import InputError, MediaError, OutputError
from cemnet_core.fileio import temp_beside

AUDIO_FORMATS = {".wav": "wav", ".m4a": "mp4", ".mp3": "mp3", ".flac": "flac"}
_AUDIO_CODECS = {".wav": "pcm_s16le", ".m4a": "aac", ".mp3": "libmp3lame", ".flac": "flac"}


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by ``imageio-ffmpeg``."""
    return imageio_ffmpeg.get_ffmpeg_exe()


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


class _Decoder:
    """An ffmpeg child process writing raw samples to its stdout; stderr goes to a temp file (no deadlock)."""

    def __init__(self, path: Path, args: list[str]) -> None:
        self.path = path
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in finish/close)
        command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), *args, "-"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._stderr, bufsize=0, process_group=0
        )

    def read_into(self, buffer: np.ndarray) -> int:
        """Fill ``buffer`` from the pipe; returns the number of bytes read (short only at end of stream)."""
        view = memoryview(buffer).cast("B")
        filled = 0
        assert self.process.stdout is not None
        while filled < len(view):
            count = self.process.stdout.readinto(view[filled:])
            if not count:
                break
            filled += count
        return filled

    def finish(self, what: str) -> None:
        """Wait for ffmpeg; raise MediaError if it failed or found the file truncated."""
        returncode = self.process.wait()
        self._stderr.seek(0)
        message = self._stderr.read().decode("utf-8", "replace")
        self._stderr.close()
        if returncode != 0:
            raise MediaError(
                f"{self.path}: cannot decode {what} ({ffmpeg_reason(message)}); the file is damaged: "
                "re-download or re-export it"
            )
        if "partial file" in message:
            raise MediaError(
                f"{self.path}: file is truncated (decoding stopped early); re-download or re-export it"
            )

    def close(self) -> None:
        """Stop ffmpeg if it still runs (consumer stopped early or an error happened)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        if not self._stderr.closed:
            self._stderr.close()


def iter_video_frames(
    path: str | os.PathLike[str],
    fps: float | None = VIDEO_FPS,
    chunk_frames: int = 32,
    size: tuple[int, int] | None = None,
) -> Iterator[np.ndarray]:
    """Decode a video as RGB chunks ``(n, H, W, 3)`` uint8, ``n <= chunk_frames``, memory flat in its length.

    Args:
        path: any video ffmpeg reads (h264, mpeg4 part 2, ...); the stored rotation is applied.
        fps: output frame rate (ffmpeg's ``fps`` filter drops/duplicates frames); None keeps the source's.
        chunk_frames: frames per yielded chunk.
        size: ``(width, height)`` to resize to, or None to keep the source size.
    """
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
    info = probe(path)
    if not info.has_video:
        raise MediaError(f"{info.path}: has no video stream (it is an audio file?); give a video")
    width, height = size if size is not None else (info.width, info.height)
    if width <= 0 or height <= 0:
        raise MediaError(f"{info.path}: cannot read the video size from the file; re-encode it")
    filters = ([f"fps={fps}"] if fps is not None else []) + [f"scale={width}:{height}"]
    decoder = _Decoder(
        info.path, ["-map", "0:v:0", "-vf", ",".join(filters), "-f", "rawvideo", "-pix_fmt", "rgb24"]
    )
    frame_bytes = width * height * 3
    try:
        while True:
            chunk = np.empty((chunk_frames, height, width, 3), dtype=np.uint8)  # (n, H, W, 3)
            count = decoder.read_into(chunk) // frame_bytes
            if count:
                yield chunk[:count]
            if count < chunk_frames:
                break
        decoder.finish("the video")
    finally:
        decoder.close()


def read_video(
    path: str | os.PathLike[str], fps: float | None = VIDEO_FPS, size: tuple[int, int] | None = None
) -> np.ndarray:
    """The whole video as ``(T, H, W, 3)`` uint8 RGB at ``fps`` (for short clips; stream long ones)."""
    chunks = list(iter_video_frames(path, fps=fps, size=size))
    if not chunks:
        raise MediaError(f"{path}: the video stream has no frames")
    return np.concatenate(chunks, axis=0)


def iter_audio(
    path: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE, chunk_samples: int = 160_000
) -> Iterator[np.ndarray]:
    """Decode the first audio stream as float32 mono chunks ``(n,)`` in [-1, 1] at ``sample_rate``.

    Works on audio files (wav, mp3, m4a, aac, flac, ogg, ...) and on a video's audio track.
    """
    if chunk_samples < 1:
        raise ValueError(f"chunk_samples must be >= 1, got {chunk_samples}")
    info = probe(path)
    if not info.has_audio:
        raise MediaError(f"{info.path}: has no audio stream; give a file with sound or a separate audio file")
    decoder = _Decoder(
        info.path,
        ["-map", "0:a:0", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-acodec", "pcm_f32le"],
    )
    try:
        while True:
            chunk = np.empty((chunk_samples,), dtype=np.float32)  # (n,)
            count = decoder.read_into(chunk) // 4
            if count:
                yield np.clip(chunk[:count], -1.0, 1.0, out=chunk[:count])  # AAC decoding can overshoot
            if count < chunk_samples:
                break
        decoder.finish("the audio")
    finally:
        decoder.close()


def load_audio(path: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The whole first audio stream as float32 mono ``(samples,)`` in [-1, 1] at ``sample_rate``."""
    chunks = list(iter_audio(path, sample_rate=sample_rate))
    if not chunks:
        raise MediaError(f"{path}: the audio stream is empty (no samples)")
    return np.concatenate(chunks)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a still image as ``(H, W, 3)`` uint8 RGB.

    The EXIF orientation is applied; grayscale, palette, CMYK and 16-bit images are converted; transparent
    pixels (RGBA, LA, palette with transparency) are composited onto white.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = _check_input(path)
    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except UnidentifiedImageError:
        raise MediaError(
            f"{path}: not an image (or a format Pillow cannot read); give a JPEG or PNG photo, or "
            "re-save it as one in an image editor"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(
            f"{path}: the image is truncated or damaged ({exc}); re-download it or re-save it as JPEG/PNG"
        ) from None
    if image.mode.startswith("I") or image.mode == "F":  # 16/32-bit integer or float grayscale
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16"):
            scale = 255.0 / 65535.0
        elif image.mode == "F" and values.max(initial=0.0) <= 1.0:
            scale = 255.0
        elif values.max(initial=0.0) > 255.0:  # mode "I" holding 16-bit samples
            scale = 255.0 / 65535.0
        else:
            scale = 1.0
        gray = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)  # (H, W, 3)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _temp_output(path: Path, suffix: str) -> Path:
    """Create an empty temp file beside ``path`` (same filesystem, so the final rename is atomic)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return temp_beside(path, suffix=f".tmp{suffix}")  # mode as the umask gives, not mkstemp's 0600
    except OSError as exc:
        raise OutputError(
            f"cannot write {path}: {exc.strerror or exc}; choose a writable output folder"
        ) from exc


def _output_failed(path: Path, detail: str) -> OutputError:
    if disk_full(detail):
        return OutputError(
            f"cannot write {path}: the disk is full; free some space or write to another disk, then retry"
        )
    return OutputError(
        f"cannot write {path} ({ffmpeg_reason(detail)}); check that its folder is writable, then retry"
    )


def _check_audio_array(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"audio: expected shape (samples,), got {tuple(audio.shape)}")
    if audio.size == 0:
        raise ValueError("audio: empty array")
    return np.ascontiguousarray(audio, dtype=np.float32)


def _encode_audio(path: Path, fmt: str, codec: str, audio: np.ndarray, sample_rate: int) -> None:
    """Encode float32 mono samples into ``path`` (which must exist) with ffmpeg, from a pipe."""
    command = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-f",
        "f32le",
        "-ar",
        str(sample_rate),
        "-ac",
        "1",
        "-i",
        "-",
        "-c:a",
        codec,
    ]
    if codec == "aac":
        command += ["-b:a", "128k", "-movflags", "+faststart"]
    command += ["-f", fmt, str(path)]
    try:
        result = subprocess.run(
            command, input=audio.tobytes(), capture_output=True, check=False, process_group=0
        )
    except BrokenPipeError as exc:
        raise _output_failed(path, str(exc)) from exc
    if result.returncode != 0:
        raise _output_failed(path, result.stderr.decode("utf-8", "replace"))


def write_audio(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write mono float32 ``audio (samples,)`` in [-1, 1] atomically; the format follows the suffix.

    ``.wav`` (16-bit PCM), ``.m4a`` (AAC), ``.mp3`` and ``.flac`` are supported.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in AUDIO_FORMATS:
        raise InputError(
            f"{path}: cannot write audio with suffix {suffix!r}; use one of {', '.join(AUDIO_FORMATS)}"
        )
    samples = _check_audio_array(audio)
    temp = _temp_output(path, suffix)
    try:
        _encode_audio(temp, AUDIO_FORMATS[suffix], _AUDIO_CODECS[suffix], samples, sample_rate)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def _audio_seconds(path: Path) -> float:
    """Exact duration of the first audio stream, by decoding it (container durations can include video)."""
    return sum(len(chunk) for chunk in iter_audio(path)) / SAMPLE_RATE


class VideoWriter:
    """Write RGB frames to an H.264 (yuv420p) mp4, with an AAC track when ``audio`` is given.

    Use as a context manager; ``write(frames (n, H, W, 3) uint8)`` any number of times. Frames go to a temp
    file in the target folder that is renamed into place when the block ends without error; on an exception
    (KeyboardInterrupt included) ffmpeg is stopped and the temp file removed.

    With audio (a float32 ``(samples,)`` array at ``sample_rate`` or a path to any file with sound), the
    output lasts as long as the audio (``-shortest`` semantics, within one frame): extra frames are dropped,
    and if fewer frames were written the last one is repeated. Odd widths/heights are padded by one edge
    pixel, since yuv420p needs even dimensions. ``metadata`` becomes container tags (see :func:`probe`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float = VIDEO_FPS,
        audio: np.ndarray | str | os.PathLike[str] | None = None,
        sample_rate: int = SAMPLE_RATE,
        metadata: dict[str, str] | None = None,
        crf: int = 18,
        preset: str = "medium",
    ) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.sample_rate = sample_rate
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self.crf = crf
        self.preset = preset
        self.frames_written = 0
        self._audio_array: np.ndarray | None = None
        self._audio_path: Path | None = None
        self._max_frames: int | None = None
        if isinstance(audio, np.ndarray):
            self._audio_array = _check_audio_array(audio)
            self._max_frames = max(1, round(len(self._audio_array) / sample_rate * self.fps))
        elif audio is not None:
            audio_path = _check_input(audio)
            if not probe(audio_path).has_audio:
                raise MediaError(f"{audio_path}: has no audio stream; give a file with sound")
            self._audio_path = audio_path
            self._max_frames = max(1, round(_audio_seconds(audio_path) * self.fps))
        self._temp: Path | None = None
        self._temp_audio: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._shape: tuple[int, int] | None = None
        self._last: np.ndarray | None = None

    def __enter__(self) -> VideoWriter:
        self._temp = _temp_output(self.path, ".mp4")
        return self

    def _start(self, height: int, width: int) -> None:
        assert self._temp is not None
        self._shape = (height, width)
        out_h, out_w = height + height % 2, width + width % 2
        command = [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{out_w}x{out_h}",
            "-r",
            f"{self.fps}",
            "-i",
            "-",
        ]
        if self._audio_array is not None:
            self._temp_audio = _temp_output(self.path, ".wav")
            _encode_audio(self._temp_audio, "wav", "pcm_f32le", self._audio_array, self.sample_rate)
            command += ["-i", str(self._temp_audio)]
        elif self._audio_path is not None:
            command += ["-i", str(self._audio_path)]
        command += ["-map", "0:v:0"]
        if self._audio_array is not None or self._audio_path is not None:
            command += ["-map", "1:a:0", "-c:a", "aac", "-b:a", "128k"]
        command += [
            "-c:v",
            "libx264",
            "-preset",
            self.preset,
            "-crf",
            str(self.crf),
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart+use_metadata_tags",
        ]
        for key, value in self.metadata.items():
            command += ["-metadata", f"{key}={value}"]
        command += ["-f", "mp4", str(self._temp)]
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close/abort)
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr, process_group=0
        )

    def write(self, frames: np.ndarray) -> None:
        """Append frames ``(n, H, W, 3)`` (or one ``(H, W, 3)``) uint8 RGB; all chunks share one size."""
        if self._temp is None:
            raise RuntimeError("VideoWriter.write called outside its `with` block")
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames: expected (n, H, W, 3) uint8, got {tuple(frames.shape)} {frames.dtype}")
        if len(frames) == 0:
            return
        if self._process is None:
            self._start(frames.shape[1], frames.shape[2])
        if frames.shape[1:3] != self._shape:
            raise ValueError(
                f"frames: expected size {self._shape} like the first chunk, got {frames.shape[1:3]}"
            )
        if self._max_frames is not None:
            frames = frames[: max(0, self._max_frames - self.frames_written)]
            if len(frames) == 0:
                return
        self._last = frames[-1]
        height, width = frames.shape[1:3]
        if height % 2 or width % 2:
            frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        self._send(np.ascontiguousarray(frames))
        self.frames_written += len(frames)

    def _send(self, frames: np.ndarray) -> None:
        assert self._process is not None and self._process.stdin is not None
        try:
            self._process.stdin.write(memoryview(frames).cast("B"))
        except (BrokenPipeError, OSError) as exc:
            self._process.wait()
            raise _output_failed(self.path, self._read_stderr() or str(exc)) from exc

    def _read_stderr(self) -> str:
        if self._stderr is None or self._stderr.closed:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def close(self) -> Path:
        """Pad to the audio's length, finish encoding and rename the file into place."""
        if self._process is None or self._last is None:
            raise ValueError(f"{self.path}: no frames were written; nothing to encode")
        if self._max_frames is not None and self.frames_written < self._max_frames:
            missing = self._max_frames - self.frames_written
            height, width = self._last.shape[:2]
            last = np.pad(self._last, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
            for start in range(0, missing, 64):
                count = min(64, missing - start)
                self._send(np.ascontiguousarray(np.broadcast_to(last, (count, *last.shape))))
                self.frames_written += count
        assert self._process.stdin is not None and self._temp is not None
        with contextlib.suppress(BrokenPipeError):
            self._process.stdin.close()
        if self._process.wait() != 0:
            raise _output_failed(self.path, self._read_stderr())
        try:
            os.replace(self._temp, self.path)
        except OSError as exc:
            raise _output_failed(self.path, f"{exc.strerror or exc}") from exc
        self._cleanup()
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg and delete the temp files; the target path is left untouched."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            if self._process.stdin is not None:
                with contextlib.suppress(OSError):
                    self._process.stdin.close()
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._temp_audio is not None:
            self._temp_audio.unlink(missing_ok=True)
        if self._stderr is not None and not self._stderr.closed:
            self._stderr.close()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
            return
        try:
            self.close()
        except BaseException:
            self.abort()
            raise


def write_video(
    path: str | os.PathLike[str],
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float = VIDEO_FPS,
    audio: np.ndarray | str | os.PathLike[str] | None = None,
    sample_rate: int = SAMPLE_RATE,
    metadata: dict[str, str] | None = None,
    crf: int = 18,
) -> Path:
    """Write ``frames`` ((T, H, W, 3) uint8 array, or an iterable of chunks) with :class:`VideoWriter`."""
    chunks = [frames] if isinstance(frames, np.ndarray) else frames
    with VideoWriter(path, fps, audio=audio, sample_rate=sample_rate, metadata=metadata, crf=crf) as writer:
        for chunk in chunks:
            writer.write(chunk)
    return Path(path)
