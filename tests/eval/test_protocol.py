"""Protocol: pairing rules, a full evaluation with tiny real models on a tiny corpus, the reports."""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console
from test_judges import make_eval_corpus

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_pipeline import save_tiny_ablations, save_tiny_bundle

from cemnet_core.data.manifest import read_manifest
from cemnet_core.errors import ConfigError, DataError, WeightsError
from cemnet_core.eval import judges as j
from cemnet_core.eval import metrics, protocol, report
from cemnet_core.models.audio_to_mouth import AudioToMouth, AudioToMouthConfig
from cemnet_core.models.emotion_enhancement import EmotionEnhancer, EmotionEnhancerConfig
from cemnet_core.models.image_emotion import ImageEmotionExtractor, MiniXceptionConfig
from cemnet_core.models.renderer import FaceRenderer, RendererConfig
from cemnet_core.pipeline import CEMNetPipeline


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest on a shared 2-core machine
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_eval_corpus(tmp_path_factory.mktemp("protocol"), speakers=2, sentences=2, frames=10)


def _pipeline() -> CEMNetPipeline:
    return CEMNetPipeline(
        AudioToMouth(AudioToMouthConfig.tiny()),
        EmotionEnhancer(EmotionEnhancerConfig.tiny()),
        ImageEmotionExtractor(MiniXceptionConfig.tiny()),
        None,
        FaceRenderer(RendererConfig.tiny()),
        use_ebm=False,
    )


def _fixed_identity(images: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A constant unit identity for the EBM (dlib needs the shared weights; the EBM only needs a vector)."""
    return np.full(128, 128**-0.5, np.float32)


def test_pairing_follows_the_settings(corpus: Path) -> None:
    records = read_manifest(corpus)
    for setting in protocol.SETTINGS:
        pairs = protocol.pair_clips(records, records, setting, seed=0)
        assert pairs and pairs == protocol.pair_clips(records, records, setting, seed=0)
        for pair in pairs:
            assert pair.reference.speaker == pair.target.speaker and pair.reference.path != pair.target.path
            if setting == "neutral-base":
                assert pair.reference.emotion == "neutral"
            else:
                assert pair.reference.emotion not in ("neutral", pair.target.emotion)
    # cross-emotion: every target in this corpus has candidates in 2 other non-neutral emotions x 2 sentences
    first = records[:1]
    drawn = {
        pair.reference.path
        for seed in range(6)
        for pair in protocol.pair_clips(records, first, "cross-emotion", seed)
    }
    assert len(drawn) > 1  # seeds change the pairing
    with pytest.raises(ConfigError, match="unknown setting"):
        protocol.pair_clips(records, records, "sideways", 0)


def test_methods_and_ablation_names() -> None:
    assert protocol.methods_for(("aee", "ebm"), True) == [
        "cemnet", "w/o AEE", "w/o EBM", "a2m (no emotion)", "copy-reference", "ground truth"
    ]  # fmt: skip
    assert protocol.methods_for(("ebm",), False) == ["cemnet", "w/o EBM"]
    assert protocol.methods_for((), False) == ["cemnet"]
    assert set(protocol.methods_for(("aee", "ebm"), True)) == set(protocol.METHOD_DESCRIPTIONS)
    with pytest.raises(ConfigError, match="unknown ablation"):
        protocol.methods_for(("renderer",), True)


def test_load_pipelines_uses_the_ablations_own_weights(tmp_path: Path) -> None:
    bundle = save_tiny_bundle(tmp_path / "w")
    with pytest.raises(WeightsError, match=r"w/o AEE.*cemnet train aee"):
        protocol.load_pipelines(bundle, ("aee",), device="cpu")
    save_tiny_ablations(bundle)
    pipelines = protocol.load_pipelines(bundle, ("aee", "ebm"), device="cpu")
    assert list(pipelines) == protocol.methods_for(("aee", "ebm"), True)
    full = pipelines["cemnet"]
    assert pipelines["copy-reference"] is full
    assert pipelines["w/o AEE"].emotion_enhancer is not full.emotion_enhancer
    assert pipelines["w/o EBM"].emotion_memory is not None
    assert not pipelines["w/o EBM"].emotion_memory.config.use_memory
    baseline = pipelines["a2m (no emotion)"]
    assert baseline.emotion_memory is None and baseline.audio_to_mouth is full.audio_to_mouth


def test_evaluate_and_report(corpus: Path, tmp_path: Path) -> None:
    emotion_judge, identity_judge = j.corpus_judges(corpus, cache=tmp_path / "judges", steps=20)
    judges = protocol.Judges(emotion_judge, identity_judge, identity_of_references=_fixed_identity)
    bundle = save_tiny_ablations(save_tiny_bundle(tmp_path / "w"))
    pipelines = protocol.load_pipelines(bundle, ("aee", "ebm"), device="cpu")
    result = protocol.evaluate(corpus, pipelines, judges, runs=2, split="all", max_clips=1)
    assert list(result.summary) == list(protocol.SETTINGS)
    assert list(result.summary["cross-emotion"]) == list(pipelines)  # rows keep the methods' order
    for row in result.rows:
        assert row["psnr"] > 0 and -1 <= row["ssim"] <= 1 and row["m_lmd"] >= 0 and 0 <= row["ea"] <= 1
        assert math.isnan(row["lse_c"])  # no lip-sync judge given
    copy_rows = [r for r in result.rows if r["method"] == "copy-reference"]
    assert all(r["m_lmd"] > 0 for r in copy_rows)  # a still mouth never matches a talking one
    # The ablations and the baseline are different models: their mouths differ from the full model's.
    m_lmd = {m: v["m_lmd"][0] for m, v in result.summary["cross-emotion"].items()}
    assert len({round(value, 9) for value in m_lmd.values()}) == len(pipelines)
    mean, std = result.summary["neutral-base"]["cemnet"]["psnr"]
    assert math.isfinite(mean) and std >= 0

    paths = report.write_results(result, tmp_path / "out", {"runs": 2})
    document = json.loads(paths["json"].read_text())
    assert document["seeds"] == [0, 1] and len(document["clips"]) == len(result.rows)
    assert document["clips"][0]["lse_c"] is None  # NaN is written as null, the file stays valid JSON
    with paths["csv"].open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(result.rows) + 2 * 2 * len(pipelines)  # + mean and std per setting and method
    figure = report.write_figure(tmp_path / "out" / "fig.png", result.example_truth, result.examples, result)
    assert figure.stat().st_size > 0
    table = report.results_table(result)
    assert table.row_count == len(result.summary) * (1 + len(pipelines))  # a title row per setting
    assert "w/o AEE: AEE replaced by an audio emotion classifier" in str(table.caption)
    assert "a2m (no emotion): baseline: Audio2Mouth without emotion" in str(table.caption)


def test_score_pair_of_ground_truth_is_perfect(corpus: Path, tmp_path: Path) -> None:
    from cemnet_core.contracts import MOUTH
    from cemnet_core.data.clips import load_clip
    from cemnet_core.data.landmarks import select

    emotion_judge, identity_judge = j.corpus_judges(corpus, cache=tmp_path / "judges", steps=20)
    record = read_manifest(corpus)[0]
    clip = load_clip(record.path)
    truth = protocol.Generated(clip.frames, select(clip.landmarks, MOUTH), clip.frames[:2])
    scores = protocol.score_pair(truth, clip, record.emotion, protocol.Judges(emotion_judge, identity_judge))
    assert scores["psnr"] == 100.0 and scores["ssim"] == pytest.approx(1.0) and scores["m_lmd"] == 0.0
    assert scores["csim"] > 0.9


def test_ground_truth_row_scores_the_true_frames_once_per_pair(corpus: Path, tmp_path: Path) -> None:
    from cemnet_core.data.clips import load_clip
    from cemnet_core.eval import metrics

    emotion_judge, identity_judge = j.corpus_judges(corpus, cache=tmp_path / "judges", steps=20)
    judges = protocol.Judges(emotion_judge, identity_judge)
    pipeline = _pipeline()
    methods = {"cemnet": pipeline, "copy-reference": pipeline}
    alone = protocol.evaluate(corpus, methods, judges, runs=2, split="all", max_clips=2)
    both = protocol.evaluate(corpus, methods | {protocol.TRUTH_METHOD: pipeline}, judges, runs=2, split="all",
                             max_clips=2)  # fmt: skip
    truth = [row for row in both.rows if row["method"] == protocol.TRUTH_METHOD]
    others = [row for row in both.rows if row["method"] != protocol.TRUTH_METHOD]
    assert json.dumps(others) == json.dumps(alone.rows)  # the other methods' rows are untouched (NaN too)
    assert list(both.examples) == list(alone.examples)  # the figure draws the truth once, from example_truth
    assert len(truth) == len(alone.rows) // len(methods)  # once per (setting, seed, pair)
    assert [row["method"] for row in both.rows[:3]] == [*methods, protocol.TRUTH_METHOD]  # last of its pair
    for row in truth:
        clip = load_clip(corpus / "clips" / row["target"])
        frames = protocol.resize_frames(clip.frames, pipeline.image_size)
        label = [emotion_judge.target_index(row["target_emotion"])] * len(frames)
        assert row["ea"] == metrics.emotion_accuracy(emotion_judge.logits(frames), label)  # real frames
        assert row["psnr"] == math.inf and row["ssim"] == pytest.approx(1.0) and row["m_lmd"] == 0.0
        assert -1 - 1e-6 <= row["csim"] <= 1 + 1e-6
    for of_setting in both.summary.values():
        assert list(of_setting)[-1] == protocol.TRUTH_METHOD
        assert math.isnan(of_setting[protocol.TRUTH_METHOD]["psnr"][0])  # no finite PSNR to average
    console = Console(width=80, record=True)
    console.print(report.results_table(both))
    truth_lines = [
        line for line in console.export_text().splitlines() if line.split()[:2] == ["ground", "truth"]
    ]
    assert len(truth_lines) == len(both.summary) and all(line.split()[2] == "n/a" for line in truth_lines)
    document = json.loads(report.write_results(both, tmp_path / "out", {})["json"].read_text())
    assert all(row["psnr"] is None for row in document["clips"] if row["method"] == protocol.TRUTH_METHOD)


def test_no_pairs_is_a_data_error(tmp_path: Path) -> None:
    data = make_eval_corpus(tmp_path / "d", speakers=1, emotions=("happy",), sentences=1, frames=6)
    with pytest.raises(DataError, match="no evaluation pairs"):
        protocol.evaluate(data, {"cemnet": _pipeline()}, None, split="all")  # type: ignore[arg-type]


def test_self_setting_uses_the_clips_own_frames_and_truth_landmarks_render_the_true_mouth(
    corpus: Path, tmp_path: Path
) -> None:
    records = read_manifest(corpus)
    pairs = protocol.pair_clips(records, records, "self", seed=0)
    assert [p.target for p in pairs] == records and all(p.reference == p.target for p in pairs)
    from cemnet_core.contracts import MOUTH
    from cemnet_core.data.clips import load_clip
    from cemnet_core.data.landmarks import select

    pipeline = _pipeline()
    clip = load_clip(records[0].path)
    frames = protocol.self_references(clip, {"cemnet": pipeline}, seed=0)
    assert len(frames) == pipeline.audio_to_mouth.config.num_refs and clip.valid[frames].all()
    assert np.array_equal(frames, protocol.self_references(clip, {"cemnet": pipeline}, seed=0))
    assert not np.array_equal(frames, protocol.self_references(clip, {"cemnet": pipeline}, seed=1))
    judges = protocol.Judges(*j.corpus_judges(corpus, cache=tmp_path / "judges", steps=20))
    truth = protocol.generate_pair(pipeline, clip, clip, "cemnet", judges, reference_frames=frames,
                                   landmarks="truth")  # fmt: skip
    predicted = protocol.generate_pair(pipeline, clip, clip, "cemnet", judges, reference_frames=frames)
    np.testing.assert_allclose(truth.mouth, select(clip.landmarks, MOUTH), atol=1e-6)
    assert not np.allclose(predicted.mouth, truth.mouth)  # an untrained Audio2Mouth is not the truth
    result = protocol.evaluate(corpus, {"cemnet": pipeline}, judges, settings=("self",), split="all",
                               max_clips=1, landmarks="truth")  # fmt: skip
    assert list(result.summary) == ["self"] and result.rows[0]["m_lmd"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ConfigError, match="landmarks must be"):
        protocol.generate_pair(pipeline, clip, clip, "cemnet", judges, landmarks="guessed")


def test_ea_on_the_lower_face_differs_between_copy_the_reference_and_the_true_frames(
    corpus: Path, tmp_path: Path
) -> None:
    """Every method gets the true upper face, so whole-face EA barely moves; EA on the lower face sees
    that copy-the-reference shows another emotion's mouth."""
    from cemnet_core.data.clips import load_clip
    from cemnet_core.data.manifest import split_records

    cache = tmp_path / "judges"
    emotion_judge, identity_judge = j.corpus_judges(corpus, cache=cache, steps=20)
    lower = j.corpus_lower_face_judge(corpus, cache=cache, steps=300)
    judges = protocol.Judges(emotion_judge, identity_judge, emotion_lower=lower)
    records = read_manifest(corpus)
    training = split_records(records, "train")  # clips the judges were trained on: a known speaker
    target = next(r for r in training if r.emotion == "happy")
    reference = next(r for r in records if r.speaker == target.speaker and r.emotion == "sad")
    pipeline = _pipeline()
    target_clip, reference_clip = load_clip(target.path), load_clip(reference.path)
    truth = protocol.ground_truth_pair(pipeline, target_clip, reference_clip)
    half = truth.frames.shape[1] // 2
    copied = truth.frames.copy()
    first = protocol.pair_references(pipeline, target_clip, reference_clip)[0]
    still = protocol.resize_frames(reference_clip.frames[first : first + 1], pipeline.image_size)[0]
    copied[:, half:] = still[half:]  # the reference's mouth held still under the true upper face
    copy = protocol.Generated(copied, truth.mouth, truth.references)
    true_scores = protocol.score_pair(truth, target_clip, "happy", judges)
    copy_scores = protocol.score_pair(copy, target_clip, "happy", judges)
    assert true_scores["ea_lower"] >= 0.8 and copy_scores["ea_lower"] <= 0.2
    assert lower.model.config.val_accuracy >= 0 and "lower-face" in lower.name
    without = protocol.score_pair(truth, target_clip, "happy", protocol.Judges(emotion_judge, identity_judge))
    assert math.isnan(without["ea_lower"]) and without["ea"] == true_scores["ea"]
    # The ground-truth row of an evaluation shows the lower-face judge's score of the true frames.
    result = protocol.evaluate(corpus, {protocol.TRUTH_METHOD: pipeline}, judges, runs=1, split="train",
                               max_clips=2)  # fmt: skip
    for row in result.rows:
        frames = protocol.resize_frames(
            load_clip(corpus / "clips" / row["target"]).frames, pipeline.image_size
        )
        label = [lower.target_index(row["target_emotion"])] * len(frames)
        assert row["ea_lower"] == metrics.emotion_accuracy(lower.lower_logits(frames, frames[:1]), label)
    assert all(math.isfinite(v["ea_lower"][0]) for s in result.summary.values() for v in s.values())
