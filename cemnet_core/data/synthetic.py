"""``cemnet synth``: a procedural MEAD-layout corpus with true landmarks (DESIGN section 9).

The corpus has the causal factors CEM-Net depends on, each controlled by a seed:

- speakers: face geometry, colours, speaking habits (mouth opening gain, asymmetry, rate) and timbre (f0,
  formant scale) -- :class:`SpeakerSpec`;
- emotions (MEAD's 8) at levels 1-3 (neutral: level 1 only): face (mouth corners, brows, eyes, jaw) and
  voice (pitch mean and range, energy, tempo, spectral tilt) -- :data:`EMOTION_STYLES`, scaled by
  :data:`LEVEL_INTENSITY`;
- sentences: syllable sequences whose vowels set mouth opening and width and the formants together
  (:mod:`cemnet_core.data.synthetic_voice`); sentence ``<nnn>`` is the same syllables for every speaker and
  emotion, so the AEE's cross-reconstruction pairs (Sec. III-B) exist.

Faces are drawn from landmarks in MediaPipe's 478-point index space (:mod:`cemnet_core.data.synthetic_face`).
Output, per clip (MEAD layout, as :mod:`cemnet_core.data.layouts` reads it)::

    DST/<speaker>/video/front/<emotion>/level_<n>/<nnn>.mp4             256x256, 25 fps, H.264 + AAC
    DST/<speaker>/video/front/<emotion>/level_<n>/<nnn>.landmarks.npy   float32 (T, 478, 2) frame pixels
    DST/<speaker>/audio/<emotion>/level_<n>/<nnn>.m4a                   16 kHz mono AAC
    DST/synth.json                                                      seed, speakers, sentences, clip labels

Every clip has its own random generator derived from (seed, speaker, emotion, level, sentence), so the
output does not depend on the number of worker processes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cemnet_core.configs import config_to_dict
from cemnet_core.contracts import EMOTIONS, SAMPLE_RATE, VIDEO_FPS
from cemnet_core.data.media import VideoWriter, write_audio
from cemnet_core.data.synthetic_face import (
    Expression,
    FaceShape,
    HeadPose,
    Palette,
    background_image,
    build_rig,
    draw_face,
    face_landmarks,
)
from cemnet_core.data.synthetic_voice import (
    Prosody,
    Sentence,
    Voice,
    articulate,
    random_sentence,
    synthesize,
)
from cemnet_core.errors import ConfigError, OutputError
from cemnet_core.fileio import make_folder

LEVEL_INTENSITY: dict[int, float] = {1: 0.45, 2: 0.75, 3: 1.0}
SYNTH_VERSION = 1
MANIFEST_NAME = "synth.json"

# Face and voice of each emotion at full intensity (level 3). Directions follow the usual descriptions of
# prototypical expressions (FACS action units) and of emotional prosody: joy raises the mouth corners, the
# pitch and its range; sadness lowers corners, raises the inner brows, lowers pitch, energy and tempo; ...
EMOTION_STYLES: dict[str, tuple[Expression, Prosody]] = {
    "neutral": (Expression(), Prosody()),
    "happy": (
        Expression(corners=0.55, mouth_width=0.14, eye_open=-0.25, brow_raise=0.1),
        Prosody(pitch=3.0, pitch_range=0.45, energy=3.0, tempo=0.08, tilt=2.0),
    ),
    "sad": (
        Expression(corners=-0.45, mouth_width=-0.05, eye_open=-0.3, brow_inner=0.55),
        Prosody(pitch=-3.0, pitch_range=-0.45, energy=-5.0, tempo=-0.18, tilt=-3.0, breathiness=1.0),
    ),
    "angry": (
        Expression(corners=-0.2, brow_raise=-0.3, brow_furrow=0.5, eye_open=0.15, jaw=0.08),
        Prosody(pitch=1.0, pitch_range=0.3, energy=6.0, tempo=0.1, tilt=4.0),
    ),
    "fear": (
        Expression(corners=-0.15, mouth_width=0.1, brow_raise=0.4, brow_inner=0.4, eye_open=0.4, jaw=0.12),
        Prosody(pitch=5.0, pitch_range=0.2, energy=-1.0, tempo=0.15, tilt=0.0, breathiness=0.8),
    ),
    "surprised": (
        Expression(brow_raise=0.7, eye_open=0.5, jaw=0.3, mouth_width=-0.1),
        Prosody(pitch=4.0, pitch_range=0.6, energy=2.0, tempo=0.0, tilt=1.0),
    ),
    "disgusted": (
        Expression(corners=-0.2, upper_lip=0.25, brow_raise=-0.2, brow_furrow=0.25, eye_open=-0.3),
        Prosody(pitch=-1.0, pitch_range=-0.1, energy=0.0, tempo=-0.1, tilt=-1.0),
    ),
    "contempt": (
        Expression(corner_asymmetry=0.45, eye_open=-0.1),
        Prosody(pitch=-1.5, pitch_range=-0.2, energy=-2.0, tempo=-0.08, tilt=-1.0),
    ),
}


@dataclass(frozen=True)
class SynthConfig:
    """What to make. ``emotions``/``levels`` select MEAD's labels; neutral is made at level 1 only."""

    speakers: int = 4
    sentences: int = 3
    emotions: tuple[str, ...] = EMOTIONS
    levels: tuple[int, ...] = (1, 2, 3)
    seed: int = 0
    size: int = 256
    syllables: tuple[int, int] = (6, 9)  # syllables per sentence (inclusive range): ~2-3 s of speech
    head_motion: float = 1.0  # scale of the head rotation and translation (0 keeps the head still)
    crf: int = 18  # H.264 quality of the videos

    def __post_init__(self) -> None:
        if self.speakers < 1 or self.sentences < 1:
            raise ConfigError(
                f"speakers and sentences must be >= 1, got {self.speakers} and {self.sentences}"
            )
        unknown = sorted(set(self.emotions) - set(EMOTIONS))
        if unknown or not self.emotions:
            raise ConfigError(
                f"unknown emotion(s) {unknown or 'none given'}; choose from {', '.join(EMOTIONS)}"
            )
        if not self.levels or any(level not in LEVEL_INTENSITY for level in self.levels):
            raise ConfigError(f"levels must be among 1, 2, 3, got {list(self.levels)}")
        if self.size < 64 or self.size % 2:
            raise ConfigError(f"size must be an even number of pixels >= 64, got {self.size}")
        if not 1 <= self.syllables[0] <= self.syllables[1]:
            raise ConfigError(f"syllables must be a range (lo, hi) with 1 <= lo <= hi, got {self.syllables}")

    def labels(self) -> list[tuple[str, int]]:
        """(emotion, level) pairs to make, in MEAD's order; neutral only at level 1."""
        pairs = []
        for emotion in EMOTIONS:
            if emotion not in self.emotions:
                continue
            for level in sorted(set(self.levels)):
                if emotion == "neutral" and level != 1:
                    continue
                pairs.append((emotion, level))
        if not pairs:
            raise ConfigError(
                "only neutral was asked for, and neutral exists at level 1 only; add --levels 1"
            )
        return pairs

    def to_dict(self) -> dict[str, object]:
        """JSON-safe form (:func:`~cemnet_core.configs.config_to_dict`)."""
        return config_to_dict(self)


@dataclass(frozen=True)
class SpeakerSpec:
    """One synthetic speaker: name (MEAD style, ``M001``/``W002``), face, colours, voice, habits."""

    name: str
    shape: FaceShape
    palette: Palette
    voice: Voice
    scale: float  # face size in the frame
    head_motion: float  # degrees of head rotation amplitude
    expressivity: float  # personal multiplier of the emotion intensity


_SKIN = ((236, 196, 170), (224, 172, 140), (198, 140, 104), (160, 108, 76), (112, 72, 50), (241, 210, 185))
_HAIR = ((30, 24, 20), (70, 45, 30), (120, 80, 40), (180, 150, 100), (90, 90, 90), (140, 60, 30))
_IRIS = ((70, 110, 60), (60, 90, 140), (90, 60, 30), (50, 40, 30), (110, 120, 130))


def _jitter(rng: np.random.Generator, colour: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    values = np.clip(np.asarray(colour) * rng.uniform(1.0 - amount, 1.0 + amount, 3), 0, 255)
    return tuple(int(v) for v in values)  # type: ignore[return-value]


def sample_speaker(seed: int, index: int) -> SpeakerSpec:
    """Speaker ``index`` of the corpus made with ``seed`` (independent of the other speakers)."""
    rng = np.random.default_rng([seed, 0, index])
    male = index % 2 == 0
    name = f"{'M' if male else 'W'}{index + 1:03d}"
    skin = _jitter(rng, _SKIN[int(rng.integers(len(_SKIN)))], 0.05)
    lips_base = np.array([190, 80, 90]) if not male else np.array(skin) * np.array([0.85, 0.55, 0.58])
    lips = tuple(int(v) for v in np.clip(0.55 * lips_base + 0.45 * np.array([170, 70, 80]), 0, 255))
    hue = rng.uniform(0, 1, 3)
    palette = Palette(
        skin=skin,
        hair=_jitter(rng, _HAIR[int(rng.integers(len(_HAIR)))], 0.1),
        background=tuple(int(v) for v in 60 + 150 * hue),  # type: ignore[arg-type]
        lips=lips,  # type: ignore[arg-type]
        iris=_IRIS[int(rng.integers(len(_IRIS)))],
        clothes=tuple(int(v) for v in rng.integers(20, 200, 3)),  # type: ignore[arg-type]
    )
    shape = FaceShape(
        width=float(rng.uniform(0.9, 1.1)),
        jaw_length=float(rng.uniform(0.92, 1.08)),
        jaw_width=float(rng.uniform(0.9, 1.1) + (0.04 if male else -0.04)),
        eye_spacing=float(rng.uniform(-0.3, 0.3)),
        mouth_size=float(rng.uniform(0.85, 1.15)),
        max_open=float(rng.uniform(0.85, 1.35)),
        asymmetry=float(rng.uniform(-0.25, 0.25)),
    )
    voice = Voice(
        f0=float(rng.uniform(95, 135) if male else rng.uniform(175, 235)),
        formant_scale=float(rng.uniform(0.93, 1.02) if male else rng.uniform(1.08, 1.17)),
        loudness=float(rng.uniform(-2.0, 2.0)),
        rate=float(rng.uniform(0.88, 1.12)),
    )
    return SpeakerSpec(
        name=name,
        shape=shape,
        palette=palette,
        voice=voice,
        scale=float(rng.uniform(0.92, 1.06)),
        head_motion=float(rng.uniform(1.5, 3.5)),
        expressivity=float(rng.uniform(0.85, 1.15)),
    )


def make_sentences(config: SynthConfig) -> list[Sentence]:
    """The corpus's sentences: sentence ``i`` (1-based ``<nnn>``) is ``result[i - 1]``."""
    rng = np.random.default_rng([config.seed, 1])
    return [random_sentence(rng, config.syllables) for _ in range(config.sentences)]


@dataclass(frozen=True)
class ClipJob:
    """One clip to make: who says which sentence with which emotion and level, and where it goes."""

    speaker: SpeakerSpec
    speaker_index: int
    emotion: str
    level: int
    sentence: Sentence
    sentence_index: int  # 1-based
    root: str
    config: SynthConfig = field(repr=False)

    @property
    def stem(self) -> str:
        """``<nnn>``, the MEAD file name of the sentence."""
        return f"{self.sentence_index:03d}"

    def video_path(self) -> Path:
        """``<speaker>/video/front/<emotion>/level_<n>/<nnn>.mp4`` under the root."""
        return (
            Path(self.root)
            / self.speaker.name
            / "video"
            / "front"
            / self.emotion
            / f"level_{self.level}"
            / f"{self.stem}.mp4"
        )

    def landmarks_path(self) -> Path:
        """``<nnn>.landmarks.npy`` beside the video."""
        return self.video_path().with_name(f"{self.stem}.landmarks.npy")

    def audio_path(self) -> Path:
        """``<speaker>/audio/<emotion>/level_<n>/<nnn>.m4a`` under the root."""
        return (
            Path(self.root)
            / self.speaker.name
            / "audio"
            / self.emotion
            / f"level_{self.level}"
            / f"{self.stem}.m4a"
        )


def _smooth_motion(rng: np.random.Generator, frames: int, amplitude: float) -> np.ndarray:
    """Slow random motion ``(T,)``: two sinusoids of random frequency (0.1-0.5 Hz) and phase."""
    time = np.arange(frames) / VIDEO_FPS
    motion = np.zeros(frames)
    for weight in (0.7, 0.3):
        frequency, phase = rng.uniform(0.1, 0.5), rng.uniform(0, 2 * np.pi)
        motion += weight * np.sin(2 * np.pi * frequency * time + phase)
    return amplitude * motion


def _blinks(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Eye opening ``(T,)``: 1 open, near 0 during a blink (every 1.8-4 s, 5 frames each)."""
    eyes = np.ones(frames)
    profile = np.array([0.5, 0.05, 0.1, 0.5, 0.85])
    start = rng.uniform(0.3, 2.0)
    while (first := round(start * VIDEO_FPS)) < frames:
        stop = min(frames, first + len(profile))
        eyes[first:stop] = profile[: stop - first]
        start += rng.uniform(1.8, 4.0)
    return eyes


@dataclass(frozen=True)
class ClipTracks:
    """One clip's material: audio ``(T*640,)``, landmarks ``(T, 478, 2)`` and the mouth controls."""

    audio: np.ndarray
    landmarks: np.ndarray
    opening: np.ndarray  # (T,) mouth opening from the vowel schedule, units of max_open
    width: np.ndarray  # (T,)
    f0: np.ndarray  # (T,) Hz, the pitch contour (including unvoiced stretches)
    vowel_times: np.ndarray  # (n, 2) seconds


def clip_tracks(job: ClipJob) -> ClipTracks:
    """Synthesize the speech and the landmark trajectory of one clip (no drawing, no files)."""
    emotion_index, speaker = EMOTIONS.index(job.emotion), job.speaker
    rng = np.random.default_rng(
        [job.config.seed, 2, job.speaker_index, emotion_index, job.level, job.sentence_index]
    )
    intensity = LEVEL_INTENSITY[job.level] * speaker.expressivity
    expression, prosody = (part.scaled(intensity) for part in EMOTION_STYLES[job.emotion])
    articulation = articulate(job.sentence, speaker.voice, prosody, rng)
    audio = synthesize(articulation, speaker.voice, prosody, rng)
    frames = articulation.num_video_frames
    opening = articulation.per_video_frame(articulation.opening)
    width = articulation.per_video_frame(articulation.width)
    amplitude = speaker.head_motion * job.config.head_motion
    pixels = amplitude * job.config.size / 256
    pose = HeadPose(
        yaw=_smooth_motion(rng, frames, amplitude),
        pitch=_smooth_motion(rng, frames, 0.8 * amplitude),
        roll=_smooth_motion(rng, frames, 0.6 * amplitude),
        shift=np.stack([_smooth_motion(rng, frames, pixels), _smooth_motion(rng, frames, pixels)], 1),
    )
    landmarks = face_landmarks(
        build_rig(speaker.shape),
        expression,
        opening,
        width,
        _blinks(rng, frames),
        pose,
        job.config.size,
        speaker.scale,
    )
    return ClipTracks(
        audio=audio,
        landmarks=landmarks,
        opening=opening,
        width=width,
        f0=articulation.per_video_frame(articulation.f0),
        vowel_times=articulation.syllable_times,
    )


def make_clip(job: ClipJob) -> dict[str, object]:
    """Make one clip's video (with sound), audio and landmark files; return its label for ``synth.json``."""
    tracks = clip_tracks(job)
    palette = job.speaker.palette
    background = background_image(palette, job.config.size)
    video, audio_path, landmarks_path = job.video_path(), job.audio_path(), job.landmarks_path()
    video.parent.mkdir(parents=True, exist_ok=True)
    audio_path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(
        video, VIDEO_FPS, audio=tracks.audio, sample_rate=SAMPLE_RATE, crf=job.config.crf, preset="veryfast"
    ) as writer:
        for start in range(0, len(tracks.landmarks), 25):
            chunk = tracks.landmarks[start : start + 25]
            writer.write(np.stack([draw_face(points, palette, background) for points in chunk]))
    write_audio(audio_path, tracks.audio, SAMPLE_RATE)
    temp = landmarks_path.with_name(f".{landmarks_path.name}.tmp.npy")
    np.save(temp, tracks.landmarks.astype(np.float32))
    os.replace(temp, landmarks_path)
    root = Path(job.root)
    return {
        "speaker": job.speaker.name,
        "emotion": job.emotion,
        "level": job.level,
        "sentence": job.stem,
        "video": video.relative_to(root).as_posix(),
        "audio": audio_path.relative_to(root).as_posix(),
        "landmarks": landmarks_path.relative_to(root).as_posix(),
        "num_frames": len(tracks.landmarks),
        "duration_s": len(tracks.audio) / SAMPLE_RATE,
        "vowel_times": np.round(tracks.vowel_times, 4).tolist(),
    }


def plan(config: SynthConfig, root: str | os.PathLike[str]) -> list[ClipJob]:
    """Every clip of the corpus, speaker by speaker, in MEAD's emotion order."""
    sentences = make_sentences(config)
    jobs = []
    for speaker_index in range(config.speakers):
        speaker = sample_speaker(config.seed, speaker_index)
        for emotion, level in config.labels():
            for sentence_index, sentence in enumerate(sentences, start=1):
                jobs.append(
                    ClipJob(
                        speaker, speaker_index, emotion, level, sentence, sentence_index, str(root), config
                    )
                )
    return jobs


def _prepare_root(root: Path, jobs: list[ClipJob], overwrite: bool) -> None:
    if root.exists() and not root.is_dir():
        raise OutputError(f"{root} is a file; give a folder for the corpus")
    if root.is_dir() and any(root.iterdir()):
        if not overwrite:
            raise OutputError(f"{root} is not empty; choose an empty folder or pass --overwrite")
        # Remove the clips of a previous corpus that the new one does not make, so none are left stale.
        previous = root / MANIFEST_NAME
        if previous.is_file():
            keep = {
                str(path)
                for job in jobs
                for path in (job.video_path(), job.audio_path(), job.landmarks_path())
            }
            for clip in json.loads(previous.read_text()).get("clips", []):
                for key in ("video", "audio", "landmarks"):
                    path = root / clip[key]
                    if str(path) not in keep:
                        path.unlink(missing_ok=True)
    make_folder(root)


def synth(
    config: SynthConfig,
    root: str | os.PathLike[str],
    workers: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Make the corpus under ``root``; returns the path of ``synth.json``.

    workers: processes that make clips in parallel (default: the CPU count; 1 works in this process).
    progress: called as ``progress(done, total)`` after each clip.
    """
    root = Path(root)
    jobs = plan(config, root)
    _prepare_root(root, jobs, overwrite)
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    labels: list[dict[str, object] | None] = [None] * len(jobs)
    if workers == 1:
        for index, job in enumerate(jobs):
            labels[index] = make_clip(job)
            if progress:
                progress(index + 1, len(jobs))
    else:
        # spawn, not fork: the caller may hold threads (torch, rich) that a forked child would inherit stuck.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(make_clip, job): index for index, job in enumerate(jobs)}
            try:
                for done, future in enumerate(as_completed(futures), start=1):
                    labels[futures[future]] = future.result()
                    if progress:
                        progress(done, len(jobs))
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    sentences = make_sentences(config)
    manifest = {
        "synth_version": SYNTH_VERSION,
        "seed": config.seed,
        "config": config.to_dict(),
        "fps": VIDEO_FPS,
        "sample_rate": SAMPLE_RATE,
        "emotion_styles": {
            name: {"face": asdict(face), "voice": asdict(voice)}
            for name, (face, voice) in EMOTION_STYLES.items()
        },
        "level_intensity": LEVEL_INTENSITY,
        "speakers": [asdict(sample_speaker(config.seed, index)) for index in range(config.speakers)],
        "sentences": [
            {
                "sentence": f"{index:03d}",
                "words": [list(word) for word in sentence.words],
                "syllables": list(sentence.syllables),
                "text": sentence.text(),
            }
            for index, sentence in enumerate(sentences, start=1)
        ],
        "clips": labels,
    }
    path = root / MANIFEST_NAME
    temp = root / f".{MANIFEST_NAME}.tmp"
    temp.write_text(json.dumps(manifest, indent=1))
    os.replace(temp, path)
    return path
