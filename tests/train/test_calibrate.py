"""Audio2Mouth's motion gain from validation speakers (cemnet_core.train.calibrate)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from corpus import make_corpus

from cemnet_core.data.audio import loudness
from cemnet_core.data.clips import load_clip, save_clip
from cemnet_core.data.landmarks import mouth_opening
from cemnet_core.data.manifest import read_manifest, split_records
from cemnet_core.errors import DataError
from cemnet_core.models.audio_to_mouth import AudioToMouth, AudioToMouthConfig
from cemnet_core.release import load_model, load_release, save_release
from cemnet_core.train.calibrate import (
    calibrate_motion_gain,
    measure_motion_gain,
    predict_clip,
    references,
    speech_level,
    spread,
    windows,
)
from cemnet_core.train.stages import export_run, train_stage

TINY = ["preset=tiny", "loop.progress=false", "loop.tensorboard=false"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("calibrate_corpus"), speakers=6, frames=40, inner_lips=True)


@pytest.fixture(scope="module")
def trained(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> AudioToMouth:
    """A tiny Audio2Mouth trained a little, so that its mouth follows the audio but opens less."""
    run = tmp_path_factory.mktemp("calibrate_run")
    train_stage("a2m", corpus, run / "run", overrides=TINY, device="cpu", steps=40)
    (folder,) = export_run(run / "run", run / "release")
    return load_model(folder, "audio_to_mouth").eval()


def test_windows_skip_invalid_frames_and_one_photo_is_the_most_closed() -> None:
    valid = np.array([1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1], bool)
    assert windows(valid, 3) == [0, 4, 7]
    landmarks = np.zeros((5, 478, 2))
    landmarks[:, 14, 1] = [0.3, 0.1, 0.5, 0.2, 0.4]  # lower inner lip; the upper one stays at 0
    assert references(landmarks, np.ones(5, bool), 2, "one photo").tolist() == [1, 1]
    assert references(landmarks, np.ones(5, bool), 3, "video").tolist() == [1, 0, 2]


def test_measured_gain_is_the_ratio_of_true_to_predicted_spread(corpus: Path, trained: AudioToMouth) -> None:
    model = trained
    predicted, true = [], []
    for record in split_records(read_manifest(corpus), "val"):
        result = predict_clip(model, record.path, "one photo")
        predicted.append(spread(mouth_opening(result.mouth, "mouth")))
        true.append(spread(mouth_opening(result.truth, "mouth")))
    assert measure_motion_gain(model, corpus, "val") == pytest.approx(sum(true) / sum(predicted))


def test_calibration_writes_the_gain_and_the_gained_model_spreads_more_like_the_truth(
    corpus: Path, trained: AudioToMouth, tmp_path: Path
) -> None:
    folder = save_release(tmp_path / "a2m", trained, "audio_to_mouth", trained.config)
    before = measure_motion_gain(trained, corpus, "val")
    assert before > 1.1  # the trained model opens the mouth less than the truth
    gain = calibrate_motion_gain(folder, corpus, "val")
    assert gain == round(before, 2)
    calibrated = load_model(folder, "audio_to_mouth").eval()  # checksums verified on load
    assert calibrated.config == dataclasses.replace(trained.config, motion_gain=gain)
    assert abs(measure_motion_gain(calibrated, corpus, "val") - 1) < abs(before - 1)
    for name, value in load_release(folder).state_dict.items():  # the weights are untouched
        assert torch.equal(value, trained.state_dict()[name]), name
    assert calibrate_motion_gain(folder, corpus, "val") == gain  # measured at gain 1 again: idempotent


def test_calibration_on_clips_shorter_than_a_window_says_so(tmp_path: Path) -> None:
    short = make_corpus(tmp_path / "short", speakers=6, frames=2)  # the tiny model's windows are 3 frames
    with pytest.raises(DataError, match="no 'val' clip"):
        measure_motion_gain(AudioToMouth(AudioToMouthConfig.tiny()).eval(), short, "val")


def test_the_speech_level_is_the_training_clips_median_loudness(
    corpus: Path, trained: AudioToMouth, tmp_path: Path
) -> None:
    assert speech_level(corpus, "train") is None  # the corpus's audio is silent: no level applies
    loud = tmp_path / "loud"
    shutil.copytree(corpus, loud)
    rng = np.random.default_rng(0)
    records = split_records(read_manifest(loud), "train")
    assert all(loud in record.path.parents for record in records)  # the copy's clips, not the fixture's
    for i, record in enumerate(records):  # noise at three levels, 0.4 s blocks fit in 40 frames (1.6 s)
        clip = load_clip(record.path)
        amplitude = (300, 1000, 3000)[i % 3]
        clip.audio = (amplitude * rng.standard_normal(clip.audio.shape)).astype(np.int16)
        save_clip(record.path, clip)
    levels = [loudness(load_clip(record.path, ("audio",)).audio) for record in records]
    assert speech_level(loud, "train") == round(float(np.median(levels)), 1)
    folder = save_release(tmp_path / "a2m", trained, "audio_to_mouth", trained.config)
    calibrate_motion_gain(folder, loud, "val")  # no level_split: the release keeps its (none)
    assert load_model(folder, "audio_to_mouth").config.speech_lufs is None
    calibrate_motion_gain(folder, loud, "val", level_split="train")
    assert load_model(folder, "audio_to_mouth").config.speech_lufs == speech_level(loud, "train")
