"""Fixtures of the CLI tests: a bundle of tiny random release folders, as `cemnet export` lays them out."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cemnet_core.bundle import WEIGHT_BUNDLE_LAYOUT
from cemnet_core.models.audio_to_mouth import AudioToMouth, AudioToMouthConfig
from cemnet_core.models.emotion_enhancement import EmotionEnhancer, EmotionEnhancerConfig
from cemnet_core.models.emotion_memory import EmotionBridgingMemory, EmotionBridgingMemoryConfig
from cemnet_core.models.image_emotion import ImageEmotionExtractor, MiniXceptionConfig
from cemnet_core.models.renderer import FaceRenderer, RendererConfig
from cemnet_core.release import save_release


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny random release per stage (with its checksums.json) in one weights folder."""
    torch.manual_seed(0)
    aee, image = EmotionEnhancerConfig.tiny(), MiniXceptionConfig.tiny()
    ebm = EmotionBridgingMemoryConfig.from_dict(
        {
            **EmotionBridgingMemoryConfig.tiny().to_dict(),
            "target_emotion_dim": aee.emotion_dim,
            "source_emotion_dim": image.feature_dim,
        }
    )
    models = {
        "audio_to_mouth": AudioToMouth(AudioToMouthConfig.tiny()),
        "emotion_enhancer": EmotionEnhancer(aee),
        "image_emotion": ImageEmotionExtractor(image),
        "emotion_memory": EmotionBridgingMemory(ebm),
        "renderer": FaceRenderer(RendererConfig.tiny()),
    }
    folder = tmp_path_factory.mktemp("tiny_bundle")
    for role, model in models.items():
        kind, names = WEIGHT_BUNDLE_LAYOUT[role]
        save_release(folder / names[0], model, kind, model.config)
    return folder
