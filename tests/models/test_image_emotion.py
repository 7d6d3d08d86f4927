"""Tests of the FER2013 mini-Xception port and the image emotion extractor.

The Keras model is checked against ``_keras_reference``: an independent numpy interpreter of the HDF5
``model_config`` graph (NHWC, float64, TensorFlow padding rules), sharing no code with the torch port.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from safetensors.torch import load_file, save_file
from skimage import data as skdata

from cemnet_core.contracts import FER_CLASSES
from cemnet_core.errors import ChecksumError, ConfigError, WeightsError
from cemnet_core.models import build_model
from cemnet_core.models.image_emotion import (
    ImageEmotionExtractor,
    MiniXception,
    MiniXceptionConfig,
    load_mini_xception_hdf5,
    to_fer_input,
)
from cemnet_core.pretrained import convert_mini_xception, load_fer_classifier

HDF5_NAME = "fer2013_mini_xception.hdf5"
# dlib's frontal detector finds the astronaut's face at x 175..265, y 76..166 (rows, cols below).
ASTRONAUT_FACE = (slice(76, 166), slice(175, 265))


# --- independent numpy reference of the Keras graph ------------------------------------------------------


def _tf_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad(
    x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int], padding: str, value: float
) -> np.ndarray:
    if padding == "valid":
        return x
    top, bottom = _tf_same_pads(x.shape[1], kernel[0], strides[0])
    left, right = _tf_same_pads(x.shape[2], kernel[1], strides[1])
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def _windows(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int]) -> np.ndarray:
    """(n, H, W, C) -> (n, H', W', C, kh, kw) strided windows."""
    return sliding_window_view(x, kernel, axis=(1, 2))[:, :: strides[0], :: strides[1]]


def _keras_reference(path: Path, images_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run the Keras HDF5 model on (n, 64, 64, 1) images; returns (pre-softmax pooled logits, softmax)."""
    with h5py.File(path, "r") as f:
        graph = json.loads(f.attrs["model_config"])["config"]
        weights: dict[str, dict[str, np.ndarray]] = {}
        for name in f["model_weights"]:
            # Datasets sit at <layer>/<layer>_1/<weight>:0 in Keras 2.0 files.
            for inner in f["model_weights"][name].values():
                weights[name] = {key[:-2]: inner[key][()].astype(np.float64) for key in inner}
    outputs: dict[str, np.ndarray] = {}
    pooled = None
    for layer in graph["layers"]:
        kind, name, cfg = layer["class_name"], layer["name"], layer["config"]
        inputs = [outputs[node[0]] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        w = weights.get(name, {})
        if kind == "InputLayer":
            y = images_nhwc.astype(np.float64)
        elif kind == "Conv2D":
            kernel, strides = tuple(cfg["kernel_size"]), tuple(cfg["strides"])
            x = _pad(inputs[0], kernel, strides, cfg["padding"], 0.0)
            y = np.einsum("nhwcij,ijco->nhwo", _windows(x, kernel, strides), w["kernel"])
            if cfg["use_bias"]:
                y = y + w["bias"]
        elif kind == "SeparableConv2D":
            kernel, strides = tuple(cfg["kernel_size"]), tuple(cfg["strides"])
            x = _pad(inputs[0], kernel, strides, cfg["padding"], 0.0)
            depth = np.einsum("nhwcij,ijc->nhwc", _windows(x, kernel, strides), w["depthwise_kernel"][..., 0])
            y = np.einsum("nhwc,co->nhwo", depth, w["pointwise_kernel"][0, 0])
        elif kind == "BatchNormalization":
            scale = w["gamma"] / np.sqrt(w["moving_variance"] + cfg["epsilon"])
            y = (inputs[0] - w["moving_mean"]) * scale + w["beta"]
        elif kind == "Activation" and cfg["activation"] == "relu":
            y = np.maximum(inputs[0], 0.0)
        elif kind == "Activation" and cfg["activation"] == "softmax":
            pooled = inputs[0]
            shifted = np.exp(inputs[0] - inputs[0].max(axis=-1, keepdims=True))
            y = shifted / shifted.sum(axis=-1, keepdims=True)
        elif kind == "MaxPooling2D":
            kernel, strides = tuple(cfg["pool_size"]), tuple(cfg["strides"])
            x = _pad(inputs[0], kernel, strides, cfg["padding"], -np.inf)
            y = _windows(x, kernel, strides).max(axis=(-2, -1))
        elif kind == "Add":
            y = inputs[0] + inputs[1]
        elif kind == "GlobalAveragePooling2D":
            y = inputs[0].mean(axis=(1, 2))
        else:
            raise AssertionError(f"reference does not know layer {kind} {cfg.get('activation')}")
        outputs[name] = y
    assert pooled is not None
    return pooled, outputs[graph["output_layers"][0][0]]


# --- fixtures ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fer_hdf5(weights_dir: Path) -> Path:
    return weights_dir / HDF5_NAME


@pytest.fixture(scope="module")
def classifier(fer_hdf5: Path) -> MiniXception:
    return load_mini_xception_hdf5(fer_hdf5)


def _faces(images: list[np.ndarray]) -> list[torch.Tensor]:
    """RGB uint8 crops of any sizes -> list of (1, 3, H, W) floats in [0, 1]."""
    return [
        torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255 for img in images
    ]


def _face_batch(images: list[np.ndarray], size: int = 128) -> torch.Tensor:
    """RGB uint8 crops of any sizes -> (B, 3, size, size) in [0, 1]."""
    resize = torch.nn.functional.interpolate
    return torch.cat(
        [resize(face, size=(size, size), mode="bilinear", antialias=True) for face in _faces(images)]
    )


def _astronaut_crops() -> list[np.ndarray]:
    image = skdata.astronaut()
    rows, cols = ASTRONAUT_FACE
    crops = []
    for margin in (0, 10, 20, 30):
        crops.append(
            image[rows.start - margin : rows.stop + margin, cols.start - margin : cols.stop + margin]
        )
    return crops


# --- pretrained behaviour -----------------------------------------------------------------------------------


def test_astronaut_is_happy(classifier: MiniXception) -> None:
    for face in _faces(_astronaut_crops()):
        with torch.no_grad():
            probabilities = classifier(to_fer_input(face)).softmax(-1)[0]
        assert FER_CLASSES[int(probabilities.argmax())] == "happy"
        assert probabilities.max().item() > 0.99


def test_port_matches_keras_graph(classifier: MiniXception, fer_hdf5: Path) -> None:
    rng = np.random.default_rng(0)
    other = [skdata.camera()[40:300, 120:380, None].repeat(3, axis=2), skdata.chelsea()[:256, 60:316]]
    faces = _faces(_astronaut_crops() + other)
    grey = torch.cat(
        [
            *(to_fer_input(face) for face in faces),
            torch.from_numpy(rng.uniform(-1, 1, (2, 1, 64, 64))).float(),
        ]
    )
    with torch.no_grad():
        logits = classifier(grey).double().numpy()
    reference_logits, reference_probabilities = _keras_reference(
        fer_hdf5, grey.permute(0, 2, 3, 1).double().numpy()
    )
    np.testing.assert_allclose(logits, reference_logits, atol=1e-3)
    np.testing.assert_allclose(
        torch.from_numpy(logits).softmax(-1).numpy(), reference_probabilities, atol=1e-3
    )
    # The inputs are diverse enough that a padding or transposition mistake would show.
    assert len({int(i) for i in reference_probabilities.argmax(-1)}) >= 2


def test_extractor_starts_from_classifier(classifier: MiniXception) -> None:
    extractor = ImageEmotionExtractor.from_classifier(classifier).eval()
    faces = _face_batch(_astronaut_crops())
    with torch.no_grad():
        features, logits = extractor(faces)
        expected = classifier(to_fer_input(faces))
    assert features.shape == (4, 128)
    torch.testing.assert_close(logits, expected)
    # Fine-tuning the copy leaves the judge untouched.
    with torch.no_grad():
        extractor.network.head.bias.add_(1.0)
    assert not torch.equal(extractor.network.head.bias, classifier.head.bias)


def test_converted_release_matches_hdf5(classifier: MiniXception, fer_hdf5: Path, tmp_path: Path) -> None:
    folder = convert_mini_xception(fer_hdf5, tmp_path / "fer")
    assert sorted(p.name for p in folder.iterdir()) == ["checksums.json", "config.json", "model.safetensors"]
    document = json.loads((folder / "config.json").read_text())
    assert document["kind"] == "mini_xception" and document["config"]["bn_eps"] == pytest.approx(1e-3)
    judge = load_fer_classifier(folder)
    assert not judge.training and not any(p.requires_grad for p in judge.parameters())
    grey = torch.rand(3, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(judge(grey), classifier(grey), rtol=0, atol=0)
    # The registry kind builds the same network from config.json.
    assert isinstance(build_model("mini_xception", document["config"]), MiniXception)


def test_fer_classifier_from_registry(
    weights_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, classifier: MiniXception
) -> None:
    monkeypatch.setenv("CEMNET_WEIGHTS_DIR", str(weights_dir))
    grey = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(load_fer_classifier()(grey), classifier(grey), rtol=0, atol=0)
    impostor = tmp_path / "fer2013_mini_xception.hdf5"
    impostor.write_bytes(b"not an hdf5 file")
    with pytest.raises(ChecksumError):
        load_fer_classifier(impostor)
    with pytest.raises(WeightsError, match="cannot read"):
        convert_mini_xception(impostor, tmp_path / "out")
    with pytest.raises(WeightsError, match="does not exist"):
        load_fer_classifier(tmp_path / "missing.hdf5")


# --- model checks on tiny configs (STYLE section 9) ---------------------------------------------------------


def test_shapes_and_finite() -> None:
    config = MiniXceptionConfig.tiny()
    extractor = ImageEmotionExtractor(config).eval()
    features, logits = extractor(torch.rand(3, 3, 48, 40))
    assert features.shape == (3, config.feature_dim) and logits.shape == (3, config.num_classes)
    assert torch.isfinite(features).all() and torch.isfinite(logits).all()


def test_paper_config_shapes() -> None:
    model = MiniXception(MiniXceptionConfig.paper()).eval()
    assert model.feature_map(torch.zeros(1, 1, 64, 64)).shape == (1, 128, 4, 4)
    assert model(torch.zeros(2, 1, 64, 64)).shape == (2, 7)


def test_gradients_reach_every_parameter() -> None:
    extractor = ImageEmotionExtractor(MiniXceptionConfig.tiny()).train()
    faces = torch.rand(4, 3, 40, 40, requires_grad=True)
    features, logits = extractor(faces)
    (
        features.square().mean() + torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3, 5, 6]))
    ).backward()
    for name, parameter in extractor.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert faces.grad is not None and faces.grad.abs().sum() > 0  # preprocessing is differentiable


def test_safetensors_round_trip(tmp_path: Path) -> None:
    config = MiniXceptionConfig.tiny()
    extractor = ImageEmotionExtractor(config).train()
    extractor(torch.rand(4, 3, 32, 32))  # moves the BatchNorm running statistics off their defaults
    extractor.eval()
    save_file(extractor.state_dict(), tmp_path / "model.safetensors")
    restored = ImageEmotionExtractor(config).eval()
    restored.load_state_dict(load_file(tmp_path / "model.safetensors"))
    faces = torch.rand(2, 3, 32, 32)
    for before, after in zip(extractor(faces), restored(faces), strict=True):
        torch.testing.assert_close(before, after, rtol=0, atol=0)


def test_registered_kinds_build() -> None:
    config = MiniXceptionConfig.tiny().to_dict()
    assert isinstance(build_model("image_emotion", config), ImageEmotionExtractor)
    assert build_model("mini_xception", config).config == MiniXceptionConfig.tiny()


def test_config_json_round_trip() -> None:
    for config in (MiniXceptionConfig.paper(), MiniXceptionConfig.tiny()):
        assert MiniXceptionConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ConfigError, match="unknown"):
        MiniXceptionConfig.from_dict({"width": 3})
    with pytest.raises(ConfigError):
        MiniXceptionConfig(block_channels=())


def test_bad_shapes_raise() -> None:
    model = MiniXception(MiniXceptionConfig.tiny())
    with pytest.raises(ValueError, match=r"\(B, 1, 32, 32\)"):
        model(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        to_fer_input(torch.zeros(1, 1, 32, 32))
