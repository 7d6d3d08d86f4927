"""One-off: extract MediaPipe's canonical face mesh into ``cemnet_core/data/canonical_face.npy``.

The Face Landmarker bundle (``face_landmarker.task``, Apache-2.0) is a zip holding
``geometry_pipeline_metadata_landmarks.binarypb``: a ``GeometryPipelineMetadata`` protobuf whose field 1
is the canonical ``Mesh3d`` (field 3: packed ``vertex_buffer`` floats, 5 per vertex: x, y, z, u, v).
This script reads the protobuf wire format directly (varints and length-delimited fields only), so no
protobuf schema is needed.

Usage: ``python scripts/extract_canonical_face.py /work/shared/assets/face_landmarker.task``
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np

MEMBER = "geometry_pipeline_metadata_landmarks.binarypb"
OUTPUT = Path(__file__).resolve().parents[1] / "cemnet_core" / "data" / "canonical_face.npy"


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(data: bytes) -> dict[int, list[bytes | int]]:
    """Split one protobuf message into ``{field number: [values]}`` (bytes for length-delimited fields)."""
    fields: dict[int, list[bytes | int]] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} for field {number}")
        fields.setdefault(number, []).append(value)
    return fields


def extract(task_path: Path) -> np.ndarray:
    """Return the canonical mesh vertices ``(468, 3)`` float32 (x right, y up, z towards the camera; cm)."""
    with zipfile.ZipFile(task_path) as bundle:
        metadata = bundle.read(MEMBER)
    mesh = _fields(metadata)[1][0]
    assert isinstance(mesh, bytes)
    chunks = _fields(mesh)[3]
    arrays = [np.frombuffer(chunk, dtype="<f4") for chunk in chunks if isinstance(chunk, bytes)]
    buffer = np.concatenate(arrays)
    vertices = buffer.reshape(-1, 5)[:, :3]
    if vertices.shape != (468, 3):
        raise ValueError(f"expected 468 canonical vertices, got {vertices.shape}")
    return vertices.astype(np.float32)


if __name__ == "__main__":
    vertices = extract(Path(sys.argv[1]))
    np.save(OUTPUT, vertices)
    print(f"wrote {OUTPUT} {vertices.shape}, x {vertices[:, 0].min():.2f}..{vertices[:, 0].max():.2f}")
