"""How far does Audio2Mouth open the mouth on people it never saw? (Sec. III-A; issue #13, not a unit test)

    .venv/bin/python benchmarks/a2m_articulation.py --data REAL_DATA \\
        --release before=cemnet_core/starter after=/work/cache/a2m_onephoto_release [--split test]

For every clip of ``--split`` (held-out people) and every ``--release`` (a weights bundle or an
``audio_to_mouth`` release folder, ``label=path``), Audio2Mouth predicts the mouth of each T-frame window of
consecutive valid frames from the clip's own audio and true head pose, with two kinds of references:

- ``video``: N frames of the clip spread over its mouth openings (as training and the paper's test draw them);
- ``one photo``: the clip's most closed mouth repeated N times (what a single portrait gives ``generate``).

Figures per clip, then the mean over clips: ``open p95-p5`` of the predicted mouth (inner-lip distance
13-14 over corner distance 61-291, the measure of ``benchmarks/portrait_generate.py``; the truth's own value
beside it, real talking videos 0.19-0.29), the correlation of the predicted and the true opening over the
frames, and M-LMD (mean mouth-landmark distance in pixels of the 128 crop). Baseline in the same run:
copying the reference mouth (open p95-p5 of the one-photo reference is 0, M-LMD printed).

Measured (2026-12-02, 2-core CPU shared with other jobs, 1 thread; the 14 test clips of 6 people never
trained on; ``before`` = the starter's Audio2Mouth after 4000 steps, ``after500`` = the same after the
recipe's 500-step one-photo fine-tuning, ``a2m.onephoto`` in ``DemoConfig.starter``)::

    release    references open p95-p5  truth   corr  M-LMD copy M-LMD
    before     video            0.130  0.270   0.17   2.84       5.25
    before     one photo        0.097  0.270  -0.00   4.03       5.25
    after500   video            0.108  0.270   0.24   3.07       5.25
    after500   one photo        0.105  0.270   0.22   3.75       5.25

Then (2026-12-02, evening) the base the model predicts its offset from became the references' mouths moved
with the head by a similarity (``AudioToMouthConfig.base_motion``), and the shipped release was fine-tuned
1000 one-photo steps onto it (``sim1000``; ``a2m.similarity`` in ``DemoConfig.starter``); ``base`` is that
moved reference mouth with no learning, computed in the same run::

    release    references open p95-p5  truth   corr  M-LMD copy M-LMD base M-LMD
    shipped    video            0.108  0.270   0.24   3.07       5.25       1.86
    shipped    one photo        0.105  0.270   0.22   3.75       5.25       2.80
    sim1000    video            0.135  0.270   0.24   1.70       5.25       1.86
    sim1000    one photo        0.129  0.270   0.25   2.37       5.25       2.80

So most of the old models' M-LMD was the mouth left behind when the head turned or leaned: the base alone
(1.86 px) beat the trained model with the shift-only base (3.07 px). With the similarity base the model
beats its own start (1.70 against 1.86, 2.37 against 2.80); the opening rose a little (0.108 -> 0.135
with video references), the correlation did not move.

What it said before that change: Audio2Mouth beats copying the reference (M-LMD 2.8-3.8 px against 5.3) but
opens the mouth less than half as far as the people do (0.10-0.13 against 0.27) and follows the opening only
weakly (correlation 0.2; at other lags up to 0.3 on some clips, e.g. Obama's clips peak 2-4 frames late, as
the lip-sync expert also finds). The one-photo fine-tuning helps a single closed-mouth reference (correlation
0 -> 0.22, M-LMD 4.03 -> 3.75) and costs a little with video references. Scaling the predicted offset from the
reference mouth by 2 or 3 (tried ad hoc on 8 clips) widens the opening to the truth's range but raises M-LMD
on every clip (e.g. 2.67 -> 3.61 -> 6.58 px): the missing motion is not a gain the model lacks, it is speech
the model does not yet follow, so no such scale was added.

Then (2026-12-04) a training term for the spread (``spread_weight``, :func:`audio2mouth_loss`) was tried
and halved the correlation (0.23 -> 0.10 on test), while the scale above, set from the val people so the
one-photo opening spreads as far as theirs (``motion_gain`` 1.56, ``cemnet calibrate``), keeps the
correlation exactly and costs 0.16 px (``starter@g1`` is the same weights at gain 1, same run)::

    release    references open p95-p5  truth   corr  M-LMD copy M-LMD base M-LMD
    starter    video            0.208  0.270   0.24   1.86       5.25       1.86
    starter    one photo        0.207  0.270   0.25   2.53       5.25       2.80
    starter@g1 video            0.135  0.270   0.24   1.70       5.25       1.86
    starter@g1 one photo        0.129  0.270   0.25   2.37       5.25       2.80

On the val people themselves (where the gain was chosen; ``--split val``) the one-photo opening goes
0.169 -> 0.270 against their 0.263, M-LMD 2.31 -> 2.55 (moved reference 2.59); with video references
0.167 -> 0.248, M-LMD 1.59 -> 1.81, worse than the moved reference (1.64). So the shipped starter opens the
mouth to about 0.75 of the truth's range on the unseen test people and still follows it only weakly: the
scale fixes the amplitude, not the audio-following, and with video references it costs M-LMD.

The recipe's rebuild (2026-12-07; shipped since), its gain set on the rendered mouth of the val people
(1.74, :mod:`cemnet_core.eval.mouth_gain`), follows the opening better than the earlier release (0.32
against 0.25) and opens it further on the test people (0.233 of the truth's 0.270 with one photo)::

    release    references open p95-p5  truth   corr  M-LMD copy M-LMD base M-LMD
    starter    video            0.222  0.270   0.32   1.91       5.25       1.86
    starter    one photo        0.233  0.270   0.32   2.73       5.25       2.80
    starter@g1 video            0.129  0.270   0.32   1.78       5.25       1.86
    starter@g1 one photo        0.129  0.270   0.31   2.53       5.25       2.80

With one photo it still beats the moved reference (2.73 against 2.80 px); with video references the gain
costs M-LMD (1.91 against 1.86).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from cemnet_core.contracts import MOUTH
from cemnet_core.data.landmarks import mouth_opening
from cemnet_core.data.manifest import read_manifest, split_records
from cemnet_core.models.audio_to_mouth import reference_mouth_base
from cemnet_core.release import load_model
from cemnet_core.train.calibrate import REFERENCE_KINDS, audio_to_mouth_release, predict_clip, spread

CROP = 128


def clip_figures(model: torch.nn.Module, path: Path, kind: str) -> dict[str, float]:
    """Predicted vs true mouth of one clip with references of ``kind``."""
    result = predict_clip(model, path, kind)
    if result is None:
        return {}
    mouth, truth = result.mouth, result.truth
    copy = np.broadcast_to(result.references[0, -len(MOUTH) :].numpy(), truth.shape)
    poses = torch.from_numpy(result.pose).float()[None]
    base = reference_mouth_base(result.references[None].float(), poses, "similarity")[0].numpy()
    pred_open, true_open = mouth_opening(mouth, "mouth"), mouth_opening(truth, "mouth")
    return {
        "open": spread(pred_open),
        "true_open": spread(true_open),
        "corr": float(np.corrcoef(pred_open, true_open)[0, 1]),
        "m_lmd": float(np.linalg.norm(mouth - truth, axis=-1).mean() * CROP),
        "copy_m_lmd": float(np.linalg.norm(copy - truth, axis=-1).mean() * CROP),
        "base_m_lmd": float(np.linalg.norm(base - truth, axis=-1).mean() * CROP),  # no learning
        "frames": len(mouth),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="processed real corpus with splits")
    parser.add_argument("--split", default="test")
    parser.add_argument("--release", nargs="+", required=True, help="label=path (bundle or release)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    clips = split_records(read_manifest(args.data), args.split)
    results: dict[str, dict[str, dict[str, float]]] = {}
    print(f"{len(clips)} clips of split {args.split!r}")
    print(f"{'release':<10} {'references':<10} {'open p95-p5':>11} {'truth':>6} {'corr':>6} {'M-LMD':>6} "
          f"{'copy M-LMD':>10} {'base M-LMD':>10}")  # fmt: skip
    models = []
    for item in args.release:
        label, _, path = item.partition("=")
        model = load_model(audio_to_mouth_release(path), "audio_to_mouth").eval()
        models.append((label, model))
        if model.config.motion_gain != 1.0:  # the same weights at gain 1, as the baseline of this run
            ungained = copy.copy(model)  # shares the weights; only its config differs
            ungained.config = dataclasses.replace(model.config, motion_gain=1.0)
            models.append((f"{label}@g1", ungained))
    for label, model in models:
        for kind in REFERENCE_KINDS:
            rows = [r for r in (clip_figures(model, c.path, kind) for c in clips) if r]
            mean = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
            results.setdefault(label, {})[kind] = mean
            print(f"{label:<10} {kind:<10} {mean['open']:>11.3f} {mean['true_open']:>6.3f} "
                  f"{mean['corr']:>6.2f} {mean['m_lmd']:>6.2f} {mean['copy_m_lmd']:>10.2f} "
                  f"{mean['base_m_lmd']:>10.2f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
