"""The end-to-end demo at its quick size: corpus -> preprocess -> every stage -> eval -> a playable video."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from rich.console import Console

from cemnet_core.data.media import probe
from cemnet_core.demo import CONFIG_FILE, SUMMARY_FILE, DemoResult, run_demo
from cemnet_core.demo_config import DemoConfig, StagePlan
from cemnet_core.errors import ConfigError
from cemnet_core.eval.claims import claim_lines
from cemnet_core.models import MODEL_KINDS
from cemnet_core.release import load_model as load_stage

FRAME = 1 / 25
PRINTED = io.StringIO()  # what the module's demo prints


@pytest.fixture(scope="module")
def demo(weights_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoResult]:
    """The quick demo, run once for the module (CEMNET_WEIGHTS_DIR points at the shared assets)."""
    out = tmp_path_factory.mktemp("demo") / "out"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CEMNET_WEIGHTS_DIR", str(weights_dir))
        yield run_demo(out, DemoConfig.quick(), Console(file=PRINTED, width=200))


def _numbers(value: object) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        return [number for item in value.values() for number in _numbers(item)]
    if isinstance(value, list):
        return [number for item in value for number in _numbers(item)]
    return []


def test_demo_video_plays_with_the_driving_audio(demo: DemoResult) -> None:
    info = probe(demo.video)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert info.width > 0 and info.width % 2 == 0 and info.height % 2 == 0
    assert abs(info.duration - probe(demo.speech).duration) <= FRAME + 1e-6


def test_demo_metrics_are_finite_numbers(demo: DemoResult) -> None:
    assert demo.metrics.is_file()
    document = json.loads(demo.metrics.read_text())
    for method in ("cemnet", "w/o AEE", "w/o EBM", "a2m (no emotion)", "copy-reference"):
        assert all(method in methods for methods in document["summary"].values())
    numbers = _numbers(document)
    assert numbers, f"{demo.metrics} holds no numbers"
    assert all(math.isfinite(number) for number in numbers)


def test_demo_table_says_it_is_a_protocol_check_not_a_reproduction(demo: DemoResult) -> None:
    from cemnet_core.demo import EVAL_TITLE

    assert json.loads(demo.metrics.read_text())["config"]["title"] == EVAL_TITLE
    assert "procedural corpus" in EVAL_TITLE and "not a reproduction" in EVAL_TITLE
    printed = " ".join(PRINTED.getvalue().split())  # the caption wraps at the table's width
    assert "claims of DESIGN section 9 at this size" in printed  # which of the paper's claims hold here
    rows = json.loads(demo.metrics.read_text())["clips"]
    for line in claim_lines(rows) or ["none measurable"]:  # the quick corpus may have no cross-emotion pair
        assert " ".join(line.split()) in printed, line


def test_demo_every_stage_release_loads(demo: DemoResult) -> None:
    folders = sorted(path.parent for path in demo.weights.rglob("config.json"))
    kinds = {json.loads((folder / "config.json").read_text())["kind"] for folder in folders}
    assert {"audio_to_mouth", "renderer", "emotion_enhancer", "image_emotion", "emotion_memory"} <= kinds
    assert (demo.weights / "ablations" / "wo_ebm" / "emotion_memory") in folders  # the "w/o EBM" row
    for name in ("emotion_enhancer", "emotion_memory"):  # the "w/o AEE" row
        assert (demo.weights / "ablations" / "wo_aee" / name) in folders
    for folder in folders:
        kind = json.loads((folder / "config.json").read_text())["kind"]
        assert kind in MODEL_KINDS
        model = load_stage(folder, kind)
        assert sum(parameter.numel() for parameter in model.parameters()) > 0


def test_demo_wo_aee_encoder_is_the_aee_run_stopped_after_pretraining(demo: DemoResult) -> None:
    # One aee run: stopped at pretrain_steps and exported to ablations/wo_aee, then resumed to its steps.
    stopped = load_stage(demo.weights / "ablations" / "wo_aee" / "emotion_enhancer", "emotion_enhancer")
    full = load_stage(demo.weights / "emotion_enhancer", "emotion_enhancer")
    assert stopped.config == full.config
    pairs = zip(stopped.state_dict().values(), full.state_dict().values(), strict=True)
    assert not all(torch.equal(a, b) for a, b in pairs)  # the full AEE trained on past the snapshot
    assert not (demo.out / "runs" / "aee.aee").exists()  # no second aee run
    ebm = tomllib.loads((demo.out / "runs" / "ebm.aee" / "config.toml").read_text())
    assert Path(ebm["aee"]) == demo.weights / "ablations" / "wo_aee" / "emotion_enhancer"  # its EBM's AEE


def test_demo_rerun_skips_finished_steps(demo: DemoResult, weights_dir: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("CEMNET_WEIGHTS_DIR", str(weights_dir))
    video_time = demo.video.stat().st_mtime_ns
    again = run_demo(demo.out, DemoConfig.quick(), Console(quiet=True))
    steps = set(again.seconds) - {"total", "assets"}  # the assets are looked up on every run
    assert {"synth", "preprocess", "train.a2m", "train.ebm.ebm", "eval", "generate"} <= steps
    assert steps == set(again.skipped)
    assert demo.video.stat().st_mtime_ns == video_time
    summary = json.loads((demo.out / SUMMARY_FILE).read_text())
    assert summary["video"] == str(demo.video)


def test_demo_phase_fine_tunes_the_earlier_export_and_exports_over_it(demo: DemoResult) -> None:
    run = demo.out / "runs" / "renderer.onephoto"
    settings = tomllib.loads((run / "config.toml").read_text())
    assert settings["init_from"] == str(demo.weights / "renderer")
    assert settings["single_reference_rate"] == 0.5
    assert (run / "exported").is_file() and (demo.out / "runs" / "renderer" / "exported").is_file()
    final = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["models"]["renderer"]
    shipped = load_stage(demo.weights / "renderer").state_dict()
    assert all(torch.equal(final[name], value) for name, value in shipped.items())


def test_demo_training_only_audio2mouth_feeds_the_ebms_and_is_not_shipped(demo: DemoResult) -> None:
    helper = demo.out / "helpers" / "audio_to_mouth"
    assert (helper / "config.json").is_file()
    corpus_run = tomllib.loads((demo.out / "runs" / "a2m.corpus" / "config.toml").read_text())
    assert corpus_run["init_from"] == str(demo.weights / "audio_to_mouth")
    for run in ("ebm", "ebm.aee", "ebm.ebm"):
        settings = tomllib.loads((demo.out / "runs" / run / "config.toml").read_text())
        assert settings["a2m"] == str(helper)
    shipped = load_stage(demo.weights / "audio_to_mouth").state_dict()  # the bundle keeps the a2m run's
    final = torch.load(demo.out / "runs" / "a2m" / "checkpoints" / "last.pt", weights_only=True)["models"]
    assert all(torch.equal(final["audio_to_mouth"][name], value) for name, value in shipped.items())
    tuned = load_stage(helper).state_dict()  # fine-tuned apart from the shipped one
    assert any(not torch.equal(tuned[name], value) for name, value in shipped.items())


def test_demo_config_refuses_a_training_only_plan_other_than_audio2mouth() -> None:
    with pytest.raises(ConfigError, match="training_only"):
        DemoConfig(stages=(StagePlan("renderer", 1, training_only=True),))


def test_demo_refuses_a_folder_made_with_other_settings(tmp_path: Path) -> None:
    quick = DemoConfig.quick()
    (tmp_path / CONFIG_FILE).write_text(json.dumps(quick.to_dict()))
    other = dataclasses.replace(quick, stages=(StagePlan("a2m", 1),))
    with pytest.raises(ConfigError, match="other settings"):
        run_demo(tmp_path, other, Console(quiet=True))


def test_demo_refuses_a_non_empty_folder_without_a_demo(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        run_demo(tmp_path, DemoConfig.quick(), Console(quiet=True))


def test_demo_config_checks_its_sizes() -> None:
    with pytest.raises(ConfigError, match="3 speakers"):
        DemoConfig(speakers=2)
    with pytest.raises(ConfigError, match="neutral"):
        DemoConfig(emotions=("happy",))
    with pytest.raises(ConfigError, match="need real_data"):
        DemoConfig(stages=(StagePlan("a2m", 1, data="real"),))
    with pytest.raises(ConfigError, match="'corpus' or 'real'"):
        DemoConfig(stages=(StagePlan("a2m", 1, data="mead"),))
    assert DemoConfig.starter("/data").real_data == "/data"
