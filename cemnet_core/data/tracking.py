"""Face tracking through a clip (DESIGN section 3): one person's 478 landmarks per frame.

The paper (Sec. IV-A) extracts facial landmarks with MediaPipe. :class:`FaceTracker` follows one person
through a clip fed chunk by chunk, with one of two runtimes of the same MediaPipe models
(``FaceConfig.engine``):

- ``"litert"`` (default): :mod:`cemnet_core.data.face_mesh` runs the bundle's 478-point mesh network
  itself with LiteRT, tracking with MediaPipe's own rules (the next frame's region from this frame's
  landmarks, detection only when the face-presence score drops, One Euro smoothing). MediaPipe's
  ``FaceDetector`` task finds the face when a track starts or is lost (the face nearest to the previous
  track, or the largest without one; when the mesh loses the track on a frame, that frame is detected
  again at once).
- ``"mediapipe"``: MediaPipe's Face Landmarker graph in VIDEO mode (its own tracking, strictly increasing
  timestamps), a ``num_faces = 1`` landmarker while one face is seen.

Both keep one consistent person and say when there were several. With ``num_faces >= 2`` the bundle's face
detector checks for a second person at the start of every chunk and every ``check_every`` frames; when a
check sees two or more faces the tracker counts the faces on every frame (``"mediapipe"``: switches to a
``num_faces`` landmarker and keeps the face nearest the track) until ``check_every`` frames in a row show
at most one. ``faces_seen`` reports how many faces were found per frame; a second face that appears
between two checks is counted from the next check on (at most ``check_every - 1`` frames late).

Speed, measured on the idle 2-core machine with ``benchmarks/preprocess_throughput.py`` (1400 frames of the
14 real clips, median of 3 repeats): a per-frame IMAGE-mode landmarker (detector + mesh on every frame) costs
6.84 ms of CPU per frame (151 frames/s), MediaPipe's VIDEO-mode tracking 5.61 ms (184 frames/s; its mesh
network alone is about 3 ms, the rest is the graph), the ``"litert"`` tracker 4.27 ms (272 frames/s,
1.7x), and two clips tracked at once, as ``preprocess(workers=2)`` does, 501 frames/s: 3.2x the baseline.
The two engines' landmarks agree to 0.09% of the face box side, with the same jitter.

Shapes: ``T`` frames, ``H, W`` frame size, ``K = 478`` landmarks, points are ``(x, y)`` frame pixels.
Frames without a face keep NaN landmarks and ``valid = False``; they are never dropped.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from cemnet_core.contracts import N_LANDMARKS, VIDEO_FPS
from cemnet_core.data.face_mesh import (
    FaceMesh,
    OneEuroFilter,
    Roi,
    native_stderr_silenced,
    roi_from_box,
    roi_from_landmarks,
)
from cemnet_core.data.faces import (
    FaceConfig,
    TrackResult,
    _box_of,
    _create_detector,
    _create_landmarker,
    _faces_in_pixels,
    _pick_face,
    _to_mp_image,
    landmarker_path,
)

ENGINES = ("litert", "mediapipe")


class FaceTracker:
    """Tracks one person through a clip (see the module docstring for the engines and multi-face checks).

    Feed the frames of one clip in order, chunk by chunk, with :meth:`track`; call :meth:`reset` (or use a
    new tracker) before the next clip so tracking state starts afresh. Use as a context manager or call
    :meth:`close`.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        config: FaceConfig = FaceConfig(),
        fps: float = VIDEO_FPS,
    ) -> None:
        if config.num_faces < 1:
            raise ValueError(f"FaceConfig.num_faces must be >= 1, got {config.num_faces}")
        if config.check_every < 1:
            raise ValueError(f"FaceConfig.check_every must be >= 1, got {config.check_every}")
        if config.engine not in ENGINES:
            raise ValueError(f"FaceConfig.engine must be one of {ENGINES}, got {config.engine!r}")
        self.config = config
        self.fps = fps
        self.model_path = landmarker_path(model_path)
        self._single: Any = None  # "mediapipe": num_faces = 1 landmarker
        self._multi: Any = None  # "mediapipe": num_faces landmarker, made when first needed
        self._detector: Any = None  # face detector (IMAGE mode, stateless)
        self._mesh: FaceMesh | None = None  # "litert": the mesh network
        if config.engine == "litert":
            self._mesh = FaceMesh(self.model_path, threads=config.threads)
            self._detector = _create_detector(self.model_path, config)
        elif config.num_faces > 1:
            self._detector = _create_detector(self.model_path, config)
        self._smoother = OneEuroFilter(fps)
        self.reset()

    def reset(self) -> None:
        """Forget the current track (``"mediapipe"``: start fresh landmarkers, timestamps restart at 0)."""
        if self.config.engine == "mediapipe":
            for attribute in ("_single", "_multi"):
                self._close_task(attribute)
            self._single = _create_landmarker(self.model_path, self.config, video=True, num_faces=1)
        self._next_index = 0
        self._previous_centre: np.ndarray | None = None
        self._roi: Roi | None = None  # "litert": where to look on the next frame
        self._smoother.reset()
        self._several = False  # True while several faces are seen (counted on every frame)
        self._since_check = 0  # frames since the last multi-face check
        self._run_of_one = 0  # frames in a row with at most one face while several faces are seen

    def track(self, frames: np.ndarray) -> TrackResult:
        """Landmarks of the next chunk of frames.

        frames: ``(n, H, W, 3)`` uint8 RGB, the frames following the previous chunk.
        Returns a :class:`~cemnet_core.data.faces.TrackResult` over these ``n`` frames.
        """
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"track: expected frames (n, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
        count = frames.shape[0]
        landmarks = np.full((count, N_LANDMARKS, 2), np.nan, dtype=np.float32)  # (n, K, 2)
        valid = np.zeros(count, dtype=bool)
        faces_seen = np.zeros(count, dtype=np.int64)
        step = self._litert_frame if self.config.engine == "litert" else self._mediapipe_frame
        for i, frame in enumerate(frames):
            points, faces_seen[i] = step(frame, first_of_chunk=i == 0)
            self._next_index += 1
            if self._several:
                self._run_of_one = self._run_of_one + 1 if faces_seen[i] <= 1 else 0
                if self._run_of_one >= self.config.check_every:
                    self._several, self._since_check = False, 0
            if points is not None:
                landmarks[i], valid[i] = points, True
                self._previous_centre = _box_of(points)[0]
        return TrackResult(landmarks, valid, faces_seen)

    def _check_due(self, first_of_chunk: bool) -> bool:
        """Whether this frame gets a multi-face check (counts frames between checks)."""
        if self.config.num_faces < 2 or self._several:
            return False
        due = first_of_chunk or self._since_check >= self.config.check_every
        self._since_check = 1 if due else self._since_check + 1
        return due

    def _quiet_detect(self, image: Any) -> list[Any]:
        """The detector's detections with fd 2 silenced: MediaPipe's LiteRT runner logs "Input tensor memory
        is not aligned" on whichever inference first gets an unaligned buffer, which the warm-up of
        ``faces._first_inference`` does not always hit (seen in 1 of 4 runs of a VFR video reference)."""
        with native_stderr_silenced():
            return list(self._detector.detect(image).detections)

    def _detect(self, frame: np.ndarray) -> list[tuple[tuple[float, float, float, float], Any]]:
        """Faces the detector finds in ``frame``: ``((x, y, width, height), eye keypoints)``, frame pixels."""
        image, factor = _to_mp_image(frame, self.config.max_side)
        size = np.array([image.width, image.height], dtype=np.float64) * factor
        found = []
        for detection in self._quiet_detect(image):
            box = detection.bounding_box
            eyes = tuple(np.array([point.x, point.y]) * size for point in detection.keypoints[:2])
            pixels = (box.origin_x * factor, box.origin_y * factor, box.width * factor, box.height * factor)
            found.append((pixels, eyes))
        return found

    def _litert_frame(self, frame: np.ndarray, first_of_chunk: bool) -> tuple[np.ndarray | None, int]:
        """One frame with the ``"litert"`` engine: ``(landmarks (K, 2) or None, faces seen)``."""
        faces: list[tuple[tuple[float, float, float, float], Any]] | None = None
        if self._check_due(first_of_chunk) or self._several:
            faces = self._detect(frame)
            if len(faces) >= 2 and not self._several:
                self._several, self._run_of_one = True, 0
        points = None
        if self._roi is not None:
            points, presence = self._mesh(frame, self._roi)
            if presence < self.config.min_presence_confidence:
                points = None  # the track is lost: detect on this very frame
        if points is None:
            self._smoother.reset()
            if faces is None:
                faces = self._detect(frame)
            if faces:
                box, eyes = _nearest_detection(faces, self._previous_centre)
                points, presence = self._mesh(frame, roi_from_box(box, eyes))
                if presence < self.config.min_presence_confidence:
                    points = None
        if points is None:
            self._roi = None
            return None, len(faces or ())
        self._roi = roi_from_landmarks(points)
        if self.config.smooth_landmarks:
            points = self._smoother(points)
        return points, max(len(faces) if faces is not None else 1, 1)

    def _mediapipe_frame(self, frame: np.ndarray, first_of_chunk: bool) -> tuple[np.ndarray | None, int]:
        """One frame with MediaPipe's VIDEO-mode graph: ``(landmarks (K, 2) or None, faces seen)``."""
        image, factor = _to_mp_image(frame, self.config.max_side)
        if self._check_due(first_of_chunk) and len(self._quiet_detect(image)) >= 2:
            self._several, self._run_of_one = True, 0
        landmarker = self._single
        if self._several:
            if self._multi is None:
                self._multi = _create_landmarker(self.model_path, self.config, video=True)
            landmarker = self._multi
        timestamp_ms = round(self._next_index * 1000.0 / self.fps)
        faces = _faces_in_pixels(landmarker, image, timestamp_ms, factor)
        if not faces:
            return None, 0
        return _pick_face(faces, self._previous_centre), len(faces)

    def _close_task(self, attribute: str) -> None:
        task = getattr(self, attribute, None)
        if task is not None:
            task.close()
            setattr(self, attribute, None)

    def close(self) -> None:
        """Release the landmarkers and the detector."""
        with native_stderr_silenced():  # LiteRT logs the release of its accelerators
            for attribute in ("_single", "_multi", "_detector"):
                self._close_task(attribute)
            self._mesh = None

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _nearest_detection(
    faces: list[tuple[tuple[float, float, float, float], Any]], previous: np.ndarray | None
) -> tuple[tuple[float, float, float, float], Any]:
    """The detection nearest to the previous track centre, or the largest one without a track."""
    if previous is None:
        return max(faces, key=lambda face: max(face[0][2], face[0][3]))

    def distance(face: tuple[tuple[float, float, float, float], Any]) -> float:
        x, y, width, height = face[0]
        return float(np.hypot(x + width / 2 - previous[0], y + height / 2 - previous[1]))

    return min(faces, key=distance)
