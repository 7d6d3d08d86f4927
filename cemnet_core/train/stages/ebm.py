"""Stage ``ebm``: train the Emotion Bridging Memory (Sec. III-C, Eqs. 8-13) with every other network frozen.

Paper (Sec. IV-A, IV-C): once Audio2Mouth, the renderer and Audio Emotion Enhancement are trained, their
weights are fixed and the EBM is trained on MEAD for 60 epochs. One step here::

    references (another emotion of the same speaker) + target mel windows + target pose
        -> Audio2Mouth (frozen, Eq. 1)               -> emotion-agnostic mouth m      (B, T, 57, 2)
    target utterance mel segments (G, S, 80)
        -> AEE emotion encoder E_e (frozen), mean over the G segments -> target emotion (B, De)
    reference faces (N, 3, 128, 128)
        -> image emotion extractor (frozen), mean over the N faces    -> source emotion (B, Ds)
    reference clip -> dlib identity embedding (cached per clip, see below)  -> identity (B, 128)
    (target, source, identity, m, ground-truth mouth) -> EmotionBridgingMemory
    loss = w_mouth L_a2m (Eqs. 2-4) on the emotion-aware mouth + L_rec (Eq. 10) + L_align (Eq. 12)

(:meth:`EmotionBridgingMemory.loss` also supervises the value-path mouth with the Audio2Mouth loss and
weights the landmark terms by ``model.weight_mouth`` = 128, pixels of the crop, so that the memory losses do
not drown them; see the model's docstring for why and for the measurements.) Items come from
:class:`EBMDataset`: references from a clip of the same speaker in another emotion (the cross-emotion
setting of Sec. IV-D; ``neutral_refs`` draws them from a neutral clip).
The window length ``T``, the number of references ``N`` and the AEE segment length ``S`` are read from the
frozen upstream releases, so the EBM always sees what those networks were trained on. :class:`FrozenUpstream`
loads those networks and computes the EBM inputs; ``benchmarks/learning.py`` evaluates through it as well.

Which Audio2Mouth: the paper trains every module on MEAD, so the frozen Audio2Mouth is in the EBM's own
domain and ``ground truth - Audio2Mouth`` is the emotional displacement plus the model's in-domain error.
Where the EBM must train on another corpus than Audio2Mouth did (the starter: Audio2Mouth on real videos,
the EBM on the procedural corpus, the only emotion-labelled talking corpus here), ``a2m`` should name an
Audio2Mouth fine-tuned on the EBM's corpus (``DemoConfig.starter`` trains one, never shipped). With the
real model itself the EBM learns to undo that model's error on drawn faces: on the procedural val clips
(``benchmarks/ebm_articulation.py``, one-photo references) the real Audio2Mouth opens the mouth 0.104 on
average against the truth's 0.084, the EBM trained on it closes it to 0.056 (on the corpus-tuned one:
0.085), and on real portraits driven by real speech it shrank the driving mouth's motion to about half
(``benchmarks/portrait_generate.py``; figures in ``DemoConfig.starter``).

Identity: the dlib embedding (:class:`IdentityEncoder`) costs tens of milliseconds per face, too much per
step, and the references of a clip share one identity, so each clip's embedding is computed once when the
task is built: the mean of ``identity_frames`` evenly spaced valid frames, L2-normalised (as generation does
for its references), with the face box taken from the clip's landmarks.

The target emotion is the AEE embedding of the whole target utterance (mean over ``emotion_segments``
segments); generation feeds one segment around each window, a local estimate of the same quantity.

Ablation "w/o EBM" (Table IV): ``--set model.use_memory=false`` trains the cross-emotion feature straight into
the landmark decoder (no memories; the memory losses are zero).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cemnet_core.bundle import release_spec
from cemnet_core.contracts import IDENTITY_DIM
from cemnet_core.data.clips import load_clip
from cemnet_core.data.emotion_datasets import EBMDataset
from cemnet_core.data.manifest import ClipRecord
from cemnet_core.errors import ConfigError
from cemnet_core.identity import IdentityEncoder, mean_identity
from cemnet_core.models.audio_to_mouth import AudioToMouth
from cemnet_core.models.emotion_enhancement import EmotionEnhancer
from cemnet_core.models.emotion_memory import EmotionBridgingMemory, EmotionBridgingMemoryConfig
from cemnet_core.models.image_emotion import ImageEmotionExtractor, MiniXceptionConfig
from cemnet_core.release import load_model
from cemnet_core.train.distributed import DistEnv
from cemnet_core.train.loop import LoopConfig, Phase, StepContext, TrainTask
from cemnet_core.train.stages.a2m import draw_mouths

Batch = dict[str, torch.Tensor]
MEAD_TRAIN_CLIPS = 28_000  # about 40 speakers x 700 clips: what "60 epochs" means in steps


def _paper_loop() -> LoopConfig:
    batch_size = 32
    steps = 60 * MEAD_TRAIN_CLIPS // batch_size  # Sec. IV-C: 60 epochs (one item per target clip and epoch)
    return LoopConfig(lr=1e-4, batch_size=batch_size, steps=steps, val_every=1000, checkpoint_every=1000)


@dataclass(frozen=True)
class Config:
    """Stage ``ebm``: the memory's sizes, the loop, the frozen upstream releases and the data sampling."""

    model: EmotionBridgingMemoryConfig = field(default_factory=EmotionBridgingMemoryConfig.paper)
    loop: LoopConfig = field(default_factory=_paper_loop)
    a2m: str = ""  # Audio2Mouth release folder (`cemnet export` of an a2m run: .../audio_to_mouth)
    aee: str = ""  # AEE release folder (.../emotion_enhancer); only its emotion encoder E_e is used
    image_emotion: str = ""  # image emotion extractor release folder (.../image_emotion)
    neutral_refs: bool = False  # references from a neutral clip (neutral-base) instead of another emotion
    emotion_segments: int = 3  # AEE segments spread over the target utterance (target emotion = their mean)
    identity_frames: int = 3  # frames per clip whose dlib embeddings are averaged into its identity

    def __post_init__(self) -> None:
        if self.emotion_segments < 1 or self.identity_frames < 1:
            raise ConfigError(
                f"emotion_segments and identity_frames must be >= 1, got {self.emotion_segments} and "
                f"{self.identity_frames}"
            )

    @classmethod
    def paper(cls) -> Config:
        """Sec. IV-C: 60 epochs with the other modules fixed (Adam at 1e-4, as for Audio2Mouth)."""
        return cls()

    @classmethod
    def tiny(cls) -> Config:
        """The tiny memory, sized for the tiny AEE (De = 8) and tiny image extractor (Ds = 16) presets."""
        tiny_source = MiniXceptionConfig.tiny().feature_dim
        model = dataclasses.replace(EmotionBridgingMemoryConfig.tiny(), source_emotion_dim=tiny_source)
        loop = LoopConfig(lr=3e-3, batch_size=4, steps=30, log_every=5, val_every=10, checkpoint_every=10)
        return cls(model=model, loop=loop, identity_frames=1)

    @classmethod
    def presets(cls) -> dict[str, Any]:
        """Named starting points for ``preset = ...``."""
        return {"paper": cls.paper, "tiny": cls.tiny}


def load_frozen(folder: str | os.PathLike[str], kind: str, what: str, key: str) -> nn.Module:
    """The model of a release folder with its weights, frozen (``requires_grad_(False)``) in eval mode.

    ``what``/``key`` name the network and its config key for the error message when the path is unset.
    """
    if not str(folder):
        raise ConfigError(f"the ebm stage needs the trained {what}: set --set {key}=PATH to its release "
                          "folder (`cemnet export` of its run writes it)")  # fmt: skip
    return load_model(folder, kind)


def clip_identities(records: list[ClipRecord], frames: int) -> torch.Tensor:
    """Identity embedding of every clip: mean dlib embedding of ``frames`` evenly spaced valid frames.

    Landmarks (crop-normalised) give the face box in the crop. Returns (R, 128) float32, rows L2-normalised;
    a clip without a valid frame gets a zero row (the dataset never draws references from it). Embeddings
    are cached per clip file (path, modification time, ``frames``) for the life of the process, so train,
    validation and resumed tasks over the same corpus compute each one once.
    """
    table = np.zeros((len(records), IDENTITY_DIM), dtype=np.float32)
    for row, record in enumerate(records):
        path = Path(record.path).resolve()
        table[row] = _clip_identity(str(path), path.stat().st_mtime_ns, frames)
    return torch.from_numpy(table)


@functools.lru_cache(maxsize=1)
def _identity_encoder() -> IdentityEncoder:
    return IdentityEncoder()


@functools.lru_cache(maxsize=4096)
def _clip_identity(path: str, mtime_ns: int, frames: int) -> np.ndarray:
    """(128,) identity of one clip file (``mtime_ns`` keys the cache: a rewritten clip is embedded again)."""
    clip = load_clip(path, ("frames", "landmarks", "valid"))
    valid = np.flatnonzero(clip.valid)
    if len(valid) == 0:
        return np.zeros(IDENTITY_DIM, dtype=np.float32)
    chosen = valid[np.linspace(0, len(valid) - 1, min(frames, len(valid))).round().astype(int)]
    size = np.array(clip.frames.shape[2:0:-1], dtype=np.float64)  # (W, H) of the crop
    encoder = _identity_encoder()
    embeddings = [encoder.embed(clip.frames[i], landmarks=clip.landmarks[i] * size) for i in chosen]
    return mean_identity(np.stack(embeddings))


@dataclass
class FrozenUpstream:
    """The frozen networks that feed the EBM (Fig. 2 of the paper), loaded from the config's releases."""

    audio_to_mouth: AudioToMouth
    aee: EmotionEnhancer
    image_emotion: ImageEmotionExtractor

    @classmethod
    def load(cls, config: Config, device: torch.device) -> FrozenUpstream:
        """Load the three releases frozen onto ``device``; ConfigError if their widths do not fit the EBM."""
        upstream = cls(
            audio_to_mouth=load_frozen(config.a2m, "audio_to_mouth", "Audio2Mouth", "a2m").to(device),
            aee=load_frozen(config.aee, "emotion_enhancer", "AEE", "aee").to(device),
            image_emotion=load_frozen(
                config.image_emotion, "image_emotion", "image emotion extractor", "image_emotion"
            ).to(device),
        )  # type: ignore[arg-type]
        wanted = {
            "target_emotion_dim": upstream.aee.config.emotion_dim,
            "source_emotion_dim": upstream.image_emotion.config.feature_dim,
            "identity_dim": IDENTITY_DIM,
        }
        wrong = {key: value for key, value in wanted.items() if getattr(config.model, key) != value}
        if wrong:
            fixes = " ".join(f"--set model.{key}={value}" for key, value in wrong.items())
            raise ConfigError(f"the ebm model's input widths do not match the frozen networks; use {fixes}")
        return upstream

    def dataset(self, config: Config, data: Path, split: str) -> EBMDataset:
        """:class:`EBMDataset` of ``split`` with the window, reference and segment sizes of these networks."""
        return EBMDataset(
            data,
            split,
            n_refs=self.audio_to_mouth.config.num_refs,
            t_frames=self.audio_to_mouth.config.num_frames,
            neutral_refs=config.neutral_refs,
            segment_frames=self.aee.config.segment_frames,
            emotion_segments=config.emotion_segments,
            seed=config.loop.seed,
        )

    @torch.no_grad()
    def conditions(self, batch: Batch, identities: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """EBM inputs of a batch of :class:`EBMDataset` items.

        identities: (R, 128) :func:`clip_identities` of the dataset's records (indexed by ``ref_clip``).
        Returns target emotion (B, De), source emotion (B, Ds), identity (B, 128), Audio2Mouth mouth
        (B, T, 57, 2).
        """
        B, G = batch["emotion_mel"].shape[:2]
        N = batch["ref_images"].shape[1]
        mouth = self.audio_to_mouth(batch["ref_landmarks"], batch["mel"], batch["pose"])  # (B, T, 57, 2)
        target = self.aee.emotion(batch["emotion_mel"].flatten(0, 1)).view(B, G, -1).mean(1)  # (B, De)
        features, _ = self.image_emotion(batch["ref_images"].flatten(0, 1))  # (B*N, Ds)
        source = features.view(B, N, -1).mean(1)  # (B, Ds)
        return target.float(), source.float(), identities[batch["ref_clip"]], mouth.float()


def build_task(config: Config, data: Path, env: DistEnv) -> TrainTask:
    """The memory, Adam, cross-emotion train/val data, the frozen upstream networks and the loss above."""
    device = env.device
    upstream = FrozenUpstream.load(config, device)
    model = EmotionBridgingMemory(config.model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.loop.lr)
    train_data = upstream.dataset(config, data, "train")
    val_data = upstream.dataset(config, data, "val")
    identities = {  # (R, 128) per split, indexed by the items' ref_clip
        "train": clip_identities(train_data.records, config.identity_frames).to(device),
        "val": clip_identities(val_data.records, config.identity_frames).to(device),
    }

    def conditions(batch: Batch, split: str) -> tuple[torch.Tensor, ...]:
        return upstream.conditions(batch, identities[split])

    def loss(batch: Batch, ctx: StepContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        output = model(*conditions(batch, "train"), target_mouth=batch["mouth"])
        # w_mouth L_a2m (Eqs. 2-4) on the key and value path mouths + w_rec L_rec (10) + w_align L_align (12)
        total, terms = model.loss(output, batch["mouth"])
        return total, {name: value.detach() for name, value in terms.items()}

    def evaluate(batch: Batch) -> dict[str, torch.Tensor]:
        target, source, identity, mouth = conditions(batch, "val")
        output = model(target, source, identity, mouth, target_mouth=batch["mouth"])
        total, terms = model.loss(output, batch["mouth"])
        inferred = model(target, source, identity, mouth).mouth  # (B, T, 57, 2): key path only, as inference
        return {
            "loss": total,
            **terms,
            "l1": (inferred - batch["mouth"]).abs().mean(),  # emotion-aware mouth vs ground truth
            "a2m_l1": (mouth - batch["mouth"]).abs().mean(),  # Audio2Mouth alone: what the EBM must beat
        }

    def sample(batch: Batch) -> dict[str, np.ndarray]:
        target, source, identity, mouth = conditions(batch, "val")
        inferred = model(target, source, identity, mouth).mouth
        drawn = draw_mouths(inferred[0, 0].float().cpu().numpy(), batch["mouth"][0, 0].cpu().numpy())
        return {"mouth": drawn}

    return TrainTask(
        models={"emotion_memory": model},
        optimizers={"adam": optimizer},
        phases=[Phase("ebm", "adam", loss)],
        train_data=train_data,
        val_data=val_data,
        evaluate=evaluate,
        sample=sample,
    )


def releases(config: Config) -> dict[str, tuple[str, str, Any]]:
    """One release: ``emotion_memory/`` (kind ``emotion_memory``; generation also finds it as ``ebm/``)."""
    return release_spec("emotion_memory", "emotion_memory", config.model)
