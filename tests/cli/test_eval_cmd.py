"""``cemnet eval`` end to end: tiny release folders, a tiny corpus, both settings and both ablations."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from test_judges import make_eval_corpus

from cemnet_cli.main import app
from cemnet_core.models.audio_to_mouth import AudioToMouth, AudioToMouthConfig
from cemnet_core.models.emotion_enhancement import EmotionEnhancer, EmotionEnhancerConfig
from cemnet_core.models.emotion_memory import EmotionBridgingMemory, EmotionBridgingMemoryConfig
from cemnet_core.models.image_emotion import ImageEmotionExtractor, MiniXceptionConfig
from cemnet_core.models.renderer import FaceRenderer, RendererConfig
from cemnet_core.weights import save_release


def _bundle(root: Path) -> Path:
    aee, image = EmotionEnhancerConfig.tiny(), MiniXceptionConfig.tiny()
    ebm = EmotionBridgingMemoryConfig.from_dict(
        {**EmotionBridgingMemoryConfig.tiny().to_dict(), "target_emotion_dim": aee.emotion_dim,
         "source_emotion_dim": image.feature_dim}
    )  # fmt: skip
    a2m = AudioToMouthConfig.tiny()
    for name, model, config in (
        ("audio_to_mouth", AudioToMouth(a2m), a2m),
        ("emotion_enhancer", EmotionEnhancer(aee), aee),
        ("image_emotion", ImageEmotionExtractor(image), image),
        ("emotion_memory", EmotionBridgingMemory(ebm), ebm),
        ("renderer", FaceRenderer(RendererConfig.tiny()), RendererConfig.tiny()),
    ):
        save_release(root / name, model, name, config)
    return root


@pytest.mark.assets
def test_eval_prints_table_and_writes_reports(tmp_path: Path, weights_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("CEMNET_WEIGHTS_DIR", str(weights_dir))  # dlib identity of the references (EBM)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = make_eval_corpus(tmp_path / "data", speakers=2, sentences=1, frames=8)
        weights = _bundle(tmp_path / "weights")
        out = tmp_path / "out"
        arguments = ["eval", "--data", str(data), "--weights", str(weights), "--split", "all",
                     "--max-clips", "2", "--ablate", "aee", "--ablate", "ebm", "--out", str(out)]  # fmt: skip
        result = CliRunner().invoke(app, arguments)
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    assert "Table II" in result.output and "cemnet" in result.output
    document = json.loads((out / "results.json").read_text())
    assert document["config"]["methods"] == ["cemnet", "w/o AEE", "w/o EBM", "copy-reference"]
    assert set(document["summary"]) == {"neutral-base", "cross-emotion"}
    assert set(document["summary"]["cross-emotion"]) == set(document["config"]["methods"])
    assert "audio_to_mouth/model.safetensors" in document["config"]["weights_sha256"]
    assert document["config"]["judges"]["lipsync"].startswith("none")
    assert (out / "results.csv").is_file() and (out / "examples.png").is_file()


def test_eval_rejects_unknown_setting(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "--data", str(tmp_path), "--weights", str(tmp_path),
                                      "--setting", "sideways"])  # fmt: skip
    assert result.exit_code == 2 and "--setting must be one of" in result.output
