"""CEMNetPipeline: tiny randomly initialised stages, loaded from release folders and run on tensors.

``tiny_models`` and ``save_tiny_bundle`` are reused by tests/test_generate.py, ``save_tiny_ablations`` by the
evaluation tests.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from cemnet_core.bundle import ABLATION_LAYOUT, ABLATIONS_FOLDER, WEIGHT_BUNDLE_LAYOUT, find_release
from cemnet_core.contracts import EMOTIONS, N_ALL, N_MOUTH, N_POSE
from cemnet_core.errors import ChecksumError, ConfigError, WeightsError
from cemnet_core.models.audio_to_mouth import AudioToMouth, AudioToMouthConfig
from cemnet_core.models.emotion_enhancement import EmotionEnhancer, EmotionEnhancerConfig
from cemnet_core.models.emotion_memory import EmotionBridgingMemory, EmotionBridgingMemoryConfig
from cemnet_core.models.image_emotion import ImageEmotionExtractor, MiniXceptionConfig
from cemnet_core.models.renderer import FaceRenderer, RendererConfig
from cemnet_core.pipeline import CEMNetPipeline, compose_landmarks
from cemnet_core.release import CHECKSUMS_FILE, save_release, write_manifest


def tiny_configs() -> dict[str, object]:
    """Tiny configs of every stage with matching widths (AEE emotion -> EBM target, image -> EBM source)."""
    aee = EmotionEnhancerConfig.tiny()
    image = MiniXceptionConfig.tiny()
    ebm = EmotionBridgingMemoryConfig(
        target_emotion_dim=aee.emotion_dim, source_emotion_dim=image.feature_dim, identity_dim=128, dim=16,
        key_dim=12, hidden=16, memory_slots=5, landmark_base_channels=2, landmark_residual_blocks=1,
    )  # fmt: skip
    return {
        "audio_to_mouth": AudioToMouthConfig.tiny(),
        "emotion_enhancer": aee,
        "image_emotion": image,
        "emotion_memory": ebm,
        "renderer": RendererConfig.tiny(),
    }


def tiny_models(seed: int = 0) -> dict[str, torch.nn.Module]:
    """Randomly initialised tiny models of every stage, keyed by pipeline role."""
    torch.manual_seed(seed)
    c = tiny_configs()
    models = {
        "audio_to_mouth": AudioToMouth(c["audio_to_mouth"]),
        "emotion_enhancer": EmotionEnhancer(c["emotion_enhancer"]),
        "image_emotion": ImageEmotionExtractor(c["image_emotion"]),
        "emotion_memory": EmotionBridgingMemory(c["emotion_memory"]),
        "renderer": FaceRenderer(c["renderer"]),
    }
    # An untrained EBM decoder adds almost nothing; push its output so emotion switches are visible.
    with torch.no_grad():
        for parameter in models["emotion_memory"].parameters():
            parameter.mul_(3.0)
    return models


def save_tiny_bundle(folder: Path, seed: int = 0) -> Path:
    """A weights folder with one release per stage, laid out as WEIGHT_BUNDLE_LAYOUT says."""
    for role, model in tiny_models(seed).items():
        kind, names = WEIGHT_BUNDLE_LAYOUT[role]
        save_release(folder / names[0], model, kind, model.config)
    return folder


def save_tiny_ablations(folder: Path, seed: int = 1) -> Path:
    """Add the Table IV ablation releases to a bundle: ``ablations/wo_aee/{emotion_enhancer,emotion_memory}``
    (other weights) and ``ablations/wo_ebm/emotion_memory`` (an EBM with ``use_memory=False``)."""
    models = tiny_models(seed)
    for role in ABLATION_LAYOUT["aee"][1]:
        kind, names = WEIGHT_BUNDLE_LAYOUT[role]
        save_release(folder / ABLATIONS_FOLDER / "wo_aee" / names[0], models[role], kind, models[role].config)
    config = dataclasses.replace(tiny_configs()["emotion_memory"], use_memory=False)
    torch.manual_seed(seed)
    memory = EmotionBridgingMemory(config)
    with torch.no_grad():
        for parameter in memory.parameters():
            parameter.mul_(3.0)  # as in tiny_models: make the untrained decoder's output visible
    save_release(folder / ABLATIONS_FOLDER / "wo_ebm" / "emotion_memory", memory, "emotion_memory", config)
    return folder


def _inputs(pipeline: CEMNetPipeline, batch: int = 2) -> dict[str, torch.Tensor]:
    T, S = pipeline.window, pipeline.emotion_segment
    return {
        "ref_landmarks": torch.rand(batch, 2, N_ALL, 2),
        "mel": torch.rand(batch, T, 16, 80) * 8 - 4,
        "pose": torch.rand(batch, T, N_POSE, 2),
        "emotion_mel": torch.rand(batch, S, 80) * 8 - 4,
        "source_emotion": pipeline.source_emotion(torch.rand(3, 3, 32, 32)),
        "identity": torch.nn.functional.normalize(torch.randn(128), dim=0),
    }


@pytest.fixture
def pipeline() -> CEMNetPipeline:
    models = tiny_models()
    return CEMNetPipeline(**models)


def test_predict_mouth_shapes_and_finite(pipeline: CEMNetPipeline) -> None:
    mouth = pipeline.predict_mouth(**_inputs(pipeline))
    assert mouth.shape == (2, pipeline.window, N_MOUTH, 2)
    assert torch.isfinite(mouth).all()


def test_without_ebm_equals_audio_to_mouth(pipeline: CEMNetPipeline) -> None:
    inputs = _inputs(pipeline)
    expected = pipeline.audio_to_mouth(inputs["ref_landmarks"], inputs["mel"], inputs["pose"])
    ablated = CEMNetPipeline(**{**tiny_models(), "emotion_memory": None}, use_ebm=False)
    assert torch.equal(ablated.predict_mouth(**inputs), expected)
    with_ebm = pipeline.predict_mouth(**inputs)
    assert not torch.allclose(with_ebm, expected)


def test_intensity_scales_the_emotional_displacement(pipeline: CEMNetPipeline) -> None:
    inputs = _inputs(pipeline)
    agnostic = pipeline.audio_to_mouth(inputs["ref_landmarks"], inputs["mel"], inputs["pose"])
    full = pipeline.predict_mouth(**inputs, intensity=1.0)
    half = pipeline.predict_mouth(**inputs, intensity=0.5)
    assert torch.allclose(pipeline.predict_mouth(**inputs, intensity=0.0), agnostic)
    assert torch.allclose(half - agnostic, 0.5 * (full - agnostic), atol=1e-6)


def test_label_override_finds_embeddings_the_classifier_reads_as_that_label(pipeline: CEMNetPipeline) -> None:
    # C_e = Linear -> ReLU -> Linear set to logits = relu(embedding + 1): every label is reachable and no
    # unit is dead near the embeddings (a random tiny classifier may have both problems; a trained one not).
    with torch.no_grad():
        classifier = pipeline.emotion_enhancer.emotion_classifier
        for layer, bias in ((classifier[0], 1.0), (classifier[2], 0.0)):
            layer.weight.copy_(torch.eye(len(EMOTIONS)))
            layer.bias.fill_(bias)
    start = pipeline.target_emotion(torch.rand(4, pipeline.emotion_segment, 80) * 8 - 4)
    classify = pipeline.emotion_enhancer.classify_emotion
    for label in ("happy", "sad"):
        embedding = pipeline.label_emotion(label, start)
        assert (classify(embedding).argmax(dim=-1) == EMOTIONS.index(label)).all()
        assert (embedding - start).norm(dim=-1).max() < 3.0  # found near the audio's embedding
    inputs = _inputs(pipeline)
    happy = pipeline.predict_mouth(**inputs, emotion_label="happy")
    sad = pipeline.predict_mouth(**inputs, emotion_label="sad")
    assert not torch.allclose(happy, sad)
    with pytest.raises(ConfigError, match="unknown emotion"):
        pipeline.label_emotion("bored", start)


def test_render_shapes_and_range(pipeline: CEMNetPipeline) -> None:
    size = pipeline.image_size
    ref_landmarks = torch.rand(2, N_ALL, 2) * 0.6 + 0.2
    refs = torch.rand(2, 3, size, size)
    frames = pipeline.render(
        refs, pipeline.sketches(ref_landmarks), ref_landmarks, torch.rand(4, N_ALL, 2) * 0.6 + 0.2,
        torch.rand(4, 3, size, size),
    )  # fmt: skip
    assert frames.shape == (4, 3, size, size)
    assert frames.min() >= 0 and frames.max() <= 1


def test_sketches_draw_the_landmarks(pipeline: CEMNetPipeline) -> None:
    points = torch.rand(3, N_ALL, 2) * 0.6 + 0.2
    sketches = pipeline.sketches(points)
    assert sketches.shape == (3, 3, pipeline.image_size, pipeline.image_size)
    assert (sketches.flatten(1).amax(dim=1) > 0).all()
    assert not torch.equal(sketches[0], sketches[1])


def test_compose_landmarks_orders_pose_then_mouth() -> None:
    pose, mouth = torch.zeros(2, N_POSE, 2), torch.ones(2, N_MOUTH, 2)
    combined = compose_landmarks(pose, mouth)
    assert combined.shape == (2, N_ALL, 2)
    assert combined[:, :N_POSE].sum() == 0 and combined[:, N_POSE:].min() == 1
    with pytest.raises(ValueError, match="pose must be"):
        compose_landmarks(mouth, pose)


def test_from_bundle_round_trip_gives_identical_outputs(tmp_path: Path, pipeline: CEMNetPipeline) -> None:
    save_tiny_bundle(tmp_path / "w")
    loaded = CEMNetPipeline.from_bundle(tmp_path / "w", "cpu")
    inputs = _inputs(pipeline)
    assert torch.equal(loaded.predict_mouth(**inputs), pipeline.predict_mouth(**inputs))
    assert not any(p.requires_grad for p in loaded.parameters())
    assert not loaded.training


def test_from_bundle_motion_gain_replaces_the_release_gain(tmp_path: Path) -> None:
    bundle = save_tiny_bundle(tmp_path / "w")
    plain = CEMNetPipeline.from_bundle(bundle, "cpu", use_ebm=False)
    gained = CEMNetPipeline.from_bundle(bundle, "cpu", use_ebm=False, motion_gain=2.0)
    assert plain.audio_to_mouth.config.motion_gain == 1.0 and gained.audio_to_mouth.config.motion_gain == 2.0
    inputs = _inputs(plain)
    assert not torch.equal(plain.predict_mouth(**inputs), gained.predict_mouth(**inputs))
    with pytest.raises(ConfigError, match="motion_gain"):
        CEMNetPipeline.from_bundle(bundle, "cpu", motion_gain=0.0)


def test_from_bundle_accepts_short_folder_aliases(tmp_path: Path) -> None:
    bundle = save_tiny_bundle(tmp_path / "w")
    (bundle / "audio_to_mouth").rename(bundle / "a2m")
    assert find_release(bundle, "audio_to_mouth") == bundle / "a2m"
    assert CEMNetPipeline.from_bundle(bundle, "cpu").window == AudioToMouthConfig.tiny().num_frames


def test_from_bundle_without_ebm_needs_no_ebm_release(tmp_path: Path) -> None:
    bundle = save_tiny_bundle(tmp_path / "w")
    for child in (bundle / "emotion_memory").iterdir():
        child.unlink()
    (bundle / "emotion_memory").rmdir()
    with pytest.raises(WeightsError, match="emotion_memory/"):
        CEMNetPipeline.from_bundle(bundle, "cpu")
    assert CEMNetPipeline.from_bundle(bundle, "cpu", use_ebm=False).emotion_memory is None


def test_from_bundle_missing_or_corrupt_weights(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        CEMNetPipeline.from_bundle(tmp_path / "nothing", "cpu")
    bundle = save_tiny_bundle(tmp_path / "w")
    (bundle / "renderer" / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ChecksumError, match=r"renderer/model\.safetensors has 64 bytes"):
        CEMNetPipeline.from_bundle(bundle, "cpu")
    (bundle / "renderer" / CHECKSUMS_FILE).unlink()  # an older export: safetensors' own checks remain
    with pytest.raises(WeightsError, match="unreadable safetensors"):
        CEMNetPipeline.from_bundle(bundle, "cpu")
    bundle = save_tiny_bundle(tmp_path / "w2")
    config_file = bundle / "renderer" / "config.json"
    document = json.loads(config_file.read_text())
    document["config"]["generator_channels"] = [4, 8]
    config_file.write_text(json.dumps(document))
    write_manifest(bundle / "renderer")  # a consistent release whose config does not fit its tensors
    with pytest.raises(WeightsError, match="does not fit"):
        CEMNetPipeline.from_bundle(bundle, "cpu")


def test_use_ebm_needs_a_memory_model() -> None:
    with pytest.raises(ConfigError, match="emotion_memory"):
        CEMNetPipeline(**{**tiny_models(), "emotion_memory": None})


def _states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return all(torch.equal(x, y) for x, y in pairs)


def test_from_bundle_loads_each_variant_from_its_own_releases(tmp_path: Path) -> None:
    bundle = save_tiny_ablations(save_tiny_bundle(tmp_path / "w"))
    full = CEMNetPipeline.from_bundle(bundle, "cpu")
    wo_aee = CEMNetPipeline.from_bundle(bundle, "cpu", ablation="aee")
    wo_ebm = CEMNetPipeline.from_bundle(bundle, "cpu", ablation="ebm")
    a2m = CEMNetPipeline.from_bundle(bundle, "cpu", ablation="a2m")
    ablated = tiny_models(1)
    # w/o AEE: its own emotion encoder and EBM, everything else shared with the full model.
    assert _states_equal(wo_aee.emotion_enhancer, ablated["emotion_enhancer"])
    assert _states_equal(wo_aee.emotion_memory, ablated["emotion_memory"])
    assert not _states_equal(wo_aee.emotion_enhancer, full.emotion_enhancer)
    for role in ("audio_to_mouth", "image_emotion", "renderer"):
        assert _states_equal(getattr(wo_aee, role), getattr(full, role))
    # w/o EBM: a memory-less EBM, the full model's AEE.
    assert wo_ebm.emotion_memory is not None and not wo_ebm.emotion_memory.config.use_memory
    assert _states_equal(wo_ebm.emotion_enhancer, full.emotion_enhancer)
    # Audio2Mouth without emotion: no EBM, the mouth is Audio2Mouth's.
    assert a2m.emotion_memory is None and not a2m.use_ebm
    inputs = _inputs(full)
    agnostic = full.audio_to_mouth(inputs["ref_landmarks"], inputs["mel"], inputs["pose"])
    assert torch.equal(a2m.predict_mouth(**inputs), agnostic)
    mouths = [variant.predict_mouth(**inputs) for variant in (full, wo_aee, wo_ebm)]
    for i, mouth in enumerate(mouths):
        assert not torch.allclose(mouth, agnostic)
        assert all(not torch.allclose(mouth, other) for other in mouths[i + 1 :])
    # The generate options keep working: use_aee=False is the w/o AEE model, use_ebm=False the baseline.
    no_aee = CEMNetPipeline.from_bundle(bundle, "cpu", use_aee=False)
    assert torch.equal(no_aee.predict_mouth(**inputs), mouths[1])
    assert CEMNetPipeline.from_bundle(bundle, "cpu", use_ebm=False).emotion_memory is None


def test_from_bundle_missing_ablation_says_how_to_train_it(tmp_path: Path) -> None:
    bundle = save_tiny_bundle(tmp_path / "w")
    with pytest.raises(WeightsError, match=r"ablations/wo_aee/emotion_enhancer/.*train aee .*--steps P"):
        CEMNetPipeline.from_bundle(bundle, "cpu", ablation="aee")
    with pytest.raises(WeightsError, match=r"ablations/wo_ebm/emotion_memory/.*model.use_memory=false"):
        CEMNetPipeline.from_bundle(bundle, "cpu", ablation="ebm")
    assert CEMNetPipeline.from_bundle(bundle, "cpu", ablation="a2m").emotion_memory is None


def test_from_bundle_refuses_wrong_or_contradictory_ablations(tmp_path: Path) -> None:
    bundle = save_tiny_bundle(tmp_path / "w")
    with pytest.raises(ConfigError, match="unknown ablation"):
        CEMNetPipeline.from_bundle(bundle, "cpu", ablation="renderer")
    with pytest.raises(ConfigError, match="disagree"):
        CEMNetPipeline.from_bundle(bundle, "cpu", ablation="ebm", use_aee=False)
    # An EBM with memories where "w/o EBM" is expected (e.g. the full EBM exported to the wrong folder).
    models = tiny_models()
    save_release(bundle / ABLATIONS_FOLDER / "wo_ebm" / "emotion_memory", models["emotion_memory"],
                 "emotion_memory", models["emotion_memory"].config)  # fmt: skip
    with pytest.raises(WeightsError, match="use_memory=true but needs use_memory=false"):
        CEMNetPipeline.from_bundle(bundle, "cpu", ablation="ebm")
    # A w/o AEE encoder whose embedding width the EBM beside it was not trained on.
    wide = dataclasses.replace(tiny_configs()["emotion_enhancer"], emotion_dim=5)
    save_release(bundle / ABLATIONS_FOLDER / "wo_aee" / "emotion_enhancer", EmotionEnhancer(wide),
                 "emotion_enhancer", wide)  # fmt: skip
    save_release(bundle / ABLATIONS_FOLDER / "wo_aee" / "emotion_memory", models["emotion_memory"],
                 "emotion_memory", models["emotion_memory"].config)  # fmt: skip
    with pytest.raises(WeightsError, match="train the EBM on that encoder"):
        CEMNetPipeline.from_bundle(bundle, "cpu", ablation="aee")
