"""The claims test (DESIGN section 9, issue 14): the paper's claims and the evidence for each module, measured
over several training seeds on the procedural corpus. Not a unit test.

    CEMNET_WEIGHTS_DIR=../shared/assets OMP_NUM_THREADS=1 .venv/bin/python benchmarks/claims.py \
        [--quick] [--seeds 3] [--work DIR]

RESULTS (the table of the run below) are at the end of this docstring.

What one run does. It makes (or reuses, ``--work``) the learning benchmark's corpus (``cemnet synth``: 6
speakers, 3 sentences, the 7 emotions at level 3, neutral at level 1; true landmarks; speaker-held-out
splits, 4 / 1 / 1 speakers) and trains, through the real stage code (:func:`learning_kit.train`):

- once, shared by every seed: Audio2Mouth (Sec. III-A) and the renderer (Sec. III-D; the demo's 128-px
  renderer, ``--renderer-steps`` steps: it starts from its landmark warp, and is needed only so that EA has
  frames to judge), and the corpus judges of :func:`protocol.default_judges`;
- per seed ``s``: the AEE (Sec. III-B, pre-training then cross-reconstruction, Eq. 5), the "w/o AEE"
  encoder (the same AEE stage, the same number of steps, classification pre-training only: an audio emotion
  classifier without its softmax, Table IV), the image emotion extractor, and three EBMs (Sec. III-C): the
  full one on the AEE, the "w/o AEE" one on the classifier, and "w/o EBM" (``model.use_memory=false``).

Then, per seed, on the held-out speakers (``val`` and ``test`` splits; no checkpoint is chosen on them):

1. Module evidence (windows of the EBM's own cross-emotion data, :class:`EBMDataset` with a fixed data seed,
   references from another emotion of the same speaker): M-LMD (pixels of the 128 crop) of the emotion-aware
   mouth of CEM-Net against the trained "w/o EBM" and "w/o AEE", against mean-displacement baselines and
   against Audio2Mouth alone. A mean-displacement baseline adds to Audio2Mouth's mouth the mean of (true
   mouth - Audio2Mouth mouth) over the *training* split's windows with the same target emotion (true
   label), the same (target, source) emotion pair (true labels), or the AEE classifier's predicted target
   emotion (no label at test time, as the EBM). Linear probes (logistic regression, training split ->
   held-out) on the features the EBM is conditioned on: the source-emotion features (image emotion
   extractor, mean over the N references) and the identity (dlib, 128-d), each against chance (the
   held-out rate of the most frequent training class); the identity -> speaker probe holds out one clip
   in four of the training speakers (held-out speakers are new classes).
2. The claims, through :func:`protocol.evaluate` (Table II protocol, rendered frames, pairing seed 0), on
   the held-out speakers: (a) Audio2Mouth alone degrades from neutral-base to cross-emotion (M-LMD higher);
   (b) in cross-emotion, full CEM-Net beats "w/o AEE" and "w/o EBM" in M-LMD (lower) and lower-face EA
   (higher), Table IV's order. M-LMD there is from the predicted landmarks (the corpus has true
   landmarks), EA from the corpus emotion judge on the rendered frames: ``ea_lower`` (the lower face, the
   region the method generates) when :data:`protocol.METRICS` has it, else the whole-face ``ea`` (the
   table says which).

A claim "holds" when the mean over seeds is on the claimed side and so is a majority of the seeds (paired
by seed, :func:`learning_kit.verdict`); the wins are printed as k/n. ``--quick`` runs every step with a few
dozen steps per stage (the figures mean nothing). A rerun with the same ``--work`` reuses what is trained.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import learning_kit as kit
from claims_eval import ModuleEvidence, ProtocolFigures, module_evidence, protocol_figures

SPEAKERS = 6


@dataclass(frozen=True)
class Steps:
    """Optimiser steps of each training run and passes of the window evaluation."""

    a2m: int
    renderer: int
    aee: int
    aee_pretrain: int  # of ``aee``: encoder pre-training before cross-reconstruction
    emotion: int
    ebm: int
    eval_epochs: int  # passes over the clips (each draws new windows) for the module evidence
    per_emotion: int  # protocol targets per emotion and held-out split
    aee_batch: int = 8  # AEE and w/o-AEE classifier batch (the cross-reconstruction step decodes 8 mels)
    max_targets: int | None = None  # of those, at most this many per split (None: all)


FULL = Steps(a2m=600, renderer=60, aee=400, aee_pretrain=100, emotion=100, ebm=250, eval_epochs=2,
             per_emotion=1, max_targets=4)  # fmt: skip
QUICK = Steps(a2m=30, renderer=4, aee=20, aee_pretrain=10, emotion=10, ebm=20, eval_epochs=1, per_emotion=1,
              max_targets=2)  # fmt: skip


@dataclass
class SeedResult:
    """What one training seed measured."""

    seed: int
    module: ModuleEvidence
    protocol: ProtocolFigures


def train_shared(data: Path, work: Path, steps: Steps) -> tuple[Path, Path]:
    """Audio2Mouth and the renderer (seed 0), shared by every seed -> their release folders."""
    a2m = kit.train("a2m", data, work, "a2m", steps.a2m, ["loop.seed=0", *kit.A2M_MODEL])
    renderer = kit.train(
        "renderer",
        data,
        work,
        "renderer",
        steps.renderer,
        ["loop.seed=0", *kit.RENDERER_MODEL, f"warmup_steps={steps.renderer * 3 // 10}"],
    )
    return a2m / "audio_to_mouth", renderer / "renderer"  # fmt: skip


def train_seed(data: Path, work: Path, steps: Steps, seed: int, a2m: Path) -> dict[str, Path]:
    """The seed's AEE, "w/o AEE" classifier, image emotion extractor and three EBMs -> release folders."""
    loop = [f"loop.seed={seed}"]
    aee_model = [*loop, f"model.num_speakers={SPEAKERS}", *kit.AEE_MODEL]
    aee_model.append(f"loop.batch_size={steps.aee_batch}")  # after AEE_MODEL's, so it wins
    aee = kit.train("aee", data, work, f"aee_s{seed}", steps.aee,
                    [*aee_model, f"pretrain_steps={steps.aee_pretrain}"])  # fmt: skip
    classifier = kit.train("aee", data, work, f"aee_classifier_s{seed}", steps.aee,
                           [*aee_model, f"pretrain_steps={steps.aee}"])  # fmt: skip
    emotion = kit.train("emotion", data, work, f"emotion_s{seed}", steps.emotion,
                        [*loop, "loop.batch_size=16"])  # fmt: skip
    common = [*loop, *kit.EBM_MODEL, f'a2m="{a2m}"', f'image_emotion="{emotion / "image_emotion"}"']
    full_aee, wo_aee = f'aee="{aee / "emotion_enhancer"}"', f'aee="{classifier / "emotion_enhancer"}"'
    ebm = kit.train("ebm", data, work, f"ebm_s{seed}", steps.ebm, [*common, full_aee])
    ebm_wo_aee = kit.train("ebm", data, work, f"ebm_wo_aee_s{seed}", steps.ebm, [*common, wo_aee])
    ebm_wo_ebm = kit.train("ebm", data, work, f"ebm_wo_ebm_s{seed}", steps.ebm,
                           [*common, full_aee, "model.use_memory=false"])  # fmt: skip
    return {
        "aee": aee / "emotion_enhancer",
        "classifier": classifier / "emotion_enhancer",
        "image_emotion": emotion / "image_emotion",
        "ebm": ebm / "emotion_memory",
        "ebm_wo_aee": ebm_wo_aee / "emotion_memory",
        "ebm_wo_ebm": ebm_wo_ebm / "emotion_memory",
        "ebm_run": work / "runs" / f"ebm_s{seed}",
    }


# --------------------------------------------------------------------------------------------- tables


def _ms(values: Sequence[float], digits: int = 3) -> str:
    mean, std = kit.mean_std(values)
    return f"{mean:.{digits}f} +- {std:.{digits}f}"


def print_module_table(results: list[SeedResult]) -> None:
    """Part 4 of issue 14: the EBM against its trained ablations and the baselines; the probes."""
    n = len(results)
    rows = results[0].module.lmd.keys()
    print(f"\nModule evidence: emotion-aware mouth M-LMD px, cross-emotion windows of the held-out speakers "
          f"(mean +- std over {n} seeds; per seed)")  # fmt: skip
    for name in rows:
        values = [r.module.lmd[name] for r in results]
        each = ", ".join(f"{v:.3f}" for v in values)
        print(f"  {name:44s} {_ms(values)}   [{each}]")
    cem = [r.module.lmd["cemnet"] for r in results]
    for name in rows:
        if name == "cemnet":
            continue
        other = [r.module.lmd[name] for r in results]
        word, wins = kit.verdict(cem, other, lower_is_better=True)
        print(f"  cemnet < {name:35s} {word} ({wins}/{n} seeds)")
    print(f"\nLinear probes (logistic regression, training split -> held-out; accuracy, mean +- std over {n} "
          "seeds)")  # fmt: skip
    for name in results[0].module.probes:
        accuracy = [r.module.probes[name][0] for r in results]
        chance = [r.module.probes[name][1] for r in results]
        margin = [r.module.probes[name][2] for r in results]
        above = [a > c + m for a, c, m in zip(accuracy, chance, margin, strict=True)]
        word = "carries information" if sum(above) * 2 > n else "at chance (no information found)"
        print(f"  {name:52s} {_ms(accuracy)}  chance {_ms(chance)}  -> {word} "
              f"({sum(above)}/{n} seeds above chance + 2 SE)")  # fmt: skip


def print_claims_table(results: list[SeedResult]) -> None:
    """Part 5 of issue 14: the claims, each with holds / does not hold."""
    n = len(results)
    ea = results[0].protocol.ea_key
    print(f"\nTable II protocol on the held-out speakers (rendered frames; mean +- std over {n} seeds of the "
          f"per-seed means over clips); EA column = {ea!r}")  # fmt: skip
    print(f"  {'setting':14s} {'method':18s} {'M-LMD px':>16s} {'EA ' + ea:>18s} {'EA whole':>16s}")
    for setting, method in results[0].protocol.rows:
        cells = [r.protocol.rows[(setting, method)] for r in results]
        print(f"  {setting:14s} {method:18s} {_ms([c['m_lmd'] for c in cells]):>16s} "
              f"{_ms([c[ea] for c in cells]):>18s} {_ms([c['ea'] for c in cells]):>16s}")  # fmt: skip

    def row(setting: str, method: str, metric: str) -> list[float]:
        return [r.protocol.rows[(setting, method)][metric] for r in results]

    a2m = "a2m (no emotion)"
    claims = [
        ("(a) A2M M-LMD cross-emotion > neutral-base", row("neutral-base", a2m, "m_lmd"),
         row("cross-emotion", a2m, "m_lmd"), True),
        ("(b) M-LMD cemnet < w/o AEE (cross-emotion)", row("cross-emotion", "cemnet", "m_lmd"),
         row("cross-emotion", "w/o AEE", "m_lmd"), True),
        ("(b) M-LMD cemnet < w/o EBM (cross-emotion)", row("cross-emotion", "cemnet", "m_lmd"),
         row("cross-emotion", "w/o EBM", "m_lmd"), True),
        (f"(b) EA {ea} cemnet > w/o AEE (cross-emotion)", row("cross-emotion", "cemnet", ea),
         row("cross-emotion", "w/o AEE", ea), False),
        (f"(b) EA {ea} cemnet > w/o EBM (cross-emotion)", row("cross-emotion", "cemnet", ea),
         row("cross-emotion", "w/o EBM", ea), False),
    ]  # fmt: skip
    print(f"\nClaims ({n} seeds; a claim holds when the mean and a majority of seeds are on its side)")
    for name, better, worse, lower in claims:
        word, wins = kit.verdict(better, worse, lower_is_better=lower)
        print(f"  {name:48s} {_ms(better)} vs {_ms(worse)}  {word} ({wins}/{n} seeds)")


# --------------------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, build the corpus, train shared and per-seed networks, measure, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few dozen steps per stage (minutes)")
    parser.add_argument("--work", type=Path, default=None, help="folder for corpus and runs (kept; reused)")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 0 .. seeds-1 (>= 1)")
    parser.add_argument("--workers", type=int, default=1, help="processes for synth / preprocess")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--ebm-steps", type=int, default=None, help="EBM steps (each of the three, per seed)")
    parser.add_argument("--renderer-steps", type=int, default=None, help="renderer steps (shared)")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    steps = QUICK if args.quick else FULL
    if args.ebm_steps is not None:
        steps = dataclasses.replace(steps, ebm=args.ebm_steps)
    if args.renderer_steps is not None:
        steps = dataclasses.replace(steps, renderer=args.renderer_steps)
    work = args.work or Path(tempfile.mkdtemp(prefix="cemnet_claims_"))
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    kit.log(f"work folder {work}; steps {steps}; seeds {args.seeds}; torch threads {args.threads}")
    begin = time.perf_counter()
    data = kit.build_corpus(work, SPEAKERS, 3, args.workers)
    a2m, renderer = train_shared(data, work, steps)
    results = []
    for seed in range(args.seeds):
        releases = train_seed(data, work, steps, seed, a2m)
        kit.log(f"seed {seed}: module evidence")
        module = module_evidence(data, a2m, releases, steps.eval_epochs)
        kit.log(f"seed {seed}: Table II protocol")
        figures = protocol_figures(data, a2m, renderer, releases, steps.per_emotion, steps.max_targets)
        results.append(SeedResult(seed, module, figures))
        kit.log(f"seed {seed} done ({time.perf_counter() - begin:.0f} s so far)")
        if seed < args.seeds - 1:  # the tables so far, in case the run is stopped
            print_module_table(results)
            print_claims_table(results)
    print(f"\n==== final tables, seeds 0-{args.seeds - 1} ====")
    print_module_table(results)
    print_claims_table(results)
    print(f"\nshared across seeds: corpus, Audio2Mouth, renderer, corpus judges, evaluation pairs / windows; "
          f"per seed: AEE, w/o-AEE classifier, image emotion extractor, the three EBMs. "
          f"total {time.perf_counter() - begin:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
