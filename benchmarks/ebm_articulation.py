"""Does the Emotion Bridging Memory keep the speech in the mouth on real people? (Sec. III-C; issue #13)

    .venv/bin/python benchmarks/ebm_articulation.py --data REAL_DATA \\
        --release shipped=cemnet_core/starter rebuilt=/work/cache/rebuild13/starter [--split val] [--json F]

The EBM adds an emotional displacement to the Audio2Mouth mouth (Eq. 13). Where no real emotional talking
video exists (here: the MEAD clips are silent), it is trained on the procedural corpus, and nothing in its
loss says what it must do with real speech. This measures it there: for every clip of ``--split`` of a
processed real corpus (people the release never saw) and every ``--release`` (a weights bundle,
``label=path``), the mouth of the clip's longest run of valid frames is predicted as ``cemnet generate``
predicts it from one photo: the clip's most closed frame repeated N times as the references (their dlib
identity and image emotion), the clip's own audio (its AEE emotion, one segment per window) and true head
pose; once by Audio2Mouth alone (the baseline, same run) and once through the EBM.

Figures, mean over clips: ``open`` p95 - p5 of the inner-lip opening over mouth width (the measure of
``benchmarks/portrait_generate.py`` and of the motion-gain calibration; the truth's beside it), the mean
opening, the correlation with the true opening over the frames, and M-LMD (mean mouth-landmark distance
in pixels of the 128 crop). ``keep`` = EBM open / Audio2Mouth open: 1 keeps the articulation, below 1 the EBM
damps it. These clips speak in a mostly neutral tone, so a good EBM should move the mouth little here.
Any processed folder works: ``--data`` a procedural corpus measures the EBM in its own training domain.

Measured (2026-12-07, idle 2-core CPU; ``shipped`` = the package's starter, whose EBM dates from 2026-12-02;
``rebuilt13`` = the recipe's rebuild with the EBMs trained on the real Audio2Mouth; ``rebuilt14`` = the same
release with the EBMs retrained on an Audio2Mouth fine-tuned on the procedural corpus, ``a2m.corpus`` in
``DemoConfig.starter``; rows ``a2m`` are each release's Audio2Mouth alone, same run)::

    data (clips)          release    mouth  open p95-p5  mean open  corr  M-LMD  keep
    real val (8)          shipped    a2m          0.270      0.114  0.44   2.55
                          shipped    ebm          0.254      0.108  0.44   2.63  0.99
                          rebuilt13  a2m          0.274      0.115  0.44   2.48
                          rebuilt13  ebm          0.221      0.091  0.51   2.31  0.88
                          rebuilt14  ebm          0.258      0.104  0.38   2.47  0.95
                          truth                   0.263      0.152
    real test (14)        shipped    ebm          0.188      0.089  0.23   2.58  0.89  (a2m 0.209)
                          rebuilt13  a2m          0.204      0.103  0.32   2.65
                          rebuilt13  ebm          0.180      0.080  0.30   2.44  0.94
                          rebuilt14  ebm          0.193      0.088  0.29   2.61  0.94
                          truth                   0.270      0.168
    procedural val (44)   rebuilt13  a2m          0.135      0.104  0.42   1.73
                          rebuilt13  ebm          0.116      0.056  0.61   1.44  0.87
                          rebuilt14  ebm          0.134      0.085  0.42   1.59  0.99
                          truth                   0.208      0.084

On its own corpus the EBM trained on the real Audio2Mouth learned to close the mouth (mean 0.104 -> 0.056,
below the truth's 0.084): the real model opens drawn mouths too far, and the EBM undid that. On real people
that correction is wrong; with neutral speech it costs 12% of the motion here, with the emotional speech of
``benchmarks/portrait_generate.py`` (ESD happy) it halved the driving mouth (0.05-0.09 against 0.13-0.19).
Trained on the corpus-tuned Audio2Mouth the EBM keeps the mean opening of its corpus (0.085 against 0.084)
and 94-99% of the motion everywhere, but it also stops improving M-LMD on the corpus as much (1.59 against
1.44) and lowers the real correlation a little (0.44 -> 0.38 on val): it learned little beyond the identity.

rebuilt14 with its gain set on the rendered mouth (1.74 instead of 1.53, :mod:`cemnet_core.eval.mouth_gain`)
is the shipped starter since; real test, beside the earlier shipped release (``old``), same run::

    release    mouth  open p95-p5 mean open   corr  M-LMD  keep
    starter    a2m          0.234     0.118   0.33   2.74
    starter    ebm          0.221     0.103   0.30   2.68  0.95
    old        a2m          0.209     0.101   0.25   2.53
    old        ebm          0.188     0.089   0.23   2.58  0.89
    truth                   0.270     0.168
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from cemnet_core.contracts import ALL, MOUTH, POSE
from cemnet_core.data.audio import driving_mel
from cemnet_core.data.clips import load_clip
from cemnet_core.data.landmarks import mouth_opening, select
from cemnet_core.data.manifest import read_manifest, split_records
from cemnet_core.data.mel_stream import MelArray
from cemnet_core.eval.protocol import dlib_reference_identity, resize_frames
from cemnet_core.pipeline import CEMNetPipeline
from cemnet_core.train.calibrate import longest_valid_run, references, spread

CROP = 128
FIGURES = ("open", "mean_open", "corr", "m_lmd")


def figures(mouth: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """``FIGURES`` of a predicted mouth (F, 57, 2) against the truth (F, 57, 2), crop-normalised."""
    predicted, true = mouth_opening(mouth, "mouth"), mouth_opening(truth, "mouth")
    return {
        "open": spread(predicted),
        "mean_open": float(predicted.mean()),
        "corr": float(np.corrcoef(predicted, true)[0, 1]) if predicted.std() > 0 else 0.0,
        "m_lmd": float(np.linalg.norm(mouth - truth, axis=-1).mean() * CROP),
    }


@torch.no_grad()
def clip_figures(pipeline: CEMNetPipeline, path: Path) -> dict[str, dict[str, float]]:
    """``{"a2m": ..., "ebm": ..., "truth": ...}`` figures of one clip ({} without T valid frames)."""
    clip = load_clip(path, ("frames", "landmarks", "valid", "mel", "audio"))
    first, end = longest_valid_run(clip.valid)
    if end - first < pipeline.window:
        return {}
    chosen = references(clip.landmarks, clip.valid, pipeline.num_refs, "one photo")  # (N,) one frame
    crops = resize_frames(clip.frames[chosen], pipeline.image_size)
    identity = dlib_reference_identity(crops, clip.landmarks[chosen])
    refs = pipeline.references(crops, select(clip.landmarks[chosen], ALL), identity)
    pose = torch.from_numpy(select(clip.landmarks[first:end], POSE)).float()  # (F, 78, 2)
    truth = select(clip.landmarks[first:end], MOUTH)
    out = {"truth": figures(truth, truth)}
    try:
        for name, use_ebm in (("a2m", False), ("ebm", True)):  # one pipeline, the EBM off then on
            pipeline.use_ebm = use_ebm
            mel = MelArray(driving_mel(clip.audio, pipeline.speech_lufs, clip.mel))
            mouth = pipeline.window_mouths(refs, mel, pose, first, None, 1.0).numpy()
            out[name] = figures(mouth, truth)
    finally:
        pipeline.use_ebm = True
    return out


def measure(bundle: str, clips: list[Path]) -> dict[str, dict[str, float]]:
    """Mean figures over ``clips`` of the bundle's Audio2Mouth alone, with the EBM, and the truth."""
    pipeline = CEMNetPipeline.from_bundle(bundle, "cpu")
    rows = [row for row in (clip_figures(pipeline, path) for path in clips) if row]
    mean = {name: {key: float(np.mean([r[name][key] for r in rows])) for key in FIGURES}
            for name in ("a2m", "ebm", "truth")}  # fmt: skip
    mean["ebm"]["keep"] = float(np.mean([r["ebm"]["open"] / max(r["a2m"]["open"], 1e-6) for r in rows]))
    mean["clips"] = {"count": float(len(rows))}
    return mean


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="processed real corpus with splits")
    parser.add_argument("--split", default="test")
    parser.add_argument("--release", nargs="+", required=True, help="label=path of a weights bundle")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    clips = [record.path for record in split_records(read_manifest(args.data), args.split)]
    print(f"{len(clips)} clips of split {args.split!r}, one-photo references")
    print(f"{'release':<10} {'mouth':<6} {'open p95-p5':>11} {'mean open':>9} {'corr':>6} {'M-LMD':>6} "
          f"{'keep':>5}")  # fmt: skip
    results = {}
    for item in args.release:
        label, _, path = item.partition("=")
        results[label] = mean = measure(path, clips)
        for name in ("truth", "a2m", "ebm"):
            row = mean[name]
            keep = f"{row['keep']:>5.2f}" if "keep" in row else ""
            print(f"{label:<10} {name:<6} {row['open']:>11.3f} {row['mean_open']:>9.3f} {row['corr']:>6.2f} "
                  f"{row['m_lmd']:>6.2f} {keep}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
