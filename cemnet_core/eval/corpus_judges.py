"""The judges of the procedural corpus (Sec. IV-D's EA and CSIM on ``cemnet synth`` faces): small CNNs
(:class:`JudgeNet`) trained once per corpus on its own ground-truth frames, measured on held-out clips
before they judge, and never trained on a clip of the test split.

The pretrained judges were made for photographs, so on drawn faces they measure little. Instead
:func:`train_corpus_judge` trains a :class:`JudgeNet` on the emotion labels (expression judge, MEAD's 8
classes) or on the speaker labels (identity judge; embedding = the penultimate layer). CEM-Net never sees
these networks. They are cached as release folders (kind ``eval_judge``) under ``<data>/judges/`` and
retrained when the corpus manifest, or the split rule they were trained under, changes.

Which clips (the same speaker-held-out splits as training and evaluation, ``manifest.split_records``):

- emotion judges train on the ``train`` split and report their accuracy on the ``val`` split (speakers
  they never saw) when it has clips, else on one training clip in five held out;
- the identity judge trains on ``train`` + ``val`` (a speaker classifier can only be measured on speakers
  it knows) and reports its accuracy on one clip in five of those, held out;
- no judge ever trains on ``test`` (the evaluation's targets): asking for it is a ``DataError``.

``region="lower"`` trains the expression judge on the lower half of the crops only (rows ``S // 2 ..``,
what the renderer generates; every method is given the true upper face), for EA on the lower face
(``ea_lower``); its held-out accuracy is reported like the others'.

Shapes: ``T`` frames, ``E`` classes, ``D`` embedding width; frames are (T, H, W, 3) RGB uint8.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cemnet_core.configs import config_from_dict, config_to_dict
from cemnet_core.contracts import EMOTIONS
from cemnet_core.data.clips import load_clip
from cemnet_core.data.images import to_images
from cemnet_core.data.manifest import MANIFEST_NAME, ClipRecord, read_manifest, split_records
from cemnet_core.data.sync_dataset import mouth_region
from cemnet_core.errors import ConfigError, DataError, WeightsError
from cemnet_core.release import load_model, save_release

JUDGE_KIND = "eval_judge"
JUDGES_FOLDER = "judges"
TARGETS = ("emotion", "speaker")
REGIONS = ("face", "lower")
TRAIN_SPLITS = {"emotion": ("train",), "speaker": ("train", "val")}  # module docstring


def _to_tensor(frames: np.ndarray, size: int | None = None, region: str = "face") -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, size, size) float in [0, 1]; ``region="lower"`` keeps rows ``H // 2 ..``
    (stretched back to a square)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) RGB, got {frames.shape}")
    if region == "lower":
        frames = mouth_region(frames)
    images = to_images(frames)
    if size is not None and images.shape[-2:] != (size, size):
        images = F.interpolate(
            images, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )  # (T, 3, size, size)
    return images


@dataclass(frozen=True)
class JudgeNetConfig:
    """A small CNN judge for the procedural corpus.

    target: "emotion" (classes = MEAD's 8) or "speaker" (classes = the training clips' speakers).
    region: "face" (the whole crop) or "lower" (its lower half). channels: widths of the stride-2 conv
    layers; embedding_dim: width D of the penultimate layer. corpus_sha256: sha256 of the manifest it was
    trained on (a changed corpus retrains the judge). splits: the splits it was trained on (empty: an
    older judge trained on every clip, retrained). val_accuracy: accuracy on the held-out clips after
    training (-1: not measured); held_out: what those clips were ("val split" or "1 in 5 training clips").
    steps: the optimiser steps it was trained for (0: not recorded, an older judge; retrained).
    """

    target: str = "emotion"
    classes: tuple[str, ...] = EMOTIONS
    input_size: int = 64
    channels: tuple[int, ...] = (8, 16, 32, 32)
    embedding_dim: int = 32
    region: str = "face"
    corpus_sha256: str = ""
    splits: tuple[str, ...] = ()
    val_accuracy: float = -1.0
    held_out: str = ""
    steps: int = 0

    def __post_init__(self) -> None:
        if self.target not in TARGETS or len(self.classes) < 2 or not self.channels:
            raise ConfigError(
                f"JudgeNetConfig needs target in {TARGETS}, at least 2 classes and one conv layer; got {self}"
            )
        if self.region not in REGIONS:
            raise ConfigError(f"JudgeNetConfig.region must be one of {REGIONS}, got {self.region!r}")

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


def judge_training_records(data: str | os.PathLike[str], splits: tuple[str, ...]) -> list[ClipRecord]:
    """The clips of ``splits`` (manifest order), which a judge may train on; ``DataError`` for ``test``
    or ``all`` (the evaluation's targets must stay unseen) and for unknown or empty splits."""
    refused = sorted(set(splits) & {"test", "all"})
    if refused or not splits:
        raise DataError(
            f"evaluation judges never train on the test split (asked for {list(splits)}): the test clips "
            "are the evaluation's targets; train on 'train' and/or 'val'"
        )
    records = read_manifest(data)
    chosen = {record.path for split in splits for record in split_records(records, split)}
    return [record for record in records if record.path in chosen]


def _val_records(data: Path) -> list[ClipRecord]:
    """The ``val`` split's clips, or ``[]`` when the corpus has none."""
    try:
        return split_records(read_manifest(data), "val")
    except DataError:
        return []


def _judge_frames(
    records: list[ClipRecord], target: str, frames_per_clip: int, size: int, region: str,
    classes: tuple[str, ...],
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:  # fmt: skip
    """Ground-truth frames (M, 3, size, size), labels (M,) and clip ids (M,) of ``records``."""
    images, labels, clip_ids = [], [], []
    for clip_id, record in enumerate(records):
        clip = load_clip(record.path, keys=("frames", "valid"))
        usable = np.flatnonzero(clip.valid)
        if usable.size == 0:
            continue
        spread = np.linspace(0, usable.size - 1, min(frames_per_clip, usable.size)).round().astype(int)
        chosen = usable[spread]
        images.append(_to_tensor(clip.frames[chosen], size, region))
        labels += [classes.index(record.emotion if target == "emotion" else record.speaker)] * len(chosen)
        clip_ids += [clip_id] * len(chosen)
    if not images:
        raise DataError("no valid frames in the judge's clips; cannot train an evaluation judge")
    return torch.cat(images), torch.tensor(labels), np.asarray(clip_ids)


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


def _fit(model: JudgeNet, x: torch.Tensor, y: torch.Tensor, steps: int, batch_size: int, seed: int) -> None:
    """Adam at 1e-3, cosine schedule, augmented batches, on one thread."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(steps, 1))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a net this small runs fastest on one thread (and does not fight other work)
    try:
        model.train()
        for _ in range(steps):
            batch = torch.randint(0, len(x), (min(batch_size, len(x)),), generator=generator)
            _, logits = model(_augment(x[batch], generator))
            loss = F.cross_entropy(logits, y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()


def train_corpus_judge(
    data: str | os.PathLike[str],
    target: str,
    out: str | os.PathLike[str],
    steps: int = 1500,
    batch_size: int = 32,
    frames_per_clip: int = 12,
    seed: int = 0,
    config: JudgeNetConfig | None = None,
    splits: tuple[str, ...] | None = None,
    region: str = "face",
) -> Path:
    """Train a :class:`JudgeNet` on a processed corpus's ground-truth frames and save a release folder.

    target: "emotion" (labels: MEAD emotions) or "speaker". splits: the splits to train on (default
    :data:`TRAIN_SPLITS`; ``test`` or ``all`` raise ``DataError``). The held-out accuracy (module
    docstring) is stored as ``val_accuracy`` in the release config, a property of the judge reported with
    the results. region: "face" or "lower" (the lower half of the crops). Returns ``out``.

    Adam at 1e-3 with a cosine schedule over 1500 steps (about 12 s on one CPU thread). Measured on the
    demo's corpus (56 clips, 4 emotions at level 1, before the judges left the test split out): at 1e-2
    the net collapsed to one or two classes (held-out emotion accuracy 0.27 after 300 or 1500 steps); at
    1e-3 it reached 0.29 after 300 steps and 0.78 after 1500.
    """
    if target not in TARGETS:
        raise ConfigError(f"judge target must be one of {TARGETS}, got {target!r}")
    data = Path(data)
    splits = tuple(splits) if splits is not None else TRAIN_SPLITS[target]
    records = judge_training_records(data, splits)
    if target == "emotion" and any(not r.emotion for r in records):
        raise DataError(f"{data} has clips without an emotion label; the expression judge needs labels")
    labels_of = [r.emotion if target == "emotion" else r.speaker for r in records]
    if len(set(labels_of)) < 2:
        raise DataError(
            f"the {'/'.join(splits)} clips of {data} have fewer than 2 distinct {target} labels; a judge "
            "needs at least two (make a corpus with more speakers or emotions)"
        )
    classes = EMOTIONS if target == "emotion" else tuple(sorted(set(labels_of)))
    base = config or JudgeNetConfig(target=target)
    base = JudgeNetConfig.from_dict(
        {**base.to_dict(), "target": target, "classes": list(classes), "region": region}
    )
    size = base.input_size
    images, labels, clip_ids = _judge_frames(records, target, frames_per_clip, size, region, classes)
    val = _val_records(data) if target == "emotion" and "val" not in splits else []
    if val:
        held_x, held_y, _ = _judge_frames(val, target, frames_per_clip, size, region, classes)
        train_x, train_y, held_out = images, labels, "val split"
    else:
        held = clip_ids % 5 == 4
        if held.all() or not held.any():
            held = np.zeros_like(held)
        train_x, train_y, held_x, held_y = images[~held], labels[~held], images[held], labels[held]
        held_out = "1 in 5 training clips" if held.any() else "none"
    model = JudgeNet(base)
    _fit(model, train_x, train_y, steps, batch_size, seed)
    accuracy = -1.0
    if len(held_x):
        with torch.no_grad():
            _, logits = model(held_x)
        accuracy = float((logits.argmax(1) == held_y).float().mean())
    final = JudgeNetConfig.from_dict({**base.to_dict(), "corpus_sha256": manifest_sha256(data),
                                      "splits": list(splits), "val_accuracy": accuracy,
                                      "held_out": held_out, "steps": steps})  # fmt: skip
    model.config = final
    return save_release(out, model, JUDGE_KIND, final)


def load_corpus_judge(folder: str | os.PathLike[str]) -> JudgeNet:
    """A :class:`JudgeNet` from a release folder written by :func:`train_corpus_judge` (eval mode, frozen)."""
    return load_model(folder, JUDGE_KIND, build=lambda config: JudgeNet(JudgeNetConfig.from_dict(config)))


def _accuracy_note(config: JudgeNetConfig) -> str:
    return f"held-out accuracy {config.val_accuracy:.2f} on {config.held_out or 'held-out clips'}"


class CorpusEmotionJudge:
    """EA judge on the procedural corpus: a :class:`JudgeNet` trained on its emotion labels (8 classes),
    on the whole crop or (``region == "lower"``, for ``ea_lower``) on its lower half."""

    def __init__(self, model: JudgeNet) -> None:
        if model.config.target != "emotion":
            raise WeightsError(f"this judge was trained on {model.config.target!r}, not emotion; retrain it")
        self.model = model
        self.classes = model.config.classes
        where = "lower-face " if model.config.region == "lower" else ""
        self.name = f"corpus {where}expression CNN ({_accuracy_note(model.config)})"

    def target_index(self, mead_emotion: str) -> int:
        """Index of the MEAD emotion itself (no mapping: the judge knows all 8)."""
        if mead_emotion not in self.classes:
            raise ValueError(f"unknown emotion {mead_emotion!r}; expected one of {self.classes}")
        return self.classes.index(mead_emotion)

    @torch.no_grad()
    def logits(self, frames: np.ndarray) -> np.ndarray:
        """frames (T, H, W, 3) uint8 -> (T, 8) logits (of their lower half for a lower-face judge)."""
        config = self.model.config
        return self.model(_to_tensor(frames, config.input_size, config.region))[1].numpy()

    def lower_logits(self, frames: np.ndarray, references: np.ndarray) -> np.ndarray:
        """EA on the lower face: (T, 8) logits of the frames' lower half (``references`` unused: the judge
        never sees the upper face). Only for a judge trained with ``region="lower"``."""
        if self.model.config.region != "lower":
            raise WeightsError("this expression judge saw whole faces; train one with region='lower'")
        return self.logits(frames)


class CorpusIdentityJudge:
    """CSIM judge on the procedural corpus: penultimate layer of a speaker-classifier :class:`JudgeNet`."""

    def __init__(self, model: JudgeNet) -> None:
        if model.config.target != "speaker":
            raise WeightsError(f"this judge was trained on {model.config.target!r}, not speaker; retrain it")
        self.model = model
        self.name = f"corpus speaker CNN ({_accuracy_note(model.config)})"

    @torch.no_grad()
    def embed(self, frames: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        """frames (T, H, W, 3) uint8 -> (T, D) embeddings (``landmarks`` is ignored: frames are crops)."""
        return self.model(_to_tensor(frames, self.model.config.input_size))[0].numpy()


def _cached(data: Path, release: Path, target: str, region: str, steps: int, seed: int) -> JudgeNet:
    """The judge in ``release``, (re)trained when absent, unreadable, for another manifest, split rule,
    region or number of steps."""
    model = None
    if release.is_dir():
        try:
            model = load_corpus_judge(release)
        except (WeightsError, ConfigError):
            model = None
    stale = model is None or (
        model.config.corpus_sha256 != manifest_sha256(data)
        or model.config.splits != TRAIN_SPLITS[target]
        or model.config.region != region
        or model.config.steps != steps
    )
    if stale:
        train_corpus_judge(data, target, release, steps=steps, seed=seed, region=region)
        model = load_corpus_judge(release)
    return model


def corpus_judges(
    data: str | os.PathLike[str],
    cache: str | os.PathLike[str] | None = None,
    steps: int = 1500,
    seed: int = 0,
) -> tuple[CorpusEmotionJudge, CorpusIdentityJudge]:
    """The corpus's expression and identity judges, trained on first use and cached.

    cache: folder for the release folders (default ``<data>/judges``); a cached judge whose
    ``corpus_sha256`` differs from the current manifest, or trained on other splits or for other ``steps``,
    is retrained.
    """
    folder = Path(cache) if cache is not None else Path(data) / JUDGES_FOLDER
    emotion = _cached(Path(data), folder / "emotion", "emotion", "face", steps, seed)
    speaker = _cached(Path(data), folder / "speaker", "speaker", "face", steps, seed)
    return CorpusEmotionJudge(emotion), CorpusIdentityJudge(speaker)


def corpus_lower_face_judge(
    data: str | os.PathLike[str],
    cache: str | os.PathLike[str] | None = None,
    steps: int = 1500,
    seed: int = 0,
) -> CorpusEmotionJudge:
    """The corpus's lower-face expression judge (``ea_lower``), cached as ``<cache>/emotion_lower`` like
    :func:`corpus_judges`' judges."""
    folder = Path(cache) if cache is not None else Path(data) / JUDGES_FOLDER
    return CorpusEmotionJudge(_cached(Path(data), folder / "emotion_lower", "emotion", "lower", steps, seed))
