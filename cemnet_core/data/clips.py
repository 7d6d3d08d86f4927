"""The processed clip format (DESIGN section 4): one safetensors file per clip.

Tensors::

    frames     uint8   (T, 128, 128, 3)  RGB face crops at 25 fps
    landmarks  float32 (T, 478, 2)       crop-normalised [0, 1] (x, y)
    boxes      float32 (T, 4)            crop box (x0, y0, x1, y1) in source-frame pixels, square
    valid      bool    (T,)              False where no face was found (the frame is kept, never dropped)
    mel        float32 (S, 80)           log-mel, 80 frames/s, normalised to [-4, 4] (see ``audio.py``)
    audio      int16   (samples,)        16 kHz mono

plus a flat ``str -> str`` metadata dict (dataset, speaker, emotion, level, sentence, source, source_sha256,
fps, sample_rate, pipeline_version, ...). Files are written to a temporary name and renamed into place, so a
killed writer never leaves a corrupt clip; :func:`load_clip` reads only the tensors asked for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from cemnet_core.errors import DataError, OutputError
from cemnet_core.fileio import default_file_mode, temp_beside, write_error

PIPELINE_VERSION = "2"  # 2: landmarks from the LiteRT tracker (data/face_mesh.py); 1: MediaPipe graph
CLIP_SUFFIX = ".clip.safetensors"
_DTYPES = {
    "frames": np.uint8,
    "landmarks": np.float32,
    "boxes": np.float32,
    "valid": np.bool_,
    "mel": np.float32,
    "audio": np.int16,
}


@dataclass
class Clip:
    """One processed clip; see the module docstring for shapes."""

    frames: np.ndarray
    landmarks: np.ndarray
    boxes: np.ndarray
    valid: np.ndarray
    mel: np.ndarray
    audio: np.ndarray
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def validate(self) -> None:
        """Raise ``ValueError`` if shapes or dtypes break the contract."""
        T = self.num_frames
        expected = {
            "frames": (T, 128, 128, 3),
            "landmarks": (T, 478, 2),
            "boxes": (T, 4),
            "valid": (T,),
        }
        for name, shape in expected.items():
            array = getattr(self, name)
            if tuple(array.shape) != shape:
                raise ValueError(f"clip.{name}: expected shape {shape}, got {tuple(array.shape)}")
        if self.mel.ndim != 2 or self.mel.shape[1] != 80:
            raise ValueError(f"clip.mel: expected shape (S, 80), got {tuple(self.mel.shape)}")
        if self.audio.ndim != 1:
            raise ValueError(f"clip.audio: expected shape (samples,), got {tuple(self.audio.shape)}")
        for name, dtype in _DTYPES.items():
            actual = getattr(self, name).dtype
            if actual != dtype:
                raise ValueError(f"clip.{name}: expected dtype {np.dtype(dtype)}, got {actual}")


def save_clip(path: str | os.PathLike[str], clip: Clip) -> Path:
    """Write ``clip`` atomically to ``path`` (temp file in the same folder + rename)."""
    clip.validate()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {str(k): str(v) for k, v in clip.meta.items()}
    meta.setdefault("pipeline_version", PIPELINE_VERSION)
    tensors = {name: np.ascontiguousarray(getattr(clip, name)) for name in _DTYPES}
    try:
        tmp = temp_beside(path)
    except OSError as exc:
        raise OutputError(
            f"cannot write clip {path}: {exc.strerror or exc}; choose a writable folder"
        ) from None
    try:
        save_file(tensors, tmp, metadata=meta)
        os.chmod(tmp, default_file_mode())  # safetensors re-creates the file as 0600
        os.replace(tmp, path)
    except Exception as exc:  # OSError, or safetensors' own error for a full disk
        error = write_error(path, exc, "clip ")  # before the partial file frees its space
        Path(tmp).unlink(missing_ok=True)
        raise error from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_clip(path: str | os.PathLike[str], keys: tuple[str, ...] | None = None) -> Clip:
    """Read a clip file; ``keys`` limits which tensors are read (others come back as empty arrays)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="numpy") as handle:
            meta = dict(handle.metadata() or {})
            wanted = set(keys) if keys is not None else set(_DTYPES)
            arrays = {
                name: handle.get_tensor(name) if name in wanted else np.zeros((0,), dtype=dtype)
                for name, dtype in _DTYPES.items()
            }
    except FileNotFoundError as exc:
        raise DataError(f"clip file not found: {path}") from exc
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise DataError(f"cannot read clip {path}: {exc}; delete it and rerun preprocessing") from exc
    return Clip(meta=meta, **arrays)


def read_clip_meta(path: str | os.PathLike[str]) -> dict[str, str]:
    """Only the metadata dict of a clip file (cheap: reads the header)."""
    try:
        with safe_open(str(path), framework="numpy") as handle:
            return dict(handle.metadata() or {})
    except Exception as exc:
        raise DataError(f"cannot read clip {path}: {exc}") from exc
