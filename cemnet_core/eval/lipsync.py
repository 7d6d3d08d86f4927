"""The LipSync metrics LSE-C / LSE-D of Sec. IV-D ("LipSync"), scored as syncnet_python does.

The paper scores lip synchronisation with SyncNet confidence as syncnet_python computes it (Wav2Lip's
LSE-C / LSE-D protocol); this module reproduces the scoring of ``SyncNetInstance.evaluate`` around the
network of :mod:`cemnet_core.models.syncnet`:

1. lip stream: 5 consecutive face crops (:func:`~cemnet_core.models.syncnet.prepare_lip_frames` to the
   model's input) -> one embedding per window;
2. audio stream: MFCC (:func:`cemnet_core.data.mfcc.mfcc`, 13 coefficients, 100 frames/s) windows of 20
   frames (0.2 s); window ``t`` covers video frames t..t+4 and MFCC frames 4t..4t+19;
3. ``min_length = min(T, floor(samples / 640))``, windows t = 0 .. min_length - 6 (syncnet_python's
   ``range(0, min_length - 5)``);
4. for each window, Euclidean distances (``pairwise_distance``, eps 1e-6) between its video embedding and
   the audio embeddings shifted by -vshift..+vshift (zero-padded), vshift = 15;
5. mean over windows -> (2 vshift + 1,) curve; LSE-D = its minimum, LSE-C = median - minimum,
   AV offset = vshift - argmin.

Differences from the original pipeline: our frames come from decoded video resized with bilinear
interpolation instead of syncnet_python's JPEG-compressed ffmpeg frame dump of its own face crop (a different
face tracker and crop box), so absolute scores can differ from published numbers by a few hundredths to
tenths.

Shapes: ``W`` windows, ``D`` embedding width; frames ``(T, H, W, 3)`` RGB uint8, audio ``(samples,)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from cemnet_core.contracts import LIP_FRAMES, MFCC_PER_FRAME, MFCC_WINDOW, SAMPLES_PER_FRAME, VSHIFT
from cemnet_core.data.mfcc import mfcc
from cemnet_core.models.syncnet import SyncNet, prepare_lip_frames


class SyncScores(NamedTuple):
    """LipSync metrics of one video: LSE-C (confidence, higher is better), LSE-D (distance, lower better)."""

    lse_c: float
    lse_d: float
    offset: int
    mean_distances: torch.Tensor  # (2 vshift + 1,) mean over windows per offset
    distances: torch.Tensor  # (W, 2 vshift + 1) per window and offset


def sync_scores(
    video_embeddings: torch.Tensor, audio_embeddings: torch.Tensor, vshift: int = VSHIFT
) -> SyncScores:
    """LSE-C / LSE-D / AV offset from per-window embeddings (W, D) exactly as SyncNetInstance.evaluate.

    Distance of window i at shift k (k = 0 .. 2 vshift) is ``||v_i - a_{i + k - vshift} + 1e-6||``, with zero
    audio embeddings outside 0..W-1 (``calc_pdist``).
    """
    if video_embeddings.dim() != 2 or video_embeddings.shape != audio_embeddings.shape:
        raise ValueError(
            f"embeddings must both be (W, D), got {tuple(video_embeddings.shape)} "
            f"and {tuple(audio_embeddings.shape)}"
        )
    if video_embeddings.shape[0] < 1:
        raise ValueError("need at least one window of embeddings")
    window = 2 * vshift + 1
    W, D = video_embeddings.shape
    padded = F.pad(audio_embeddings.float(), (0, 0, vshift, vshift))  # (W + 2 vshift, D)
    shifted = padded.unfold(0, window, 1).permute(0, 2, 1)  # (W, window, D)
    distances = F.pairwise_distance(
        video_embeddings.float().unsqueeze(1).expand(W, window, D).reshape(-1, D), shifted.reshape(-1, D)
    ).reshape(W, window)  # (W, window)
    mean_distances = distances.mean(dim=0)  # (window,)
    minimum, argmin = torch.min(mean_distances, 0)
    confidence = torch.median(mean_distances) - minimum
    return SyncScores(
        lse_c=float(confidence),
        lse_d=float(minimum),
        offset=int(vshift - argmin),
        mean_distances=mean_distances,
        distances=distances,
    )


@torch.no_grad()
def evaluate_sync(
    model: SyncNet, frames: torch.Tensor, audio: torch.Tensor, vshift: int = VSHIFT, batch_size: int = 20
) -> SyncScores:
    """Score one talking-face video: frames (T, H, W, 3) RGB uint8 face crops, 25 fps; audio (samples,) 16k.

    The frames are prepared for whatever the model's config says (``lip_size``, ``grayscale``). Raises
    ``ValueError`` when fewer than 6 frames overlap with the audio (syncnet_python needs
    ``min_length - 5 >= 1`` windows).
    """
    min_length = min(frames.shape[0], audio.shape[0] // SAMPLES_PER_FRAME)
    num_windows = min_length - LIP_FRAMES
    if num_windows < 1:
        raise ValueError(f"need at least {LIP_FRAMES + 1} frames with audio, got {min_length}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    coefficients = mfcc(audio.cpu()).T.float()  # (13, num_mfcc)
    lips = prepare_lip_frames(frames.cpu(), model.config.lip_size, model.config.grayscale)  # (C, T, H, W)
    video_embeddings, audio_embeddings = [], []
    for start in range(0, num_windows, batch_size):
        starts = range(start, min(num_windows, start + batch_size))
        lip_batch = torch.stack([lips[:, t : t + LIP_FRAMES] for t in starts])  # (b, C, 5, H, W)
        mfcc_batch = torch.stack(
            [coefficients[:, MFCC_PER_FRAME * t : MFCC_PER_FRAME * t + MFCC_WINDOW] for t in starts]
        ).unsqueeze(1)  # (b, 1, 13, 20)
        video_embeddings.append(model.forward_lip(lip_batch.to(device)).cpu())
        audio_embeddings.append(model.forward_aud(mfcc_batch.to(device)).cpu())
    model.train(was_training)
    return sync_scores(torch.cat(video_embeddings), torch.cat(audio_embeddings), vshift)
