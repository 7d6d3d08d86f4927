"""How well does the FER2013 emotion judge (Table II's EA, Sec. IV-D) read real, labelled MEAD clips?

    .venv/bin/python benchmarks/fer_mead.py [--real-data ../shared/data/real] [--every 5] [--json OUT.json]

The clips: every MEAD-named video in ``<real-data>/video_silent`` (``..._M030_front_angry_level3_001.mp4``:
speaker, emotion and level from the name; 16 clips, speakers M030 and W009, all 8 emotions). Faces are
tracked and cropped by the project's own pipeline (MediaPipe Face Landmarker from ``CEMNET_WEIGHTS_DIR``,
``FaceTracker`` on every frame, ``crop_boxes`` / ``crop_frames`` -> the 128x128 aligned crops the
processed clips hold); the judge sees one frame in ``--every``. Each clip is called by majority vote of
its frames' argmax (ties: the class with the larger summed softmax). MEAD contempt counts as FER
disgust (``contracts.MEAD_TO_FER``).

Three judges, in the same run:

- ``whole``: :class:`~cemnet_core.eval.fer.FERJudge` on the whole aligned crop (the judge before issue 14:
  background, hair and neck around a face FER2013 never saw so loose), the baseline;
- ``central``: the judge as it is now, on the central crop (``fer.FER_INSET``) FER2013's tight faces match;
- ``landmarks``: the tight alternative, a square around each frame's own face oval and brows (478-point
  mesh), measured to choose between the two (the fixed crop measured better and needs no landmarks);
- ``lower``: :class:`~cemnet_core.eval.fer.FERLowerFaceJudge` (EA on the lower face): each frame's lower
  half under the upper half of 5 evenly spaced frames of the same speaker's neutral clip (what the
  ``neutral-base`` setting gives as references), then the central crop.

Printed: clip accuracy, frame accuracy and the confusion table (rows: the clips' MEAD emotion and its FER
class; columns: the FER class their vote gave) per judge; ``--insets`` adds central crops of other insets
(clip and frame accuracy only). Measured (2 December 2026, CPU):

    .venv/bin/python benchmarks/fer_mead.py --insets 0.1 0.115 0.125 0.16 0.18 0.22

    16 MEAD clips tracked in 92.0 s; FER on 1 frame in 5
    whole    clip accuracy 0.500 (8/16)  frame accuracy 0.420
    central  clip accuracy 0.688 (11/16)  frame accuracy 0.528
    landmarks clip accuracy 0.625 (10/16)  frame accuracy 0.525
    lower    clip accuracy 0.375 (6/16)  frame accuracy 0.292
    central@0.1 clip accuracy 0.562 (9/16)  frame accuracy 0.493
    central@0.115 clip accuracy 0.625 (10/16)  frame accuracy 0.499
    central@0.125 clip accuracy 0.688 (11/16)  frame accuracy 0.536
    central@0.16 clip accuracy 0.625 (10/16)  frame accuracy 0.504
    central@0.18 clip accuracy 0.500 (8/16)  frame accuracy 0.466
    central@0.22 clip accuracy 0.500 (8/16)  frame accuracy 0.472

    whole: clip calls (rows: MEAD emotion and its FER class; columns: the FER class called)
      MEAD (FER)            angry disgust fear happy sad surprise neutral
      angry (angry)             1       .    .     1   .        .       .
      contempt (disgust)        .       .    .     2   .        .       .
      disgusted (disgust)       2       .    .     .   .        .       .
      fear (fear)               .       .    .     2   .        .       .
      happy (happy)             .       .    .     2   .        .       .
      neutral (neutral)         .       .    .     .   .        .       2
      sad (sad)                 .       .    .     .   2        .       .
      surprised (surprise)      .       .    .     .   .        1       1

    central: clip calls (rows: MEAD emotion and its FER class; columns: the FER class called)
      MEAD (FER)            angry disgust fear happy sad surprise neutral
      angry (angry)             1       .    .     1   .        .       .
      contempt (disgust)        .       .    .     1   .        1       .
      disgusted (disgust)       1       1    .     .   .        .       .
      fear (fear)               .       .    1     .   .        1       .
      happy (happy)             .       .    .     2   .        .       .
      neutral (neutral)         .       .    .     .   .        .       2
      sad (sad)                 .       .    .     .   2        .       .
      surprised (surprise)      .       .    .     .   .        2       .

    landmarks: clip calls (rows: MEAD emotion and its FER class; columns: the FER class called)
      MEAD (FER)            angry disgust fear happy sad surprise neutral
      angry (angry)             1       .    .     1   .        .       .
      contempt (disgust)        .       .    .     1   .        1       .
      disgusted (disgust)       1       .    .     1   .        .       .
      fear (fear)               .       .    1     1   .        .       .
      happy (happy)             .       .    .     2   .        .       .
      neutral (neutral)         .       .    .     .   .        .       2
      sad (sad)                 .       .    .     .   2        .       .
      surprised (surprise)      .       .    .     .   .        2       .

    lower: clip calls (rows: MEAD emotion and its FER class; columns: the FER class called)
      MEAD (FER)            angry disgust fear happy sad surprise neutral
      angry (angry)             .       .    .     1   .        1       .
      contempt (disgust)        .       .    .     1   .        1       .
      disgusted (disgust)       1       .    .     1   .        .       .
      fear (fear)               .       .    1     1   .        .       .
      happy (happy)             .       .    .     2   .        .       .
      neutral (neutral)         .       .    .     .   .        .       2
      sad (sad)                 .       .    1     .   1        .       .
      surprised (surprise)      .       .    .     .   1        .       1

The central crop's inset was chosen on these same 16 clips (0.125 and 0.14 give 11/16, 0.115 and 0.16
10/16; see :mod:`cemnet_core.eval.fer`), so 0.69 is optimistic for clips the judge was never tuned on. The
lower-face judge (6/16) is weaker: with a neutral upper face, FER2013's classifier reads most mouths as
happy or surprised; it is reported beside whole-face EA, not instead of it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from cemnet_core.contracts import FACE_OVAL, FER_CLASSES, LEFT_BROW, MEAD_TO_FER, RIGHT_BROW
from cemnet_core.data import landmarks as lm
from cemnet_core.data import media
from cemnet_core.data.faces import crop_boxes, crop_frames
from cemnet_core.data.layouts import parse_mead_name
from cemnet_core.data.tracking import FaceTracker
from cemnet_core.errors import DataError
from cemnet_core.eval.fer import FERJudge, FERLowerFaceJudge

JUDGES = ("whole", "central", "landmarks", "lower")
NEUTRAL_REFERENCES = 5  # upper faces for the lower-face judge, as the N = 5 references of the protocol


def mead_crops(folder: Path) -> dict[str, tuple[str, str, np.ndarray, np.ndarray]]:
    """Clip stem -> (speaker, MEAD emotion, (T, 128, 128, 3) aligned crops, (T, 478, 2) crop-normalised
    landmarks) of every MEAD-named video (frames with a face)."""
    clips = {}
    with FaceTracker() as tracker:
        for video in sorted(folder.glob("*.mp4")):
            labels = parse_mead_name(video.stem)
            if labels is None:
                continue
            tracker.reset()
            frames = media.read_video(video)  # (T, H, W, 3) at 25 fps
            track = tracker.track(frames)
            boxes = crop_boxes(track.landmarks, track.valid)
            crops = crop_frames(frames, boxes)  # (T, 128, 128, 3)
            points = lm.to_crop(track.landmarks, boxes)  # (T, 478, 2) in [0, 1] of the crop
            clips[video.stem] = (
                labels["speaker"],
                labels["emotion"],
                crops[track.valid],
                points[track.valid],
            )
    if not clips:
        raise DataError(f"no MEAD-named videos (e.g. M030_front_angry_level3_001.mp4) in {folder}")
    return clips


def landmark_face_crop(crops: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The tight alternative to the fixed central crop: per frame, the square around the face oval and
    brows of its own landmarks (black outside the crop), resized to the crop side -> (T, S, S, 3)."""
    side = crops.shape[1]
    group = points[:, list(FACE_OVAL + RIGHT_BROW + LEFT_BROW)] * side  # (T, K, 2) px
    low, high = group.min(axis=1), group.max(axis=1)  # (T, 2)
    centre, half = (low + high) / 2, (high - low).max(axis=1) / 2  # (T, 2), (T,)
    boxes = np.concatenate([centre - half[:, None], centre + half[:, None]], axis=1).round()  # (T, 4)
    boxes[:, 2:] = boxes[:, :2] + (boxes[:, 2:] - boxes[:, :2]).max(axis=1, keepdims=True)  # square
    return crop_frames(crops, boxes.astype(np.float32), side)


def _vote(logits: np.ndarray) -> int:
    """Majority of the frames' argmax; ties go to the larger summed softmax."""
    counts = np.bincount(logits.argmax(axis=1), minlength=logits.shape[1])
    tied = np.flatnonzero(counts == counts.max())
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return int(tied[np.argmax(probabilities.sum(axis=0)[tied])])


def run(
    clips: dict[str, tuple[str, str, np.ndarray, np.ndarray]], every: int, insets: tuple[float, ...] = ()
) -> dict[str, dict]:
    """Judge -> {clip_accuracy, frame_accuracy, clips (per-clip calls), confusion (MEAD x FER counts)};
    :data:`JUDGES`, then ``central@<inset>`` for each of ``insets``."""
    whole, central = FERJudge(crop="whole"), FERJudge()
    lower = FERLowerFaceJudge(central)
    swept = {f"central@{inset:g}": FERJudge(inset=inset) for inset in insets}
    neutral = {}
    for speaker, emotion, crops, _ in clips.values():
        if emotion == "neutral":
            neutral[speaker] = crops[np.linspace(0, len(crops) - 1, NEUTRAL_REFERENCES).round().astype(int)]
    results = {}
    for name in (*JUDGES, *swept):
        rows, frame_hits, frame_total = [], 0, 0
        confusion = {emotion: dict.fromkeys(FER_CLASSES, 0) for emotion in MEAD_TO_FER}
        for stem, (speaker, emotion, crops, points) in clips.items():
            sampled = crops[::every]
            if name == "lower":
                if speaker not in neutral:
                    continue  # no neutral clip of this speaker for the upper face
                logits = lower.lower_logits(sampled, neutral[speaker])
            elif name == "landmarks":
                logits = whole.logits(landmark_face_crop(sampled, points[::every]))
            else:
                logits = {"whole": whole, "central": central, **swept}[name].logits(sampled)
            target = central.target_index(emotion)
            frame_hits += int((logits.argmax(axis=1) == target).sum())
            frame_total += len(logits)
            called = FER_CLASSES[_vote(logits)]
            confusion[emotion][called] += 1
            rows.append({"clip": stem, "emotion": emotion, "fer_target": FER_CLASSES[target],
                         "called": called, "frames": len(logits),
                         "frame_accuracy": float((logits.argmax(axis=1) == target).mean())})  # fmt: skip
        hits = sum(row["called"] == row["fer_target"] for row in rows)
        results[name] = {"clip_accuracy": hits / len(rows), "clips_right": hits, "clips": rows,
                         "frame_accuracy": frame_hits / frame_total, "confusion": confusion}  # fmt: skip
    return results


def confusion_lines(confusion: dict[str, dict[str, int]]) -> list[str]:
    """The confusion table as text: rows MEAD emotion (its FER class), columns the FER class called."""
    head = f"{'MEAD (FER)':22s}" + " ".join(f"{c:>{max(len(c), 3)}s}" for c in FER_CLASSES)
    lines = [head]
    for emotion, counts in confusion.items():
        if not sum(counts.values()):
            continue
        cells = " ".join(f"{counts[c] or '.':>{max(len(c), 3)}}" for c in FER_CLASSES)
        lines.append(f"{emotion + ' (' + MEAD_TO_FER[emotion] + ')':22s}" + cells)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_real = os.environ.get(
        "CEMNET_REAL_DATA", str(Path(__file__).resolve().parents[2] / "shared/data/real")
    )
    parser.add_argument("--real-data", type=Path, default=Path(default_real))
    parser.add_argument("--every", type=int, default=5, help="score one frame in EVERY (default 5)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--insets", type=float, nargs="*", default=(), help="also try these central insets")
    args = parser.parse_args()
    if args.every < 1:
        parser.error("--every must be >= 1")
    started = time.perf_counter()
    clips = mead_crops(args.real_data / "video_silent")
    tracked = time.perf_counter() - started
    results = run(clips, args.every, tuple(args.insets))
    print(f"{len(clips)} MEAD clips tracked in {tracked:.1f} s; FER on 1 frame in {args.every}")
    for name, result in results.items():
        print(f"{name:8s} clip accuracy {result['clip_accuracy']:.3f} ({result['clips_right']}/"
              f"{len(result['clips'])})  frame accuracy {result['frame_accuracy']:.3f}")  # fmt: skip
    for name in JUDGES:
        result = results[name]
        print(f"\n{name}: clip calls (rows: MEAD emotion and its FER class; columns: the FER class called)")
        print("\n".join("  " + line for line in confusion_lines(result["confusion"])))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = {"every": args.every, "real_data": str(args.real_data), "judges": results}
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
