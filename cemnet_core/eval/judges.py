"""The judges of Table II (Sec. IV-D): fixed networks that score generated frames and are not part of CEM-Net.

Two families, with the same small interfaces (:class:`EmotionJudge`, :class:`IdentityJudge`):

Real faces (pretrained, never trained here):
    - :class:`FERJudge`: the untouched FER2013 mini-Xception (``load_fer_classifier``), 7 classes; MEAD's
      8 emotions are mapped with :data:`cemnet_core.contracts.MEAD_TO_FER` (contempt -> disgust).
      Stands in for Deepface's emotion model.
    - :class:`DlibIdentityJudge`: dlib's 128-d face recognition ResNet (in place of ArcFace).
    - :class:`MediaPipeMouthJudge`: MediaPipe Face Landmarker (VIDEO mode) -> the 57 ``MOUTH`` points, run
      on generated and ground-truth frames alike, so M-LMD compares the same detector on both.
    - :class:`LipSyncJudge`: SyncNet v2 (LSE-C / LSE-D) from a ``syncnet`` release folder (the converted
      ``syncnet_v2.model`` or a lip-sync expert trained on the data); it records which one.

Procedural corpus (``cemnet synth``): the pretrained judges were made for photographs, so on drawn faces
they measure little. Instead :func:`train_corpus_judge` trains, once per corpus, a small CNN
(:class:`JudgeNet`) on the corpus's own ground-truth frames: on the emotion labels (expression judge,
MEAD's 8 classes) and on the speaker labels (identity judge; embedding = the penultimate layer). CEM-Net
never sees these networks. They are cached as release folders (kind ``eval_judge``) under
``<data>/judges/`` and retrained when the corpus manifest changes. M-LMD on the corpus compares the
predicted mouth with the true landmarks stored in the clip files (no detector at all).

Shapes: ``T`` frames, ``E`` classes, ``D`` embedding width; frames are (T, H, W, 3) RGB uint8.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cemnet_core.configs import config_from_dict, config_to_dict
from cemnet_core.contracts import EMOTIONS, FER_CLASSES, MOUTH
from cemnet_core.data.clips import load_clip
from cemnet_core.data.images import to_images
from cemnet_core.data.manifest import MANIFEST_NAME, read_manifest
from cemnet_core.data.sync_dataset import mouth_region
from cemnet_core.errors import ConfigError, DataError, WeightsError
from cemnet_core.eval.lipsync import SyncScores, evaluate_sync
from cemnet_core.eval.metrics import fer_index
from cemnet_core.models.image_emotion import to_fer_input
from cemnet_core.models.syncnet import SyncNet
from cemnet_core.pretrained import load_fer_classifier, load_syncnet
from cemnet_core.release import load_model, save_release

JUDGE_KIND = "eval_judge"
JUDGES_FOLDER = "judges"
TARGETS = ("emotion", "speaker")


class EmotionJudge(Protocol):
    """Scores the expression of face crops."""

    name: str
    classes: tuple[str, ...]

    def target_index(self, mead_emotion: str) -> int:
        """Class index that counts as correct for frames driven by audio of ``mead_emotion``."""

    def logits(self, frames: np.ndarray) -> np.ndarray:
        """frames (T, H, W, 3) uint8 RGB face crops -> (T, E) class scores."""


class IdentityJudge(Protocol):
    """Identity embeddings of face crops."""

    name: str

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """frames (T, H, W, 3) uint8 RGB face crops -> (T, D) embeddings."""


def _to_tensor(frames: np.ndarray, size: int | None = None) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, size, size) float in [0, 1]."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) RGB, got {frames.shape}")
    images = to_images(frames)
    if size is not None and images.shape[-2:] != (size, size):
        images = F.interpolate(
            images, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )  # (T, 3, size, size)
    return images


# --------------------------------------------------------------------------- pretrained judges (real faces)


class FERJudge:
    """EA judge on real faces: the frozen, untouched FER2013 mini-Xception (7 classes)."""

    name = "fer2013.mini_xception"
    classes = FER_CLASSES

    def __init__(self, source: str | os.PathLike[str] | None = None, batch_size: int = 64) -> None:
        self.model = load_fer_classifier(source)
        self.batch_size = batch_size

    def target_index(self, mead_emotion: str) -> int:
        """FER class of a MEAD emotion (contempt -> disgust, see ``contracts.MEAD_TO_FER``)."""
        return fer_index(mead_emotion)

    @torch.no_grad()
    def logits(self, frames: np.ndarray) -> np.ndarray:
        """frames (T, H, W, 3) uint8 face crops -> (T, 7) FER logits (grey, 64x64, as FER2013 was trained)."""
        images = _to_tensor(frames)
        outputs = [
            self.model(to_fer_input(images[i : i + self.batch_size], self.model.config.input_size))
            for i in range(0, len(images), self.batch_size)
        ]
        return torch.cat(outputs).numpy() if outputs else np.zeros((0, len(FER_CLASSES)), np.float32)


class DlibIdentityJudge:
    """CSIM judge on real faces: dlib's face recognition ResNet (128-d, L2-normalised)."""

    name = "dlib.face_recognition_resnet_v1"

    def __init__(
        self,
        recognition_model: str | os.PathLike[str] | None = None,
        shape_predictor: str | os.PathLike[str] | None = None,
    ) -> None:
        from cemnet_core.identity import IdentityEncoder

        self.encoder = IdentityEncoder(recognition_model, shape_predictor)

    def embed(self, frames: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        """frames (T, H, W, 3) uint8 -> (T, 128); ``landmarks`` (T, 478, 2) px place the face, else dlib's
        detector finds it (raises ``NoFaceError`` where it cannot)."""
        return self.encoder.embed_batch(np.asarray(frames), landmarks=landmarks)


class MediaPipeMouthJudge:
    """M-LMD landmarks on real faces: MediaPipe (VIDEO mode) on each clip, the 57 ``MOUTH`` points.

    The same detector runs on generated and ground-truth frames; frames where it finds no face give NaN
    (left out by :func:`~cemnet_core.eval.metrics.landmark_distance`).
    """

    name = "mediapipe.face_landmarker"

    def __init__(self, model_path: str | os.PathLike[str] | None = None) -> None:
        from cemnet_core.data.faces import landmarker_path

        self.model_path = landmarker_path(model_path)

    def mouth(self, frames: np.ndarray) -> np.ndarray:
        """frames (T, H, W, 3) uint8 of one clip -> (T, 57, 2) mouth landmarks divided by the frame width."""
        from cemnet_core.data.tracking import FaceTracker

        frames = np.asarray(frames)
        with FaceTracker(self.model_path) as tracker:
            track = tracker.track(np.ascontiguousarray(frames))
        return track.landmarks[:, list(MOUTH)] / float(frames.shape[2])  # (T, 57, 2)


@dataclass(frozen=True)
class LipSyncJudge:
    """LipSync judge: SyncNet v2 scoring as syncnet_python does; ``source`` says which weights were used."""

    model: SyncNet
    source: str

    def scores(self, frames: np.ndarray, audio: np.ndarray) -> SyncScores:
        """frames (T, H, W, 3) uint8 face crops at 25 fps, audio (samples,) float in [-1, 1] at 16 kHz.

        A lip-sync expert of ``cemnet train syncnet`` (``input_region == "mouth"``) sees the lower half of the
        crops, as it was trained; syncnet_python's weights see the whole face crop.
        """
        if self.model.config.input_region == "mouth":
            frames = mouth_region(np.asarray(frames))
        video = torch.from_numpy(np.ascontiguousarray(frames))
        return evaluate_sync(self.model, video, torch.from_numpy(np.asarray(audio, dtype=np.float32)))


def load_lipsync_judge(folder: str | os.PathLike[str], source: str | None = None) -> LipSyncJudge:
    """A :class:`LipSyncJudge` from a ``syncnet`` release folder (converted syncnet_v2 or a trained expert).

    source: what the weights are (e.g. "syncnet_python v2", "expert trained on <data>"), reported beside
    the LSE columns; default: the folder's path.
    """
    folder = Path(folder)
    return LipSyncJudge(model=load_syncnet(folder), source=source or f"SyncNet release {folder}")


# --------------------------------------------------------------------------- corpus judges


@dataclass(frozen=True)
class JudgeNetConfig:
    """A small CNN judge for the procedural corpus.

    target: "emotion" (classes = MEAD's 8) or "speaker" (classes = the corpus's speakers).
    channels: widths of the stride-2 conv layers; embedding_dim: width D of the penultimate layer.
    corpus_sha256: sha256 of the manifest it was trained on (a changed corpus retrains the judge).
    val_accuracy: accuracy on the held-out clips after training (-1: not measured).
    """

    target: str = "emotion"
    classes: tuple[str, ...] = EMOTIONS
    input_size: int = 64
    channels: tuple[int, ...] = (8, 16, 32, 32)
    embedding_dim: int = 32
    corpus_sha256: str = ""
    val_accuracy: float = -1.0

    def __post_init__(self) -> None:
        if self.target not in TARGETS or len(self.classes) < 2 or not self.channels:
            raise ConfigError(
                f"JudgeNetConfig needs target in {TARGETS}, at least 2 classes and one conv layer; got {self}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict of the fields (:func:`~cemnet_core.configs.config_to_dict`)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JudgeNetConfig:
        """Inverse of :meth:`to_dict`, type-checked; ``ConfigError`` naming unknown keys."""
        return config_from_dict(cls, data)


class JudgeNet(nn.Module):
    """Conv (stride 2) x len(channels) -> global average pool -> Linear D -> ReLU -> Linear E."""

    def __init__(self, config: JudgeNetConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = 3
        for channels in config.channels:
            layers += [nn.Conv2d(width, channels, 3, stride=2, padding=1), nn.BatchNorm2d(channels)]
            layers.append(nn.ReLU())
            width = channels
        self.features = nn.Sequential(*layers)
        self.embedding = nn.Linear(width, config.embedding_dim)
        self.classifier = nn.Linear(config.embedding_dim, len(config.classes))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (B, 3, S, S) in [0, 1] -> (embedding (B, D), logits (B, E))."""
        size = self.config.input_size
        if images.ndim != 4 or images.shape[1:] != (3, size, size):
            raise ValueError(f"images must be (B, 3, {size}, {size}) in [0, 1], got {tuple(images.shape)}")
        pooled = self.features(images * 2.0 - 1.0).mean(dim=(2, 3))  # (B, C)
        embedding = F.relu(self.embedding(pooled))  # (B, D)
        return embedding, self.classifier(embedding)


def manifest_sha256(data: str | os.PathLike[str]) -> str:
    """sha256 of ``<data>/manifest.jsonl`` (identifies the corpus a judge was trained on)."""
    path = Path(data) / MANIFEST_NAME
    if not path.is_file():
        raise DataError(f"no {MANIFEST_NAME} in {data}; point --data at a processed corpus")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _judge_frames(
    data: Path, target: str, frames_per_clip: int, size: int
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, tuple[str, ...]]:
    """Ground-truth frames (M, 3, size, size), labels (M,), clip ids (M,) and the class names."""
    records = read_manifest(data)
    if target == "emotion":
        classes = EMOTIONS
        if any(not r.emotion for r in records):
            raise DataError(f"{data} has clips without an emotion label; the expression judge needs labels")
    else:
        classes = tuple(sorted({r.speaker for r in records}))
    if len(set(r.emotion if target == "emotion" else r.speaker for r in records)) < 2:
        raise DataError(f"{data} has fewer than 2 distinct {target} labels; a judge needs at least two")
    images, labels, clip_ids = [], [], []
    for clip_id, record in enumerate(records):
        clip = load_clip(record.path, keys=("frames", "valid"))
        usable = np.flatnonzero(clip.valid)
        if usable.size == 0:
            continue
        spread = np.linspace(0, usable.size - 1, min(frames_per_clip, usable.size)).round().astype(int)
        chosen = usable[spread]
        images.append(_to_tensor(clip.frames[chosen], size))
        label = classes.index(record.emotion if target == "emotion" else record.speaker)
        labels += [label] * len(chosen)
        clip_ids += [clip_id] * len(chosen)
    if not images:
        raise DataError(f"no valid frames in {data}; cannot train an evaluation judge")
    return torch.cat(images), torch.tensor(labels), np.asarray(clip_ids), classes


def _augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift by up to 4 px, jitter brightness/contrast and sometimes blur: generated frames are not GT."""
    B = images.shape[0]
    shift = torch.randint(-4, 5, (2,), generator=generator).tolist()
    images = torch.roll(images, shifts=(shift[0], shift[1]), dims=(2, 3))
    gain = 1.0 + 0.2 * (torch.rand(B, 1, 1, 1, generator=generator) - 0.5)
    bias = 0.1 * (torch.rand(B, 1, 1, 1, generator=generator) - 0.5)
    images = (images * gain + bias).clamp(0.0, 1.0)
    if torch.rand(1, generator=generator).item() < 0.5:
        images = F.avg_pool2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return images


def train_corpus_judge(
    data: str | os.PathLike[str],
    target: str,
    out: str | os.PathLike[str],
    steps: int = 1500,
    batch_size: int = 32,
    frames_per_clip: int = 12,
    seed: int = 0,
    config: JudgeNetConfig | None = None,
) -> Path:
    """Train a :class:`JudgeNet` on a processed corpus's ground-truth frames and save a release folder.

    target: "emotion" (labels: MEAD emotions) or "speaker". One clip in five (every fifth clip id) is held
    out; the accuracy on its frames is stored as ``val_accuracy`` in the release config (a property of the
    judge, reported with the results). Returns ``out``.

    Adam at 1e-3 with a cosine schedule over 1500 steps (about 12 s on one CPU thread). Measured on the
    demo's corpus (56 clips, 4 emotions at level 1): at 1e-2 the net collapsed to one or two classes
    (held-out emotion accuracy 0.27 after 300 or 1500 steps); at 1e-3 it reached 0.29 after 300 steps and
    0.78 after 1500.
    """
    if target not in TARGETS:
        raise ConfigError(f"judge target must be one of {TARGETS}, got {target!r}")
    data = Path(data)
    base = config or JudgeNetConfig(target=target)
    images, labels, clip_ids, classes = _judge_frames(data, target, frames_per_clip, base.input_size)
    base = JudgeNetConfig.from_dict({**base.to_dict(), "target": target, "classes": list(classes)})
    held_out = clip_ids % 5 == 4
    if held_out.all() or not held_out.any():
        held_out = np.zeros_like(held_out)
    train_x, train_y = images[~held_out], labels[~held_out]
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = JudgeNet(base)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(steps, 1))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a net this small runs fastest on one thread (and does not fight other work)
    try:
        model.train()
        for _ in range(steps):
            batch = torch.randint(0, len(train_x), (min(batch_size, len(train_x)),), generator=generator)
            _, logits = model(_augment(train_x[batch], generator))
            loss = F.cross_entropy(logits, train_y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    accuracy = -1.0
    if held_out.any():
        with torch.no_grad():
            _, logits = model(images[held_out])
        accuracy = float((logits.argmax(1) == labels[held_out]).float().mean())
    final = JudgeNetConfig.from_dict(
        {**base.to_dict(), "corpus_sha256": manifest_sha256(data), "val_accuracy": accuracy}
    )
    model.config = final
    return save_release(out, model, JUDGE_KIND, final)


def load_corpus_judge(folder: str | os.PathLike[str]) -> JudgeNet:
    """A :class:`JudgeNet` from a release folder written by :func:`train_corpus_judge` (eval mode, frozen)."""
    return load_model(folder, JUDGE_KIND, build=lambda config: JudgeNet(JudgeNetConfig.from_dict(config)))


class CorpusEmotionJudge:
    """EA judge on the procedural corpus: a :class:`JudgeNet` trained on its emotion labels (8 classes)."""

    def __init__(self, model: JudgeNet) -> None:
        if model.config.target != "emotion":
            raise WeightsError(f"this judge was trained on {model.config.target!r}, not emotion; retrain it")
        self.model = model
        self.classes = model.config.classes
        self.name = f"corpus expression CNN (held-out accuracy {model.config.val_accuracy:.2f})"

    def target_index(self, mead_emotion: str) -> int:
        """Index of the MEAD emotion itself (no mapping: the judge knows all 8)."""
        if mead_emotion not in self.classes:
            raise ValueError(f"unknown emotion {mead_emotion!r}; expected one of {self.classes}")
        return self.classes.index(mead_emotion)

    @torch.no_grad()
    def logits(self, frames: np.ndarray) -> np.ndarray:
        """frames (T, H, W, 3) uint8 -> (T, 8) logits."""
        return self.model(_to_tensor(frames, self.model.config.input_size))[1].numpy()


class CorpusIdentityJudge:
    """CSIM judge on the procedural corpus: penultimate layer of a speaker-classifier :class:`JudgeNet`."""

    def __init__(self, model: JudgeNet) -> None:
        if model.config.target != "speaker":
            raise WeightsError(f"this judge was trained on {model.config.target!r}, not speaker; retrain it")
        self.model = model
        self.name = f"corpus speaker CNN (held-out accuracy {model.config.val_accuracy:.2f})"

    @torch.no_grad()
    def embed(self, frames: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        """frames (T, H, W, 3) uint8 -> (T, D) embeddings (``landmarks`` is ignored: frames are crops)."""
        return self.model(_to_tensor(frames, self.model.config.input_size))[0].numpy()


def corpus_judges(
    data: str | os.PathLike[str],
    cache: str | os.PathLike[str] | None = None,
    steps: int = 1500,
    seed: int = 0,
) -> tuple[CorpusEmotionJudge, CorpusIdentityJudge]:
    """The corpus's expression and identity judges, trained on first use and cached.

    cache: folder for the two release folders (default ``<data>/judges``); a cached judge whose
    ``corpus_sha256`` differs from the current manifest is retrained.
    """
    folder = Path(cache) if cache is not None else Path(data) / JUDGES_FOLDER
    current = manifest_sha256(data)
    models = {}
    for target in TARGETS:
        release = folder / target
        model = None
        if release.is_dir():
            try:
                model = load_corpus_judge(release)
            except (WeightsError, ConfigError):
                model = None
        if model is None or model.config.corpus_sha256 != current:
            train_corpus_judge(data, target, release, steps=steps, seed=seed)
            model = load_corpus_judge(release)
        models[target] = model
    return CorpusEmotionJudge(models["emotion"]), CorpusIdentityJudge(models["speaker"])
