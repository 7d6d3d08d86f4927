"""A tiny processed corpus (clip files + manifest.jsonl) for stage tests, made in well under a second.

Each clip's mouth opening follows a per-clip rhythm that is also written into the mel's energy, so the
audio predicts the mouth (what Audio2Mouth must learn); speakers differ in face shape, emotions in
the mouth corners and a brow patch of the image. Four speakers give a speaker-held-out split of 2/1/1.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cemnet_core.contracts import JAW, LIPS
from cemnet_core.data.clips import Clip, save_clip


def _clip(speaker: int, emotion: int, sentence: int, frames: int, inner_lips: bool = False) -> Clip:
    rng = np.random.default_rng(100 * speaker + 10 * emotion + sentence)
    face = np.random.default_rng(speaker).uniform(0.3, 0.7, size=(478, 2))
    if inner_lips:  # inner lips 13/14 and corners 61/291 where mouth_opening reads the opening
        face[[13, 14, 61, 291]] = [[0.5, 0.48], [0.5, 0.52], [0.38, 0.5], [0.62, 0.5]]
    t = np.arange(frames)
    opening = 0.5 + 0.5 * np.sin(2 * np.pi * t / (6 + 2 * sentence) + speaker)  # (T,) in [0, 1]
    landmarks = np.repeat(face[None], frames, axis=0)  # (T, 478, 2)
    lips = list(LIPS)
    landmarks[:, lips, 1] += 0.05 * opening[:, None] * np.sign(landmarks[:, lips, 1] - 0.5)
    landmarks[:, lips, 0] *= 1.0 + 0.05 * emotion
    landmarks[:, list(JAW), 1] += 0.03 * opening[:, None]
    mel_frames = int(frames * 3.2)
    energy = np.interp(np.arange(mel_frames) / 3.2, t, opening)  # (S,)
    mel = (rng.normal(0, 0.3, size=(mel_frames, 80)) + 6 * energy[:, None] - 3).clip(-4, 4)
    images = np.full((frames, 128, 128, 3), 40 * speaker, dtype=np.uint8)
    images[:, 80:100, 40:90, 0] = (255 * opening).astype(np.uint8)[:, None, None]
    images[:, 20:50, 20:108, 1] = 60 + 150 * emotion  # brows: what an image emotion classifier can see
    return Clip(
        frames=images,
        landmarks=landmarks.astype(np.float32),
        boxes=np.tile([0, 0, 128, 128], (frames, 1)).astype(np.float32),
        valid=np.ones(frames, dtype=bool),
        mel=mel.astype(np.float32),
        audio=np.zeros(frames * 640, dtype=np.int16),
        meta={"dataset": "test"},
    )


def make_corpus(root: Path, speakers: int = 4, emotions: tuple[str, ...] = ("neutral", "happy"),
                sentences: int = 2, frames: int = 30, inner_lips: bool = False) -> Path:  # fmt: skip
    """Write ``speakers x emotions x sentences`` clips and their manifest under ``root``.

    ``inner_lips`` puts the inner-lip and corner points in place, so the mouth opening measure of
    :func:`cemnet_core.data.landmarks.mouth_opening` follows the clip's rhythm (random points otherwise).
    """
    lines = []
    for speaker in range(speakers):
        for emotion_number, emotion in enumerate(emotions):
            for sentence in range(sentences):
                clip = _clip(speaker, emotion_number, sentence, frames, inner_lips)
                name = f"S{speaker:03d}"
                relative = f"{name}/{emotion}_{sentence:03d}.clip.safetensors"
                clip.meta.update(speaker=name, emotion=emotion, level="1", sentence=f"{sentence:03d}")
                save_clip(root / relative, clip)
                lines.append({"path": relative, "dataset": "test", "speaker": name, "emotion": emotion,
                              "level": "1", "sentence": f"{sentence:03d}", "num_frames": frames,
                              "source_sha256": f"{len(lines):064d}", "face_ratio": 1.0})  # fmt: skip
    (root / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root
