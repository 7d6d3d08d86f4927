"""Evaluation metrics of Table II (Sec. IV-D): PSNR, SSIM, M-LMD, EA, CSIM, LipSync.

Pure functions on arrays; nothing here loads a model. The judges that produce embeddings, logits and
landmarks live in :mod:`cemnet_core.eval.judges`. Each function's docstring says exactly what it computes
and how it differs from the tool the paper used.

Shapes: ``T`` frames, ``H, W`` image size, ``K`` landmarks, ``E`` classes, ``D`` embedding width.
Frames are ``(T, H, W, 3)`` RGB, uint8 (0..255) or float with an explicit ``data_range``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from cemnet_core.contracts import FER_CLASSES, MEAD_TO_FER

SSIM_SIGMA = 1.5  # Wang et al. (2004): 11x11 Gaussian window, sigma 1.5


def _as_float_frames(frames: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    array = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3):
        raise ValueError(f"{name} must be (T, H, W, 3) or (H, W, 3) images, got {tuple(array.shape)}")
    return array.astype(np.float64)


def _pair(
    generated: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_float_frames(generated, "generated"), _as_float_frames(target, "target")
    if a.shape != b.shape:
        raise ValueError(f"generated {tuple(a.shape)} and target {tuple(b.shape)} must have the same shape")
    return a, b


def psnr_per_frame(
    generated: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor, data_range: float = 255.0
) -> np.ndarray:
    """PSNR of each frame: ``10 log10(data_range^2 / MSE)`` over all pixels and channels -> (T,) dB.

    ``skimage.metrics.peak_signal_noise_ratio`` per frame. Identical frames give ``inf``.
    """
    a, b = _pair(generated, target)
    with np.errstate(divide="ignore"):
        values = [peak_signal_noise_ratio(b[t], a[t], data_range=data_range) for t in range(len(a))]
    return np.asarray(values, dtype=np.float64)  # (T,)


def psnr(
    generated: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    data_range: float = 255.0,
    max_db: float = 100.0,
) -> float:
    """PSNR of a clip: the mean over frames of :func:`psnr_per_frame`, each capped at ``max_db``.

    The paper does not say how frames are pooled; we average per-frame PSNR (as most talking-face
    evaluation code does) rather than computing one PSNR from the clip's pooled MSE. The cap keeps a
    perfectly copied frame (infinite PSNR) from making the mean infinite.
    """
    return float(np.minimum(psnr_per_frame(generated, target, data_range), max_db).mean())


def ssim_per_frame(
    generated: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor, data_range: float = 255.0
) -> np.ndarray:
    """SSIM of each frame (Wang et al. 2004) -> (T,).

    ``skimage.metrics.structural_similarity(a, b, data_range=data_range, channel_axis=-1,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``: local means, variances and covariance
    under an 11x11 Gaussian window (sigma 1.5, truncated at 3.5 sigma), ``C1 = (0.01 L)^2``,
    ``C2 = (0.03 L)^2``, the SSIM map averaged over the pixels at least 5 from the border, then over
    channels. Many papers use skimage's 7x7 uniform-window default instead; the paper does not say which
    it used.
    """
    a, b = _pair(generated, target)
    window = 2 * int(3.5 * SSIM_SIGMA + 0.5) + 1  # skimage's Gaussian window side (11)
    if min(a.shape[1:3]) < window:
        raise ValueError(f"SSIM needs images of at least {window} pixels a side, got {tuple(a.shape[1:3])}")
    values = [
        structural_similarity(
            a[t], b[t], data_range=data_range, channel_axis=-1, gaussian_weights=True, sigma=SSIM_SIGMA,
            use_sample_covariance=False,
        )
        for t in range(len(a))
    ]  # fmt: skip
    return np.asarray(values, dtype=np.float64)  # (T,)


def ssim(
    generated: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor, data_range: float = 255.0
) -> float:
    """SSIM of a clip: the mean over frames of :func:`ssim_per_frame`."""
    return float(ssim_per_frame(generated, target, data_range).mean())


def landmark_distance(
    predicted: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor, scale: float = 1.0
) -> float:
    """M-LMD: mean Euclidean distance between corresponding mouth landmarks, times ``scale``.

    predicted, target: (T, K, 2) in the same coordinates (e.g. crop-normalised; ``scale=128`` then gives
    pixels of the 128x128 crop). Frames where either side has a NaN (no face found) are left out; a clip
    with no comparable frame raises ``ValueError``. As in EAMM / EAT's M-LMD the distance is averaged over
    points and frames; the paper's landmarks come from its own detector on 256x256 frames, ours from
    MediaPipe's 57 ``MOUTH`` points (lips + jaw), so absolute values are not comparable to Table II.
    """
    p = np.asarray(predicted, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 3 or p.shape[-1] != 2:
        raise ValueError(f"predicted and target must both be (T, K, 2), got {p.shape} and {t.shape}")
    usable = ~(np.isnan(p).any(axis=(1, 2)) | np.isnan(t).any(axis=(1, 2)))  # (T,)
    if not usable.any():
        raise ValueError("no frame has landmarks on both sides; cannot compute M-LMD")
    return float(np.linalg.norm(p[usable] - t[usable], axis=-1).mean() * scale)


def fer_index(mead_emotion: str) -> int:
    """Index in FER2013's class order of a MEAD emotion, through :data:`MEAD_TO_FER`."""
    if mead_emotion not in MEAD_TO_FER:
        raise ValueError(f"unknown MEAD emotion {mead_emotion!r}; expected one of {sorted(MEAD_TO_FER)}")
    return FER_CLASSES.index(MEAD_TO_FER[mead_emotion])


def emotion_accuracy(logits: np.ndarray | torch.Tensor, labels: Sequence[int] | np.ndarray) -> float:
    """EA: the fraction of frames whose argmax class equals the label.

    logits: (T, E) of a fixed judge (the frozen FER2013 mini-Xception on real faces, where labels are
    :func:`fer_index` of the driving audio's MEAD emotion; or the corpus expression judge with MEAD's 8
    classes); labels: (T,) or one label per frame. The paper uses Deepface's emotion model per frame; ours
    is a different network with 7 classes (contempt scored as disgust), so absolute values differ.
    """
    scores = np.asarray(logits)
    targets = np.asarray(labels).reshape(-1)
    if scores.ndim != 2 or scores.shape[0] != targets.shape[0]:
        raise ValueError(
            f"logits must be (T, E) with one label per row, got {scores.shape} and {targets.shape}"
        )
    if scores.shape[0] == 0:
        raise ValueError("no frames to score")
    return float((scores.argmax(axis=1) == targets).mean())


def identity_similarity(generated: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor) -> float:
    """CSIM: mean cosine similarity between the identity embeddings of generated frames and the reference.

    generated: (T, D) embeddings; reference: (D,) (e.g. the mean embedding of the reference images) or
    (T, D) paired row by row. The paper uses ArcFace (trained on CASIA-WebFace); on real faces we use
    dlib's ResNet (128-d) and on the procedural corpus a speaker-classifier embedding, so values are
    comparable between methods here but not with Table II.
    """
    g = np.asarray(generated, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    paired = r.ndim == 1 or r.shape == g.shape
    if g.ndim != 2 or r.ndim not in (1, 2) or r.shape[-1] != g.shape[-1] or not paired:
        raise ValueError(
            f"generated must be (T, D) and reference (D,) or (T, D), got {g.shape} and {r.shape}"
        )
    norms = np.linalg.norm(g, axis=-1) * np.linalg.norm(r, axis=-1)
    return float(((g * r).sum(axis=-1) / np.maximum(norms, 1e-12)).mean())


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation of finite values (runs over seeds); NaN if none."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return float("nan"), float("nan")
    array = np.asarray(finite)
    return float(array.mean()), float(array.std())
