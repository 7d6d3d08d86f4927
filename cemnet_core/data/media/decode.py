"""Decoding through ffmpeg pipes, memory flat in the input's length: video frames as ``(n, H, W, 3)`` uint8
RGB chunks at 25 fps, audio as ``(n,)`` float32 mono chunks at 16 kHz; still images with Pillow.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from cemnet_core.contracts import SAMPLE_RATE, VIDEO_FPS
from cemnet_core.data.ffmpeg_messages import ffmpeg_reason
from cemnet_core.data.media.probe import _check_input, ffmpeg_command, probe
from cemnet_core.errors import MediaError


class _Decoder:
    """An ffmpeg child process writing raw samples to its stdout; stderr goes to a temp file (no deadlock)."""

    def __init__(self, path: Path, args: list[str]) -> None:
        self.path = path
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in finish/close)
        command = ffmpeg_command("-i", str(path), *args, "-")
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
    # YUV -> RGB with exact rounding and full chroma: swscale's fast default gave frames about 1.2 levels
    # darker than what was encoded (a photo through VideoWriter: mean red 75.3 -> 74.15; 75.12 with these).
    # Decoding costs more (256 px: 1466 against 2654 frames/s; 512x910: 145 against 246), far below tracking.
    filters = ([f"fps={fps}"] if fps is not None else []) + [
        f"scale={width}:{height}:flags=bicubic+accurate_rnd+full_chroma_int"
    ]
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
