"""MediaPipe's 478-point face mesh network run directly with LiteRT, with its tracking written out.

The paper (Sec. IV-A) extracts facial landmarks with MediaPipe. ``face_landmarker.task`` is a zip of two
TFLite networks (plus blendshapes, unused here): a BlazeFace detector and ``face_landmarks_detector.tflite``,
the 478-point mesh. MediaPipe's Face Landmarker graph wraps them in tracking: detect a face once, cut a
rotated square region of interest (ROI) around it, run the mesh on that region resized to 256x256, take
the next frame's ROI from this frame's landmarks, detect again only when the mesh's face-presence score
drops, and (VIDEO mode) smooth the landmarks with a One Euro filter.

This module does the same steps itself, because the graph costs about 2 ms of CPU per frame on top of the
network's 3.2 ms (``benchmarks/preprocess_throughput.py``): the graph converts and copies the full frame
and runs extra calculators, where here one ``cv2.warpAffine`` cuts the 256x256 input straight out of the
frame and the LiteRT interpreter (``ai-edge-litert``, the TFLite runtime MediaPipe itself embeds, with its
XNNPACK CPU kernels) runs the network. The settings follow MediaPipe's graph:

- the ROI is the box around the landmarks (or the detection's box) scaled by 1.5, squared on its long
  side, rotated so that the eyes are level (landmarks 33 and 263; the detector's eye keypoints 0 and 1);
- the mesh input is the ROI's RGB pixels in ``[0, 1]``, zero outside the frame; its output ``Identity``
  is ``(478, 3)`` points in 256x256 input pixels, ``Identity_1`` the face-presence logit;
- :class:`OneEuroFilter` with MediaPipe's face settings (min cutoff 0.05, beta 80, derivative cutoff 1,
  speeds measured in face sizes per second).

Checked on the real clips against MediaPipe's own VIDEO-mode tracking: mean point distance 0.09% of the
face box side, the same landmark jitter (benchmark). :class:`~cemnet_core.data.tracking.FaceTracker` uses
it; the face detector stays MediaPipe's (``FaceDetector`` task), run only when a track starts or is lost,
and for the multi-face checks.

Shapes: ``K = 478`` points, ``(x, y)`` frame pixels; frames are ``(H, W, 3)`` uint8 RGB.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cemnet_core.contracts import N_LANDMARKS
from cemnet_core.errors import WeightsError

MESH_MEMBER = "face_landmarks_detector.tflite"  # inside face_landmarker.task (a zip)
INPUT_SIZE = 256  # the mesh network's input side, pixels
ROI_SCALE = 1.5  # MediaPipe: ROI side = 1.5 x the face box's long side
LEFT_EYE_CORNER, RIGHT_EYE_CORNER = 33, 263  # image-left and image-right outer eye corners (ROI rotation)
ONE_EURO = (0.05, 80.0, 1.0)  # MediaPipe's face landmark smoothing: min cutoff (Hz), beta, derivative cutoff


@dataclass(frozen=True)
class Roi:
    """A rotated square region of a frame: centre ``(x, y)`` pixels, side pixels, angle radians.

    ``angle`` is the rotation of the ROI's x axis from the frame's (positive: clockwise on screen, since
    y points down).
    """

    centre: tuple[float, float]
    side: float
    angle: float

    def to_frame_matrix(self) -> np.ndarray:
        """``(2, 3)`` affine map from 256x256 input pixels to frame pixels."""
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        scale = self.side / INPUT_SIZE
        half = INPUT_SIZE / 2
        cx, cy = self.centre
        return np.array(
            [
                [cos * scale, -sin * scale, cx - half * scale * (cos - sin)],
                [sin * scale, cos * scale, cy - half * scale * (sin + cos)],
            ]
        )


def roi_from_landmarks(points: np.ndarray) -> Roi:
    """The next frame's ROI from this frame's ``(478, 2)`` landmarks (MediaPipe's landmarks-to-ROI)."""
    low, high = points.min(axis=0), points.max(axis=0)
    centre = (low + high) / 2
    eyes = points[RIGHT_EYE_CORNER] - points[LEFT_EYE_CORNER]
    side = float((high - low).max()) * ROI_SCALE
    return Roi((float(centre[0]), float(centre[1])), side, math.atan2(float(eyes[1]), float(eyes[0])))


def roi_from_box(box: tuple[float, float, float, float], eyes: tuple[np.ndarray, np.ndarray]) -> Roi:
    """ROI from a detector's box ``(x, y, width, height)`` pixels and its two eye keypoints (pixels,
    image-left eye first) (MediaPipe's detection-to-ROI)."""
    x, y, width, height = box
    delta = eyes[1] - eyes[0]
    angle = math.atan2(float(delta[1]), float(delta[0]))
    return Roi((x + width / 2, y + height / 2), max(width, height) * ROI_SCALE, angle)


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to the null device for the block: LiteRT and MediaPipe log a dozen INFO
    lines each time a model is loaded and have no switch for it (google-ai-edge/LiteRT#7420). Errors still
    surface as the Python exceptions they raise."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class FaceMesh:
    """The 478-point mesh network of a ``face_landmarker.task`` bundle, on one ROI at a time.

    ``threads``: CPU threads of the interpreter (1 per worker process when several run at once).
    """

    def __init__(self, model_path: str | Path, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter  # heavy import, only where faces are needed

        try:
            with zipfile.ZipFile(model_path) as bundle:
                model = bundle.read(MESH_MEMBER)
            with native_stderr_silenced():  # LiteRT logs a dozen INFO lines per interpreter
                self._interpreter = Interpreter(model_content=model, num_threads=max(1, threads))
                self._interpreter.allocate_tensors()
        except (OSError, zipfile.BadZipFile, KeyError, RuntimeError, ValueError) as exc:
            raise WeightsError(
                f"cannot load the face mesh network from {model_path}: {exc}; check the file with "
                "`cemnet weights verify`"
            ) from exc
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = {detail["name"]: detail["index"] for detail in self._interpreter.get_output_details()}
        self._points, self._presence = outputs["Identity"], outputs["Identity_1"]

    @staticmethod
    def crop(frame: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """The network's input cut out by ``matrix`` (:meth:`Roi.to_frame_matrix`): ``(256, 256, 3)``
        float32 in ``[0, 1]``, zero outside the frame."""
        patch = cv2.warpAffine(
            frame,
            matrix,
            (INPUT_SIZE, INPUT_SIZE),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
        )  # (256, 256, 3) uint8
        return patch.astype(np.float32) * (1.0 / 255.0)

    def __call__(self, frame: np.ndarray, roi: Roi) -> tuple[np.ndarray, float]:
        """Landmarks ``(478, 2)`` float32 frame pixels and the face-presence probability in the ROI."""
        matrix = roi.to_frame_matrix()  # (2, 3) input pixels -> frame pixels
        self._interpreter.set_tensor(self._input, self.crop(frame, matrix)[None])  # (1, 256, 256, 3)
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._points).reshape(N_LANDMARKS, 3)[:, :2]  # (K, 2)
        logit = float(self._interpreter.get_tensor(self._presence).reshape(-1)[0])
        points = raw @ matrix[:, :2].T + matrix[:, 2]  # (K, 2) frame pixels
        presence = 1.0 / (1.0 + math.exp(-min(max(logit, -60.0), 60.0)))
        return points.astype(np.float32), presence


class OneEuroFilter:
    """One Euro filter (Casiez et al., CHI 2012) over ``(478, 2)`` landmarks, as MediaPipe smooths faces.

    Per coordinate: the speed (face sizes per second, the face size being the mean side of the points'
    box) is low-pass filtered at ``derivative_cutoff``; the points are low-pass filtered at
    ``min_cutoff + beta * |speed|`` Hz, so still faces are steadied and fast motion (speech) passes.
    """

    def __init__(self, fps: float, settings: tuple[float, float, float] = ONE_EURO) -> None:
        self.fps = fps
        self.min_cutoff, self.beta, self.derivative_cutoff = settings
        self.reset()

    def reset(self) -> None:
        """Forget the past (a new track starts)."""
        self._raw: np.ndarray | None = None
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None

    def _alpha(self, cutoff: np.ndarray | float) -> np.ndarray | float:
        return 1.0 / (1.0 + self.fps / (2.0 * math.pi * cutoff))

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """The smoothed ``(478, 2)`` points of the next frame."""
        if self._raw is None or self._value is None or self._speed is None:
            self._raw, self._value, self._speed = points, points.copy(), np.zeros_like(points)
            return points
        size = float(np.ptp(points, axis=0).mean())
        speed = (points - self._raw) * (self.fps / max(size, 1e-6))  # (K, 2) face sizes per second
        self._speed = self._speed + self._alpha(self.derivative_cutoff) * (speed - self._speed)
        alpha = self._alpha(self.min_cutoff + self.beta * np.abs(self._speed))  # (K, 2)
        self._value = (self._value + alpha * (points - self._value)).astype(np.float32)
        self._raw = points
        return self._value
