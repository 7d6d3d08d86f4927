"""The judges of Table II (Sec. IV-D): fixed networks that score generated frames and are not part of CEM-Net.

Two families, with the same small interfaces (:class:`EmotionJudge`, :class:`IdentityJudge`):

Real faces (pretrained, never trained here):
    - :class:`FERJudge` (:mod:`cemnet_core.eval.fer`): the untouched FER2013 mini-Xception, 7 classes, on
      the tight central crop FER2013 was trained for; MEAD's 8 emotions are mapped with
      :data:`cemnet_core.contracts.MEAD_TO_FER` (contempt -> disgust). Stands in for Deepface's emotion
      model. :class:`FERLowerFaceJudge`: the same on the lower face (EA on the lower face, ``ea_lower``).
    - :class:`DlibIdentityJudge`: dlib's 128-d face recognition ResNet (in place of ArcFace).
    - :class:`MediaPipeMouthJudge`: MediaPipe Face Landmarker (VIDEO mode) -> the 57 ``MOUTH`` points, run
      on generated and ground-truth frames alike, so M-LMD compares the same detector on both.
    - :class:`LipSyncJudge`: SyncNet v2 (LSE-C / LSE-D) from a ``syncnet`` release folder (the converted
      ``syncnet_v2.model`` or a lip-sync expert trained on the data); it records which one.

Procedural corpus (``cemnet synth``, :mod:`cemnet_core.eval.corpus_judges`): small CNNs
(:class:`JudgeNet`) trained on the corpus's own ground-truth frames of the non-test splits, each measured on
held-out clips: expression (whole face and lower face) and identity. M-LMD on the corpus compares the
predicted mouth with the true landmarks stored in the clip files (no detector at all).

Shapes: ``T`` frames, ``E`` classes, ``D`` embedding width; frames are (T, H, W, 3) RGB uint8.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from cemnet_core.contracts import MOUTH
from cemnet_core.data.sync_dataset import mouth_region
from cemnet_core.eval.corpus_judges import (
    JUDGE_KIND,
    JUDGES_FOLDER,
    TARGETS,
    TRAIN_SPLITS,
    CorpusEmotionJudge,
    CorpusIdentityJudge,
    JudgeNet,
    JudgeNetConfig,
    corpus_judges,
    corpus_lower_face_judge,
    judge_training_records,
    load_corpus_judge,
    manifest_sha256,
    train_corpus_judge,
)
from cemnet_core.eval.fer import FERJudge, FERLowerFaceJudge
from cemnet_core.eval.lipsync import SyncScores, evaluate_sync
from cemnet_core.models.syncnet import SyncNet
from cemnet_core.pretrained import load_syncnet

__all__ = [  # the corpus and FER judges live in their own modules; this is their one import path
    "JUDGES_FOLDER", "JUDGE_KIND", "TARGETS", "TRAIN_SPLITS", "CorpusEmotionJudge", "CorpusIdentityJudge",
    "DlibIdentityJudge", "EmotionJudge", "FERJudge", "FERLowerFaceJudge", "IdentityJudge", "JudgeNet",
    "JudgeNetConfig", "LipSyncJudge", "LowerFaceJudge", "MediaPipeMouthJudge", "corpus_judges",
    "corpus_lower_face_judge", "judge_training_records", "load_corpus_judge", "load_lipsync_judge",
    "manifest_sha256", "train_corpus_judge",
]  # fmt: skip


class EmotionJudge(Protocol):
    """Scores the expression of face crops."""

    name: str
    classes: tuple[str, ...]

    def target_index(self, mead_emotion: str) -> int:
        """Class index that counts as correct for frames driven by audio of ``mead_emotion``."""

    def logits(self, frames: np.ndarray) -> np.ndarray:
        """frames (T, H, W, 3) uint8 RGB face crops -> (T, E) class scores."""


class LowerFaceJudge(Protocol):
    """Scores the expression of the lower face only (EA on the region a method generates, ``ea_lower``)."""

    name: str
    classes: tuple[str, ...]

    def target_index(self, mead_emotion: str) -> int:
        """Class index that counts as correct for frames driven by audio of ``mead_emotion``."""

    def lower_logits(self, frames: np.ndarray, references: np.ndarray) -> np.ndarray:
        """frames (T, S, S, 3) and the method's references (N, S, S, 3) uint8 -> (T, E) class scores of
        the frames' lower half."""


class IdentityJudge(Protocol):
    """Identity embeddings of face crops."""

    name: str

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """frames (T, H, W, 3) uint8 RGB face crops -> (T, D) embeddings."""


# --------------------------------------------------------------------------- pretrained judges (real faces)


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
