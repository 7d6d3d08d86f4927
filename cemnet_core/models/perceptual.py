"""VGG19 perceptual network and the perceptual loss of the renderer, Sec. III-D, Eq. (17) term ``L_per``.

The paper cites Johnson et al. [52] for ``L_per``; we follow pix2pixHD's ``VGGLoss`` (which the renderer's
GAN and feature-matching terms [53] also come from): L1 distances between VGG19 activations at
relu1_1, relu2_1, relu3_1, relu4_1 and relu5_1, weighted 1/32, 1/16, 1/8, 1/4, 1.

Shapes::

    images  (B, 3, H, W)  RGB in [0, 1]; ImageNet mean/std normalisation happens inside
    features  list of 5 tensors (B, 64|128|256|512|512, H/1|2|4|8|16, W/...)

Deviation for this world (documented, DESIGN section 5): ImageNet VGG19 weights cannot be had offline,
and a random VGG19 measures little, so :class:`FacePerceptualFeatures` offers a perceptual network that is
pretrained and present: the FER2013 mini-Xception of the assets (``fer2013.mini_xception``, a face network
trained on 35k face crops). Its loss is the L1 distance of its stem and residual-block activations on the
grey 64x64 input it was trained on, weighted 1/8, 1/4, 1/2, 1, 1 from shallow to deep (as pix2pixHD
weights VGG's layers). It sees luma only, so colour is left to the renderer's pixel term. Both networks
expose ``layer_weights``; :func:`perceptual_loss` works with either.

The layers are an ``nn.Sequential`` with torchvision's indices (``features.{i}.weight``), so ImageNet weights
from torchvision (``vgg19-dcbb9e9d``) or timm (``vgg19.tv_in1k``, same ``features.{i}`` names plus
``pre_logits.*``/``head.*``) load by name; classifier keys are ignored. The network is frozen: it is a fixed
measuring instrument, never trained.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from cemnet_core.errors import WeightsError
from cemnet_core.models.image_emotion import to_fer_input

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision VGG19 ("E") feature indices: conv at these positions, ReLU right after each, max-pools.
_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28)
_POOL_INDICES = (4, 9, 18, 27)
_CHANNELS = (64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512)
# Slice ends (exclusive) of relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 in ``features``.
SLICE_ENDS = (2, 7, 12, 21, 30)
LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
_KEY = re.compile(r"(?:^|\.)features\.(\d+)\.(weight|bias)$")


def _vgg19_trunk() -> nn.Sequential:
    """``features[0:30]`` of torchvision's VGG19, up to relu5_1."""
    layers: list[nn.Module] = []
    in_channels = 3
    conv_iter = iter(_CHANNELS)
    for index in range(SLICE_ENDS[-1]):
        if index in _CONV_INDICES:
            out_channels = next(conv_iter)
            layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
            in_channels = out_channels
        elif index in _POOL_INDICES:
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.ReLU(inplace=False))
    return nn.Sequential(*layers)


class VGG19Features(nn.Module):
    """Frozen VGG19 returning the five relu*_1 activations of images in [0, 1].

    Build randomly initialised (tests) or with ``VGG19Features.from_file(path)`` (ImageNet weights as
    safetensors, registry entry ``vgg19.imagenet``).
    """

    layer_weights = LAYER_WEIGHTS

    def __init__(self) -> None:
        super().__init__()
        self.features = _vgg19_trunk()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_file(cls, path: str | Path) -> VGG19Features:
        """Build the network and load ImageNet weights from a safetensors file (torchvision or timm names)."""
        model = cls()
        model.load_weights(path)
        return model

    def load_weights(self, path: str | Path) -> None:
        """Load ``features.{i}.weight/bias`` from a safetensors file; raise :class:`WeightsError` if unusable.

        Keys may carry a prefix (``model.``, ``vgg.``, ...); classifier/head keys are ignored.
        """
        path = Path(path)
        if not path.is_file():
            raise WeightsError(
                f"VGG19 weights not found at {path}: run `cemnet weights pull vgg19.imagenet`."
            )
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise WeightsError(
                f"{path} is not a readable safetensors file ({error}); delete it, pull vgg19.imagenet again."
            ) from error
        state = {}
        for key, tensor in tensors.items():
            match = _KEY.search(key)
            if match and int(match.group(1)) < SLICE_ENDS[-1]:
                state[f"features.{match.group(1)}.{match.group(2)}"] = tensor
        expected = set(self.state_dict())
        missing = sorted(expected - set(state))
        if missing:
            raise WeightsError(
                f"{path} lacks VGG19 feature weights {missing[:4]}...: expected torchvision/timm VGG19 keys "
                "`features.<i>.weight`; check that the file is VGG19 (not VGG16 or a batch-norm variant)."
            )
        own = self.state_dict()
        for key, tensor in state.items():
            if tuple(tensor.shape) != tuple(own[key].shape):
                raise WeightsError(
                    f"{path}: {key} has shape {tuple(tensor.shape)}, VGG19 needs {tuple(own[key].shape)}; "
                    "the file is not plain VGG19 ImageNet weights."
                )
        self.load_state_dict(state)

    def train(self, mode: bool = True) -> VGG19Features:
        """Stay in eval mode: the perceptual network is fixed (there is no dropout/batch norm anyway)."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images: (B, 3, H, W) in [0, 1] -> [relu1_1, relu2_1, relu3_1, relu4_1, relu5_1] activations."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        hidden = (images - self.mean) / self.std
        outputs = []
        start = 0
        for end in SLICE_ENDS:
            for index in range(start, end):
                hidden = self.features[index](hidden)
            outputs.append(hidden)  # (B, C_l, H_l, W_l)
            start = end
        return outputs


class FacePerceptualFeatures(nn.Module):
    """Frozen FER2013 mini-Xception returning its stem and residual-block activations (module docstring).

    ``FacePerceptualFeatures(classifier)`` wraps a :class:`~cemnet_core.models.image_emotion.MiniXception`
    (``pretrained.load_fer_classifier()`` gives the pretrained one; a random one serves tests).
    """

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier
        depth = 1 + len(classifier.blocks)
        self.layer_weights = tuple(min(1.0, 2.0 ** (i - depth + 2)) for i in range(depth))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FacePerceptualFeatures:
        """Stay in eval mode: BatchNorm keeps the FER2013 statistics."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images: (B, 3, H, W) RGB in [0, 1] -> [stem, block_1, ..., block_n] activations."""
        grey = to_fer_input(images, self.classifier.config.input_size)  # (B, 1, 64, 64) in [-1, 1]
        return self.classifier.activations(grey)


def perceptual_loss(vgg: nn.Module, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Weighted L1 between the activations of ``prediction`` and ``target`` (B, 3, H, W) in [0, 1].

    pix2pixHD's ``VGGLoss``: sum over the network's layers (relu1_1..relu5_1 for VGG19) of ``weight_l *
    mean|phi_l(pred) - phi_l(target)|`` with the network's ``layer_weights``; the target's activations carry
    no gradient. Returns a scalar.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ")
    predicted_features = vgg(prediction)
    with torch.no_grad():
        target_features = vgg(target)
    loss = prediction.new_zeros(())
    weights = vgg.layer_weights
    for weight, predicted, wanted in zip(weights, predicted_features, target_features, strict=True):
        loss = loss + weight * F.l1_loss(predicted, wanted)
    return loss
