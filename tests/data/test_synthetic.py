"""The procedural corpus: layout, determinism, landmarks on the drawn face, lip sync, emotion effects."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cemnet_core.contracts import LIPS_INNER, LIPS_OUTER, N_LANDMARKS
from cemnet_core.data.media import load_audio, probe, read_video
from cemnet_core.data.synthetic import (
    ClipJob,
    SynthConfig,
    clip_tracks,
    make_sentences,
    plan,
    sample_speaker,
    synth,
)
from cemnet_core.data.synthetic_face import MOUTH_INTERIOR
from cemnet_core.data.synthetic_voice import Sentence
from cemnet_core.errors import ConfigError, OutputError

CONFIG = SynthConfig(speakers=1, sentences=2, emotions=("happy", "neutral", "sad"), levels=(1, 3), size=128)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    synth(CONFIG, root, workers=1)
    return root


def _job(emotion: str, level: int, sentence: Sentence | None = None, config: SynthConfig = CONFIG) -> ClipJob:
    sentence = sentence or make_sentences(config)[0]
    return ClipJob(sample_speaker(config.seed, 0), 0, emotion, level, sentence, 1, "unused", config)


def _inner_gap(landmarks: np.ndarray) -> np.ndarray:
    """Vertical distance between the middle of the inner upper (13) and lower (14) lip: ``(T,)`` pixels."""
    return landmarks[:, 14, 1] - landmarks[:, 13, 1]


def test_layout_counts_and_labels(corpus: Path) -> None:
    manifest = json.loads((corpus / "synth.json").read_text())
    # happy 1/3, neutral 1 (level 1 only), sad 1/3; two sentences each
    assert len(manifest["clips"]) == 5 * 2
    assert {(clip["emotion"], clip["level"]) for clip in manifest["clips"]} == {
        ("happy", 1),
        ("happy", 3),
        ("neutral", 1),
        ("sad", 1),
        ("sad", 3),
    }
    assert not (corpus / "M001" / "video" / "front" / "neutral" / "level_3").exists()
    assert manifest["seed"] == 0 and len(manifest["speakers"]) == 1
    assert manifest["speakers"][0]["voice"]["f0"] > 0
    assert [s["sentence"] for s in manifest["sentences"]] == ["001", "002"]
    assert all(len(s["syllables"]) >= 6 for s in manifest["sentences"])
    for clip in manifest["clips"]:
        video = corpus / clip["video"]
        assert video.parts[-6:-1] == ("M001", "video", "front", clip["emotion"], f"level_{clip['level']}")
        assert video.name == f"{clip['sentence']}.mp4"
        assert (corpus / clip["audio"]).name == f"{clip['sentence']}.m4a"
        assert (corpus / clip["audio"]).parent == corpus / "M001" / "audio" / clip[
            "emotion"
        ] / f"level_{clip['level']}"
        landmarks = np.load(corpus / clip["landmarks"])
        assert landmarks.dtype == np.float32 and landmarks.shape == (clip["num_frames"], N_LANDMARKS, 2)
    assert not list(corpus.rglob(".*"))  # no temp files left


def test_video_audio_and_landmarks_agree_in_length(corpus: Path) -> None:
    clip = json.loads((corpus / "synth.json").read_text())["clips"][0]
    video_info, audio_info = probe(corpus / clip["video"]), probe(corpus / clip["audio"])
    assert video_info.has_audio and (video_info.width, video_info.height) == (128, 128)
    assert video_info.fps == pytest.approx(25.0)
    assert audio_info.sample_rate == 16000 and audio_info.channels == 1
    frames = read_video(corpus / clip["video"])
    audio = load_audio(corpus / clip["audio"])
    assert len(frames) == clip["num_frames"]
    assert abs(len(audio) / 16000 - len(frames) / 25) <= 1 / 25
    assert abs(len(load_audio(corpus / clip["video"])) / 16000 - len(frames) / 25) <= 1 / 25


def test_landmarks_lie_on_the_drawn_mouth(corpus: Path) -> None:
    manifest = json.loads((corpus / "synth.json").read_text())
    clip = next(c for c in manifest["clips"] if c["emotion"] == "neutral")
    landmarks = np.load(corpus / clip["landmarks"])
    frames = read_video(corpus / clip["video"])
    t = int(np.argmax(_inner_gap(landmarks)))
    assert _inner_gap(landmarks)[t] > 4  # an open mouth, several pixels
    inner = landmarks[t, list(LIPS_INNER)]
    mouth_centre = np.round(inner.mean(axis=0)).astype(int)
    colour = frames[t, mouth_centre[1], mouth_centre[0]].astype(int)
    assert np.abs(colour - np.array(MOUTH_INTERIOR)).max() < 30, colour
    # Half-way between the outer and inner upper/lower lip midpoints is lip-coloured.
    lips = np.array(manifest["speakers"][0]["palette"]["lips"])
    for outer, inner_point in ((0, 13), (17, 14)):
        point = np.round(0.5 * (landmarks[t, outer] + landmarks[t, inner_point])).astype(int)
        assert np.abs(frames[t, point[1], point[0]].astype(int) - lips).max() < 35

    # A closed mouth shows (almost) no interior inside the outer lip contour; an open one shows plenty.
    def interior_pixels(frame_index: int) -> int:
        outer = landmarks[frame_index, list(LIPS_OUTER)]
        (x0, y0), (x1, y1) = np.floor(outer.min(axis=0)).astype(int), np.ceil(outer.max(axis=0)).astype(int)
        region = frames[frame_index, y0 : y1 + 1, x0 : x1 + 1].astype(int)
        return int((np.abs(region - np.array(MOUTH_INTERIOR)).max(axis=-1) < 30).sum())

    assert interior_pixels(t) > 4 * max(interior_pixels(int(np.argmin(_inner_gap(landmarks)))), 5)


def test_mouth_opening_follows_audio_energy(corpus: Path) -> None:
    clip = next(
        c for c in json.loads((corpus / "synth.json").read_text())["clips"] if c["emotion"] == "neutral"
    )
    landmarks = np.load(corpus / clip["landmarks"])
    audio = load_audio(corpus / clip["audio"])
    frames = len(landmarks)
    audio = np.pad(audio, (0, max(0, frames * 640 - len(audio))))[: frames * 640]
    energy = np.sqrt((audio.reshape(frames, 640) ** 2).mean(axis=1))
    assert np.corrcoef(_inner_gap(landmarks), energy)[0, 1] > 0.6
    # Silence before the sentence: mouth closed; during vowels: open.
    vowels = np.array(clip["vowel_times"])
    in_vowel = [round((start + end) / 2 * 25) for start, end in vowels]
    assert _inner_gap(landmarks)[:3].max() < 1.0
    assert _inner_gap(landmarks)[in_vowel].mean() > 3.0


def test_vowels_set_mouth_opening_and_width() -> None:
    open_a = clip_tracks(_job("neutral", 1, Sentence((("ha", "ha", "ha", "ha"),))))
    open_i = clip_tracks(_job("neutral", 1, Sentence((("hi", "hi", "hi", "hi"),))))
    round_u = clip_tracks(_job("neutral", 1, Sentence((("hu", "hu", "hu", "hu"),))))
    assert _inner_gap(open_a.landmarks).max() > 1.8 * _inner_gap(open_i.landmarks).max()
    mouth_width = [np.median(t.landmarks[:, 291, 0] - t.landmarks[:, 61, 0]) for t in (open_i, round_u)]
    assert mouth_width[0] > mouth_width[1] + 2  # "i" spreads the lips, "u" rounds them


def _f0(audio: np.ndarray) -> float:
    """Median autocorrelation pitch (Hz) over loud 40 ms frames."""
    estimates = []
    for start in range(0, len(audio) - 640, 320):
        frame = audio[start : start + 640] - audio[start : start + 640].mean()
        if np.sqrt((frame**2).mean()) < 0.02:
            continue
        correlation = np.correlate(frame, frame, "full")[639:]
        lag = np.argmax(correlation[40:200]) + 40  # 80..400 Hz
        estimates.append(16000 / lag)
    return float(np.median(estimates))


def test_emotion_moves_mouth_corners_and_pitch(corpus: Path) -> None:
    clips = json.loads((corpus / "synth.json").read_text())["clips"]
    by_label = {(c["emotion"], c["level"], c["sentence"]): c for c in clips}

    def corner_lift(clip: dict) -> float:  # corners above the lip centre, pixels (y grows downwards)
        landmarks = np.load(corpus / clip["landmarks"])
        centre = 0.5 * (landmarks[:, 0, 1] + landmarks[:, 17, 1])
        return float(np.median(centre - 0.5 * (landmarks[:, 61, 1] + landmarks[:, 291, 1])))

    happy, sad, neutral = (by_label[(e, lv, "001")] for e, lv in (("happy", 3), ("sad", 3), ("neutral", 1)))
    assert corner_lift(happy) > corner_lift(neutral) + 1 > corner_lift(sad) + 2
    assert corner_lift(by_label[("happy", 3, "001")]) > corner_lift(by_label[("happy", 1, "001")])
    pitches = {
        name: _f0(load_audio(corpus / clip["audio"]))
        for name, clip in (("happy", happy), ("neutral", neutral), ("sad", sad))
    }
    assert pitches["happy"] > pitches["neutral"] * 1.1 > pitches["sad"] * 1.2, pitches


def test_speakers_differ_in_face_voice_and_colours() -> None:
    first, second = sample_speaker(0, 0), sample_speaker(0, 1)
    assert first.name == "M001" and second.name == "W002"
    assert second.voice.f0 > first.voice.f0 + 30
    assert first.shape != second.shape and first.palette != second.palette
    assert sample_speaker(0, 0) == first and sample_speaker(1, 0) != first


def test_same_seed_same_corpus_any_worker_count(tmp_path: Path) -> None:
    config = SynthConfig(speakers=1, sentences=2, emotions=("neutral",), levels=(1,), size=64)
    synth(config, tmp_path / "a", workers=1)
    synth(config, tmp_path / "b", workers=2)
    synth(
        SynthConfig(speakers=1, sentences=2, emotions=("neutral",), levels=(1,), size=64, seed=1),
        tmp_path / "c",
        workers=1,
    )
    for name in ("001", "002"):
        relative = Path("M001/video/front/neutral/level_1") / f"{name}.landmarks.npy"
        a, b, c = (np.load(tmp_path / run / relative) for run in "abc")
        assert np.array_equal(a, b)
        assert a.shape != c.shape or not np.allclose(a, c)
        audio = Path("M001/audio/neutral/level_1") / f"{name}.m4a"
        assert np.array_equal(load_audio(tmp_path / "a" / audio), load_audio(tmp_path / "b" / audio))
    assert (tmp_path / "a" / "synth.json").read_text() == (tmp_path / "b" / "synth.json").read_text()


def test_refuses_non_empty_folder_and_overwrites_on_request(tmp_path: Path) -> None:
    config = SynthConfig(speakers=1, sentences=1, emotions=("neutral",), levels=(1,), size=64)
    (tmp_path / "keep.txt").write_text("user data")
    with pytest.raises(OutputError, match="--overwrite"):
        synth(config, tmp_path, workers=1)
    assert not (tmp_path / "synth.json").exists()
    synth(config, tmp_path, workers=1, overwrite=True)
    assert (tmp_path / "synth.json").is_file() and (tmp_path / "keep.txt").is_file()


def test_config_rejects_bad_labels() -> None:
    with pytest.raises(ConfigError, match="unknown emotion"):
        SynthConfig(emotions=("joyful",))
    with pytest.raises(ConfigError, match="levels"):
        SynthConfig(levels=(4,))
    with pytest.raises(ConfigError, match="level 1 only"):
        plan(SynthConfig(emotions=("neutral",), levels=(3,)), "unused")
    with pytest.raises(ConfigError, match="even"):
        SynthConfig(size=129)
