"""``cemnet eval`` end to end: tiny release folders, a tiny corpus, both settings and both ablations."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_judges import make_eval_corpus
from test_pipeline import save_tiny_ablations, save_tiny_bundle

from cemnet_cli.main import app


@pytest.mark.assets
def test_eval_prints_table_and_writes_reports(tmp_path: Path, weights_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("CEMNET_WEIGHTS_DIR", str(weights_dir))  # dlib identity of the references (EBM)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = make_eval_corpus(tmp_path / "data", speakers=2, sentences=1, frames=8)
        from cemnet_core.eval import judges

        judges.corpus_judges(data, steps=20)  # cached in <data>/judges, where `cemnet eval` looks first:
        judges.corpus_lower_face_judge(data, steps=20)  # the test need not train them for 1500 steps
        weights = save_tiny_ablations(save_tiny_bundle(tmp_path / "weights"))
        out = tmp_path / "out"
        arguments = ["eval", "--data", str(data), "--weights", str(weights), "--split", "all",
                     "--max-clips", "2", "--ablate", "aee", "--ablate", "ebm", "--out", str(out),
                     "--runs", "1"]  # fmt: skip
        result = CliRunner().invoke(app, arguments)
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    assert "Table II" in result.output and "w/o EBM: no Emotion Bridging Memory" in result.output
    document = json.loads((out / "results.json").read_text())
    methods = ["cemnet", "w/o AEE", "w/o EBM", "a2m (no emotion)", "copy-reference", "ground truth"]
    assert document["config"]["methods"] == methods
    assert document["config"]["method_descriptions"]["w/o AEE"].startswith("AEE replaced by")
    assert set(document["summary"]) == {"neutral-base", "cross-emotion"}
    assert set(document["summary"]["cross-emotion"]) == set(document["config"]["methods"])
    assert "audio_to_mouth/model.safetensors" in document["config"]["weights_sha256"]
    assert "ablations/wo_aee/emotion_enhancer/model.safetensors" in document["config"]["weights_sha256"]
    assert document["config"]["judges"]["lipsync"].startswith("none")
    assert "lower-face expression CNN (held-out accuracy" in document["config"]["judges"]["ea_lower"]
    assert "EA-low" in result.output
    truth = document["summary"]["cross-emotion"]["ground truth"]
    assert truth["ea"]["mean"] is not None and truth["ea_lower"]["mean"] is not None  # the judges on truth
    assert (out / "results.csv").is_file() and (out / "examples.png").is_file()


def test_eval_rejects_unknown_setting(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "--data", str(tmp_path), "--weights", str(tmp_path),
                                      "--setting", "sideways"])  # fmt: skip
    assert result.exit_code == 2 and "--setting must be one of" in result.output


def test_eval_ablation_without_its_weights_says_how_to_train_it(tmp_path: Path) -> None:
    data = make_eval_corpus(tmp_path / "data", speakers=2, sentences=1, frames=6)
    weights = save_tiny_bundle(tmp_path / "weights")
    result = CliRunner().invoke(app, ["eval", "--data", str(data), "--weights", str(weights),
                                      "--ablate", "ebm", "--out", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code != 0
    assert "ablations/wo_ebm/emotion_memory" in result.output and "use_memory=false" in result.output


def test_eval_rejects_unknown_landmark_source(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "--data", str(tmp_path), "--weights", str(tmp_path),
                                      "--setting", "self", "--landmarks", "guessed"])  # fmt: skip
    assert result.exit_code == 2 and "--landmarks must be one of predicted, truth" in result.output


def test_eval_runs_default_to_the_papers_five() -> None:
    import inspect

    from cemnet_cli.eval_cmd import eval_command

    assert inspect.signature(eval_command).parameters["runs"].default == 5  # Sec. IV-D: mean over 5 runs
