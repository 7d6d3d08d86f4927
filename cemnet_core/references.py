"""Reference faces for generation: loading, face finding and choosing the N references (DESIGN section 8).

A ``--ref`` is an image, a folder of images or a video. :func:`load_references` finds the face in each
(MediaPipe, :mod:`cemnet_core.data.faces`; a video is tracked, :mod:`cemnet_core.data.tracking`) and returns
full-size frames with their 478 landmarks and square crop boxes. :func:`choose_references` then picks the N
frames whose mouths differ most (the paper feeds N = 5 references to Audio2Mouth and the renderer,
Sec. III-A and III-D; it does not say how they are chosen: farthest-point sampling of the mouth shapes
covers open and closed mouths). ``cemnet generate`` and the evaluation protocol both choose this way.

Decisions on bad input: images without a face are skipped with a warning while at least one face remains
(none: :class:`NoFaceError`); an image with several faces animates the largest, with a warning that says
which one and how to choose another; a file that is neither an image nor a video is refused in one line;
references larger than ``max_side`` are downscaled before detection.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from cemnet_core.contracts import ALL, VIDEO_FPS
from cemnet_core.data import landmarks as lm
from cemnet_core.data import media
from cemnet_core.data.faces import FaceConfig, crop_boxes, crop_frames, detect_image_faces
from cemnet_core.data.layouts import VIDEO_SUFFIXES
from cemnet_core.data.tracking import FaceTracker
from cemnet_core.errors import MediaError, NoFaceError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
MAX_FACES = 4  # faces looked for in a reference image (the largest is animated)
MAX_SIDE = 1920  # longer side references are downscaled to (0: never)
MAX_REFERENCE_FRAMES = 125  # frames read from a reference video


class ReferenceOptions(Protocol):
    """What reference loading reads from the options (``GenerateConfig`` has both fields)."""

    @property
    def max_side(self) -> int: ...  # longer side references are downscaled to (0: never)

    @property
    def max_reference_frames(self) -> int: ...  # frames read from a reference video


@dataclass(frozen=True)
class _Defaults:
    max_side: int = MAX_SIDE
    max_reference_frames: int = MAX_REFERENCE_FRAMES


DEFAULT_OPTIONS = _Defaults()


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

    def crops(self, indices: list[int], size: int) -> np.ndarray:
        """Crops (len(indices), S, S, 3) uint8 of reference frames that may differ in size."""
        return np.concatenate([crop_frames(self.frames[i][None], self.boxes[i][None], size) for i in indices])


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


def load_references(path: str | os.PathLike[str], config: ReferenceOptions = DEFAULT_OPTIONS) -> References:
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
    return video_references(path, config)


def _several_faces(name: str, width: int, faces: list[np.ndarray]) -> str:
    """The warning for an image with several faces: which one is animated, and how to pick another."""
    centre, side = faces[0][list(ALL)].mean(axis=0), np.ptp(faces[0][list(ALL)], axis=0).max()
    where = ("left", "middle", "right")[min(2, int(3 * float(centre[0]) / max(width, 1)))]
    return (
        f"{name}: {len(faces)} faces found; animating the largest ({where} of the picture, about "
        f"{side:.0f} px wide); to animate another, crop the picture to that face and pass the crop as --ref"
    )


def _image_references(path: Path, config: ReferenceOptions) -> References:
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


def video_references(path: Path, config: ReferenceOptions) -> References:
    """Faces tracked through the first ``max_reference_frames`` frames of a video (frames without one are
    skipped, with a warning).

    Raises:
        NoFaceError: no frame shows a face.
        MediaError: the video cannot be read or has no frames.
    """
    frames, parts, skipped = [], [], []
    with FaceTracker(config=FaceConfig(num_faces=1)) as tracker:
        for chunk in media.iter_video_frames(path, fps=VIDEO_FPS, chunk_frames=25):
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
