"""Renderer benchmark: image quality on held-out speakers from the true landmarks (not a unit test).

    CEMNET_WEIGHTS_DIR=../shared/assets .venv/bin/python benchmarks/renderer_quality.py \\
        --data DATA --work DIR [--steps N] [--preset small] [--set key=value ...]

``--data`` is a processed folder (``cemnet preprocess``: the procedural corpus with ``--landmarks true``, or
real talking videos). The renderer stage is trained through the real stage code (:func:`train_stage`, then
:func:`export_run`) on the ``train`` split, whose speakers are disjoint from ``test``
(:func:`split_records`), then measured on ``test``: the self-reconstruction setting of the paper's LRS2
evaluation (Table III), where each target frame is rendered from ``N`` other frames of its own clip and its
own true landmarks, so the figures measure the renderer alone. Rows, all on the same held-out items:

- ``copy reference``: the lower half of the crop taken from the reference whose mouth shape is closest to the
  target's (the landmark prior's weights; upper half from the target, as every row): no motion at all;
- ``landmark warp``: the untrained renderer, i.e. the thin-plate-spline prior alone
  (:mod:`cemnet_core.models.landmark_warp`);
- ``trained``: the renderer after ``--steps`` steps.

PSNR (dB) and SSIM (:mod:`cemnet_core.eval.metrics`) over the 128x128 crop and over its lower half (the
region the renderer synthesises), mean over items; the training wall time is printed beside them. A contact
sheet ``WORK/contact_sheet.png`` shows rows of (truth | copy reference | landmark warp | trained). The
training is a fixed number of steps (deterministic, resumable); its wall time is printed, so pick ``--steps``
for the time budget being measured. A rerun with the same ``--work`` resumes or reuses the run. ``--steps 0``
scores the untrained renderer only (``--set model.X=Y`` changes its settings); ``--split val`` scores the
validation speakers, where settings are chosen (never on ``test``). ``--release DIR`` scores that trained
renderer release instead of training one (e.g. the starter's, ``cemnet_core/starter/renderer``); its config's
fields are then replaced by any ``--set model.X=Y``.

Measured on the 2-core CPU (``--preset small``, 96 held-out items, true landmarks)::

    procedural corpus (cemnet synth --speakers 6 --sentences 3 --emotions neutral,happy,angry,sad
    --levels 1,3; cemnet preprocess mead --landmarks true), --steps 700, 14.4 min by its log (2026-12-02)
    row                 PSNR    SSIM  PSNR low  SSIM low  dB vs copy
    copy reference     33.30   0.957     30.29     0.912       +0.00
    landmark warp      37.68   0.984     34.67     0.966       +4.38
    trained            37.30   0.983     34.29     0.964       +4.00

    real videos (scripts/real_corpus.py + cemnet preprocess lrs2; test = 14 clips of 6 people never
    trained on), --steps 4000, 51.2 min by its log, CPU partly shared (2026-11)
    copy reference     24.43   0.821     21.42     0.650       +0.00
    landmark warp      26.02   0.879     23.01     0.757       +1.59
    trained            26.67   0.887     23.66         -       +2.24
    (same items, --release cemnet_core/starter/renderer: the run above + 1000 one-photo steps)
    copy reference     24.43   0.821     21.42     0.650       +0.00
    landmark warp      26.02   0.879     23.01     0.757       +1.59
    trained            27.06   0.893     24.05     0.784       +2.63

On the procedural faces the warp alone already renders them (sharp, same colours: the contact sheet), and
700 steps of training lose 0.4 dB to it: the generator's residual adds a little noise that this little
training does not remove. On the real test people the trained renderer gains 0.65 dB over the warp and
the starter's stays 1.9 dB short of 29 dB; the test clips (Obama, Katie Hill) change lighting and move
long hair between reference and target, which no warp of a reference carries.

Tried, not kept (2026-12-03): motion estimated at 32x32 instead of 64x64 (``flow_scale`` 0.25, which
``RendererConfig.FINE_TUNABLE`` lets a fine-tuning change), starting from the starter's renderer, 1200 steps
(``init_from``, ``single_reference_rate`` 0.5, lr 2e-4; 20 min). Test above: 27.26 dB / 0.893 (starter
27.06 / 0.893; the starter's weights run at 0.25 without fine-tuning: 26.18 / 0.881). Renderer alone 18.9 ->
29.5 frames/s, ``generate`` of 60 s audio 15.9 -> 21.5 frames/s (``generate_throughput.py --weights``, one
after the other). But on the six portraits of ``portrait_generate.py`` the mouth opened less: p95-p5 mean
0.075 -> 0.063 (0.098 0.126 0.029 0.045 0.039 0.111 -> 0.097 0.116 0.021 0.034 0.027 0.081), and the mouth
barely moving is the starter's main shortfall. The untuned weights at 0.25 opened it more (mean 0.098,
3 of 6 >= 0.12) at -0.9 dB: the learned flow correction pulls the mouth back toward the closed reference.

Then (2026-12-03, later) the same 1200-step fine-tuning at 32x32 with the one-photo items' reference the most
closed mouth of the clip (it was a random one) and the mouth-box L1 term (``model.mouth_weight=8``,
:mod:`cemnet_core.models.renderer_loss`): test 27.09 dB / 0.892 (lower half 24.08 / 0.779), and on the six
portraits 0.123 0.117 0.028 0.051 0.036 0.078 (mean 0.072; the starter in the same session 0.098 0.126 0.029
0.045 0.039 0.111, mean 0.075). So the mouth term wins back the opening the 32x32 fine-tuning lost, but does
not open it further: on the closed-lip photos the driving landmarks open 0.08-0.09 and the video 0.03-0.05.
That release shipped.

Then (2026-12-04) 600 more steps from it with one closed-mouth photo in every item
(``single_reference_rate`` 1.0) and the mouth-box term doubled (``model.mouth_weight=16``; lr 2e-4, last
weights; the recipe's ``renderer.closedmouth`` phase), 26 min on the CPU shared with an evaluation. Same 96
test items, same run order (``--release``)::

    row                 PSNR    SSIM  PSNR low  SSIM low  dB vs copy
    copy reference     24.43   0.821     21.42     0.650       +0.00
    landmark warp      26.02   0.879     23.01     0.757       +1.60
    before (shipped)   27.09   0.892     24.08     0.779       +2.67
    after              27.33   0.894     24.32     0.784       +2.90

and on the portraits, driven by the calibrated Audio2Mouth (``portrait_generate.py``), the mouth opens
0.213 0.164 0.113 0.116 0.175 0.126 -> 0.222 0.159 0.131 0.125 0.199 0.199 (all six >= 0.12), with a dark
gap between the lips where it drew stretched lips before. Shipped. Still 1.7 dB short of 29 dB; the warp
prior beats copy by 1.60 dB, short of 2.

The same release on the 8 val clips (2 people, never trained on, but where settings were chosen; 2026-12-04,
``--split val --release cemnet_core/starter/renderer``): copy 27.29 / 0.862, landmark warp 29.62 / 0.912
(+2.33 dB), trained 29.89 / 0.918 (+2.60). Both of issue #12's real-video goals hold there and neither on
the test people: the gap is between these people, not between training and held-out ones.

Tried, not kept (2026-12-04): shifting the fused warp's colour per channel to the target's over the rows just
above the mask line (a lighting correction before the generator; an option ``colour_band`` for the
untrained renderer), val, ``--steps 0``: band 0 / 8 / 16 / 32 rows 29.62 / 29.59 / 29.59 / 29.61 dB. The val
warp's error is not a colour offset; the option was removed.

Remeasured (2026-12-08) on the corpus rebuilt with the colour-exact decoder (``media.decode``, 8ce88b9; the
earlier figures are on clips decoded about a level darker), shipped starter renderer, 96 test items,
``--release cemnet_core/starter/renderer --seed S`` (``--seed`` draws other references and targets)::

    seed   copy PSNR   warp PSNR (vs copy)   trained PSNR (vs copy)
    0        23.95       25.95 (+2.00)         27.10 (+3.14)
    1        23.88       25.55 (+1.68)         27.10 (+3.23)
    2        24.55       26.48 (+1.93)         27.04 (+2.48)
    3        24.47       26.17 (+1.70)         27.02 (+2.54)
    mean     24.21       26.04 (+1.83)         27.07 (+2.85)

So the warp's margin over copy is +1.7 to +2.0 dB depending on the draw (issue #12 asks >= 2): it reaches
2 on one draw of four, and the trained renderer stays near 27.1 dB (goal 29).

Tried, not kept (2026-12-08, val, ``--steps 0 --items 64``, copy 27.94 dB): the weight prior's
``prior_sigma`` 0.002 / 0.005 / 0.01 (default) / 0.03 / 0.1 / 1.0 gives a warp of 29.28 / 29.70 / 29.50 /
29.07 / 28.98 / 28.97 dB: averaging the references blurs (1.0 is the plain mean), a hard choice is noisier;
0.005 on test (seed 0) 25.85 against 25.95 at 0.01, so the default stays. Choosing the reference also by
head pose (the pose landmarks' squared distance added to the logits, scale 0.01 / 0.02 crop units) lifts
both rows alike: copy 28.32 / 28.28, warp 29.63 / 29.66 (+1.31 / +1.38 over its copy): a better-posed
reference helps a copy as much as a warp.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from cemnet_core.data.datasets import RendererDataset
from cemnet_core.data.images import to_uint8
from cemnet_core.eval import metrics
from cemnet_core.models.renderer import FaceRenderer, RendererConfig, mask_lower_half
from cemnet_core.train.checkpoint import LAST, checkpoint_path
from cemnet_core.train.stages import export_run, train_stage


def log(message: str) -> None:
    """Progress line with a wall-clock stamp."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _copy_reference(renderer: FaceRenderer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Lower half from the reference with the closest mouth shape, upper half from the target."""
    _, logits = renderer.motion_prior(batch["ref_landmarks"], batch["target_landmarks"])
    best = logits.flatten(1).argmax(dim=1)  # (B,)
    chosen = batch["ref_images"][torch.arange(len(best)), best]  # (B, 3, H, W)
    H = chosen.shape[-2]
    out = batch["target_image"].clone()
    out[..., H // 2 :, :] = chosen[..., H // 2 :, :]
    return out


def _render(renderer: FaceRenderer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return renderer(
            batch["ref_images"], batch["ref_sketches"], batch["target_sketch"],
            mask_lower_half(batch["target_image"]), batch["ref_landmarks"], batch["target_landmarks"],
        ).image  # fmt: skip


def measure(
    models: dict[str, FaceRenderer], data: Path, n_refs: int, items: int, seed: int = 0, split: str = "test"
) -> tuple[dict[str, dict[str, float]], np.ndarray]:
    """Scores of each row on ``items`` items of ``split`` (crop and lower half), and a contact sheet."""
    dataset = RendererDataset(data, split, n_refs, seed=seed, samples_per_clip=max(1, items // 8))
    picks = np.linspace(0, len(dataset) - 1, min(items, len(dataset))).round().astype(int)
    prior = next(iter(models.values()))
    truth_all, rows = [], {"copy reference": [], **{name: [] for name in models}}
    for start in range(0, len(picks), 8):
        batch_items = [dataset[int(i)] for i in picks[start : start + 8]]
        batch = {k: torch.stack([item[k] for item in batch_items]) for k in batch_items[0]}
        truth_all.append(to_uint8(batch["target_image"]))
        rows["copy reference"].append(to_uint8(_copy_reference(prior, batch)))
        for name, model in models.items():
            rows[name].append(to_uint8(_render(model, batch)))
    truth = np.concatenate(truth_all)
    half = truth.shape[1] // 2
    scores = {}
    for name, parts in rows.items():
        frames = np.concatenate(parts)
        scores[name] = {
            "psnr": float(
                np.mean([metrics.psnr(f[None], t[None]) for f, t in zip(frames, truth, strict=True)])
            ),
            "ssim": metrics.ssim(frames, truth),
            "psnr_lower": float(
                np.mean(
                    [metrics.psnr(f[None, half:], t[None, half:]) for f, t in zip(frames, truth, strict=True)]
                )
            ),
            "ssim_lower": metrics.ssim(frames[:, half:], truth[:, half:]),
        }
    shown = np.linspace(0, len(truth) - 1, min(6, len(truth))).round().astype(int)
    sheet = np.concatenate(
        [np.concatenate([truth[i], *(np.concatenate(rows[n])[i] for n in rows)], axis=1) for i in shown],
        axis=0,
    )
    return scores, sheet


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--items", type=int, default=96, help="held-out test items to score")
    parser.add_argument("--split", default="test", help="held-out split to score (val: to choose settings)")
    parser.add_argument("--seed", type=int, default=0, help="which items are drawn (references, targets)")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument(
        "--release", type=Path, default=None, help="score this renderer release (no training)"
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    args.work.mkdir(parents=True, exist_ok=True)
    run = args.work / "run"
    settings = [f'preset="{args.preset}"', "loop.progress=false", "loop.tensorboard=false",
                f"loop.steps={args.steps}", *args.overrides]  # fmt: skip
    began = time.perf_counter()
    if args.release is not None:
        args.steps = 0
    if args.steps > 0:
        if checkpoint_path(run, LAST).exists():
            train_stage("renderer", args.data, run, resume=True, device="cpu", steps=args.steps)
        else:
            train_stage("renderer", args.data, run, overrides=settings, device="cpu", steps=args.steps)
        export_run(run, args.work / "weights")
    trained_seconds = time.perf_counter() - began
    from cemnet_core.release import load_model

    release = args.release or args.work / "weights" / "renderer"
    trained = load_model(release, "renderer") if args.steps > 0 or args.release is not None else None
    untrained_settings = {  # --steps 0: the untrained renderer of the preset, with any --set model.X=Y
        key.removeprefix("model."): json.loads(value)
        for key, value in (item.split("=", 1) for item in args.overrides) if key.startswith("model.")
    }  # fmt: skip
    if args.release is not None and untrained_settings:  # e.g. --set model.colour_band=16 on a release
        trained.config = dataclasses.replace(trained.config, **untrained_settings)
    preset = getattr(RendererConfig, args.preset)()
    config = trained.config if trained is not None else dataclasses.replace(preset, **untrained_settings)
    untrained = FaceRenderer(config).eval()
    models = {"landmark warp": untrained}
    if trained is not None:
        models["trained"] = trained.eval()
    scores, sheet = measure(models, args.data, config.num_refs, args.items, seed=args.seed, split=args.split)
    import cv2

    sheet_path = args.work / "contact_sheet.png"
    cv2.imwrite(str(sheet_path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    steps_done, logged_minutes = 0, 0.0
    metrics_file = run / "metrics.jsonl"
    if metrics_file.is_file() and args.release is None:  # the run's own log: its steps and time span
        logged = [json.loads(line) for line in metrics_file.read_text().splitlines()]
        train = [record for record in logged if record.get("split") == "train"]
        steps_done = max(record.get("step", 0) for record in logged)
        if len(train) > 1:  # first to last log line, scaled to the whole run (the first line is a step in)
            span = train[-1]["time"] - train[0]["time"]
            logged_minutes = span * train[-1]["step"] / max(train[-1]["step"] - train[0]["step"], 1) / 60
    base = scores["copy reference"]["psnr"]
    source = f"release {args.release}" if args.release else (
        f"training {logged_minutes:.1f} min by its log ({trained_seconds / 60:.1f} min in this call), "
        f"{steps_done} steps, preset {args.preset}")  # fmt: skip
    print(f"\nrenderer on held-out {args.split} speakers of {args.data} ({args.items} items); {source}")
    print(f"{'row':<16}{'PSNR':>8}{'SSIM':>8}{'PSNR low':>10}{'SSIM low':>10}{'dB vs copy':>12}")
    for name, row in scores.items():
        print(f"{name:<16}{row['psnr']:>8.2f}{row['ssim']:>8.3f}{row['psnr_lower']:>10.2f}"
              f"{row['ssim_lower']:>10.3f}{row['psnr'] - base:>+12.2f}")  # fmt: skip
    print(f"contact sheet (truth | copy reference | landmark warp | trained): {sheet_path}")
    (args.work / "renderer_quality.json").write_text(json.dumps(scores, indent=2))


if __name__ == "__main__":
    main()
