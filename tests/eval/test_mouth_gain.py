"""Audio2Mouth's motion gain measured on the rendered video (cemnet_core.eval.mouth_gain)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from test_judges import make_eval_corpus

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_pipeline import save_tiny_bundle

from cemnet_core.contracts import MOUTH, POSE
from cemnet_core.data.clips import load_clip
from cemnet_core.data.landmarks import mouth_opening, select
from cemnet_core.data.manifest import read_manifest, split_records
from cemnet_core.errors import DataError
from cemnet_core.eval import mouth_gain
from cemnet_core.eval.protocol import resize_frames
from cemnet_core.models.audio_to_mouth import AudioToMouth, AudioToMouthConfig
from cemnet_core.pipeline import CEMNetPipeline
from cemnet_core.release import load_model, load_release, save_release
from cemnet_core.train.calibrate import references, spread

_UPPER, _LOWER, _LEFT, _RIGHT = (MOUTH.index(i) for i in (13, 14, 61, 291))


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 4 speakers: the speaker-held-out split gives 2 train, 1 val and 1 test speaker
    return make_eval_corpus(tmp_path_factory.mktemp("mouth_gain"), speakers=4, emotions=("neutral", "happy"),
                            frames=14)  # fmt: skip


def _bundle(folder: Path) -> Path:
    """The tiny bundle with an Audio2Mouth that may carry a gain (its mouth relative to the reference)."""
    save_tiny_bundle(folder)
    torch.manual_seed(0)
    config = dataclasses.replace(AudioToMouthConfig.tiny(), mouth_from_reference=True)
    save_release(folder / "audio_to_mouth", AudioToMouth(config), "audio_to_mouth", config)
    return folder


def _identity(images: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A constant unit identity for the EBM (dlib needs the shared weights; the EBM only needs a vector)."""
    return np.full(128, 128**-0.5, np.float32)


def brightness_mouths(frames: np.ndarray) -> np.ndarray:
    """A stand-in mouth detector: 57 points whose opening over width is the lower half's mean brightness."""
    mouths = np.zeros((len(frames), len(MOUTH), 2), np.float32)
    mouths[:, _RIGHT, 0] = 1.0  # width 1
    mouths[:, _LOWER, 1] = frames[:, frames.shape[1] // 2 :].mean(axis=(1, 2, 3)) / 255.0
    return mouths


def test_a_held_out_clip_is_animated_as_a_portrait_of_its_most_closed_frame(
    corpus: Path, tmp_path: Path
) -> None:
    pipeline = CEMNetPipeline.from_bundle(_bundle(tmp_path / "w"), "cpu")
    record = split_records(read_manifest(corpus), "val")[0]
    clip = mouth_gain.portrait_clip(
        pipeline, record.path, brightness_mouths, max_frames=7, identity=_identity
    )
    assert clip is not None
    source = load_clip(record.path, ("frames", "landmarks", "valid"))
    photo = references(source.landmarks, source.valid, pipeline.num_refs, "one photo")[0]
    window = pipeline.window
    assert clip.start % window == 0 and len(clip.pose) == 7 // window * window  # whole windows
    assert np.array_equal(clip.pose, np.repeat(select(source.landmarks[photo : photo + 1], POSE), 6, axis=0))
    assert (clip.targets == clip.targets[:1]).all()  # one photo: its crop is every frame's target
    truth = brightness_mouths(resize_frames(source.frames[clip.start : clip.start + 6], pipeline.image_size))
    assert clip.true_spread == pytest.approx(spread(mouth_opening(truth, "mouth")))


def test_the_gain_is_iterated_until_the_rendered_spread_matches_the_truth(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pipeline = CEMNetPipeline.from_bundle(_bundle(tmp_path / "w"), "cpu", motion_gain=1.5)
    # clips whose inputs are never rendered: rendered_spread is replaced below, so only true_spread matters
    pose, targets = np.zeros((3, 78, 2)), np.zeros((3, 8, 8, 3), np.uint8)
    blank = mouth_gain.PortraitClip(None, pose, targets, None, 0, 0.0)  # type: ignore[arg-type]
    clips = [dataclasses.replace(blank, true_spread=value) for value in (0.2, 0.3)]
    seen = []

    def rendered(pipeline: CEMNetPipeline, clip: mouth_gain.PortraitClip, detector: object) -> float:
        gain = pipeline.audio_to_mouth.config.motion_gain
        seen.append(gain)
        return clip.true_spread * (gain / 1.8) ** 0.5  # a renderer that damps small openings

    monkeypatch.setattr(mouth_gain, "rendered_spread", rendered)
    gain = mouth_gain.measure_rendered_gain(pipeline, clips, brightness_mouths, iterations=20)
    assert gain == pytest.approx(1.8, abs=0.05)
    assert seen[0] == 1.5  # it starts from the release's gain
    with pytest.raises(DataError, match="no rendered mouth moved"):
        monkeypatch.setattr(mouth_gain, "rendered_spread", lambda *args: 0.0)
        mouth_gain.measure_rendered_gain(pipeline, clips, brightness_mouths)
    monkeypatch.setattr(mouth_gain, "rendered_spread", lambda *args: 1e-3)  # never moves: kept in range
    assert mouth_gain.measure_rendered_gain(pipeline, clips, brightness_mouths) == mouth_gain.GAIN_RANGE[1]


def test_calibration_writes_only_the_gain_into_the_bundles_audio2mouth(corpus: Path, tmp_path: Path) -> None:
    bundle = _bundle(tmp_path / "w")
    before = load_release(bundle / "audio_to_mouth")
    lines: list[str] = []
    gain = mouth_gain.calibrate_rendered_gain(
        bundle, corpus, "val", detector=brightness_mouths, identity=_identity, iterations=2, log=lines.append
    )
    assert 1 <= len(lines) <= 2 and lines[0].startswith("motion_gain 1.00: rendered spread")
    model = load_model(bundle / "audio_to_mouth", "audio_to_mouth")  # checksums verified on load
    assert model.config.motion_gain == gain and mouth_gain.GAIN_RANGE[0] <= gain <= mouth_gain.GAIN_RANGE[1]
    for name, value in before.state_dict.items():
        assert torch.equal(value, model.state_dict()[name]), name


def test_calibration_without_a_usable_clip_says_so(tmp_path: Path) -> None:
    still = make_eval_corpus(tmp_path / "c", speakers=4, emotions=("neutral",), frames=14)
    with pytest.raises(DataError, match="no 'val' clip with a moving true mouth"):
        mouth_gain.calibrate_rendered_gain(_bundle(tmp_path / "w"), still, "val",
                                           detector=lambda frames: np.zeros((len(frames), 57, 2)),
                                           identity=_identity)  # fmt: skip
