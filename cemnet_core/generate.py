"""``cemnet generate``: reference face(s) + driving audio -> emotional talking-face video (DESIGN section 8).

This module is the user-facing flow: check the output, scan the inputs, loop over chunks, write.

    refs (image folder, image or video) -> faces + 478 landmarks (references.py, MediaPipe)
      -> N = 5 references that cover different mouth shapes (references.choose_references)
    audio (any format, media.iter_audio) -> scaled to the release's speech level if it has one
      (``speech_lufs``; the loudness of the first 5 minutes, data/audio.py) -> streamed log-mel
      (data/mel_stream.py), exact across chunk seams; the video keeps the audio as given
      -> CEMNetPipeline.animate per chunk: Audio2Mouth, AEE, EBM per window of T frames, then the renderer
         (pose from the references, ping-pong through a reference video, or the motion of ``pose_video``)
      -> pasted into the full-size pose frame with a mask that follows the jaw, colour-matched at its
         edge (compositing.py)
      -> invisible watermark + provenance tags -> H.264 + AAC mp4 with the driving audio, same duration
      (with ``overlap``, a worker thread pastes back, marks and writes chunk k while chunk k+1 renders: the
      renderer's convolutions release the GIL, and the frames are the same as in the sequential order)

Memory stays flat in the audio's length: audio is decoded and turned into mel ``chunk_frames`` video frames
at a time; each chunk reads its samples with a few hundred samples of context on both sides (the small
overlap), which makes every mel row equal to the row of the whole-file spectrogram, so chunk seams cannot
show. Windows of T frames are aligned to absolute frame indices, so chunked and one-shot runs agree; the
last window follows :meth:`CEMNetPipeline.animate`'s rule (filled up by repeating the last frame), the same
path the evaluation scores.

Decisions on bad input (each one :class:`~cemnet_core.errors.CemnetError`, nothing written):

- audio shorter than one mel window (0.2 s): refused (:class:`MediaError`), not padded: the model would
  see mostly padding and the video would be 4 frames long.
- silent audio (RMS below ``min_rms_db`` dBFS, default -60): refused; all-zero audio gives -inf.
- references: see :mod:`cemnet_core.references` (no face, several faces, not an image); references
  larger than ``max_side`` (default 1920 px) are downscaled, so an 8K photo gives a 1920-px video.
- only 25 fps output: the mel front end and the models are fixed to 25 fps (3.2 mel frames per frame).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cemnet_core.bundle import resolve_bundle
from cemnet_core.compositing import blend_window, face_mask, paste_back
from cemnet_core.contracts import (
    ALL,
    ALL_POSE,
    EMOTIONS,
    MEL_PER_FRAME,
    MEL_WINDOW,
    MOUTH,
    POSE,
    SAMPLE_RATE,
    VIDEO_FPS,
)
from cemnet_core.data import landmarks as lm
from cemnet_core.data import media
from cemnet_core.data.audio import level_gain, loudness
from cemnet_core.data.mel_stream import MelStream
from cemnet_core.errors import ConfigError, Interrupted, MediaError, OutputError
from cemnet_core.identity import IdentityEncoder, mean_identity
from cemnet_core.pipeline import Animation, CEMNetPipeline, ReferenceSet
from cemnet_core.references import (
    MAX_REFERENCE_FRAMES,
    MAX_SIDE,
    References,
    choose_references,
    load_references,
    video_references,
)
from cemnet_core.watermark import WindowMarker, embed_watermark, provenance_metadata

ProgressCallback = Callable[[int, int], None]  # (frames done, total frames)
LOUDNESS_SECONDS = 300  # the driving audio's loudness is that of its first 5 minutes (scan_audio)


@dataclass(frozen=True)
class GenerateConfig:
    """Options of :func:`generate` (the CLI flags).

    emotion: ``"auto"`` (from the audio, AEE) or one of ``EMOTIONS``; intensity: scale of the emotional
    mouth displacement (1 = as trained); batch_size: frames per renderer batch; chunk_frames: video frames
    per streamed chunk; max_reference_frames: frames read from a reference or pose video; max_side: longer
    side references are downscaled to (0: never); feather: width of the paste-back blend, as a fraction of
    the crop side; overlap: finish chunk k in a worker thread while chunk k+1 renders (same output);
    mouth_gain: scale of the lip motion instead of the release's calibrated ``motion_gain`` (0.5-4; None:
    the release's, :mod:`cemnet_core.train.calibrate`); encoder_preset: libx264's speed preset of the
    written mp4 (CRF 18 either way).
    """

    emotion: str = "auto"
    intensity: float = 1.0
    fps: float = VIDEO_FPS
    batch_size: int | None = None  # None: the fastest measured for the device (pipeline.render_batch)
    num_refs: int | None = None  # None: as many as the model was trained with (N, 5 in the paper)
    chunk_frames: int = 100
    max_reference_frames: int = MAX_REFERENCE_FRAMES
    max_side: int = MAX_SIDE
    feather: float = 0.12
    min_rms_db: float = -60.0
    device: str | None = None
    ablation: str | None = None  # None: CEM-Net; "aee" / "ebm": Table IV ablations; "a2m": no emotion
    overlap: bool = True  # paste back, watermark and write chunk k while chunk k+1 renders
    mouth_gain: float | None = None  # None: the release's Audio2Mouth motion_gain
    # veryfast, not x264's medium: 3.8 against 7.3 CPU ms a frame at 474 px, 41.8 against 43.2 dB to the
    # raw frames, the watermark's z 28.6 against 28.8 (benchmarks/generate_throughput.py --presets).
    encoder_preset: str = "veryfast"

    def __post_init__(self) -> None:
        if self.emotion != "auto" and self.emotion not in EMOTIONS:
            raise ConfigError(f"unknown emotion {self.emotion!r}; use auto or one of {', '.join(EMOTIONS)}")
        if not math.isfinite(self.intensity) or not 0.0 <= self.intensity <= 3.0:
            raise ConfigError(f"intensity must be between 0 and 3, got {self.intensity}")
        if self.mouth_gain is not None and not 0.5 <= self.mouth_gain <= 4.0:
            raise ConfigError(f"mouth gain must be between 0.5 and 4, got {self.mouth_gain}")
        if self.encoder_preset not in media.X264_PRESETS:
            presets = ", ".join(media.X264_PRESETS)
            raise ConfigError(f"unknown encoder preset {self.encoder_preset!r}; use one of {presets}")
        if self.fps != VIDEO_FPS:
            raise ConfigError(f"--fps {self.fps:g} is not supported: the models run at 25 fps; use --fps 25")
        refs = 1 if self.num_refs is None else self.num_refs
        batch = 1 if self.batch_size is None else self.batch_size
        if min(batch, refs, self.chunk_frames, self.max_reference_frames) < 1:
            raise ConfigError("batch size, references, chunk frames and reference frames must be >= 1")


@dataclass(frozen=True)
class GenerateResult:
    """What :func:`generate` wrote and measured."""

    path: Path
    frames: int
    duration: float
    frames_per_second: float  # generation speed, model loading excluded
    references: int
    skipped: tuple[str, ...]


def ping_pong(t: int, count: int) -> int:
    """Frame index ``t`` of a sequence of ``count`` frames played forward then backward, repeatedly."""
    if count <= 1:
        return 0
    period = 2 * (count - 1)
    phase = t % period
    return phase if phase < count else period - phase


# ---------------------------------------------------------------- audio


@dataclass(frozen=True)
class AudioSummary:
    """One streamed pass over the driving audio: sample count and loudness."""

    samples: int
    rms_db: float
    sample_rate: int = SAMPLE_RATE

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.samples / self.sample_rate


def scan_audio(path: str | os.PathLike[str], min_rms_db: float = -60.0) -> AudioSummary:
    """Count the samples and measure the RMS of an audio file in one streamed pass; refuse unusable audio.

    Raises:
        MediaError: unreadable, shorter than one mel window (0.2 s) or silent (RMS < ``min_rms_db`` dBFS).
    """
    count, energy = 0, 0.0
    for chunk in media.iter_audio(path):
        count += len(chunk)
        energy += float(np.dot(chunk.astype(np.float64), chunk.astype(np.float64)))
    minimum = round(MEL_WINDOW / MEL_PER_FRAME / VIDEO_FPS * SAMPLE_RATE)  # 0.2 s
    if count < minimum:
        raise MediaError(
            f"{path}: the audio lasts {count / SAMPLE_RATE:.2f} s; give at least "
            f"{minimum / SAMPLE_RATE:.1f} s of speech (one mel window)"
        )
    rms_db = 10.0 * math.log10(energy / count) if energy > 0 else -math.inf
    if rms_db < min_rms_db:
        raise MediaError(
            f"{path}: the audio is silent (RMS {rms_db:.0f} dBFS, below {min_rms_db:.0f}); "
            "give a recording of speech"
        )
    return AudioSummary(count, rms_db)


def speech_loudness(path: str | os.PathLike[str]) -> float | None:
    """Loudness (LUFS, :func:`~cemnet_core.data.audio.loudness`) of the audio's first ``LOUDNESS_SECONDS``.

    Read only when the release has a speech level (``speech_lufs``); memory stays flat in the audio's length.
    """
    head, count = [], 0
    for chunk in media.iter_audio(path):
        head.append(chunk)
        count += len(chunk)
        if count >= LOUDNESS_SECONDS * SAMPLE_RATE:
            break
    return loudness(np.concatenate(head)[: LOUDNESS_SECONDS * SAMPLE_RATE]) if head else None


# ---------------------------------------------------------------- generation


def _check_output(out: Path) -> None:
    parent = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise OutputError(f"{out} is a folder; give a file name such as {out / 'out.mp4'}")
    if not parent.is_dir():
        raise OutputError(f"cannot write {out}: folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write {out}: folder {parent} is read-only; choose a writable folder")


@dataclass
class _Scene:
    """Per-frame inputs shared by every chunk: the references, the pose source and paste-back targets."""

    references: ReferenceSet
    pose_frames: list[np.ndarray]  # full-size background frames
    pose_boxes: np.ndarray  # (P, 4)
    pose_crops: np.ndarray  # (P, S, S, 3) uint8
    pose_landmarks: np.ndarray  # (P, 78, 2) crop-normalised, of the pose frames
    pose_faces: np.ndarray  # (P, 135, 2) ALL landmarks of the pose frames (paste-back mask)
    driven_pose: np.ndarray | None  # (Q, 78, 2) pose of a --pose-video mapped onto the primary reference
    marker: WindowMarker | None  # the watermark of the one background frame (a photo), else None

    def frame_inputs(self, t: int) -> tuple[int, np.ndarray]:
        """(index of the background frame, pose landmarks (78, 2)) of output frame ``t``."""
        if self.driven_pose is not None:
            return 0, self.driven_pose[ping_pong(t, len(self.driven_pose))]
        index = ping_pong(t, len(self.pose_frames))
        return index, self.pose_landmarks[index]


def _identity(refs: References, chosen: list[int]) -> np.ndarray:
    """Mean dlib identity (128,) of the chosen references, on their full-size frames."""
    unique = sorted(set(chosen))
    frames = [refs.frames[i] for i in unique]
    return mean_identity(IdentityEncoder().embed_batch(frames, landmarks=refs.landmarks[unique]))


def _pose_video_motion(path: Path, primary_pose: np.ndarray, config: GenerateConfig) -> np.ndarray:
    """POSE landmarks of a pose video as motion around the primary reference: (Q, 78, 2) crop-normalised."""
    refs = video_references(path, config)
    pose = lm.select(refs.normalised, POSE)  # (Q, 78, 2)
    return (primary_pose[None] + (pose - pose[0:1])).astype(np.float32)


def _scene(
    pipeline: CEMNetPipeline, refs: References, pose_video: Path | None, config: GenerateConfig
) -> _Scene:
    size = pipeline.image_size
    normalised = refs.normalised  # (n, 478, 2)
    chosen = choose_references(lm.select(normalised, MOUTH), config.num_refs or pipeline.num_refs)
    references = pipeline.references(
        refs.crops(chosen, size), lm.select(normalised[chosen], ALL), _identity(refs, chosen)
    )
    pose_indices = list(range(len(refs.frames))) if refs.is_video else [0]
    pose_faces = lm.select(normalised[pose_indices], ALL)  # (P, 135, 2)
    pose_landmarks = pose_faces[:, ALL_POSE]  # (P, 78, 2)
    driven = None if pose_video is None else _pose_video_motion(pose_video, pose_landmarks[0], config)
    return _Scene(
        references=references,
        pose_frames=[refs.frames[i] for i in pose_indices],
        pose_boxes=refs.boxes[pose_indices],
        pose_crops=refs.crops(pose_indices, size),  # (P, S, S, 3)
        pose_landmarks=pose_landmarks,
        pose_faces=pose_faces,
        driven_pose=driven,
        marker=WindowMarker(refs.frames[0]) if len(pose_indices) == 1 else None,
    )


def _animate_chunk(
    pipeline: CEMNetPipeline,
    scene: _Scene,
    mel: MelStream,
    t0: int,
    t1: int,
    total: int,
    config: GenerateConfig,
) -> tuple[list[int], Animation]:
    """Rendered crops of output frames ``t0 .. t1-1`` and their background indices; ``t0`` is a multiple of
    the window."""
    inputs = [scene.frame_inputs(t) for t in range(t0, t1)]
    animation = pipeline.animate(
        scene.references,
        mel,
        np.stack([pose for _, pose in inputs]),  # (n, 78, 2)
        np.stack([scene.pose_crops[index] for index, _ in inputs]),  # (n, S, S, 3)
        start=t0,
        total=total,
        emotion_label=None if config.emotion == "auto" else config.emotion,
        intensity=config.intensity,
        batch_size=config.batch_size,
    )
    return [index for index, _ in inputs], animation


def _finish_chunk(
    scene: _Scene, indices: list[int], animation: Animation, config: GenerateConfig, t0: int
) -> np.ndarray:
    """The rendered crops pasted back into their full-size frames and watermarked: (n, H, W, 3) uint8.

    With one background (a photo) only the pasted window is marked anew (:class:`WindowMarker`, same frames
    as :func:`embed_watermark` of the whole frame)."""
    out = []
    for index, face, rendered in zip(indices, animation.frames, animation.landmarks, strict=True):
        mask = face_mask([rendered.numpy(), scene.pose_faces[index]], face.shape[0], config.feather / 2)
        frame, box = scene.pose_frames[index], scene.pose_boxes[index]
        if scene.marker is not None:
            out.append(scene.marker.mark(blend_window(frame, face, box, config.feather, mask=mask,
                                                      match_colour=True)))  # fmt: skip
        else:
            out.append(paste_back(frame, face, box, config.feather, mask=mask, match_colour=True))
    frames = np.stack(out)
    return frames if scene.marker is not None else embed_watermark(frames, frame_offset=t0)


def generate(
    ref: str | os.PathLike[str],
    audio: str | os.PathLike[str],
    out: str | os.PathLike[str],
    weights: str | os.PathLike[str] | None = None,
    config: GenerateConfig = GenerateConfig(),
    pose_video: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    pipeline: CEMNetPipeline | None = None,
) -> GenerateResult:
    """Write a talking-face video of the face in ``ref`` saying ``audio`` to ``out`` (module docstring).

    ``weights``: a bundle folder, a bundle name under ``$CEMNET_WEIGHTS_DIR`` or ``hf://OWNER/REPO[@REVISION]``
    (:func:`cemnet_core.bundle.resolve_bundle`). ``pipeline`` skips loading ``weights`` (evaluation and
    benchmarks reuse one). ``progress(done, total)``
    is called after every chunk.

    Raises:
        CemnetError subclasses for every bad input (see the module docstring); Interrupted on Ctrl-C, with
        the partial output removed.
    """
    out = Path(out)
    _check_output(out)
    summary = scan_audio(audio, config.min_rms_db)
    refs = load_references(ref, config)
    if pose_video is not None and not Path(pose_video).is_file():
        raise MediaError(f"{pose_video}: pose video not found")
    if pipeline is None:
        pipeline = CEMNetPipeline.from_bundle(
            resolve_bundle(weights), config.device, ablation=config.ablation, motion_gain=config.mouth_gain
        )
    elif config.mouth_gain is not None:
        raise ConfigError("mouth_gain applies when generate loads the weights; with a pipeline, give "
                          "motion_gain to CEMNetPipeline.from_bundle")  # fmt: skip
    scene = _scene(pipeline, refs, Path(pose_video) if pose_video is not None else None, config)
    total = max(1, round(summary.duration * VIDEO_FPS))  # what VideoWriter keeps for this audio
    chunk = max(pipeline.window, config.chunk_frames // pipeline.window * pipeline.window)
    chunks = media.iter_audio(audio)
    if pipeline.speech_lufs is not None:  # the features at the model's speech level
        gain = np.float32(level_gain(speech_loudness(audio), pipeline.speech_lufs))
        chunks = (piece * gain for piece in chunks)
    mel = MelStream(chunks, summary.samples)
    began = time.perf_counter()
    try:
        with (
            media.VideoWriter(
                out, VIDEO_FPS, audio=audio, metadata=provenance_metadata(), preset=config.encoder_preset
            ) as writer,
            ThreadPoolExecutor(max_workers=1) as worker,
        ):

            def finish(indices: list[int], animation: Animation, t0: int, t1: int) -> None:
                writer.write(_finish_chunk(scene, indices, animation, config, t0))
                if progress is not None:
                    progress(t1, total)

            pending: Future[None] | None = None
            for t0 in range(0, total, chunk):
                t1 = min(t0 + chunk, total)
                indices, animation = _animate_chunk(pipeline, scene, mel, t0, t1, total, config)
                if pending is not None:
                    pending.result()  # chunks are written in order, one at a time
                pending = worker.submit(finish, indices, animation, t0, t1)
                if not config.overlap:
                    pending.result()
            if pending is not None:
                pending.result()
    except KeyboardInterrupt:
        raise Interrupted(f"stopped by Ctrl-C; {out} was not written") from None
    elapsed = time.perf_counter() - began
    return GenerateResult(
        out, total, summary.duration, total / max(elapsed, 1e-9), len(refs.frames), tuple(refs.skipped)
    )
