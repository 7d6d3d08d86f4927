"""``cemnet generate``: reference face(s) + driving audio -> emotional talking-face video (DESIGN section 8).

    refs (image folder, image or video) -> faces + 478 landmarks (data/faces.py, MediaPipe)
      -> N = 5 references that cover different mouth shapes (farthest-point sampling of mouth landmarks)
    audio (any format, media.iter_audio) -> streamed log-mel (data/audio.py), exact across chunk seams
      -> CEMNetPipeline.predict_mouth per window of T frames (Audio2Mouth, AEE, EBM)
      -> mouth + pose landmarks (pose from the references, ping-pong through a reference video, or the
         motion of ``pose_video``) -> CEMNetPipeline.render in batches
      -> pasted into the full-size pose frame with a mask that follows the jaw, colour-matched at its
         edge (compositing.py)
      -> invisible watermark + provenance tags -> H.264 + AAC mp4 with the driving audio, same duration

Memory stays flat in the audio's length: audio is decoded and turned into mel ``chunk_frames`` video frames
at a time; each chunk reads its samples with a few hundred samples of context on both sides (the small
overlap), which makes every mel row equal to the row of the whole-file spectrogram, so chunk seams cannot
show. Windows of T frames are aligned to absolute frame indices, so chunked and one-shot runs agree.

Decisions on bad input (each one :class:`~cemnet_core.errors.CemnetError`, nothing written):

- audio shorter than one mel window (0.2 s): refused (:class:`MediaError`), not padded: the model would
  see mostly padding and the video would be 4 frames long.
- silent audio (RMS below ``min_rms_db`` dBFS, default -60): refused; all-zero audio gives -inf.
- references: images without a face are skipped with a warning while at least one face remains;
  none -> :class:`NoFaceError`. An image with several faces animates the largest, with a warning that says
  which one and how to choose another (crop the picture to it). A ``--ref`` that is neither an image nor a
  video is refused in one line. References larger than ``max_side`` (default 1920 px) are downscaled
  before detection and rendering, so an 8K photo gives a 1920-px video.
- only 25 fps output: the mel front end and the models are fixed to 25 fps (3.2 mel frames per frame).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from cemnet_core.compositing import face_mask, paste_back
from cemnet_core.data import landmarks as lm
from cemnet_core.data import media
from cemnet_core.data.audio import MEL_PER_FRAME, MEL_WINDOW, MelConfig, log_mel, mel_window_start
from cemnet_core.data.faces import FaceConfig, crop_boxes, crop_frames, detect_image_faces
from cemnet_core.data.layouts import EMOTIONS, VIDEO_SUFFIXES
from cemnet_core.data.tracking import FaceTracker
from cemnet_core.errors import ConfigError, Interrupted, MediaError, NoFaceError, OutputError, WeightsError
from cemnet_core.models.identity import IdentityEncoder
from cemnet_core.pipeline import CEMNetPipeline, compose_landmarks
from cemnet_core.watermark import embed_watermark, provenance_metadata

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
DEFAULT_BUNDLE = "cemnet"
MAX_FACES = 4  # faces looked for in a reference image (the largest is animated)
FPS = 25.0
ProgressCallback = Callable[[int, int], None]  # (frames done, total frames)


@dataclass(frozen=True)
class GenerateConfig:
    """Options of :func:`generate` (the CLI flags).

    emotion: ``"auto"`` (from the audio, AEE) or one of ``EMOTIONS``; intensity: scale of the emotional
    mouth displacement (1 = as trained); batch_size: frames per renderer batch; chunk_frames: video frames
    per streamed chunk; max_reference_frames: frames read from a reference or pose video; max_side: longer
    side references are downscaled to (0: never); feather: width of the paste-back blend, as a fraction of
    the crop side.
    """

    emotion: str = "auto"
    intensity: float = 1.0
    fps: float = FPS
    batch_size: int = 16
    num_refs: int = 5
    chunk_frames: int = 100
    max_reference_frames: int = 125
    max_side: int = 1920
    feather: float = 0.12
    min_rms_db: float = -60.0
    device: str | None = None
    ablation: str | None = None  # None: CEM-Net; "aee" / "ebm": Table IV ablations; "a2m": no emotion

    def __post_init__(self) -> None:
        if self.emotion != "auto" and self.emotion not in EMOTIONS:
            raise ConfigError(f"unknown emotion {self.emotion!r}; use auto or one of {', '.join(EMOTIONS)}")
        if not math.isfinite(self.intensity) or not 0.0 <= self.intensity <= 3.0:
            raise ConfigError(f"intensity must be between 0 and 3, got {self.intensity}")
        if self.fps != FPS:
            raise ConfigError(f"--fps {self.fps:g} is not supported: the models run at 25 fps; use --fps 25")
        if min(self.batch_size, self.num_refs, self.chunk_frames, self.max_reference_frames) < 1:
            raise ConfigError("batch size, references, chunk frames and reference frames must be >= 1")


@dataclass
class References:
    """Reference faces: full-size frames, landmarks, crop boxes.

    frames: list of (H, W, 3) uint8 RGB; landmarks: (n, 478, 2) px; boxes: (n, 4) square crop boxes;
    is_video: the frames are consecutive frames of one video (pose can ping-pong through them).
    """

    frames: list[np.ndarray]
    landmarks: np.ndarray
    boxes: np.ndarray
    is_video: bool
    skipped: list[str] = field(default_factory=list)

    @property
    def normalised(self) -> np.ndarray:
        """Landmarks normalised to their crop boxes: (n, 478, 2)."""
        return lm.to_crop(self.landmarks, self.boxes)


@dataclass(frozen=True)
class GenerateResult:
    """What :func:`generate` wrote and measured."""

    path: Path
    frames: int
    duration: float
    frames_per_second: float  # generation speed, model loading excluded
    references: int
    skipped: tuple[str, ...]


# ---------------------------------------------------------------- references


def _downscale(image: np.ndarray, max_side: int) -> np.ndarray:
    height, width = image.shape[:2]
    if not max_side or max(height, width) <= max_side:
        return image
    factor = max_side / max(height, width)
    size = (max(2, round(width * factor)), max(2, round(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _warn(message: str, skipped: list[str]) -> None:
    skipped.append(message)
    warnings.warn(message, UserWarning, stacklevel=3)


def load_references(path: str | os.PathLike[str], config: GenerateConfig = GenerateConfig()) -> References:
    """Faces of an image folder, a single image or a video (its first ``max_reference_frames`` frames).

    Raises:
        NoFaceError: the folder has no images, or no image/frame shows a face.
        MediaError: the file cannot be read.
    """
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: not found; give an image, a folder of images or a video of the face")
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return _image_references(path, config)
    try:
        has_video = media.probe(path).has_video
    except MediaError:
        if path.suffix.lower() in VIDEO_SUFFIXES:  # a damaged video: its own message says what is wrong
            raise
        has_video = False
    if not has_video:
        raise MediaError(
            f"{path}: neither an image nor a video; give --ref a photo (.jpg, .png), a folder of photos "
            "or a video of the face"
        )
    return _video_references(path, config)


def _several_faces(name: str, width: int, faces: list[np.ndarray]) -> str:
    """The warning for an image with several faces: which one is animated, and how to pick another."""
    centre, side = faces[0][list(lm.ALL)].mean(axis=0), np.ptp(faces[0][list(lm.ALL)], axis=0).max()
    where = ("left", "middle", "right")[min(2, int(3 * float(centre[0]) / max(width, 1)))]
    return (
        f"{name}: {len(faces)} faces found; animating the largest ({where} of the picture, about "
        f"{side:.0f} px wide); to animate another, crop the picture to that face and pass the crop as --ref"
    )


def _image_references(path: Path, config: GenerateConfig) -> References:
    files = (
        [path]
        if path.is_file()
        else sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    )
    if not files:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise NoFaceError(f"{path} holds no images ({suffixes}); add photos of the face")
    frames, points, skipped = [], [], []
    face_config = FaceConfig(num_faces=MAX_FACES)
    for file in files:
        try:
            image = _downscale(media.read_image(file), config.max_side)
            faces = detect_image_faces(image, config=face_config)  # largest first
        except (NoFaceError, MediaError) as exc:
            if len(files) == 1:
                raise
            _warn(f"skipped {file.name}: {exc}", skipped)
            continue
        if len(faces) > 1:
            _warn(_several_faces(file.name, image.shape[1], faces), skipped)
        points.append(faces[0])
        frames.append(image)
    if not frames:
        raise NoFaceError(
            f"no face found in any of the {len(files)} images in {path}; use photos where one "
            "face is clearly visible and frontal"
        )
    landmarks = np.stack(points)  # (n, 478, 2)
    boxes = np.concatenate([crop_boxes(p[None], np.ones(1, bool), face_config) for p in landmarks])  # (n, 4)
    return References(frames, landmarks, boxes, is_video=False, skipped=skipped)


def _video_references(path: Path, config: GenerateConfig) -> References:
    frames, parts, skipped = [], [], []
    with FaceTracker(config=FaceConfig(num_faces=1)) as tracker:
        for chunk in media.iter_video_frames(path, fps=FPS, chunk_frames=25):
            chunk = chunk[: config.max_reference_frames - len(frames)]
            chunk = np.stack([_downscale(frame, config.max_side) for frame in chunk])
            parts.append(tracker.track(chunk))
            frames.extend(chunk)
            if len(frames) >= config.max_reference_frames:
                break
    if not frames:
        raise MediaError(f"{path}: the video has no frames")
    track = parts[0].concat(parts)
    if not track.valid.any():
        raise NoFaceError(
            f"no face found in the first {len(frames)} frames of {path}; use a video that "
            "shows one face clearly"
        )
    if not track.valid.all():
        missing = int((~track.valid).sum())
        _warn(f"{path.name}: {missing} of {len(frames)} frames without a face skipped", skipped)
    boxes = crop_boxes(track.landmarks, track.valid, FaceConfig())[track.valid]  # (n, 4)
    kept = [frame for frame, ok in zip(frames, track.valid, strict=True) if ok]
    return References(kept, track.landmarks[track.valid], boxes, is_video=True, skipped=skipped)


def choose_references(mouths: np.ndarray, count: int) -> list[int]:
    """Indices of ``count`` frames whose mouths differ most (greedy farthest-point sampling).

    mouths: (n, 57, 2) crop-normalised ``MOUTH`` landmarks. Starts from the frame nearest to the mean mouth,
    then repeatedly adds the frame farthest from those chosen. With fewer than ``count`` frames, the
    chosen ones are repeated in order.
    """
    shapes = mouths - mouths.mean(axis=1, keepdims=True)  # (n, 57, 2): shape, not position
    flat = shapes.reshape(len(shapes), -1)  # (n, 114)
    chosen = [int(np.argmin(np.linalg.norm(flat - flat.mean(axis=0), axis=1)))]
    distance = np.linalg.norm(flat - flat[chosen[0]], axis=1)  # (n,)
    while len(chosen) < min(count, len(flat)):
        nxt = int(np.argmax(distance))
        if distance[nxt] <= 0 and len(chosen) >= 1:
            break
        chosen.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(flat - flat[nxt], axis=1))
    return [chosen[i % len(chosen)] for i in range(count)]


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
    sample_rate: int = media.SAMPLE_RATE

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
    minimum = round(MEL_WINDOW / MEL_PER_FRAME / FPS * media.SAMPLE_RATE)  # 0.2 s
    if count < minimum:
        raise MediaError(
            f"{path}: the audio lasts {count / media.SAMPLE_RATE:.2f} s; give at least "
            f"{minimum / media.SAMPLE_RATE:.1f} s of speech (one mel window)"
        )
    rms_db = 10.0 * math.log10(energy / count) if energy > 0 else -math.inf
    if rms_db < min_rms_db:
        raise MediaError(
            f"{path}: the audio is silent (RMS {rms_db:.0f} dBFS, below {min_rms_db:.0f}); "
            "give a recording of speech"
        )
    return AudioSummary(count, rms_db)


class MelStream:
    """Rows of the whole audio's log-mel spectrogram, computed chunk by chunk from a stream of samples.

    Each request decodes only the samples its rows need plus 3 hops of context before and 2 after (the
    overlap); since the context covers the STFT window and the pre-emphasis, the rows equal those of
    :func:`log_mel` on the whole file. Requests must not move backwards (``lo`` never decreases).
    """

    def __init__(self, chunks: Iterator[np.ndarray], total_samples: int, config: MelConfig = MelConfig()):
        self.chunks = chunks
        self.total = total_samples
        self.config = config
        self.num_rows = 1 + total_samples // config.hop_length  # S of the whole file
        self._buffer = np.zeros(0, np.float32)
        self._offset = 0  # global index of self._buffer[0]

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """Mel rows ``lo .. hi-1`` (0 <= lo < hi <= num_rows): (hi - lo, 80) float32."""
        if not 0 <= lo < hi <= self.num_rows:
            raise ValueError(f"rows: need 0 <= lo < hi <= {self.num_rows}, got {lo}, {hi}")
        hop = self.config.hop_length
        start = hop * max(0, lo - 3)
        stop = min(self.total, hop * (hi + 2))
        if start < self._offset:
            raise ValueError(f"rows: requests must not move backwards (sample {start} < {self._offset})")
        while self._offset + len(self._buffer) < stop:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self._buffer = np.concatenate([self._buffer, chunk])
        self._buffer = self._buffer[start - self._offset :]
        self._offset = start
        mel = log_mel(self._buffer[: stop - start], self.config)  # rows from start // hop
        first = lo - start // hop
        return mel[first : first + hi - lo]


# ---------------------------------------------------------------- generation


def resolve_bundle(weights: str | os.PathLike[str] | None) -> Path:
    """A weights folder: an existing folder, or a named bundle ``$CEMNET_WEIGHTS_DIR/<name>`` (default
    ``cemnet``).

    Raises:
        WeightsError: neither exists.
    """
    name = str(weights) if weights is not None else DEFAULT_BUNDLE
    if Path(name).is_dir():
        return Path(name)
    root = os.environ.get("CEMNET_WEIGHTS_DIR", "")
    if root and "/" not in name and (Path(root) / name).is_dir():
        return Path(root) / name
    raise WeightsError(
        f"no weights folder {name!r} (nor {name!r} under CEMNET_WEIGHTS_DIR); train the "
        "stages and `cemnet export RUN DST` each into one folder, then pass --weights DST"
    )


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
    """Per-frame inputs shared by every chunk: references as tensors, pose source and paste-back targets."""

    ref_landmarks: torch.Tensor  # (N, 135, 2)
    ref_images: torch.Tensor  # (N, 3, S, S)
    ref_sketches: torch.Tensor  # (N, 3, S, S)
    source_emotion: torch.Tensor  # (Ds,)
    identity: torch.Tensor  # (128,)
    pose_frames: list[np.ndarray]  # full-size background frames
    pose_boxes: np.ndarray  # (P, 4)
    pose_crops: np.ndarray  # (P, S, S, 3) uint8
    pose_landmarks: np.ndarray  # (P, 78, 2) crop-normalised, of the pose frames
    pose_faces: np.ndarray  # (P, 135, 2) ALL landmarks of the pose frames (paste-back mask)
    driven_pose: np.ndarray | None  # (Q, 78, 2) pose of a --pose-video mapped onto the primary reference

    def frame_inputs(self, t: int) -> tuple[int, np.ndarray]:
        """(index of the background frame, pose landmarks (78, 2)) of output frame ``t``."""
        if self.driven_pose is not None:
            return 0, self.driven_pose[ping_pong(t, len(self.driven_pose))]
        index = ping_pong(t, len(self.pose_frames))
        return index, self.pose_landmarks[index]


def _identity(refs: References, chosen: list[int]) -> np.ndarray:
    encoder = IdentityEncoder()
    unique = sorted(set(chosen))
    embeddings = np.stack([encoder.embed(refs.frames[i], landmarks=refs.landmarks[i]) for i in unique])
    mean = embeddings.mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)  # (128,)


def _pose_video_motion(path: Path, primary_pose: np.ndarray, config: GenerateConfig) -> np.ndarray:
    """POSE landmarks of a pose video as motion around the primary reference: (Q, 78, 2) crop-normalised."""
    refs = _video_references(path, config)
    pose = lm.select(refs.normalised, lm.POSE)  # (Q, 78, 2)
    return (primary_pose[None] + (pose - pose[0:1])).astype(np.float32)


def _scene(
    pipeline: CEMNetPipeline, refs: References, pose_video: Path | None, config: GenerateConfig
) -> _Scene:
    size = pipeline.image_size
    normalised = refs.normalised  # (n, 478, 2)
    chosen = choose_references(lm.select(normalised, lm.MOUTH), config.num_refs)
    crops = _crop_each(refs, chosen, size)  # (N, S, S, 3)
    ref_images = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0  # (N, 3, S, S)
    ref_landmarks = torch.from_numpy(lm.select(normalised[chosen], lm.ALL))  # (N, 135, 2)
    pose_indices = list(range(len(refs.frames))) if refs.is_video else [0]
    pose_crops = _crop_each(refs, pose_indices, size)  # (P, S, S, 3)
    pose_faces = lm.select(normalised[pose_indices], lm.ALL)  # (P, 135, 2)
    pose_landmarks = pose_faces[:, lm.ALL_POSE]  # (P, 78, 2)
    driven = None if pose_video is None else _pose_video_motion(pose_video, pose_landmarks[0], config)
    return _Scene(
        ref_landmarks=ref_landmarks,
        ref_images=ref_images,
        ref_sketches=pipeline.sketches(ref_landmarks).cpu(),
        source_emotion=pipeline.source_emotion(ref_images).cpu(),
        identity=torch.from_numpy(_identity(refs, chosen)),
        pose_frames=[refs.frames[i] for i in pose_indices],
        pose_boxes=refs.boxes[pose_indices],
        pose_crops=pose_crops,
        pose_landmarks=pose_landmarks,
        pose_faces=pose_faces,
        driven_pose=driven,
    )


def _crop_each(refs: References, indices: list[int], size: int) -> np.ndarray:
    """Crops (len(indices), S, S, 3) of reference frames that may differ in size."""
    return np.concatenate([crop_frames(refs.frames[i][None], refs.boxes[i][None], size) for i in indices])


def _chunk_frames(
    pipeline: CEMNetPipeline, scene: _Scene, mel: MelStream, t0: int, t1: int, config: GenerateConfig
) -> np.ndarray:
    """Full-size output frames ``t0 .. t1-1`` (n, H, W, 3) uint8; ``t0`` is a multiple of the window."""
    window, segment = pipeline.window, pipeline.emotion_segment
    last_row = mel.num_rows - 1
    starts = list(range(t0, t1, window))
    centres = [round(MEL_PER_FRAME * (a + min(a + window, t1)) / 2) for a in starts]
    seg_starts = [c - segment // 2 for c in centres]
    lo = max(0, min(mel_window_start(t0), seg_starts[0]))
    hi = min(last_row, max(mel_window_start(t1 - 1) + MEL_WINDOW, seg_starts[-1] + segment)) + 1
    rows = mel.rows(lo, hi)  # (hi - lo, 80)

    def take(first: int, count: int) -> np.ndarray:
        return rows[np.clip(np.arange(first, first + count), 0, last_row) - lo]  # (count, 80), edge-padded

    inputs = [scene.frame_inputs(t) for t in range(t0, t1)]
    pose = torch.from_numpy(np.stack([p for _, p in inputs]))  # (n, 78, 2)
    mel_frames = np.stack([take(mel_window_start(t), MEL_WINDOW) for t in range(t0, t1)])  # (n, 16, 80)
    segments = np.stack([take(start, segment) for start in seg_starts])  # (windows, S, 80)
    full = (t1 - t0) // window  # windows of T frames; a last, shorter one runs on its own
    mouths = []
    for first, last in ((0, full), (full, len(starts))):
        if last <= first:
            continue
        a, b = first * window, min(last * window, t1 - t0)
        count, length = last - first, (b - a) // (last - first)
        mouth = pipeline.predict_mouth(
            scene.ref_landmarks[None].expand(count, -1, -1, -1),
            torch.from_numpy(mel_frames[a:b]).view(count, length, MEL_WINDOW, -1),  # (windows, T, 16, 80)
            pose[a:b].reshape(count, length, *pose.shape[1:]),  # (windows, T, 78, 2)
            torch.from_numpy(segments[first:last]),
            scene.source_emotion,
            scene.identity,
            emotion_label=None if config.emotion == "auto" else config.emotion,
            intensity=config.intensity,
        )  # (windows, T, 57, 2)
        mouths.append(mouth.reshape(-1, *mouth.shape[2:]).cpu())
    landmarks = compose_landmarks(pose, torch.cat(mouths))  # (n, 135, 2)
    out = []
    for b0 in range(0, t1 - t0, config.batch_size):
        b1 = min(b0 + config.batch_size, t1 - t0)
        targets = np.stack([scene.pose_crops[inputs[i][0]] for i in range(b0, b1)])  # (b, S, S, 3)
        target_images = torch.from_numpy(targets).permute(0, 3, 1, 2).float() / 255.0
        faces = pipeline.render(
            scene.ref_images, scene.ref_sketches, scene.ref_landmarks, landmarks[b0:b1], target_images
        )
        faces_u8 = (faces.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()  # (b, S, S, 3)
        for i, face in zip(range(b0, b1), faces_u8, strict=True):
            index = inputs[i][0]
            rendered = landmarks[i].numpy()
            mask = face_mask([rendered, scene.pose_faces[index]], face.shape[0], config.feather / 2)
            out.append(paste_back(scene.pose_frames[index], face, scene.pose_boxes[index], config.feather,
                                  mask=mask, match_colour=True))  # fmt: skip
    return np.stack(out)


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

    ``pipeline`` skips loading ``weights`` (evaluation and benchmarks reuse one). ``progress(done, total)``
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
            resolve_bundle(weights), config.device, ablation=config.ablation
        )
    scene = _scene(pipeline, refs, Path(pose_video) if pose_video is not None else None, config)
    total = max(1, round(summary.duration * FPS))  # what VideoWriter keeps for this audio
    chunk = max(pipeline.window, config.chunk_frames // pipeline.window * pipeline.window)
    mel = MelStream(media.iter_audio(audio), summary.samples)
    began = time.perf_counter()
    try:
        with media.VideoWriter(out, FPS, audio=audio, metadata=provenance_metadata()) as writer:
            for t0 in range(0, total, chunk):
                t1 = min(t0 + chunk, total)
                frames = _chunk_frames(pipeline, scene, mel, t0, t1, config)
                writer.write(embed_watermark(frames, frame_offset=t0))
                if progress is not None:
                    progress(t1, total)
    except KeyboardInterrupt:
        raise Interrupted(f"stopped by Ctrl-C; {out} was not written") from None
    elapsed = time.perf_counter() - began
    return GenerateResult(
        out, total, summary.duration, total / max(elapsed, 1e-9), len(refs.frames), tuple(refs.skipped)
    )
