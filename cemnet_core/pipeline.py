"""The CEM-Net inference pipeline over tensors: references + audio -> emotional mouth landmarks -> frames.

It chains the trained sub-models of Sec. III in the order of Fig. 2 of the paper:

    reference landmarks, mel windows, pose -> Audio2Mouth (Sec. III-A, Eq. 1) -> mouth m (B, T, 57, 2)
    driving mel segment                    -> AEE emotion encoder (Sec. III-B) -> target emotion (B, De)
    reference faces                        -> image emotion extractor          -> source emotion (B, Ds)
    reference identity (dlib, 128-d)
    (target, source, identity, m)          -> Emotion Bridging Memory (Sec. III-C, Eqs. 8-13)
                                           -> emotion-aware mouth (B, T, 57, 2)
    references + sketches + target sketch  -> renderer (Sec. III-D, Eqs. 14-16) -> frames (B, 3, H, W)

Used by ``cemnet generate`` and by evaluation: no file I/O beyond loading its weights (``from_bundle``).

Choices where the paper is silent (documented here once):

- ``intensity`` scales the emotional displacement the EBM adds to the Audio2Mouth motion:
  ``mouth = m + intensity * (EBM(m) - m)``; 1 is the model as trained, 0 the emotion-agnostic mouth.
- An emotion *label* override (``emotion_label``) has no embedding of its own in the paper. The pipeline
  finds one in the AEE's emotion space: starting from the audio's own embedding it descends the
  cross-entropy of the AEE emotion classifier ``C_e`` (Eq. 7) towards the label for a fixed number of
  steps (:meth:`CEMNetPipeline.label_emotion`), so the target stays an embedding the EBM was trained on.

Ablations of Table IV (Sec. IV-F) and the emotion-agnostic baseline are separate trained models, loaded by
``CEMNetPipeline.from_bundle(bundle, ablation=...)`` from the bundle's ``ablations/`` folder
(:data:`cemnet_core.bundle.ABLATION_LAYOUT`); only the listed roles differ from the full model:

- ``"aee"`` ("w/o AEE"): ``ablations/wo_aee/{emotion_enhancer,emotion_memory}/``. The emotion encoder is
  an audio emotion classifier with its softmax removed (the ``aee`` stage stopped after its classification
  pre-training, before cross-reconstruction), and the EBM is trained on that encoder.
- ``"ebm"`` ("w/o EBM"): ``ablations/wo_ebm/emotion_memory/``, an EBM trained with
  ``model.use_memory=false`` (cross-emotion features straight into the landmark decoder, no memories).
- ``"a2m"`` (baseline "Audio2Mouth without emotion"): no EBM (``use_ebm=False``), no extra weights.

Shape notation::

    B  batch (windows or frames)   N  reference images   T  video frames of a window (<= A2M num_frames)
    S  mel frames                  F  mel bins (80)      De, Ds  target / source emotion widths
    H, W  renderer image size      K  landmarks (135 ALL, 78 POSE, 57 MOUTH)
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cemnet_core.bundle import choose_variant, load_bundle
from cemnet_core.contracts import EMOTIONS, IDENTITY_DIM, MEL_PER_FRAME, MEL_WINDOW, N_ALL, N_MOUTH, N_POSE
from cemnet_core.data.audio import mel_window_start
from cemnet_core.data.images import to_images, to_uint8
from cemnet_core.data.landmarks import draw_sketch
from cemnet_core.data.mel_stream import MelRows
from cemnet_core.errors import ConfigError
from cemnet_core.models.renderer import mask_lower_half

LABEL_STEPS = 200  # most gradient steps of the label -> embedding search (stops once it is read as the label)
LABEL_LR = 0.1


@dataclass(frozen=True)
class ReferenceSet:
    """The N references as the stages see them (:meth:`CEMNetPipeline.references`)."""

    images: torch.Tensor  # (N, 3, S, S) in [0, 1]
    landmarks: torch.Tensor  # (N, 135, 2) ALL, crop-normalised
    sketches: torch.Tensor  # (N, 3, S, S) their sketches
    source_emotion: torch.Tensor  # (Ds,) mean image-emotion feature
    identity: torch.Tensor  # (128,) mean identity embedding (zeros when no EBM reads it)
    distinct: tuple[int, ...] = ()  # the renderer's references: first of each identical group (() = all)
    counts: tuple[int, ...] = ()  # copies of each distinct one among the N (Eq. 15 weighs them so)

    def for_renderer(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(images, sketches, landmarks, counts) of the distinct references: a photo repeated N times is
        warped once, with the same frame as a result (``FaceRenderer.forward``'s ``ref_counts``)."""
        if not self.distinct:
            return self.images, self.sketches, self.landmarks, None
        index = list(self.distinct)
        counts = torch.tensor(self.counts, dtype=torch.float32)
        return self.images[index], self.sketches[index], self.landmarks[index], counts


@dataclass(frozen=True)
class Animation:
    """Frames of :meth:`CEMNetPipeline.animate` with the landmarks they were rendered from."""

    frames: np.ndarray  # (n, S, S, 3) uint8 crops
    mouth: torch.Tensor  # (n, 57, 2) MOUTH landmarks, crop-normalised (CPU)
    landmarks: torch.Tensor  # (n, 135, 2) ALL landmarks: pose + mouth


# Frames per renderer call where the caller does not say, by device type. Measured with
# benchmarks/animate_profile.py at paper size on the 2-core CPU, animate frames/s at batch 1 / 2 / 4 / 16:
# NCHW 4.32 / 4.69 / 3.91 / 2.28, channels-last (what from_bundle uses on CPU) 5.01 / 4.97 / 4.55 / 4.19;
# on CUDA larger batches fill the GPU (not measured here).
RENDER_BATCH = {"cpu": 2, "cuda": 16}


def render_batch(device: torch.device) -> int:
    """The renderer batch size for ``device`` (:data:`RENDER_BATCH`; 16 for other device types)."""
    return RENDER_BATCH.get(device.type, 16)


def default_device() -> torch.device:
    """CUDA when present, else CPU (STYLE section 7)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class CEMNetPipeline(nn.Module):
    """All trained stages of CEM-Net behind two calls: :meth:`predict_mouth` and :meth:`render`.

    Args:
        audio_to_mouth: :class:`~cemnet_core.models.audio_to_mouth.AudioToMouth`.
        emotion_enhancer: :class:`~cemnet_core.models.emotion_enhancement.EmotionEnhancer` (AEE).
        image_emotion: :class:`~cemnet_core.models.image_emotion.ImageEmotionExtractor`.
        emotion_memory: :class:`~cemnet_core.models.emotion_memory.EmotionBridgingMemory`, or None when
            ``use_ebm`` is False.
        renderer: :class:`~cemnet_core.models.renderer.FaceRenderer`.
        use_ebm: apply the Emotion Bridging Memory (False: the baseline "Audio2Mouth without emotion"; the
            Table IV ablations are other trained models, see :meth:`from_bundle`).
    """

    def __init__(
        self,
        audio_to_mouth: nn.Module,
        emotion_enhancer: nn.Module,
        image_emotion: nn.Module,
        emotion_memory: nn.Module | None,
        renderer: nn.Module,
        *,
        use_ebm: bool = True,
    ) -> None:
        super().__init__()
        if use_ebm and emotion_memory is None:
            raise ConfigError("use_ebm=True needs an emotion_memory model; pass one or set use_ebm=False")
        self.audio_to_mouth = audio_to_mouth
        self.emotion_enhancer = emotion_enhancer
        self.image_emotion = image_emotion
        self.emotion_memory = emotion_memory
        self.renderer = renderer
        self.use_ebm = use_ebm
        self.eval().requires_grad_(False)

    @classmethod
    def from_bundle(
        cls,
        bundle: str | os.PathLike[str],
        device: str | torch.device | None = None,
        *,
        ablation: str | None = None,
        use_aee: bool = True,
        use_ebm: bool = True,
        motion_gain: float | None = None,
    ) -> CEMNetPipeline:
        """Load every stage from a weights folder (:mod:`cemnet_core.bundle` says which folder is which).

        Args:
            ablation: None for CEM-Net; ``"aee"`` / ``"ebm"`` for the Table IV ablations, whose differing
                roles come from ``<bundle>/ablations/`` (``bundle.ABLATION_LAYOUT``); ``"a2m"`` for the
                Audio2Mouth-without-emotion baseline (no EBM).
            use_aee: False is the same as ``ablation="aee"``.
            use_ebm: False is the same as ``ablation="a2m"``.
            motion_gain: Audio2Mouth's ``motion_gain`` (the scale of its predicted mouth motion,
                :mod:`cemnet_core.models.audio_to_mouth`) instead of the one its release carries.

        Raises:
            ConfigError: an unknown ablation, or ``use_aee`` / ``use_ebm`` that contradict ``ablation``.
            WeightsError: a release folder is missing (for an ablation: with how to train it), unreadable,
                does not fit its model, or an EBM does not fit the emotion encoder it is paired with.
        """
        models = load_bundle(bundle, choose_variant(ablation, use_aee=use_aee, use_ebm=use_ebm))
        if motion_gain is not None:
            a2m = models["audio_to_mouth"]
            a2m.config = dataclasses.replace(a2m.config, motion_gain=motion_gain)
        pipeline = cls(**models, use_ebm=models["emotion_memory"] is not None)
        target = torch.device(device) if device is not None else default_device()
        pipeline.to(target)
        if target.type == "cpu":  # oneDNN runs the renderer 1.06-1.16x faster channels-last at batch 1-4,
            pipeline.renderer.to(memory_format=torch.channels_last)  # outputs equal to 3e-6 (animate_profile)
        return pipeline

    # ------------------------------------------------------------------ sizes

    @property
    def device(self) -> torch.device:
        """Device of the models' parameters."""
        return next(self.audio_to_mouth.parameters()).device

    @property
    def window(self) -> int:
        """Frames Audio2Mouth predicts per call (its ``num_frames``, T)."""
        return int(self.audio_to_mouth.config.num_frames)

    @property
    def num_refs(self) -> int:
        """References N the models were trained with (Audio2Mouth's ``num_refs``; 5 in the paper)."""
        return int(self.audio_to_mouth.config.num_refs)

    @property
    def speech_lufs(self) -> float | None:
        """LUFS the driving audio is scaled to before its mel (Audio2Mouth's; ``data.audio.driving_mel``)."""
        return self.audio_to_mouth.config.speech_lufs

    @property
    def image_size(self) -> int:
        """Side of the renderer's square frames."""
        return int(self.renderer.config.image_size)

    @property
    def emotion_segment(self) -> int:
        """Mel frames of one AEE segment (S)."""
        return int(self.emotion_enhancer.config.segment_frames)

    # ------------------------------------------------------------------ conditions

    @torch.no_grad()
    def source_emotion(self, faces: torch.Tensor) -> torch.Tensor:
        """Source emotion of the references: mean image-emotion feature.

        faces: (N, 3, H, W) RGB in [0, 1]. Returns (Ds,).
        """
        if faces.ndim != 4 or faces.shape[1] != 3:
            raise ValueError(f"faces must be (N, 3, H, W) RGB in [0, 1], got {tuple(faces.shape)}")
        features, _ = self.image_emotion(faces.to(self.device))  # (N, Ds)
        return features.mean(dim=0)  # (Ds,)

    @torch.no_grad()
    def target_emotion(self, mel_segments: torch.Tensor) -> torch.Tensor:
        """Target emotion of the driving audio: AEE emotion embedding per segment.

        mel_segments: (B, S, F) with S = :attr:`emotion_segment`. Returns (B, De).
        """
        return self.emotion_enhancer.emotion(mel_segments.to(self.device))  # (B, De)

    def label_emotion(self, label: str, start: torch.Tensor) -> torch.Tensor:
        """An AEE emotion embedding moved from ``start`` until the AEE classifier reads it as ``label``.

        start: (B, De) embeddings to start from (the audio's). Returns (B, De). See the module docstring.
        """
        if label not in EMOTIONS:
            raise ConfigError(f"unknown emotion {label!r}; use auto or one of {', '.join(EMOTIONS)}")
        target = torch.full((start.shape[0],), EMOTIONS.index(label), dtype=torch.long, device=start.device)
        embedding = start.detach().clone()
        with torch.enable_grad():
            for _ in range(LABEL_STEPS):
                embedding.requires_grad_(True)
                logits = self.emotion_enhancer.classify_emotion(embedding)  # (B, E)
                if (logits.argmax(dim=-1) == target).all():
                    break
                (grad,) = torch.autograd.grad(F.cross_entropy(logits, target), embedding)
                # Normalised steps of LABEL_LR: the walk length does not depend on the logits' scale.
                step = grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-12)  # (B, De)
                embedding = (embedding - LABEL_LR * step).detach()
        return embedding.detach()

    # ------------------------------------------------------------------ landmarks

    @torch.no_grad()
    def predict_mouth(
        self,
        ref_landmarks: torch.Tensor,
        mel: torch.Tensor,
        pose: torch.Tensor,
        emotion_mel: torch.Tensor,
        source_emotion: torch.Tensor,
        identity: torch.Tensor,
        emotion_label: str | None = None,
        intensity: float = 1.0,
    ) -> torch.Tensor:
        """Emotion-aware mouth landmarks of ``B`` windows of ``T`` frames.

        Args:
            ref_landmarks: (B, N, 135, 2) ``ALL`` landmarks of the references, crop-normalised.
            mel: (B, T, 16, 80) mel window of each frame.
            pose: (B, T, 78, 2) ``POSE`` landmarks of each frame, crop-normalised.
            emotion_mel: (B, S, 80) driving mel segment around each window (AEE input).
            source_emotion: (B, Ds) or (Ds,) source emotion of the references.
            identity: (B, 128) or (128,) identity embedding of the references.
            emotion_label: None to follow the audio, or one of ``EMOTIONS`` to override it.
            intensity: scale of the emotional displacement (module docstring).

        Returns:
            mouth: (B, T, 57, 2) ``MOUTH`` landmarks, crop-normalised.
        """
        device = self.device
        B = mel.shape[0]
        if emotion_mel.ndim != 3 or emotion_mel.shape[0] != B:
            raise ValueError(f"emotion_mel must be ({B}, S, 80), got {tuple(emotion_mel.shape)}")
        mouth = self.audio_to_mouth(ref_landmarks.to(device), mel.to(device), pose.to(device))  # (B,T,57,2)
        if not self.use_ebm:
            return mouth
        target = self.target_emotion(emotion_mel)  # (B, De)
        if emotion_label is not None:
            target = self.label_emotion(emotion_label, target)
        source = source_emotion.to(device)
        source = source.expand(B, -1) if source.ndim == 1 else source  # (B, Ds)
        ident = identity.to(device)
        ident = ident.expand(B, -1) if ident.ndim == 1 else ident  # (B, 128)
        if ident.shape != (B, IDENTITY_DIM):
            raise ValueError(
                f"identity must be ({IDENTITY_DIM},) or ({B}, {IDENTITY_DIM}), got {tuple(identity.shape)}"
            )
        assert self.emotion_memory is not None
        emotional = self.emotion_memory(target, source, ident, mouth).mouth  # (B, T, 57, 2)
        return mouth + intensity * (emotional - mouth)

    # ------------------------------------------------------------------ frames

    def sketches(self, landmarks: torch.Tensor) -> torch.Tensor:
        """Landmark sketches the renderer sees: (..., 135, 2) crop-normalised -> (..., 3, H, W) in [0, 1]."""
        if landmarks.shape[-2:] != (N_ALL, 2):
            raise ValueError(f"landmarks must be (..., {N_ALL}, 2), got {tuple(landmarks.shape)}")
        flat = landmarks.detach().reshape(-1, N_ALL, 2).cpu().numpy()  # (M, 135, 2)
        size = self.image_size
        drawn = np.stack([draw_sketch(points, size=size) for points in flat])  # (M, H, W, 3)
        images = to_images(drawn)  # (M, 3, H, W)
        return images.reshape(*landmarks.shape[:-2], 3, size, size).to(self.device)

    @torch.no_grad()
    def render(
        self,
        ref_images: torch.Tensor,
        ref_sketches: torch.Tensor,
        ref_landmarks: torch.Tensor,
        landmarks: torch.Tensor,
        target_images: torch.Tensor,
        ref_counts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Render one frame per target landmark set (Sec. III-D).

        Args:
            ref_images: (B, N, 3, H, W) reference crops in [0, 1] (or (N, 3, H, W), shared by the batch).
            ref_sketches: same shape, the references' sketches (:meth:`sketches` of their landmarks).
            ref_landmarks: (B, N, 135, 2) or (N, 135, 2): the ``ALL`` landmarks those sketches show.
            landmarks: (B, 135, 2) ``ALL`` landmarks of the frames to render (pose + predicted mouth).
            target_images: (B, 3, H, W) the pose frames' crops; their lower half is masked here.
            ref_counts: (N,) copies each reference stands for (:meth:`ReferenceSet.for_renderer`).

        Returns:
            frames: (B, 3, H, W) in [0, 1].
        """
        B = landmarks.shape[0]
        device = self.device
        if ref_images.ndim == 4:
            ref_images = ref_images.unsqueeze(0).expand(B, -1, -1, -1, -1)  # (B, N, 3, H, W)
            ref_sketches = ref_sketches.unsqueeze(0).expand(B, -1, -1, -1, -1)
        if ref_landmarks.ndim == 3:
            ref_landmarks = ref_landmarks.unsqueeze(0).expand(B, -1, -1, -1)  # (B, N, 135, 2)
        target_sketch = self.sketches(landmarks)  # (B, 3, H, W)
        masked = mask_lower_half(target_images.to(device))  # (B, 3, H, W)
        output = self.renderer(
            ref_images.to(device), ref_sketches.to(device), target_sketch, masked,
            ref_landmarks.to(device).float(), landmarks.to(device).float(), ref_counts,
        )  # fmt: skip
        return output.image

    # ------------------------------------------------------------------ the one inference path

    @torch.no_grad()
    def references(
        self,
        crops: np.ndarray,
        landmarks: np.ndarray,
        identity: np.ndarray | None = None,
        merge_repeats: bool = True,
    ) -> ReferenceSet:
        """The references as every stage sees them (:class:`ReferenceSet`).

        crops: (N, S, S, 3) uint8 reference crops at :attr:`image_size`; landmarks: (N, 135, 2) their
        ``ALL`` landmarks, crop-normalised; identity: (128,) their mean identity embedding
        (:func:`~cemnet_core.identity.mean_identity`), or None (zeros) when no EBM reads it.
        ``merge_repeats``: the renderer sees identical references once, with their count (False: all N).
        """
        images = to_images(crops)  # (N, 3, S, S)
        points = torch.as_tensor(landmarks)  # (N, 135, 2)
        keys = [c.tobytes() + np.asarray(m).tobytes() for c, m in zip(crops, landmarks, strict=True)]
        first = {key: keys.index(key) for key in dict.fromkeys(keys)} if merge_repeats else {}
        return ReferenceSet(
            distinct=tuple(first.values()),
            counts=tuple(keys.count(key) for key in first),
            images=images,
            landmarks=points,
            sketches=self.sketches(points).cpu(),
            source_emotion=self.source_emotion(images).cpu(),
            identity=torch.zeros(IDENTITY_DIM) if identity is None else torch.as_tensor(identity),
        )

    @torch.no_grad()
    def animate(
        self,
        refs: ReferenceSet,
        mel: MelRows,
        pose: np.ndarray,
        targets: np.ndarray,
        *,
        start: int = 0,
        total: int | None = None,
        mouth: torch.Tensor | None = None,
        emotion_label: str | None = None,
        intensity: float = 1.0,
        batch_size: int | None = None,
    ) -> Animation:
        """Frames ``start .. start+n-1`` of a ``total``-frame video driven by ``mel`` (Fig. 2 of the paper).

        The one path from references + audio to frames: ``cemnet generate`` calls it chunk by chunk, the
        evaluation once per clip, the demo through both.

        Windows: Audio2Mouth predicts windows of T = :attr:`window` frames aligned to absolute frame
        indices (``start`` is a multiple of T). The last window of the video, when shorter, is filled up to
        T frames by repeating the video's last frame (its mel window and pose), and the extra frames are
        dropped: the model always sees the T-frame windows it was trained on. Each window's AEE segment
        (S mel rows) is centred on the middle of its T frames; mel rows outside the audio repeat the edge.

        Args:
            refs: the references (:meth:`references`).
            mel: mel rows of the whole driving audio (``num_rows``, ``rows(lo, hi)``:
                :mod:`cemnet_core.data.mel_stream`); read forward only.
            pose: (n, 78, 2) ``POSE`` landmarks of the frames, crop-normalised.
            targets: (n, S, S, 3) uint8 pose-frame crops (the renderer keeps their upper half).
            start, total: index of the first frame and the video's frame count (default ``start + n``);
                ``n`` must be a multiple of T unless the chunk ends the video.
            mouth: (n, 57, 2) mouth landmarks to render instead of predicting them (evaluation baselines).
            emotion_label, intensity: see :meth:`predict_mouth`.
            batch_size: frames per renderer call (None: :func:`render_batch` of the device).
        """
        n, window = len(pose), self.window
        total = start + n if total is None else total
        if start % window or start + n > total or (n % window and start + n != total) or n == 0:
            raise ValueError(
                f"animate: frames {start}..{start + n} of {total} are not whole windows of {window} frames"
            )
        if len(targets) != n:
            raise ValueError(f"animate: {len(targets)} target crops for {n} pose frames")
        pose_t = torch.as_tensor(pose)  # (n, 78, 2)
        if mouth is None:
            mouth = self.window_mouths(refs, mel, pose_t, start, emotion_label, intensity)
        landmarks = compose_landmarks(pose_t, mouth.float())  # (n, 135, 2)
        frames, distinct = [], refs.for_renderer()
        batch_size = batch_size or render_batch(self.device)
        for b0 in range(0, n, batch_size):
            b1 = min(b0 + batch_size, n)
            images = self.render(*distinct[:3], landmarks[b0:b1], to_images(targets[b0:b1]), distinct[3])
            frames.append(to_uint8(images))
        return Animation(np.concatenate(frames), mouth, landmarks)

    def window_mouths(
        self,
        refs: ReferenceSet,
        mel: MelRows,
        pose: torch.Tensor,
        start: int,
        emotion_label: str | None,
        intensity: float,
    ) -> torch.Tensor:
        """Predicted mouths (n, 57, 2) of frames ``start ..`` by windows of T (rule in :meth:`animate`), from
        ``pose`` (n, 78, 2); ``start`` need not be a multiple of T here (mel rows follow frame indices)."""
        n, window, segment = len(pose), self.window, self.emotion_segment
        windows = -(-n // window)
        index = np.minimum(np.arange(windows * window), n - 1)  # the last frame repeated to a whole window
        centres = [round(MEL_PER_FRAME * (start + w * window + window / 2)) for w in range(windows)]
        seg_starts = [c - segment // 2 for c in centres]
        last_row = mel.num_rows - 1
        lo = max(0, min(mel_window_start(start), seg_starts[0]))
        hi = min(last_row, max(mel_window_start(start + n - 1) + MEL_WINDOW, seg_starts[-1] + segment)) + 1
        rows = mel.rows(lo, hi)  # (hi - lo, 80)

        def take(first: int, count: int) -> np.ndarray:
            return rows[
                np.clip(np.arange(first, first + count), 0, last_row) - lo
            ]  # (count, 80), edge-padded

        mel_frames = np.stack([take(mel_window_start(start + i), MEL_WINDOW) for i in index])  # (W*T, 16, 80)
        segments = np.stack([take(first, segment) for first in seg_starts])  # (windows, S, 80)
        predicted = self.predict_mouth(
            refs.landmarks[None].expand(windows, -1, -1, -1),
            torch.from_numpy(mel_frames).view(windows, window, MEL_WINDOW, -1),  # (windows, T, 16, 80)
            pose[index].view(windows, window, *pose.shape[1:]),  # (windows, T, 78, 2)
            torch.from_numpy(segments),
            refs.source_emotion,
            refs.identity,
            emotion_label=emotion_label,
            intensity=intensity,
        )  # (windows, T, 57, 2)
        return predicted.reshape(windows * window, *predicted.shape[2:])[:n].cpu()  # (n, 57, 2)


def compose_landmarks(pose: torch.Tensor, mouth: torch.Tensor) -> torch.Tensor:
    """``ALL``-ordered landmarks from pose (..., 78, 2) and mouth (..., 57, 2) -> (..., 135, 2)."""
    leading_equal = pose.shape[:-2] == mouth.shape[:-2]
    if pose.shape[-2:] != (N_POSE, 2) or mouth.shape[-2:] != (N_MOUTH, 2) or not leading_equal:
        raise ValueError(
            f"pose must be (..., {N_POSE}, 2) and mouth (..., {N_MOUTH}, 2) with equal leading "
            f"dims, got {tuple(pose.shape)} and {tuple(mouth.shape)}"
        )
    return torch.cat([pose, mouth], dim=-2)  # (..., 135, 2): ALL = POSE + LIPS + JAW
