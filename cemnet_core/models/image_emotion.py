"""Image emotion extractor: the source emotion of the reference images (Sec. III, "image emotion extractor").

CEM-Net conditions the Emotion Bridging Memory (Sec. III-C, Eq. 8) on the *source* emotion of the
reference images, given by an image emotion extractor trained with data augmentation. The paper measures
emotion accuracy (EA, Sec. IV-D) with the Deepface emotion model.

Deviation from the paper: both roles are filled here by one pretrained FER2013 mini-Xception (the Keras model
shipped as ``fer2013.mini_xception``; Deepface's own weights are not obtainable offline). CEM-Net fine-tunes a
copy (:class:`ImageEmotionExtractor`), while the untouched original (``pretrained.load_fer_classifier``) stays
frozen as the EA judge, so the metric never sees the weights that training moved.

The port reproduces the Keras graph exactly (tested against an independent numpy forward pass):

    grey (B, 1, 64, 64) in [-1, 1]
    -> 2 x [conv 3x3 'valid', no bias -> BatchNorm -> ReLU]                       (B, 8, 60, 60)
    -> 4 residual blocks, widths 16, 32, 64, 128:
         main:     sepconv 3x3 -> BN -> ReLU -> sepconv 3x3 -> BN -> maxpool 3x3/2 'same'
         shortcut: conv 1x1 stride 2 'same' -> BN
         out = main + shortcut                                                  (B, 128, 4, 4)
    -> conv 3x3 'same' to 7 (with bias) -> global average pooling -> logits     (B, 7)

Keras 'same' padding is asymmetric (``before = total // 2``, the rest after), so max pooling with stride 2
on an even size pads only the bottom/right; it is applied explicitly with ``-inf`` padding here.

Shapes: ``B`` batch, ``C,H,W`` image, ``E`` = 7 FER classes, ``D`` feature width (last block width).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cemnet_core.configs import config_from_dict, config_to_dict
from cemnet_core.errors import ConfigError, WeightsError

FER_WEIGHTS = "fer2013.mini_xception"
# ITU-R BT.601 luma weights, as cv2.cvtColor(..., COLOR_RGB2GRAY) uses in the original FER pipeline.
_GREY_WEIGHTS = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class MiniXceptionConfig:
    """Sizes of the mini-Xception classifier.

    input_size: side of the square grey input (64 for FER2013).
    stem_channels: filters of the two plain 3x3 convolutions.
    block_channels: widths of the separable-conv residual blocks; the last one is the feature width ``D``.
    num_classes: outputs of the final conv (7 FER2013 classes).
    bn_eps: BatchNorm epsilon (Keras default 1e-3, read from the HDF5 config).
    """

    input_size: int = 64
    stem_channels: int = 8
    block_channels: tuple[int, ...] = (16, 32, 64, 128)
    num_classes: int = 7
    bn_eps: float = 1e-3

    def __post_init__(self) -> None:
        if self.input_size < 8 or self.stem_channels < 1 or not self.block_channels or self.num_classes < 1:
            raise ConfigError(
                f"MiniXceptionConfig needs input_size >= 8, stem_channels >= 1, at least one block and "
                f"num_classes >= 1; got {self}. Fix the config values."
            )
        if self.bn_eps <= 0:
            raise ConfigError(f"MiniXceptionConfig.bn_eps must be > 0, got {self.bn_eps}.")

    @classmethod
    def paper(cls) -> MiniXceptionConfig:
        """The FER2013 mini-Xception of ``fer2013.mini_xception`` (about 58k parameters)."""
        return cls()

    @classmethod
    def tiny(cls) -> MiniXceptionConfig:
        """A small network for tests."""
        return cls(input_size=32, stem_channels=4, block_channels=(8, 16), num_classes=7)

    @property
    def feature_dim(self) -> int:
        """Width ``D`` of the pooled features (the last block's channels)."""
        return self.block_channels[-1]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict of the fields (:func:`~cemnet_core.configs.config_to_dict`)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MiniXceptionConfig:
        """Inverse of :meth:`to_dict`, type-checked; ``ConfigError`` naming unknown keys."""
        return config_from_dict(cls, data)


def _pad_same(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    """Pad ``x`` (B, C, H, W) as TensorFlow's 'same' does: ``total // 2`` before, the rest after."""
    pads: list[int] = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad takes the last dimension first
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value)


def to_fer_input(faces: torch.Tensor, size: int = 64) -> torch.Tensor:
    """Differentiable FER preprocessing: RGB face crops in [0, 1] -> grey ``size`` x ``size`` in [-1, 1].

    faces: (B, 3, H, W) float in [0, 1], RGB. Returns (B, 1, size, size).
    Grey is the BT.601 luma; resizing is bilinear with antialiasing (downscaling a 128 crop to 64 must
    not alias), then ``2 * x - 1`` as the FER2013 training code scales ``x / 255``.
    """
    if faces.ndim != 4 or faces.shape[1] != 3:
        raise ValueError(f"faces must be (B, 3, H, W) RGB in [0, 1], got shape {tuple(faces.shape)}")
    weights = faces.new_tensor(_GREY_WEIGHTS).view(1, 3, 1, 1)
    grey = (faces * weights).sum(dim=1, keepdim=True)  # (B, 1, H, W)
    if grey.shape[-2:] != (size, size):
        grey = F.interpolate(grey, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return grey * 2.0 - 1.0


class SeparableConv2d(nn.Module):
    """Keras SeparableConv2D (depth multiplier 1, no bias): depthwise 3x3 'same' then pointwise 1x1."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, H, W) -> (B, C_out, H, W)."""
        return self.pointwise(self.depthwise(x))


class ResidualBlock(nn.Module):
    """One mini-Xception block: two separable convs + 'same' max pooling, plus a strided 1x1 shortcut."""

    def __init__(self, in_channels: int, out_channels: int, bn_eps: float) -> None:
        super().__init__()
        # Keras momentum 0.99 keeps 99% of the running statistic; torch's momentum is the complement.
        self.sep1 = SeparableConv2d(in_channels, out_channels)
        self.bn1 = nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=0.01)
        self.sep2 = SeparableConv2d(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=0.01)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, H, W) -> (B, C_out, ceil(H/2), ceil(W/2))."""
        main = F.relu(self.bn1(self.sep1(x)))
        main = self.bn2(self.sep2(main))
        main = F.max_pool2d(_pad_same(main, 3, 2, value=float("-inf")), 3, stride=2)
        # A 1x1 kernel never needs 'same' padding: TF's total padding is <= 0 for it.
        shortcut = self.shortcut_bn(self.shortcut(x))
        return main + shortcut


class MiniXception(nn.Module):
    """FER2013 mini-Xception classifier (kind ``mini_xception``), an exact port of the Keras model."""

    def __init__(self, config: MiniXceptionConfig) -> None:
        super().__init__()
        self.config = config
        stem = config.stem_channels
        self.stem_conv1 = nn.Conv2d(1, stem, 3, bias=False)
        self.stem_bn1 = nn.BatchNorm2d(stem, eps=config.bn_eps, momentum=0.01)
        self.stem_conv2 = nn.Conv2d(stem, stem, 3, bias=False)
        self.stem_bn2 = nn.BatchNorm2d(stem, eps=config.bn_eps, momentum=0.01)
        widths = (stem, *config.block_channels)
        self.blocks = nn.ModuleList(
            ResidualBlock(c_in, c_out, config.bn_eps) for c_in, c_out in itertools.pairwise(widths)
        )
        self.head = nn.Conv2d(config.feature_dim, config.num_classes, 3, padding=1, bias=True)

    def _check(self, grey: torch.Tensor) -> None:
        size = self.config.input_size
        if grey.ndim != 4 or grey.shape[1] != 1 or grey.shape[-2:] != (size, size):
            raise ValueError(
                f"grey must be (B, 1, {size}, {size}) in [-1, 1] (see to_fer_input), got {tuple(grey.shape)}"
            )

    def activations(self, grey: torch.Tensor) -> list[torch.Tensor]:
        """grey: (B, 1, H, W) in [-1, 1] -> [stem output, block_1, ..., block_n] (the perceptual layers)."""
        self._check(grey)
        x = F.relu(self.stem_bn1(self.stem_conv1(grey)))  # (B, stem, H-2, W-2)
        x = F.relu(self.stem_bn2(self.stem_conv2(x)))  # (B, stem, H-4, W-4)
        outputs = [x]
        for block in self.blocks:
            x = block(x)  # halves H and W, rounding up
            outputs.append(x)
        return outputs

    def feature_map(self, grey: torch.Tensor) -> torch.Tensor:
        """grey: (B, 1, H, W) in [-1, 1] -> output of the last residual block (B, D, H', W')."""
        return self.activations(grey)[-1]

    def classify(self, feature_map: torch.Tensor) -> torch.Tensor:
        """feature_map: (B, D, H', W') -> logits (B, E): conv to E, then global average pooling."""
        return self.head(feature_map).mean(dim=(2, 3))  # (B, E)

    def forward(self, grey: torch.Tensor) -> torch.Tensor:
        """grey: (B, 1, H, W) in [-1, 1] -> logits (B, E); softmax gives the Keras model's output."""
        return self.classify(self.feature_map(grey))


class ImageEmotionExtractor(nn.Module):
    """Fine-tunable source-emotion extractor (kind ``image_emotion``) around a :class:`MiniXception`.

    ``forward(faces)`` takes RGB face crops in [0, 1] and returns the pooled last-block features (the
    source emotion ``e_s`` fed to the EBM) and the FER logits (for an emotion classification loss).
    """

    def __init__(self, config: MiniXceptionConfig) -> None:
        super().__init__()
        self.config = config
        self.network = MiniXception(config)

    @classmethod
    def from_classifier(cls, classifier: MiniXception) -> ImageEmotionExtractor:
        """A trainable extractor starting from a copy of ``classifier``'s weights (the original stays)."""
        extractor = cls(classifier.config)
        extractor.network.load_state_dict(copy.deepcopy(classifier.state_dict()))
        return extractor

    def forward(self, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """faces: (B, 3, H, W) float RGB in [0, 1] -> (features (B, D), logits (B, E))."""
        grey = to_fer_input(faces, self.config.input_size)  # (B, 1, S, S)
        feature_map = self.network.feature_map(grey)  # (B, D, H', W')
        features = feature_map.mean(dim=(2, 3))  # (B, D)
        return features, self.network.classify(feature_map)


# --- Conversion of the Keras HDF5 file -------------------------------------------------------------------


def _keras_layers(hdf5_file: Any) -> dict[str, dict[str, Any]]:
    """Layer name -> Keras layer config, from the ``model_config`` attribute."""
    raw = hdf5_file.attrs.get("model_config")
    if raw is None:
        raise WeightsError(f"{hdf5_file.filename} has no Keras model_config; pass a Keras 2 HDF5 model file.")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    graph = json.loads(raw)
    return {layer["name"]: layer["config"] for layer in graph["config"]["layers"]}


def _keras_weight(hdf5_file: Any, layer: str, weight: str) -> torch.Tensor:
    group = hdf5_file["model_weights"]
    if layer not in group:
        raise WeightsError(f"{hdf5_file.filename} lacks layer {layer!r}; give the {FER_WEIGHTS} .hdf5 file")
    found: list[Any] = []
    group[layer].visititems(lambda name, obj: found.append(obj) if name.endswith(f"/{weight}:0") else None)
    if len(found) != 1:
        raise WeightsError(
            f"{hdf5_file.filename}: layer {layer!r} lacks weight {weight!r}; give the {FER_WEIGHTS} file"
        )
    return torch.from_numpy(found[0][()])


def config_from_hdf5(hdf5_path: str | Path) -> MiniXceptionConfig:
    """Read the mini-Xception sizes and BatchNorm epsilon from a Keras HDF5 file's model config."""
    import h5py

    try:
        with h5py.File(hdf5_path, "r") as f:
            layers = _keras_layers(f)
    except OSError as error:
        raise WeightsError(
            f"cannot read {hdf5_path} as HDF5 ({error}); give the Keras .hdf5 model file"
        ) from error
    separable = sorted(
        (name for name in layers if name.startswith("separable_conv2d_")),
        key=lambda n: int(n.rsplit("_", 1)[1]),
    )
    epsilons = {cfg["epsilon"] for name, cfg in layers.items() if name.startswith("batch_normalization_")}
    head = f"conv2d_{len(separable) // 2 + 3}"
    if len(epsilons) != 1 or not separable or not {"conv2d_1", "input_1", head} <= set(layers):
        raise WeightsError(
            f"{hdf5_path} is not a mini-Xception Keras model (unexpected layers); give the {FER_WEIGHTS} file"
        )
    return MiniXceptionConfig(
        input_size=int(layers["input_1"]["batch_input_shape"][1]),
        stem_channels=int(layers["conv2d_1"]["filters"]),
        block_channels=tuple(int(layers[name]["filters"]) for name in separable[1::2]),
        num_classes=int(layers[head]["filters"]),
        bn_eps=float(epsilons.pop()),
    )


def load_mini_xception_hdf5(hdf5_path: str | Path) -> MiniXception:
    """Build a :class:`MiniXception` with the weights of a Keras mini-Xception HDF5 file (eval mode).

    Keras naming: block ``i`` (0-based) uses ``separable_conv2d_{2i+1}``/``{2i+2}``, shortcut ``conv2d_{i+3}``
    and BatchNorms ``batch_normalization_{3i+3}`` (shortcut), ``{3i+4}``, ``{3i+5}`` (main path).
    Conv kernels are HWIO -> OIHW; depthwise kernels (kh, kw, C, 1) -> (C, 1, kh, kw).
    """
    import h5py

    config = config_from_hdf5(hdf5_path)
    model = MiniXception(config)

    def conv(f: Any, layer: str) -> torch.Tensor:
        return _keras_weight(f, layer, "kernel").permute(3, 2, 0, 1)

    def depthwise(f: Any, layer: str) -> torch.Tensor:
        return _keras_weight(f, layer, "depthwise_kernel").permute(2, 3, 0, 1)

    def pointwise(f: Any, layer: str) -> torch.Tensor:
        return _keras_weight(f, layer, "pointwise_kernel").permute(3, 2, 0, 1)

    def batch_norm(f: Any, prefix: str, layer: str) -> dict[str, torch.Tensor]:
        return {
            f"{prefix}.weight": _keras_weight(f, layer, "gamma"),
            f"{prefix}.bias": _keras_weight(f, layer, "beta"),
            f"{prefix}.running_mean": _keras_weight(f, layer, "moving_mean"),
            f"{prefix}.running_var": _keras_weight(f, layer, "moving_variance"),
        }

    with h5py.File(hdf5_path, "r") as f:
        state = {"stem_conv1.weight": conv(f, "conv2d_1"), "stem_conv2.weight": conv(f, "conv2d_2")}
        state |= batch_norm(f, "stem_bn1", "batch_normalization_1")
        state |= batch_norm(f, "stem_bn2", "batch_normalization_2")
        for i in range(len(config.block_channels)):
            block = f"blocks.{i}"
            state[f"{block}.sep1.depthwise.weight"] = depthwise(f, f"separable_conv2d_{2 * i + 1}")
            state[f"{block}.sep1.pointwise.weight"] = pointwise(f, f"separable_conv2d_{2 * i + 1}")
            state[f"{block}.sep2.depthwise.weight"] = depthwise(f, f"separable_conv2d_{2 * i + 2}")
            state[f"{block}.sep2.pointwise.weight"] = pointwise(f, f"separable_conv2d_{2 * i + 2}")
            state[f"{block}.shortcut.weight"] = conv(f, f"conv2d_{i + 3}")
            state |= batch_norm(f, f"{block}.shortcut_bn", f"batch_normalization_{3 * i + 3}")
            state |= batch_norm(f, f"{block}.bn1", f"batch_normalization_{3 * i + 4}")
            state |= batch_norm(f, f"{block}.bn2", f"batch_normalization_{3 * i + 5}")
        head = f"conv2d_{len(config.block_channels) + 3}"
        state["head.weight"] = conv(f, head)
        state["head.bias"] = _keras_weight(f, head, "bias")

    expected = {k: v.shape for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    got = {k: v.shape for k, v in state.items()}
    if expected != got:
        raise WeightsError(
            f"{hdf5_path}: weight shapes do not match the mini-Xception graph ({expected} vs {got})."
        )
    model.load_state_dict({k: v.contiguous() for k, v in state.items()}, strict=False)
    return model.eval()
