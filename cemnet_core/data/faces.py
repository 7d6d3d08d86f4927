"""Face tracking and cropping (DESIGN section 3): MediaPipe Face Landmarker -> 478 landmarks -> 128x128 crops.

The paper (Sec. IV-A) crops faces and extracts facial landmarks with MediaPipe; this module does it the
same way for every source of faces in the project:

- clips: :class:`~cemnet_core.data.tracking.FaceTracker` (its own module) follows one person through a
  clip; this module holds what it shares with the rest: :class:`FaceConfig`, :class:`TrackResult` and the
  MediaPipe task helpers.
- stills: :func:`detect_image_faces` / :func:`detect_image_landmarks` run IMAGE mode on one picture
  (reference images): every face largest first, or the largest.
- :func:`crop_boxes` turns the per-frame landmarks into square boxes around ``landmarks.ALL`` with a
  margin, fills frames without a face from their neighbours (linear in time, held at the ends) and smooths
  centre and size with a centred moving average, so the crop does not jitter.
- :func:`crop_frames` cuts the boxes out (zero padding outside the frame) and resizes them to 128x128 with
  ``cv2.INTER_AREA``. Boxes are whole pixels so ``landmarks.to_crop`` is exact.

Shapes: ``T`` frames, ``H, W`` frame size, ``K = 478`` landmarks, points are ``(x, y)`` frame pixels.
Frames without a face keep NaN landmarks and ``valid = False``; they are never dropped.
"""

from __future__ import annotations

import ctypes
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cemnet_core.configs import config_to_dict
from cemnet_core.contracts import ALL, N_LANDMARKS
from cemnet_core.data.face_mesh import native_stderr_silenced
from cemnet_core.errors import NoFaceError, WeightsError

LANDMARKER_FILENAME = "face_landmarker.task"
DETECTOR_MEMBER = "face_detector.tflite"  # inside the .task bundle (a zip)


@dataclass(frozen=True)
class FaceConfig:
    """How faces are found and cropped.

    ``margin`` widens the square around ``ALL`` by this fraction of its side on every side;
    ``smoothing`` is the length (frames, odd) of the moving average over box centre and size;
    ``max_side`` downsizes frames whose longer side exceeds it before landmarking (0: never); landmarks
    come back in full-frame pixels either way. ``num_faces`` is how many faces the tracker looks for
    (1: never look for a second person); ``check_every`` is how many frames apart, while one face is
    tracked, the face detector checks for a second one (1: every frame). ``engine`` runs the landmark
    model with ``"litert"`` (:mod:`~cemnet_core.data.face_mesh`, faster) or ``"mediapipe"`` (MediaPipe's
    VIDEO-mode graph); ``threads`` is the ``"litert"`` interpreter's CPU threads; ``smooth_landmarks``
    applies MediaPipe's One Euro landmark smoothing with ``"litert"`` (MediaPipe's graph always does).
    """

    crop_size: int = 128
    margin: float = 0.15
    smoothing: int = 5
    num_faces: int = 2
    min_detection_confidence: float = 0.5
    min_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    max_side: int = 0
    check_every: int = 10
    engine: str = "litert"
    threads: int = 1
    smooth_landmarks: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the fields (:func:`~cemnet_core.configs.config_to_dict`)."""
        return config_to_dict(self)


def landmarker_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Local path of ``face_landmarker.task``: ``path`` if given, else the weights registry, else
    ``$CEMNET_WEIGHTS_DIR/face_landmarker.task``."""
    if path is not None:
        candidate = Path(path)
    else:
        try:
            from cemnet_core import weights  # the registry; optional until it is installed

            return Path(weights.resolve("mediapipe.face_landmarker"))
        except (ImportError, AttributeError):
            candidate = Path(os.environ.get("CEMNET_WEIGHTS_DIR", "")) / LANDMARKER_FILENAME
    if not candidate.is_file():
        raise WeightsError(
            f"MediaPipe face landmarker not found at {candidate}; run `cemnet weights pull` or set "
            "CEMNET_WEIGHTS_DIR to the folder holding face_landmarker.task"
        )
    return candidate


_FIRST_INFERENCE_DONE = False


def _first_inference(detect: Any) -> None:
    """Run ``detect`` once on a blank image (call it with stderr silenced).

    MediaPipe's LiteRT runner writes two lines to stderr on the first inference of a process ("WARNING:
    Logging before InitGoogle() ..." and "W0000 ... inference_runner_litert.cc:1418] Input tensor memory is
    not aligned ...", about a copy it makes inside) and has no switch for them; they are logged once per
    process, so doing that first inference here, silenced, keeps them out of every run and every worker.
    """
    global _FIRST_INFERENCE_DONE
    import mediapipe as mp

    detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((64, 64, 3), np.uint8)))
    _FIRST_INFERENCE_DONE = True


def _create_landmarker(
    model_path: Path, config: FaceConfig, video: bool, num_faces: int | None = None
) -> Any:
    """A Face Landmarker (VIDEO or IMAGE mode) looking for ``num_faces`` faces (``config.num_faces``)."""
    from mediapipe.tasks.python import BaseOptions, vision  # heavy import, only where faces are needed

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(model_path)),
        running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
        num_faces=config.num_faces if num_faces is None else num_faces,
        min_face_detection_confidence=config.min_detection_confidence,
        min_face_presence_confidence=config.min_presence_confidence,
        min_tracking_confidence=config.min_tracking_confidence,
        output_face_blendshapes=False,
        output_facial_transformation_matrixes=False,
    )
    try:
        with native_stderr_silenced():
            landmarker = vision.FaceLandmarker.create_from_options(options)
            if not video:
                _first_inference(landmarker.detect)
    except (RuntimeError, ValueError) as exc:
        raise WeightsError(
            f"cannot load the face landmarker {model_path}: {exc}; "
            "check the file with `cemnet weights verify`"
        ) from exc
    if video and not _FIRST_INFERENCE_DONE:  # its first frame must be a real one: warm a detector instead
        detector = _create_detector(model_path, config)
        with native_stderr_silenced():  # LiteRT logs the release of its accelerators
            detector.close()
    return landmarker


def _create_detector(model_path: Path, config: FaceConfig) -> Any:
    """The face detector inside the landmarker bundle (``face_detector.tflite``), IMAGE mode."""
    from mediapipe.tasks.python import BaseOptions, vision

    try:
        with zipfile.ZipFile(model_path) as bundle:
            model = bundle.read(DETECTOR_MEMBER)
        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_buffer=model),
            min_detection_confidence=config.min_detection_confidence,
        )
        with native_stderr_silenced():
            detector = vision.FaceDetector.create_from_options(options)
            _first_inference(detector.detect)
            return detector
    except (zipfile.BadZipFile, KeyError, RuntimeError, ValueError) as exc:
        raise WeightsError(
            f"cannot load the face detector from {model_path}: {exc}; check the file with "
            "`cemnet weights verify`"
        ) from exc


def _to_mp_image(frame: np.ndarray, max_side: int) -> tuple[Any, float]:
    """RGB uint8 frame -> (mediapipe Image, factor from landmarker pixels back to frame pixels)."""
    import mediapipe as mp

    height, width = frame.shape[:2]
    factor = 1.0
    if max_side and max(height, width) > max_side:
        factor = max(height, width) / max_side
        size = (max(1, round(width / factor)), max(1, round(height / factor)))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame)), factor


def _c_result_type() -> Any:
    """The ctypes result struct of mediapipe's C API for the Face Landmarker, or None if it has none."""
    from mediapipe.tasks.python.vision import face_landmarker

    return getattr(face_landmarker, "MpFaceLandmarkerResultC", None)


def _normalised_faces(landmarker: Any, image: Any, timestamp_ms: int | None) -> list[np.ndarray]:
    """Run ``landmarker`` on one image (VIDEO mode with ``timestamp_ms``, else IMAGE mode).

    Returns one ``(478, 2)`` float32 array in ``[0, 1]`` image coordinates per face. mediapipe's
    ``FaceLandmarkerResult`` builds 478 Python objects per face (about 0.5 ms of a 5.5 ms frame); where
    mediapipe exposes its C result struct (mediapipe 1.x), the points are copied out of it in one go.
    """
    result_type = _c_result_type()
    library = getattr(landmarker, "_lib", None)
    if result_type is None or library is None:  # another mediapipe layout: its public API
        result = (
            landmarker.detect(image)
            if timestamp_ms is None
            else landmarker.detect_for_video(image, timestamp_ms)
        )
        return [
            np.array([(point.x, point.y) for point in face], dtype=np.float32)
            for face in result.face_landmarks
        ]
    result = result_type()
    if timestamp_ms is None:
        library.MpFaceLandmarkerDetectImage(landmarker._handle, image._image_ptr, None, ctypes.byref(result))
    else:
        library.MpFaceLandmarkerDetectForVideo(
            landmarker._handle, image._image_ptr, None, timestamp_ms, ctypes.byref(result)
        )
    try:
        faces = []
        for index in range(result.face_landmarks_count):
            points = result.face_landmarks[index]
            point_type = points.landmarks._type_
            layout = np.dtype(
                {
                    "names": ["x", "y"],
                    "formats": [np.float32, np.float32],
                    "offsets": [point_type.x.offset, point_type.y.offset],
                    "itemsize": ctypes.sizeof(point_type),
                }
            )
            raw = ctypes.string_at(points.landmarks, points.landmarks_count * layout.itemsize)
            records = np.frombuffer(raw, dtype=layout)  # (K,) x, y
            faces.append(np.stack([records["x"], records["y"]], axis=1))  # (K, 2)
        return faces
    finally:
        library.MpFaceLandmarkerCloseResult(ctypes.byref(result))


def _faces_in_pixels(
    landmarker: Any, image: Any, timestamp_ms: int | None, factor: float
) -> list[np.ndarray]:
    """Faces found in ``image`` as ``(478, 2)`` float32 arrays in frame pixels.

    fd 2 is silenced around the inference: the warm-up of :func:`_first_inference` does not always meet the
    unaligned buffer that makes MediaPipe's LiteRT runner log its "not aligned" line (see tracking.py).
    """
    scale = np.array([image.width, image.height], dtype=np.float32) * factor
    with native_stderr_silenced():
        faces = _normalised_faces(landmarker, image, timestamp_ms)
    return [points * scale for points in faces]


def _box_of(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre ``(2,)`` and side of the tight box around ``ALL`` of one face ``(478, 2)``."""
    group = points[list(ALL)]
    low, high = group.min(axis=0), group.max(axis=0)
    return (low + high) / 2, float((high - low).max())


def _pick_face(faces: list[np.ndarray], previous: np.ndarray | None) -> np.ndarray:
    """The face nearest to the previous track centre, or the largest one without a track."""
    if previous is None:
        return max(faces, key=lambda face: _box_of(face)[1])
    return min(faces, key=lambda face: float(np.linalg.norm(_box_of(face)[0] - previous)))


@dataclass
class TrackResult:
    """Landmarks of one tracked person over ``T`` frames.

    landmarks: ``(T, 478, 2)`` float32 frame pixels, NaN where ``valid`` is False;
    valid: ``(T,)`` bool; faces_seen: ``(T,)`` int, how many faces the landmarker found per frame (at most
    1 between two multi-face checks of :class:`FaceTracker` while it tracks a single face).
    """

    landmarks: np.ndarray
    valid: np.ndarray
    faces_seen: np.ndarray

    @property
    def face_ratio(self) -> float:
        """Fraction of frames with a face (0 for an empty track)."""
        return float(self.valid.mean()) if self.valid.size else 0.0

    @property
    def multi_face_frames(self) -> int:
        """Number of frames where more than one face was visible."""
        return int((self.faces_seen > 1).sum())

    @staticmethod
    def concat(parts: list[TrackResult]) -> TrackResult:
        """Join consecutive chunks of one clip."""
        if not parts:
            empty = np.zeros((0, N_LANDMARKS, 2), np.float32)
            return TrackResult(empty, np.zeros(0, bool), np.zeros(0, np.int64))
        return TrackResult(
            np.concatenate([part.landmarks for part in parts]),
            np.concatenate([part.valid for part in parts]),
            np.concatenate([part.faces_seen for part in parts]),
        )


def detect_image_faces(
    image: np.ndarray, model_path: str | os.PathLike[str] | None = None, config: FaceConfig = FaceConfig()
) -> list[np.ndarray]:
    """Landmarks of up to ``config.num_faces`` faces in a still image (IMAGE mode), largest first.

    image: ``(H, W, 3)`` uint8 RGB. Returns a non-empty list of ``(478, 2)`` float32 frame pixels; the size
    of a face is the side of its box around ``landmarks.ALL``. Raises :class:`NoFaceError` when the image
    shows no face.
    """
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"detect_image_faces: expected (H, W, 3) uint8, got {image.shape} {image.dtype}")
    landmarker = _create_landmarker(landmarker_path(model_path), config, video=False)
    try:
        mp_image, factor = _to_mp_image(image, config.max_side)
        faces = _faces_in_pixels(landmarker, mp_image, None, factor)
    finally:
        with native_stderr_silenced():
            landmarker.close()
    if not faces:
        raise NoFaceError(
            "no face found in the image; use a photo where one face is clearly visible, "
            "frontal and at least about 100 pixels wide"
        )
    return sorted(faces, key=lambda face: -_box_of(face)[1])


def detect_image_landmarks(
    image: np.ndarray, model_path: str | os.PathLike[str] | None = None, config: FaceConfig = FaceConfig()
) -> np.ndarray:
    """Landmarks ``(478, 2)`` float32 frame pixels of the largest face in a still image (IMAGE mode).

    With ``config.num_faces = 1`` MediaPipe keeps its most confident face, which need not be the largest.
    Raises :class:`NoFaceError` when the image shows no face.
    """
    return detect_image_faces(image, model_path, config)[0]


def _fill_missing(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Linear interpolation over time of rows where ``valid`` is False; held constant at the ends."""
    times = np.arange(values.shape[0])
    filled = values.copy()
    for column in range(values.shape[1]):
        filled[:, column] = np.interp(times, times[valid], values[valid, column])
    return filled


def _moving_average(values: np.ndarray, length: int) -> np.ndarray:
    """Centred moving average along axis 0 with edge padding; ``length`` <= 1 returns ``values``."""
    if length <= 1 or values.shape[0] <= 1:
        return values
    half = length // 2
    padded = np.pad(values, ((half, half), (0, 0)), mode="edge")
    kernel = np.ones(2 * half + 1) / (2 * half + 1)
    return np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(values.shape[1])], axis=1)


def crop_boxes(landmarks_px: np.ndarray, valid: np.ndarray, config: FaceConfig = FaceConfig()) -> np.ndarray:
    """Smoothed square crop boxes around ``ALL`` for a clip.

    landmarks_px: ``(T, 478, 2)`` frame pixels (anything where ``valid`` is False); valid: ``(T,)`` bool.
    Returns ``(T, 4)`` float32 ``(x0, y0, x1, y1)``, whole pixels, ``x1 - x0 == y1 - y0``.
    Raises :class:`NoFaceError` when no frame has a face.
    """
    landmarks_px = np.asarray(landmarks_px, dtype=np.float32)
    valid = np.asarray(valid, dtype=bool)
    shape_ok = landmarks_px.ndim == 3 and landmarks_px.shape[1:] == (N_LANDMARKS, 2)
    if not shape_ok or valid.shape != landmarks_px.shape[:1]:
        raise ValueError(
            f"crop_boxes: expected landmarks (T, 478, 2) and valid (T,), got "
            f"{landmarks_px.shape} and {valid.shape}"
        )
    if not valid.any():
        raise NoFaceError("no face found in any frame of the clip; check that the video shows a face")
    group = landmarks_px[:, list(ALL)]  # (T, 135, 2)
    safe = np.where(valid[:, None, None], group, 0.0)
    low, high = safe.min(axis=1), safe.max(axis=1)  # (T, 2)
    side_raw = (high - low).max(axis=1, keepdims=True)  # (T, 1)
    centre_size = np.concatenate([(low + high) / 2, side_raw], axis=1)  # (T, 3): cx, cy, side
    centre_size = _moving_average(_fill_missing(centre_size, valid), config.smoothing)
    side = np.maximum(np.round(centre_size[:, 2] * (1.0 + 2.0 * config.margin)), 2.0)  # (T,)
    x0 = np.round(centre_size[:, 0] - side / 2)
    y0 = np.round(centre_size[:, 1] - side / 2)
    return np.stack([x0, y0, x0 + side, y0 + side], axis=1).astype(np.float32)  # (T, 4)


def crop_frames(frames: np.ndarray, boxes: np.ndarray, size: int = 128) -> np.ndarray:
    """Cut square boxes out of frames and resize them: ``(n, H, W, 3), (n, 4) -> (n, size, size, 3)`` uint8.

    Parts of a box outside the frame are black. Resizing uses ``cv2.INTER_AREA`` (``INTER_CUBIC`` when a
    box is smaller than ``size`` and has to be enlarged).
    """
    if frames.ndim != 4 or boxes.shape != (frames.shape[0], 4):
        raise ValueError(
            f"crop_frames: expected frames (n, H, W, 3) and boxes (n, 4), got {frames.shape} "
            f"and {boxes.shape}"
        )
    count, height, width = frames.shape[:3]
    crops = np.zeros((count, size, size, 3), dtype=np.uint8)
    for i in range(count):
        x0, y0, x1, y1 = (int(v) for v in np.round(boxes[i]))
        side = x1 - x0
        patch = np.zeros((side, side, 3), dtype=np.uint8)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if sx1 > sx0 and sy1 > sy0:
            patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = frames[i, sy0:sy1, sx0:sx1]
        interpolation = cv2.INTER_AREA if side >= size else cv2.INTER_CUBIC
        crops[i] = cv2.resize(patch, (size, size), interpolation=interpolation)
    return crops
