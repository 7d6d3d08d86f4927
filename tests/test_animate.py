"""CEMNetPipeline.animate, the one inference path: its window rule, and generate and eval running through it.

``cemnet generate`` (chunk by chunk, streamed mel) and the evaluation protocol (one call per clip, the clip's
mel) must give the same frames for the same references, audio and weights, the last, short window included.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_pipeline import save_tiny_bundle, tiny_models

from cemnet_core import contracts as lm
from cemnet_core.data import media
from cemnet_core.data.audio import log_mel, mel_windows
from cemnet_core.data.clips import Clip
from cemnet_core.data.mel_stream import MelArray
from cemnet_core.eval import protocol
from cemnet_core.generate import GenerateConfig, generate
from cemnet_core.identity import IdentityEncoder, mean_identity
from cemnet_core.pipeline import Animation, CEMNetPipeline
from cemnet_core.references import load_references

PORTRAIT = "image/sadtalker__people_0.png"
SPEECH = "audio/vcc__ESD_sad.wav"


@pytest.fixture(scope="module")
def pipeline() -> CEMNetPipeline:
    return CEMNetPipeline(**tiny_models()).to("cpu")


def _inputs(pipeline: CEMNetPipeline, frames: int) -> tuple:
    rng = np.random.default_rng(0)
    size = pipeline.image_size
    crops = rng.integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    refs = pipeline.references(
        crops, rng.random((2, lm.N_ALL, 2), dtype=np.float32), np.ones(128, np.float32)
    )
    mel = (rng.random((round(3.2 * frames) + 1, 80), dtype=np.float32) * 8 - 4).astype(np.float32)
    pose = rng.random((frames, lm.N_POSE, 2), dtype=np.float32)
    targets = rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
    return refs, mel, pose, targets


def test_animate_in_chunks_equals_one_call_and_fills_the_last_window(pipeline: CEMNetPipeline) -> None:
    T = pipeline.window
    total = 3 * T + 2  # the last window has 2 real frames
    refs, mel, pose, targets = _inputs(pipeline, total)
    whole = pipeline.animate(refs, MelArray(mel), pose, targets, batch_size=4)
    assert whole.frames.shape == (total, pipeline.image_size, pipeline.image_size, 3)
    parts = [
        pipeline.animate(refs, MelArray(mel), pose[a:b], targets[a:b], start=a, total=total, batch_size=4)
        for a, b in ((0, 2 * T), (2 * T, total))
    ]
    torch.testing.assert_close(torch.cat([p.mouth for p in parts]), whole.mouth, rtol=0, atol=1e-6)
    chunked = np.concatenate([p.frames for p in parts]).astype(int)
    assert np.abs(chunked - whole.frames).max() <= 1  # other renderer batches round apart by 1 level at most

    # The last window is the video's last frame repeated up to T frames (its mel window and pose).
    index = np.minimum(np.arange(3 * T, 4 * T), total - 1)
    centre = round(3.2 * (3 * T + T / 2))
    first = centre - pipeline.emotion_segment // 2
    rows = np.clip(np.arange(first, first + pipeline.emotion_segment), 0, len(mel) - 1)
    expected = pipeline.predict_mouth(
        refs.landmarks[None],
        torch.from_numpy(mel_windows(mel, total)[index][None]),
        torch.from_numpy(pose[index][None]),
        torch.from_numpy(mel[rows][None]),
        refs.source_emotion,
        refs.identity,
    )[0, :2]
    torch.testing.assert_close(whole.mouth[3 * T :], expected, rtol=0, atol=1e-6)


def test_batch_size_and_memory_format_change_frames_by_one_level_at_most(pipeline: CEMNetPipeline) -> None:
    T = pipeline.window
    refs, mel, pose, targets = _inputs(pipeline, 3 * T + 1)
    one = pipeline.animate(refs, MelArray(mel), pose, targets, batch_size=1)
    default = pipeline.animate(refs, MelArray(mel), pose, targets)  # the device's batch size
    assert np.abs(default.frames.astype(int) - one.frames).max() <= 1
    pipeline.renderer.to(memory_format=torch.channels_last)
    try:
        many = pipeline.animate(refs, MelArray(mel), pose, targets, batch_size=len(pose))
    finally:
        pipeline.renderer.to(memory_format=torch.contiguous_format)
    torch.testing.assert_close(many.mouth, one.mouth, rtol=0, atol=1e-6)
    assert np.abs(many.frames.astype(int) - one.frames).max() <= 1  # within 1/255: float rounding only


def test_animate_refuses_chunks_that_are_not_whole_windows(pipeline: CEMNetPipeline) -> None:
    T = pipeline.window
    refs, mel, pose, targets = _inputs(pipeline, 2 * T)
    with pytest.raises(ValueError, match="whole windows"):
        pipeline.animate(refs, MelArray(mel), pose[: T + 1], targets[: T + 1], total=2 * T)
    with pytest.raises(ValueError, match="whole windows"):
        pipeline.animate(refs, MelArray(mel), pose[:T], targets[:T], start=1, total=2 * T)


@pytest.mark.real
def test_generate_and_eval_give_the_same_frames(
    weights_dir: Path, real_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = CEMNetPipeline.from_bundle(save_tiny_bundle(tmp_path / "bundle"), "cpu")
    T, size = pipeline.window, pipeline.image_size
    audio = media.load_audio(real_data / SPEECH)
    total = 4 * T + 1  # chunks of 2T frames, the last one a single frame: a short last window
    audio = audio[: total * 640]
    wav = media.write_audio(tmp_path / "speech.wav", audio)

    calls: list[Animation] = []
    animate = CEMNetPipeline.animate

    def spy(self: CEMNetPipeline, refs, mel, pose, targets, **kwargs):  # type: ignore[no-untyped-def]
        result = animate(self, refs, mel, pose, targets, **kwargs)
        calls.append(result)
        return result

    monkeypatch.setattr(CEMNetPipeline, "animate", spy)
    config = GenerateConfig(device="cpu", chunk_frames=2 * T, batch_size=T)  # the same renderer batches
    generate(real_data / PORTRAIT, wav, tmp_path / "out.mp4", config=config, pipeline=pipeline)
    generated = np.concatenate([call.frames for call in calls])  # (total, S, S, 3) rendered crops
    assert len(calls) == 3 and len(generated) == total

    # The same inputs as an evaluation pair: the portrait's crop as every frame of target and reference.
    refs = load_references(real_data / PORTRAIT, config)
    crop = refs.crops([0], size)  # (1, S, S, 3)
    clip = Clip(
        frames=np.repeat(crop, total, axis=0),
        landmarks=np.repeat(refs.normalised[:1].astype(np.float32), total, axis=0),
        boxes=np.repeat(refs.boxes[:1].astype(np.float32), total, axis=0),
        valid=np.ones(total, bool),
        mel=log_mel(audio),
        audio=(audio * 32767).astype(np.int16),
    )
    identity = mean_identity(IdentityEncoder().embed_batch(refs.frames[:1], landmarks=refs.landmarks[:1]))
    judges = protocol.Judges(None, None, identity_of_references=lambda *_: identity)  # type: ignore[arg-type]
    evaluated = protocol.generate_pair(pipeline, clip, clip, "cemnet", judges, batch_size=T)
    # The last, short window included. The mouths agree to float rounding (generate predicts 2 windows per
    # call, eval all of them in one), which can move a rendered value by one 8-bit level, nowhere more.
    assert len(calls) == 4  # eval went through animate too, once for the clip
    mouths = np.concatenate([call.mouth.numpy() for call in calls[:3]])
    np.testing.assert_allclose(evaluated.mouth, mouths, rtol=0, atol=1e-6)
    difference = np.abs(evaluated.frames.astype(int) - generated)
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3


def test_a_repeated_reference_is_rendered_once_with_the_same_frames(pipeline: CEMNetPipeline) -> None:
    rng = np.random.default_rng(3)
    size, T = pipeline.image_size, pipeline.window
    crops = rng.integers(0, 256, (2, size, size, 3), dtype=np.uint8)[[0, 1, 0, 0, 1]]
    points = rng.random((2, lm.N_ALL, 2), dtype=np.float32)[[0, 1, 0, 0, 1]]
    merged = pipeline.references(crops, points, np.ones(128, np.float32))
    assert merged.distinct == (0, 1) and merged.counts == (3, 2)
    images, _, marks, counts = merged.for_renderer()
    assert images.shape[0] == 2 and marks.shape[0] == 2 and counts.tolist() == [3.0, 2.0]
    every = pipeline.references(crops, points, np.ones(128, np.float32), merge_repeats=False)
    assert every.for_renderer()[3] is None and every.for_renderer()[0].shape[0] == 5
    _, mel, pose, targets = _inputs(pipeline, T)
    once = pipeline.animate(merged, MelArray(mel), pose, targets)
    all_five = pipeline.animate(every, MelArray(mel), pose, targets)
    torch.testing.assert_close(once.mouth, all_five.mouth, rtol=0, atol=0)
    assert np.abs(once.frames.astype(int) - all_five.frames).max() <= 1
