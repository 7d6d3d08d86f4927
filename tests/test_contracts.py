"""The shared contracts (cemnet_core/contracts.py): values, group positions, and that they agree."""

from __future__ import annotations

import pytest

from cemnet_core import contracts as c
from cemnet_core.data.audio import MelConfig


def test_media_and_mel_window_agree() -> None:
    mel = MelConfig()
    assert (c.VIDEO_FPS, c.SAMPLE_RATE, c.MEL_BINS) == (25.0, 16000, 80)
    assert (mel.sample_rate, mel.n_mels) == (c.SAMPLE_RATE, c.MEL_BINS)
    assert c.SAMPLE_RATE / mel.hop_length / c.VIDEO_FPS == c.MEL_PER_FRAME  # 80 mel frames/s over 25 fps
    assert pytest.approx(0.2) == c.MEL_WINDOW / c.MEL_PER_FRAME / c.VIDEO_FPS  # a frame sees 0.2 s
    assert c.SAMPLES_PER_FRAME == c.SAMPLE_RATE / c.VIDEO_FPS
    assert c.MFCC_PER_FRAME == 100 / c.VIDEO_FPS and c.MFCC_WINDOW == c.LIP_FRAMES * c.MFCC_PER_FRAME


def test_emotion_labels() -> None:
    assert c.EMOTIONS == ("angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised")
    assert c.NUM_EMOTIONS == 8
    assert c.FER_CLASSES == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert set(c.MEAD_TO_FER) == set(c.EMOTIONS)
    assert c.MEAD_TO_FER["contempt"] == c.MEAD_TO_FER["disgusted"] == "disgust"
    assert c.MEAD_TO_FER["surprised"] == "surprise"


def test_landmark_groups_and_their_positions_in_all() -> None:
    assert (len(c.LIPS), len(c.JAW), len(c.POSE), len(c.MOUTH), len(c.ALL)) == (40, 17, 78, 57, 135)
    assert (c.N_LIPS, c.N_JAW, c.N_POSE, c.N_MOUTH, c.N_ALL) == (40, 17, 78, 57, 135)
    assert len(set(c.ALL)) == c.N_ALL and max(c.ALL) < c.N_MESH < c.N_LANDMARKS
    assert c.ALL[c.ALL_POSE] == c.POSE
    assert c.ALL[c.ALL_MOUTH] == c.MOUTH
    assert c.ALL[c.ALL_LIPS] == c.LIPS
    assert c.ALL[c.ALL_JAW] == c.JAW
    assert 152 in c.JAW and 61 in c.LIPS  # chin, left mouth corner
