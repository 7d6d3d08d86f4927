"""Identity features of the reference face (Sec. III: "the identity feature of the reference image").

CEM-Net adds an identity condition to the cross-emotion feature of the Emotion Bridging Memory
(Sec. III-C, Eq. 8) and measures identity preservation with CSIM (Sec. IV-D).

Deviation from the paper: the paper uses ArcFace pre-trained on CASIA-WebFace; its weights are not
obtainable offline, so this module uses dlib's face recognition ResNet (``dlib.face_recognition_resnet_v1``,
128-d, trained for face verification: same person when the L2 distance of dlib's raw descriptors < 0.6).
It is a fixed, pretrained network: nothing here is trained. Being dlib's (not a torch model) and finding
its files through the weights registry (:mod:`cemnet_core.weights`), it sits above ``models/``.

Pipeline of :meth:`IdentityEncoder.embed`:

    image RGB uint8 (H, W, 3)
    -> face box: given, or from MediaPipe landmarks (478, 2) px, or dlib's HOG frontal face detector
    -> 5-point landmarks (eye corners + nose base) by ``dlib.shape_predictor_5``
    -> aligned 150x150 chip (``dlib.get_face_chip`` geometry, padding 0.25)
    -> ResNet -> 128-d descriptor -> L2-normalised float32 (128,)

Identity similarity is then :func:`cosine` of two embeddings (1 = same direction).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from cemnet_core import weights
from cemnet_core.contracts import IDENTITY_DIM
from cemnet_core.errors import NoFaceError, WeightsError

RECOGNITION_WEIGHTS = "dlib.face_recognition_resnet_v1"
SHAPE_PREDICTOR_WEIGHTS = "dlib.shape_predictor_5"
# dlib's HOG detector boxes are square-ish and sit lower than MediaPipe's mesh box (which includes the
# forehead): relative to the mesh box, mean offsets of dlib's box measured on the 22 real sample images
# (fractions of the mesh width / height, positive = inwards). Mimicking them lets the shape predictor start
# from the box shape it was trained on.
_BOX_LEFT, _BOX_TOP, _BOX_RIGHT, _BOX_BOTTOM = -0.05, 0.05, -0.03, 0.04

Box = tuple[float, float, float, float]


def _check_image(image: np.ndarray) -> np.ndarray:
    if (
        not isinstance(image, np.ndarray)
        or image.ndim != 3
        or image.shape[-1] != 3
        or image.dtype != np.uint8
    ):
        shape = getattr(image, "shape", None)
        raise ValueError(
            f"image must be an RGB uint8 array (H, W, 3), got {shape} {getattr(image, 'dtype', '')}"
        )
    return np.ascontiguousarray(image)


def landmark_box(landmarks: np.ndarray) -> Box:
    """A dlib-detector-like face box ``(x0, y0, x1, y1)`` px from MediaPipe landmarks (478, 2) px."""
    if landmarks.ndim != 2 or landmarks.shape[0] < 468 or landmarks.shape[1] != 2:
        raise ValueError(f"landmarks must be MediaPipe (478, 2) pixels, got {landmarks.shape}")
    mesh = landmarks[:468]
    x0, y0 = mesh.min(axis=0)
    x1, y1 = mesh.max(axis=0)
    width, height = x1 - x0, y1 - y0
    return (
        float(x0 + _BOX_LEFT * width),
        float(y0 + _BOX_TOP * height),
        float(x1 - _BOX_RIGHT * width),
        float(y1 - _BOX_BOTTOM * height),
    )


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of embeddings along the last axis: (..., D) x (..., D) -> (...)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"embeddings must share the last dimension, got {a.shape} and {b.shape}")
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return (a * b).sum(axis=-1) / np.maximum(norms, 1e-12)


def mean_identity(embeddings: np.ndarray) -> np.ndarray:
    """The identity of a set of references: the mean of their embeddings (n, 128), L2-normalised -> (128,).

    What the EBM is conditioned on (Sec. III-C), in training (``ebm`` stage), generation and evaluation.
    """
    mean = np.mean(embeddings, axis=0)  # (128,)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


class IdentityEncoder:
    """dlib face recognition embeddings (128-d, L2-normalised) of faces in RGB images.

    Args:
        recognition_model: path of ``dlib_face_recognition_resnet_model_v1.dat``; None asks the weights
            registry (``CEMNET_WEIGHTS_DIR``, caches, download). Either way its sha256 is checked.
        shape_predictor: path of ``shape_predictor_5_face_landmarks.dat``; None asks the registry.
        detector_upsample: image upsamplings for dlib's detector (1 finds faces down to about 40 px).
    """

    def __init__(
        self,
        recognition_model: str | os.PathLike[str] | None = None,
        shape_predictor: str | os.PathLike[str] | None = None,
        detector_upsample: int = 1,
    ) -> None:
        import dlib  # heavy native module, loaded only where identities are needed

        # resolve() checks the pinned sha256 of given paths too, so a wrong file is never loaded.
        recognition_path = weights.resolve(RECOGNITION_WEIGHTS, path=recognition_model)
        predictor_path = weights.resolve(SHAPE_PREDICTOR_WEIGHTS, path=shape_predictor)
        try:
            self._recognizer = dlib.face_recognition_model_v1(str(recognition_path))
            self._predictor = dlib.shape_predictor(str(predictor_path))
        except RuntimeError as error:
            raise WeightsError(
                f"cannot load dlib models {recognition_path} / {predictor_path} ({error}); "
                "check them with `cemnet weights verify`"
            ) from error
        self._dlib = dlib
        self._detector: Any = None
        self.detector_upsample = detector_upsample

    def detect(self, image: np.ndarray) -> Box:
        """Box ``(x0, y0, x1, y1)`` px of the largest face dlib's frontal detector finds in ``image``.

        Raises:
            NoFaceError: no face was found.
        """
        image = _check_image(image)
        if self._detector is None:
            self._detector = self._dlib.get_frontal_face_detector()
        faces = list(self._detector(image, self.detector_upsample))
        if not faces:
            raise NoFaceError(
                "no face found in the image; give a photo or frame with one clearly visible, roughly frontal "
                "face at least about 80 pixels wide, or pass its box or landmarks"
            )
        largest = max(faces, key=lambda rect: rect.width() * rect.height())
        return (float(largest.left()), float(largest.top()), float(largest.right()), float(largest.bottom()))

    def _shape(self, image: np.ndarray, box: Box) -> Any:
        x0, y0, x1, y1 = box
        if not (x1 > x0 and y1 > y0):
            raise ValueError(f"box must be (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {box}")
        rect = self._dlib.rectangle(round(x0), round(y0), round(x1), round(y1))
        return self._predictor(image, rect)

    def _box(self, image: np.ndarray, box: Box | None, landmarks: np.ndarray | None) -> Box:
        if box is not None and landmarks is not None:
            raise ValueError("pass either box or landmarks, not both")
        if box is not None:
            return tuple(float(v) for v in box)  # type: ignore[return-value]
        if landmarks is not None:
            return landmark_box(np.asarray(landmarks, dtype=np.float64))
        return self.detect(image)

    def face_chip(
        self, image: np.ndarray, box: Box | None = None, landmarks: np.ndarray | None = None
    ) -> np.ndarray:
        """The aligned 150x150 RGB uint8 chip the ResNet sees (for inspection)."""
        image = _check_image(image)
        shape = self._shape(image, self._box(image, box, landmarks))
        return np.asarray(self._dlib.get_face_chip(image, shape, size=150, padding=0.25))

    def embed(
        self, image: np.ndarray, box: Box | None = None, landmarks: np.ndarray | None = None
    ) -> np.ndarray:
        """Identity embedding of the face in ``image``.

        Args:
            image: (H, W, 3) uint8 RGB.
            box: face box ``(x0, y0, x1, y1)`` in pixels, or None.
            landmarks: MediaPipe landmarks (478, 2) in pixels, or None; with neither, dlib's detector
                finds the largest face.

        Returns:
            (128,) float32, L2 norm 1.

        Raises:
            NoFaceError: no box/landmarks given and the detector finds no face.
        """
        image = _check_image(image)
        shape = self._shape(image, self._box(image, box, landmarks))
        descriptor = np.asarray(self._recognizer.compute_face_descriptor(image, shape), dtype=np.float64)
        return (descriptor / np.linalg.norm(descriptor)).astype(np.float32)

    def embed_batch(
        self,
        images: Sequence[np.ndarray] | np.ndarray,
        boxes: Sequence[Box] | None = None,
        landmarks: Sequence[np.ndarray] | np.ndarray | None = None,
    ) -> np.ndarray:
        """Embeddings of one face per image: images (n, H, W, 3) or a list -> (n, 128) float32.

        ``boxes`` (n boxes) or ``landmarks`` (n, 478, 2) px, optional, as in :meth:`embed`.
        """
        count = len(images)
        for name, values in (("boxes", boxes), ("landmarks", landmarks)):
            if values is not None and len(values) != count:
                raise ValueError(f"{name} must have one entry per image ({count}), got {len(values)}")
        embeddings = np.empty((count, IDENTITY_DIM), dtype=np.float32)
        for i in range(count):
            embeddings[i] = self.embed(
                images[i],
                box=None if boxes is None else boxes[i],
                landmarks=None if landmarks is None else landmarks[i],
            )
        return embeddings
