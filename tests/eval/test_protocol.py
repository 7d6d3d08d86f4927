"""Protocol: pairing rules, a full evaluation with tiny real models on a tiny corpus, the reports."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from test_judges import make_eval_corpus

from cemnet_core.data.manifest import read_manifest
from cemnet_core.errors import ConfigError, DataError
from cemnet_core.eval import judges as j
from cemnet_core.eval import protocol, report
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


def _pipeline(use_aee: bool = True) -> CEMNetPipeline:
    return CEMNetPipeline(
        AudioToMouth(AudioToMouthConfig.tiny()),
        EmotionEnhancer(EmotionEnhancerConfig.tiny()),
        ImageEmotionExtractor(MiniXceptionConfig.tiny()),
        None,
        FaceRenderer(RendererConfig.tiny()),
        use_aee=use_aee,
        use_ebm=False,
    )


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
    assert protocol.methods_for(("aee", "ebm"), True) == ["cemnet", "w/o AEE", "w/o EBM", "copy-reference"]
    assert protocol.methods_for((), False) == ["cemnet"]
    with pytest.raises(ConfigError, match="unknown ablation"):
        protocol.methods_for(("renderer",), True)


def test_evaluate_and_report(corpus: Path, tmp_path: Path) -> None:
    emotion_judge, identity_judge = j.corpus_judges(corpus, cache=tmp_path / "judges", steps=20)
    judges = protocol.Judges(emotion_judge, identity_judge)
    pipeline = _pipeline()
    pipelines = {"cemnet": pipeline, "w/o AEE": _pipeline(use_aee=False), "copy-reference": pipeline}
    result = protocol.evaluate(corpus, pipelines, judges, runs=2, split="all", max_clips=1)
    assert set(result.summary) == set(protocol.SETTINGS)
    assert set(result.summary["cross-emotion"]) == set(pipelines)
    for row in result.rows:
        assert row["psnr"] > 0 and -1 <= row["ssim"] <= 1 and row["m_lmd"] >= 0 and 0 <= row["ea"] <= 1
        assert math.isnan(row["lse_c"])  # no lip-sync judge given
    copy_rows = [r for r in result.rows if r["method"] == "copy-reference"]
    assert all(r["m_lmd"] > 0 for r in copy_rows)  # a still mouth never matches a talking one
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
    assert table.row_count == 2 * len(pipelines)


def test_score_pair_of_ground_truth_is_perfect(corpus: Path, tmp_path: Path) -> None:
    from cemnet_core.data.clips import load_clip
    from cemnet_core.data.landmarks import MOUTH, select

    emotion_judge, identity_judge = j.corpus_judges(corpus, cache=tmp_path / "judges", steps=20)
    record = read_manifest(corpus)[0]
    clip = load_clip(record.path)
    truth = protocol.Generated(clip.frames, select(clip.landmarks, MOUTH), clip.frames[:2])
    scores = protocol.score_pair(truth, clip, record.emotion, protocol.Judges(emotion_judge, identity_judge))
    assert scores["psnr"] == 100.0 and scores["ssim"] == pytest.approx(1.0) and scores["m_lmd"] == 0.0
    assert scores["csim"] > 0.9


def test_no_pairs_is_a_data_error(tmp_path: Path) -> None:
    data = make_eval_corpus(tmp_path / "d", speakers=1, emotions=("happy",), sentences=1, frames=6)
    with pytest.raises(DataError, match="no evaluation pairs"):
        protocol.evaluate(data, {"cemnet": _pipeline()}, None, split="all")  # type: ignore[arg-type]
