"""Encoding through ffmpeg pipes: :func:`write_audio` (wav, m4a, mp3, flac) and :class:`VideoWriter` /
:func:`write_video` (H.264 yuv420p + AAC mp4), each written to a temp file beside the target and renamed
into place; a failed or interrupted write leaves no partial file.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO

import numpy as np

from cemnet_core.contracts import SAMPLE_RATE, VIDEO_FPS
from cemnet_core.data.ffmpeg_messages import disk_full, ffmpeg_reason
from cemnet_core.data.media.decode import iter_audio
from cemnet_core.data.media.probe import _check_input, ffmpeg_command, probe
from cemnet_core.errors import InputError, MediaError, OutputError
from cemnet_core.fileio import temp_beside

AUDIO_FORMATS = {".wav": "wav", ".m4a": "mp4", ".mp3": "mp3", ".flac": "flac"}
_AUDIO_CODECS = {".wav": "pcm_s16le", ".m4a": "aac", ".mp3": "libmp3lame", ".flac": "flac"}
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow")  # fmt: skip


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
    command = ffmpeg_command(
        "-y", "-f", "f32le", "-ar", str(sample_rate), "-ac", "1", "-i", "-", "-c:a", codec
    )
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
        if preset not in X264_PRESETS:
            raise ValueError(f"unknown x264 preset {preset!r}; use one of {', '.join(X264_PRESETS)}")
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
        command = ffmpeg_command(
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
        )
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
    preset: str = "medium",
) -> Path:
    """Write ``frames`` ((T, H, W, 3) uint8 array, or an iterable of chunks) with :class:`VideoWriter`."""
    chunks = [frames] if isinstance(frames, np.ndarray) else frames
    with VideoWriter(path, fps, audio, sample_rate, metadata, crf, preset) as writer:
        for chunk in chunks:
            writer.write(chunk)
    return Path(path)
