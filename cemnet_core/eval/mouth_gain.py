"""Audio2Mouth's motion gain measured on the rendered video, as a portrait is animated (not in the paper).

:func:`cemnet_core.train.calibrate.calibrate_motion_gain` sets ``motion_gain`` so that the *predicted
landmarks* of the ``val`` people open as far as theirs do. What a user sees is the *rendered* mouth, and the
renderer does not follow every driving opening: on a closed-mouth photo, driving openings below about 0.15
(p95 - p5 of opening over width) come out smaller, larger ones about as driven (measured on the starter,
``benchmarks/portrait_generate.py``). :func:`calibrate_rendered_gain` closes that loop on the same held-out
people, through the whole path of ``cemnet generate`` with one photo (Sec. III-A to III-D: Audio2Mouth, the
AEE and the EBM, the renderer):

- references: the clip's most closed frame repeated N times (:func:`~cemnet_core.train.calibrate.references`),
  its dlib identity; the pose and the renderer's target crop stay those of that frame, as for a portrait;
- audio: the clip's own, over its longest run of valid frames (at most ``max_frames``);
- measure: MediaPipe (:class:`~cemnet_core.eval.judges.MediaPipeMouthJudge`) on the rendered crops and on the
  clip's true crops, the same detector at the same size, then ``spread`` of the opening over width;
- update: ``g <- g * sum(true spread) / sum(rendered spread)`` from the release's gain, until it moves by
  less than 0.02 or after ``iterations`` rounds, kept within 0.5-4 (``cemnet generate --mouth-gain``'s range).

The gain is a property of the whole release (Audio2Mouth, EBM and renderer together), so it is measured after
all of them are trained (``scripts/build_starter.py``). The paper's model has no gain (``motion_gain`` 1).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cemnet_core.contracts import ALL, POSE
from cemnet_core.data.audio import driving_mel
from cemnet_core.data.clips import load_clip
from cemnet_core.data.landmarks import mouth_opening, select
from cemnet_core.data.manifest import read_manifest, split_records
from cemnet_core.data.mel_stream import MelArray
from cemnet_core.errors import DataError
from cemnet_core.eval.protocol import dlib_reference_identity, resize_frames
from cemnet_core.models.audio_to_mouth import AudioToMouth, AudioToMouthConfig
from cemnet_core.pipeline import CEMNetPipeline, ReferenceSet
from cemnet_core.release import load_release, load_state_into, save_release
from cemnet_core.train.calibrate import audio_to_mouth_release, longest_valid_run, references, spread

GAIN_RANGE = (0.5, 4.0)

MouthDetector = Callable[[np.ndarray], np.ndarray]  # (T, S, S, 3) uint8 -> (T, 57, 2)
Identity = Callable[[np.ndarray, np.ndarray], np.ndarray]  # crops (N, S, S, 3), (N, 478, 2) -> (128,)


@dataclasses.dataclass(frozen=True)
class PortraitClip:
    """One held-out clip animated as a portrait: the photo's inputs and the clip's true opening spread."""

    refs: ReferenceSet  # the one photo, N times
    pose: np.ndarray  # (n, 78, 2) the photo's pose, repeated
    targets: np.ndarray  # (n, S, S, 3) the photo's crop, repeated
    mel: MelArray
    start: int  # first frame (a multiple of T)
    true_spread: float


def portrait_clip(
    pipeline: CEMNetPipeline,
    path: Path,
    detector: MouthDetector,
    max_frames: int = 250,
    identity: Identity = dlib_reference_identity,
) -> PortraitClip | None:
    """The inputs of one clip (module docstring); None without ``T`` whole valid frames.

    ``identity`` gives the EBM its identity vector of the references (dlib's, as ``cemnet generate``).
    """
    clip = load_clip(path, ("frames", "landmarks", "valid", "mel", "audio"))
    window = pipeline.window
    first, end = longest_valid_run(clip.valid)
    start = -(-first // window) * window
    n = min(end - start, max_frames) // window * window
    if n <= 0:
        return None
    chosen = references(clip.landmarks, clip.valid, pipeline.num_refs, "one photo")  # (N,) one frame
    crops = resize_frames(clip.frames[chosen], pipeline.image_size)
    ident = identity(crops, clip.landmarks[chosen]) if pipeline.use_ebm else None
    refs = pipeline.references(crops, select(clip.landmarks[chosen], ALL), ident)
    truth = detector(resize_frames(clip.frames[start : start + n], pipeline.image_size))
    return PortraitClip(
        refs=refs,
        pose=np.repeat(select(clip.landmarks[chosen[:1]], POSE), n, axis=0),
        targets=np.repeat(crops[:1], n, axis=0),
        mel=MelArray(driving_mel(clip.audio, pipeline.speech_lufs, clip.mel)),
        start=start,
        true_spread=_spread(truth),
    )


def _spread(mouth: np.ndarray) -> float:
    opening = mouth_opening(mouth, "mouth")
    opening = opening[np.isfinite(opening)]
    return spread(opening) if opening.size else 0.0


def rendered_spread(pipeline: CEMNetPipeline, clip: PortraitClip, detector: MouthDetector) -> float:
    """``spread`` of the rendered mouth opening of one :class:`PortraitClip` at the pipeline's gain."""
    n = len(clip.pose)
    animation = pipeline.animate(clip.refs, clip.mel, clip.pose, clip.targets, start=clip.start,
                                 total=clip.start + n)  # fmt: skip
    return _spread(detector(animation.frames))


def measure_rendered_gain(
    pipeline: CEMNetPipeline,
    clips: list[PortraitClip],
    detector: MouthDetector,
    iterations: int = 4,
    log: Callable[[str], None] = lambda line: None,
) -> float:
    """The gain at which the rendered openings of ``clips`` spread as far as the true ones (docstring)."""
    true = sum(clip.true_spread for clip in clips)
    a2m = pipeline.audio_to_mouth
    gain = float(a2m.config.motion_gain)
    for _ in range(iterations):
        a2m.config = dataclasses.replace(a2m.config, motion_gain=gain)
        rendered = sum(rendered_spread(pipeline, clip, detector) for clip in clips)
        if rendered <= 0:
            raise DataError("no rendered mouth moved on the calibration clips: no gain can be measured")
        new = float(np.clip(round(gain * true / rendered, 2), *GAIN_RANGE))
        log(f"motion_gain {gain:.2f}: rendered spread {rendered / len(clips):.3f}, true "
            f"{true / len(clips):.3f} -> {new:.2f}")  # fmt: skip
        if abs(new - gain) < 0.02:
            return new
        gain = new
    return gain


def calibrate_rendered_gain(
    bundle: str | os.PathLike[str],
    data: Path,
    split: str = "val",
    max_frames: int = 250,
    iterations: int = 4,
    detector: MouthDetector | None = None,
    identity: Identity = dlib_reference_identity,
    log: Callable[[str], None] = lambda line: None,
) -> float:
    """Measure the bundle's rendered gain on ``split`` of ``data`` and write it into its Audio2Mouth release.

    ``detector`` defaults to MediaPipe (:class:`~cemnet_core.eval.judges.MediaPipeMouthJudge`); ``identity``
    see :func:`portrait_clip`. Returns the gain, which the ``audio_to_mouth`` release's ``config.json`` then
    carries; its weights are unchanged.
    """
    if detector is None:
        from cemnet_core.eval.judges import MediaPipeMouthJudge

        detector = MediaPipeMouthJudge().mouth
    pipeline = CEMNetPipeline.from_bundle(bundle, "cpu")
    records = split_records(read_manifest(data), split)
    clips = [portrait_clip(pipeline, record.path, detector, max_frames, identity) for record in records]
    clips = [clip for clip in clips if clip is not None and clip.true_spread > 0]
    if not clips:
        raise DataError(f"{data} has no {split!r} clip with a moving true mouth to calibrate on")
    gain = measure_rendered_gain(pipeline, clips, detector, iterations, log)
    release = audio_to_mouth_release(bundle)
    loaded = load_release(release, "audio_to_mouth")
    config = dataclasses.replace(AudioToMouthConfig.from_dict(loaded.config), motion_gain=gain)
    model = load_state_into(AudioToMouth(config), loaded)
    save_release(release, model.state_dict(), "audio_to_mouth", config)
    return gain
