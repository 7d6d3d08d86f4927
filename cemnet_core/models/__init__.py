"""CEM-Net networks, one file per paper concept, and the registry of model kinds.

``MODEL_KINDS`` maps the ``kind`` string written in release folders (``config.json``: ``{"kind": ...,
"config": {...}}``) to ``(ConfigCls, ModelCls)``. Every config class offers ``paper()``, ``tiny()``,
``to_dict()`` and ``from_dict()``; every model takes its config as the only constructor argument.
A model that also offers ``example_inputs(batch_size)`` and ``frames_per_example`` (see
:mod:`cemnet_core.models.profile`) gets FLOPs per generated frame in ``cemnet models``.

Register a new kind with one line in ``MODEL_KINDS`` (keep it sorted).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from cemnet_core.errors import ConfigError
from cemnet_core.models.audio_to_mouth import AudioToMouth, AudioToMouthConfig
from cemnet_core.models.discriminator import PatchDiscriminator, PatchDiscriminatorConfig
from cemnet_core.models.emotion_enhancement import EmotionEnhancer, EmotionEnhancerConfig
from cemnet_core.models.emotion_memory import EmotionBridgingMemory, EmotionBridgingMemoryConfig
from cemnet_core.models.image_emotion import ImageEmotionExtractor, MiniXception, MiniXceptionConfig
from cemnet_core.models.renderer import FaceRenderer, RendererConfig
from cemnet_core.models.syncnet import SyncNet, SyncNetConfig

MODEL_KINDS: dict[str, tuple[type, type[nn.Module]]] = {
    "audio_to_mouth": (AudioToMouthConfig, AudioToMouth),
    "emotion_enhancer": (EmotionEnhancerConfig, EmotionEnhancer),
    "emotion_memory": (EmotionBridgingMemoryConfig, EmotionBridgingMemory),
    "image_emotion": (MiniXceptionConfig, ImageEmotionExtractor),
    "mini_xception": (MiniXceptionConfig, MiniXception),
    "patch_discriminator": (PatchDiscriminatorConfig, PatchDiscriminator),
    "renderer": (RendererConfig, FaceRenderer),
    "syncnet": (SyncNetConfig, SyncNet),
}


def build_model(kind: str, config: Mapping[str, Any]) -> nn.Module:
    """Build the model of ``kind`` from a config dict (as stored in ``config.json``).

    Raises:
        ConfigError: the kind is unknown or the config has keys or values the config class rejects.
    """
    if kind not in MODEL_KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; use one of {sorted(MODEL_KINDS)}")
    config_cls, model_cls = MODEL_KINDS[kind]
    try:
        parsed = config_cls.from_dict(dict(config))
    except TypeError as error:  # a value of the wrong type reaching a constructor
        raise ConfigError(f"config of model kind {kind!r} is invalid ({error}); fix config.json") from error
    return model_cls(parsed)
