"""SyncNet v2 (syncnet_python's ``S``) and the LipSync metrics LSE-C / LSE-D, Sec. IV-D ("LipSync").

The paper scores lip synchronisation with SyncNet confidence as syncnet_python computes it (Wav2Lip's
LSE-C / LSE-D protocol). This file reproduces, layer for layer, the network ``S`` of
``joonson/syncnet_python/SyncNetModel.py`` (same module names and indices, so ``syncnet_v2.model`` maps key
for key) and the scoring of ``SyncNetInstance.evaluate``:

1. lip stream: 5 consecutive 224x224 face crops, BGR (cv2 order), float 0..255 unnormalised -> 1024-d;
2. audio stream: MFCC (13 coefficients, 100 frames/s) windows of 20 frames (0.2 s) -> 1024-d;
   window ``t`` covers video frames t..t+4 and MFCC frames 4t..4t+19;
3. ``min_length = min(T, floor(samples / 640))``, windows t = 0 .. min_length - 6 (syncnet_python's
   ``range(0, min_length - 5)``);
4. for each window, Euclidean distances (``pairwise_distance``, eps 1e-6) between its video embedding and
   the audio embeddings shifted by -vshift..+vshift (zero-padded), vshift = 15;
5. mean over windows -> (2 vshift + 1,) curve; LSE-D = its minimum, LSE-C = median - minimum,
   AV offset = vshift - argmin.

Shapes::

    lips    (B, 3, 5, 224, 224)  BGR 0..255        mfcc  (B, 1, 13, 20)
    embeddings (B, D), D = config.embedding_dim (1024 for v2)

A lip-sync expert trained here (stage ``syncnet``) may read other lip inputs: ``SyncNetConfig.lip_size``
(H, W) sets the frame size (the last lip convolution's kernel becomes the size of the map it sees, 6x6 at
224x224, so the paper configuration keeps syncnet_python's layers exactly) and ``grayscale`` one luma
channel; :func:`evaluate_sync` prepares the frames for whatever the model's config says. The expert of
``cemnet train syncnet`` reads the 64x128 mouth crops at their own size: upsampling them to 224x224, as
syncnet_python does with its face crops, adds no information and costs about 8x the lip stream's time
(16 windows forward + backward, ``small`` widths, 1 CPU thread: 0.095 s at 224x224, 0.012 s at 64x128).

MFCC: :func:`mfcc` rebuilds python_speech_features.mfcc (defaults: 25 ms rectangular frames every 10 ms,
pre-emphasis 0.97, 512-point power spectrum, 26 triangular mel filters on integer FFT bins, log, DCT-II
(orthonormal, torchaudio's ``create_dct`` matrix rebuilt in float64), 13 coefficients, sinusoidal
lifter 22, c0 replaced by the log frame energy) in float64 on int16-scaled samples, as syncnet_python
feeds it the int16 wav; it matches python_speech_features 0.6 to 1e-12. Differences from the original
pipeline: torchaudio's ``MFCC`` transform is not used because its continuous-frequency mel filters differ
from python_speech_features' integer-bin filters; our frames come
from decoded video resized with bilinear interpolation instead of syncnet_python's JPEG-compressed
ffmpeg frame dump of its own face crop (a different face tracker and crop box), so absolute scores can
differ from published numbers by a few hundredths to tenths.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cemnet_core.configs import config_from_dict, config_to_dict
from cemnet_core.errors import ConfigError, WeightsError
from cemnet_core.release import load_model, save_release

LIP_FRAMES = 5
LIP_SIZE = 224
MFCC_COEFFICIENTS = 13
MFCC_WINDOW = 20
MFCC_PER_FRAME = 4
SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps
VSHIFT = 15


@dataclass(frozen=True)
class SyncNetConfig:
    """Widths of SyncNet v2; ``paper()`` is syncnet_python's ``S`` (the only one pretrained weights fit)."""

    audio_channels: tuple[int, ...] = (64, 192, 384, 256, 256, 512)
    lip_channels: tuple[int, ...] = (96, 256, 256, 256, 256, 512)
    fc_channels: int = 512
    embedding_dim: int = 1024
    # What the lip stream was trained on: "face" = whole face crops (syncnet_python's weights), "mouth" = the
    # lower half of the 128x128 face crops (the lip-sync expert of `cemnet train syncnet`).
    input_region: str = "face"
    # The lip stream's input (H, W), frames are resized to it; syncnet_python: 224x224. The expert of
    # `cemnet train syncnet` reads the 64x128 mouth crops as they are (12x fewer pixels than 224x224).
    lip_size: tuple[int, int] = (LIP_SIZE, LIP_SIZE)
    grayscale: bool = False  # one luma channel instead of BGR (syncnet_python: BGR)

    def __post_init__(self) -> None:
        if len(self.audio_channels) != 6 or len(self.lip_channels) != 6:
            raise ConfigError("SyncNetConfig needs 6 audio and 6 lip channel widths (the v2 layout).")
        if len(self.lip_size) != 2 or min(lip_feature_size(self.lip_size)) < 1:
            raise ConfigError(
                f"SyncNetConfig.lip_size {tuple(self.lip_size)} is too small for the lip stream; "
                "use at least (64, 64) (height, width)"
            )
        if self.input_region not in ("face", "mouth"):
            raise ConfigError(
                f"SyncNetConfig.input_region must be 'face' or 'mouth', got {self.input_region!r}"
            )

    @classmethod
    def paper(cls) -> SyncNetConfig:
        """syncnet_python's ``S(num_layers_in_fc_layers=1024)``."""
        return cls()

    @classmethod
    def tiny(cls) -> SyncNetConfig:
        """Same layout, few channels: for CPU tests (inputs keep their real sizes)."""
        return cls(
            audio_channels=(4, 8, 8, 8, 8, 16),
            lip_channels=(4, 8, 8, 8, 8, 16),
            fc_channels=16,
            embedding_dim=8,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict of the fields (:func:`~cemnet_core.configs.config_to_dict`)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SyncNetConfig:
        """Inverse of :meth:`to_dict`, type-checked; ``ConfigError`` naming unknown keys."""
        return config_from_dict(cls, data)


def lip_feature_size(lip_size: tuple[int, int]) -> tuple[int, int]:
    """(H, W) of the lip stream's input -> (h, w) of its last pooled map (224 -> 6), the last conv's kernel.

    Follows ``netcnnlip``'s convolutions and poolings: k7 s2, pool k3 s2, k5 s2 p1, pool k3 s2 p1,
    three 'same' k3 convs, pool k3 s2.
    """

    def size(s: int) -> int:
        s = (s - 7) // 2 + 1  # conv 7x7 stride 2
        s = (s - 3) // 2 + 1  # max pool 3x3 stride 2
        s = (s + 2 - 5) // 2 + 1  # conv 5x5 stride 2 pad 1
        s = (s + 2 - 3) // 2 + 1  # max pool 3x3 stride 2 pad 1
        return (s - 3) // 2 + 1  # max pool 3x3 stride 2

    height, width = lip_size
    return size(int(height)), size(int(width))


class SyncNet(nn.Module):
    """syncnet_python's ``S``: ``forward_aud`` (MFCC window -> embedding), ``forward_lip`` (5 frames ->
    embedding).

    Attribute names and ``nn.Sequential`` indices are the original ones, so its state dict keys are
    ``netcnnaud.0.weight`` ... exactly as in ``syncnet_v2.model``.
    """

    def __init__(self, config: SyncNetConfig) -> None:
        super().__init__()
        self.config = config
        a1, a2, a3, a4, a5, a6 = config.audio_channels
        v1, v2, v3, v4, v5, v6 = config.lip_channels
        self.netcnnaud = nn.Sequential(
            nn.Conv2d(1, a1, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)),
            nn.BatchNorm2d(a1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=(1, 1), stride=(1, 1)),
            nn.Conv2d(a1, a2, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)),
            nn.BatchNorm2d(a2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=(3, 3), stride=(1, 2)),
            nn.Conv2d(a2, a3, kernel_size=(3, 3), padding=(1, 1)),
            nn.BatchNorm2d(a3),
            nn.ReLU(),
            nn.Conv2d(a3, a4, kernel_size=(3, 3), padding=(1, 1)),
            nn.BatchNorm2d(a4),
            nn.ReLU(),
            nn.Conv2d(a4, a5, kernel_size=(3, 3), padding=(1, 1)),
            nn.BatchNorm2d(a5),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=(3, 3), stride=(2, 2)),
            nn.Conv2d(a5, a6, kernel_size=(5, 4), padding=(0, 0)),
            nn.BatchNorm2d(a6),
            nn.ReLU(),
        )
        self.netfcaud = nn.Sequential(
            nn.Linear(a6, config.fc_channels),
            nn.BatchNorm1d(config.fc_channels),
            nn.ReLU(),
            nn.Linear(config.fc_channels, config.embedding_dim),
        )
        self.netfclip = nn.Sequential(
            nn.Linear(v6, config.fc_channels),
            nn.BatchNorm1d(config.fc_channels),
            nn.ReLU(),
            nn.Linear(config.fc_channels, config.embedding_dim),
        )
        in_channels = 1 if config.grayscale else 3
        last_kernel = lip_feature_size(config.lip_size)  # (6, 6) for 224x224 input
        self.netcnnlip = nn.Sequential(
            nn.Conv3d(in_channels, v1, kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=0),
            nn.BatchNorm3d(v1),
            nn.ReLU(),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
            nn.Conv3d(v1, v2, kernel_size=(1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)),
            nn.BatchNorm3d(v2),
            nn.ReLU(),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            nn.Conv3d(v2, v3, kernel_size=(1, 3, 3), padding=(0, 1, 1)),
            nn.BatchNorm3d(v3),
            nn.ReLU(),
            nn.Conv3d(v3, v4, kernel_size=(1, 3, 3), padding=(0, 1, 1)),
            nn.BatchNorm3d(v4),
            nn.ReLU(),
            nn.Conv3d(v4, v5, kernel_size=(1, 3, 3), padding=(0, 1, 1)),
            nn.BatchNorm3d(v5),
            nn.ReLU(),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
            nn.Conv3d(v5, v6, kernel_size=(1, *last_kernel), padding=0),
            nn.BatchNorm3d(v6),
            nn.ReLU(),
        )

    def forward_aud(self, mfcc_windows: torch.Tensor) -> torch.Tensor:
        """mfcc_windows: (B, 1, 13, 20) -> audio embeddings (B, D)."""
        if mfcc_windows.dim() != 4 or mfcc_windows.shape[1:] != (1, MFCC_COEFFICIENTS, MFCC_WINDOW):
            raise ValueError(f"mfcc windows must be (B, 1, 13, 20), got {tuple(mfcc_windows.shape)}")
        hidden = self.netcnnaud(mfcc_windows)  # (B, a6, 1, 1)
        return self.netfcaud(hidden.flatten(1))  # (B, D)

    def forward_lip(self, lips: torch.Tensor) -> torch.Tensor:
        """lips: (B, C, 5, H, W) BGR (C = 3) or luma (C = 1, ``grayscale``) 0..255, (H, W) = ``lip_size``
        (224x224 for syncnet_python's weights) -> video embeddings (B, D)."""
        expected = (1 if self.config.grayscale else 3, LIP_FRAMES, *self.config.lip_size)
        if lips.dim() != 5 or tuple(lips.shape[1:]) != expected:
            raise ValueError(f"lips must be (B, {', '.join(map(str, expected))}), got {tuple(lips.shape)}")
        hidden = self.netcnnlip(lips)  # (B, v6, 1, 1, 1)
        return self.netfclip(hidden.flatten(1))  # (B, D)

    def forward(self, lips: torch.Tensor, mfcc_windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, 5, 224, 224), (B, 1, 13, 20) -> (video embeddings (B, D), audio embeddings (B, D))."""
        return self.forward_lip(lips), self.forward_aud(mfcc_windows)


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(num_filters: int = 26, nfft: int = 512, sample_rate: int = 16000) -> torch.Tensor:
    """python_speech_features' triangular filters on integer FFT bins: (num_filters, nfft//2 + 1) float64."""
    mel_points = torch.linspace(
        0.0,
        float(_hz_to_mel(torch.tensor(sample_rate / 2.0, dtype=torch.float64))),
        num_filters + 2,
        dtype=torch.float64,
    )
    bins = torch.floor((nfft + 1) * _mel_to_hz(mel_points) / sample_rate)
    bank = torch.zeros(num_filters, nfft // 2 + 1, dtype=torch.float64)
    for j in range(num_filters):
        left, centre, right = (float(b) for b in bins[j : j + 3])
        for i in range(int(left), int(centre)):
            bank[j, i] = (i - left) / (centre - left)
        for i in range(int(centre), int(right)):
            bank[j, i] = (right - i) / (right - centre)
    return bank


def dct_matrix(num_coefficients: int, num_filters: int) -> torch.Tensor:
    """Orthonormal DCT-II (scipy ``dct(type=2, norm="ortho")``): (num_filters, num_coefficients) float64.

    The same matrix as ``torchaudio.functional.create_dct(..., norm="ortho")``, built in float64 because
    torchaudio's float32 one moves the coefficients by up to 1e-4 from python_speech_features'.
    """
    n = torch.arange(num_filters, dtype=torch.float64)
    k = torch.arange(num_coefficients, dtype=torch.float64).unsqueeze(1)
    dct = torch.cos(math.pi / num_filters * (n + 0.5) * k) * math.sqrt(
        2.0 / num_filters
    )  # (coefficients, filters)
    dct[0] /= math.sqrt(2.0)
    return dct.T


def mfcc(audio: torch.Tensor, sample_rate: int = 16000) -> torch.Tensor:
    """MFCC as python_speech_features.mfcc on the int16 version of ``audio``.

    audio: (samples,) float in [-1, 1] at 16 kHz -> (num_frames, 13) float64 with
    ``num_frames = 1 + ceil((samples - 400) / 160)`` (one frame if shorter than 400 samples).
    """
    if audio.dim() != 1:
        raise ValueError(f"audio must be (samples,), got {tuple(audio.shape)}")
    frame_length = round(0.025 * sample_rate)
    frame_step = round(0.01 * sample_rate)
    nfft = 512
    # syncnet_python reads a pcm_s16le wav: the features see int16 amplitudes.
    signal = torch.round(audio.double() * 32768.0).clamp(-32768.0, 32767.0)
    signal = torch.cat([signal[:1], signal[1:] - 0.97 * signal[:-1]])  # pre-emphasis
    samples = signal.shape[0]
    num_frames = 1 if samples <= frame_length else 1 + math.ceil((samples - frame_length) / frame_step)
    padded_length = (num_frames - 1) * frame_step + frame_length
    signal = F.pad(signal, (0, padded_length - samples))
    frames = signal.unfold(0, frame_length, frame_step)  # (num_frames, 400), rectangular window
    power = torch.fft.rfft(frames, n=nfft).abs() ** 2 / nfft  # (num_frames, 257)
    eps = torch.finfo(torch.float64).eps
    energy = power.sum(dim=1)
    energy = torch.where(energy == 0, torch.full_like(energy, eps), energy)
    filtered = power @ mel_filterbank(26, nfft, sample_rate).T  # (num_frames, 26)
    filtered = torch.where(filtered == 0, torch.full_like(filtered, eps), filtered)
    dct = dct_matrix(MFCC_COEFFICIENTS, 26)  # (26, 13)
    cepstra = torch.log(filtered) @ dct  # (num_frames, 13)
    lifter = 1.0 + 11.0 * torch.sin(math.pi * torch.arange(MFCC_COEFFICIENTS, dtype=torch.float64) / 22.0)
    cepstra = cepstra * lifter
    cepstra[:, 0] = torch.log(energy)
    return cepstra


def prepare_lip_frames(
    frames: torch.Tensor, size: tuple[int, int] = (LIP_SIZE, LIP_SIZE), grayscale: bool = False
) -> torch.Tensor:
    """RGB uint8 face crops (T, H, W, 3) -> the lip stream's input (C, T, size) float 0..255.

    Default: syncnet_python's (3, T, 224, 224) BGR. ``size`` resizes bilinearly (nothing when the frames
    already have it); ``grayscale`` gives one luma channel (ITU-R BT.601 weights, as cv2's BGR2GRAY).
    """
    if frames.dim() != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) RGB, got {tuple(frames.shape)}")
    images = frames.permute(0, 3, 1, 2).float()  # (T, 3, H, W)
    if tuple(images.shape[-2:]) != tuple(size):
        images = F.interpolate(images, size=tuple(size), mode="bilinear", align_corners=False)
    images = images.clamp(0.0, 255.0)
    if grayscale:
        luma = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype)
        images = (images * luma[:, None, None]).sum(dim=1, keepdim=True)  # (T, 1, h, w)
    else:
        images = images.flip(1)  # RGB -> BGR as cv2.imread gives
    return images.permute(1, 0, 2, 3).contiguous()  # (C, T, h, w)


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

    Raises ``ValueError`` when fewer than 6 frames overlap with the audio (syncnet_python needs
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


_PREFIXES = ("__S__.", "module.", "S.")


def load_syncnet_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read syncnet_python's ``syncnet_v2.model`` (a pickled state dict) safely, with ``weights_only=True``.

    Accepts a plain ``{name: tensor}`` dict, or one nested under ``state_dict``/``model``, with optional
    ``__S__.``/``module.`` prefixes. A file that pickles a whole module cannot be read safely and is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"SyncNet checkpoint not found at {path}: download syncnet_v2.model "
            "(syncnet_python's download_model.sh) and pass its path."
        )
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise WeightsError(
            f"{path} is not a plain state dict: it pickles Python objects (probably a whole nn.Module), "
            "which cannot be loaded without running arbitrary code. Load it once in a trusted environment, "
            "save `model.state_dict()` with torch.save, and convert that file instead."
        ) from error
    except (RuntimeError, OSError, EOFError) as error:
        raise WeightsError(
            f"{path} is not a readable PyTorch checkpoint ({error}); download it again."
        ) from error
    if isinstance(loaded, dict):
        for key in ("state_dict", "model"):
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsError(f"{path} does not hold a {{name: tensor}} state dict; it is not syncnet_v2.model.")
    state = {}
    for key, tensor in loaded.items():
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        state[key] = tensor
    return state


def syncnet_from_state(state: dict[str, torch.Tensor], config: SyncNetConfig | None = None) -> SyncNet:
    """Build a :class:`SyncNet` and load an original-named state dict; mismatches raise :class:`WeightsError`.

    Batch-norm ``num_batches_tracked`` counters, absent from checkpoints older than PyTorch 0.4, default to 0.
    """
    model = SyncNet(config or SyncNetConfig.paper())
    own = model.state_dict()
    missing = sorted(k for k in own if k not in state and not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in state if k not in own)
    if missing or unexpected:
        raise WeightsError(
            f"checkpoint keys do not match SyncNet v2: missing {missing[:4]}, "
            f"unexpected {unexpected[:4]}; is this syncnet_v2.model?"
        )
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[key].shape):
            raise WeightsError(
                f"{key}: checkpoint shape {tuple(tensor.shape)} != SyncNet v2 shape "
                f"{tuple(own[key].shape)}; is this syncnet_v2.model?"
            )
    full = {key: state.get(key, own[key]) for key in own}
    model.load_state_dict(full)
    return model


def convert_syncnet_checkpoint(src: str | Path, dst: str | Path, config: SyncNetConfig | None = None) -> Path:
    """Convert syncnet_python's ``syncnet_v2.model`` into a release folder (kind ``syncnet``) at ``dst``.

    The original is read once with ``torch.load(weights_only=True)``; keys already carry the ``S`` names, so
    the mapping only strips wrapper prefixes and fills missing ``num_batches_tracked`` counters.
    Returns the folder (``model.safetensors`` + ``config.json``).
    """
    config = config or SyncNetConfig.paper()
    model = syncnet_from_state(load_syncnet_state(src), config)
    return save_release(dst, model, "syncnet", config)


def load_syncnet(folder: str | Path) -> SyncNet:
    """A :class:`SyncNet` in eval mode from a release folder (see :func:`convert_syncnet_checkpoint`)."""
    return load_model(folder, "syncnet", frozen=False).eval()  # eval mode; parameters keep requires_grad
