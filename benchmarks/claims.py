"""The claims test (DESIGN section 9, issue 14): the paper's claims and the evidence for each module, measured
over several training seeds on the procedural corpus. Not a unit test.

    CEMNET_WEIGHTS_DIR=../shared/assets OMP_NUM_THREADS=1 .venv/bin/python benchmarks/claims.py \
        [--quick] [--seeds 3] [--work DIR]

What one run does. It makes (or reuses, ``--work``) the learning benchmark's corpus (``cemnet synth``: 6
speakers, 3 sentences, the 7 emotions at level 3, neutral at level 1; true landmarks; speaker-held-out
splits, 4 / 1 / 1 speakers) and trains, through the real stage code (:func:`learning_kit.train`):

- once, shared by every seed: Audio2Mouth (Sec. III-A, 600 steps) and the renderer (Sec. III-D; the demo's
  128-px renderer, 60 steps: it starts from its landmark warp and is here only so that EA has frames to
  judge; M-LMD is measured on the predicted landmarks, not on the frames), and the corpus judges of
  :func:`protocol.default_judges` (cached in the corpus folder);
- per seed ``s`` (0, 1, 2): the AEE (Sec. III-B, 100 steps of pre-training then 300 of cross-reconstruction,
  Eq. 5), the "w/o AEE" encoder (the same AEE stage, the same 400 steps, classification pre-training only:
  an audio emotion classifier without its softmax, Table IV; trained as long as the AEE so that the
  comparison is about cross-reconstruction, not training length), the image emotion extractor (100 steps)
  and three EBMs of 250 steps (Sec. III-C): the full one on the AEE, the "w/o AEE" one on the classifier,
  and "w/o EBM" (``model.use_memory=false``).

Then, per seed, on the held-out speakers (``val`` and ``test`` splits; no checkpoint is chosen on them):

1. Module evidence (part 4), on windows of the EBM's own cross-emotion data (:class:`EBMDataset`, fixed data
   seed, 2 passes over the 48 held-out clips; references from another clip of the same speaker whose emotion
   differs, neutral included): M-LMD (pixels of the 128 crop) of the emotion-aware mouth of CEM-Net against
   the trained "w/o EBM" and "w/o AEE", mean-displacement baselines and Audio2Mouth alone. A mean-
   displacement baseline adds to Audio2Mouth's mouth the mean of (true mouth - Audio2Mouth mouth) over the
   *training* split's windows with the same target emotion (true label), the same (target, source) emotion
   pair (true labels), or the target emotion the AEE's own classifier predicts (no label at test time, like
   the EBM). Linear probes (logistic regression, training split -> held-out speakers) on what the EBM is
   conditioned on: the source-emotion features (image emotion extractor, mean over the N references), the
   identity (dlib, 128-d), the target emotion (AEE and w/o-AEE encoders); chance is the best constant guess
   on the held-out labels; "carries information" = above chance + 2 standard errors (counted over held-out
   clips) on a majority of seeds. The identity -> speaker probe holds out one clip in four of the training
   speakers (held-out speakers are new classes).
2. The claims (part 5), by the Table II protocol (:func:`protocol.generate_pair`, :func:`protocol.score_pair`;
   pairing seed 0, rendered frames) on 4 targets of each held-out split, one per emotion, the two splits
   together covering the 8 emotions (:func:`claims_eval.spread_targets`; rendering every held-out clip for
   every seed did not fit the CPU budget): (a) Audio2Mouth alone degrades from neutral-base to
   cross-emotion (M-LMD higher); (b) in cross-emotion, full CEM-Net beats "w/o AEE" and "w/o EBM" in M-LMD
   (lower) and lower-face EA (higher), Table IV's order. EA is ``ea_lower`` (corpus lower-face emotion judge,
   the region the method generates) when :data:`protocol.METRICS` has it (it does since the judges of issue
   14 landed), else the whole-face ``ea``; the table says which.

A claim "holds" when the mean over seeds is on the claimed side and so is a majority of the seeds (paired
by seed, :func:`learning_kit.verdict`); the wins are printed as k/n. Audio2Mouth, its pairs and its rows are
shared by the seeds, so claim (a) is one measurement (std 0), not three. ``--quick`` runs every step with a
few dozen steps per stage (the figures mean nothing; on the shared machine 17 min for its first seed, most of
it training the three corpus judges, which are then cached in the corpus folder). A rerun with the same
``--work`` reuses what is trained.

Measured (2026-12-02, the shared 2-core machine with load average 3-7 from other jobs, 1 torch thread)::

    CEMNET_WEIGHTS_DIR=/work/shared/assets OMP_NUM_THREADS=1 .venv/bin/python benchmarks/claims.py \
        --work /tmp/claimsC_full

Wall time 28 min 52 s for what this command ran (the 3 seeds: 9-12 min each, of which training 5-7 min, and
the shared protocol rows), plus Audio2Mouth (969 s) and the renderer (116 s), trained by an earlier start
of the same command in the same ``--work`` and reused; the corpus (synth 95 s + preprocess 56 s) and the
three corpus judges (about 2-4 min each under this load) came from a ``--quick`` run on the same corpus.
From scratch that is about 55 min under this load, over the 45-min target; on a free core it is less
(not measured: the machine was never free). The final tables::

    Module evidence: emotion-aware mouth M-LMD px, cross-emotion windows of the held-out speakers
      cemnet                                              1.136 +- 0.181   [1.392, 1.025, 0.992]
      w/o EBM (trained, use_memory=false)                 0.977 +- 0.035   [1.016, 0.931, 0.985]
      w/o AEE (trained, EBM on the classifier)            1.042 +- 0.089   [0.995, 0.965, 1.167]
      mean displacement / target emotion (true label)     0.853 +- 0.000
      mean displacement / (target, source) (true labels)  0.638 +- 0.000
      mean displacement / AEE-predicted target emotion    1.252 +- 0.094   [1.347, 1.123, 1.285]
      Audio2Mouth alone                                   1.494 +- 0.000
      cemnet < w/o EBM                                    does not hold (0/3 seeds)
      cemnet < w/o AEE                                    does not hold (1/3 seeds)
      cemnet < mean displacement / target emotion         does not hold (0/3 seeds)
      cemnet < mean displacement / (target, source)       does not hold (0/3 seeds)
      cemnet < mean displacement / AEE-predicted target   holds (2/3 seeds)
      cemnet < Audio2Mouth alone                          holds (3/3 seeds)

    Linear probes (training split -> held-out; accuracy, mean +- std over 3 seeds)
      source-emotion features -> source emotion            0.191 +- 0.032  chance 0.208 -> at chance (0/3)
      identity -> source emotion                           0.562 +- 0.000  chance 0.208 -> information (3/3)
      AEE target emotion -> target emotion                 0.535 +- 0.052  chance 0.125 -> information (3/3)
      w/o-AEE classifier features -> target emotion        0.528 +- 0.128  chance 0.125 -> information (3/3)
      identity -> speaker (training speakers, held-out clips) 1.000         chance 0.267 -> information (3/3)

    Table II protocol, held-out speakers (8 targets), mean +- std over 3 seeds; EA = 'ea_lower'
      setting        method              M-LMD px         EA ea_lower      EA whole
      cross-emotion  cemnet              1.197 +- 0.073   0.069 +- 0.026   0.176 +- 0.001
      cross-emotion  w/o AEE             1.259 +- 0.097   0.111 +- 0.023   0.174 +- 0.003
      cross-emotion  w/o EBM             1.254 +- 0.071   0.111 +- 0.021   0.173 +- 0.003
      cross-emotion  a2m (no emotion)    1.753            0.120            0.172
      cross-emotion  copy-reference      2.178            0.000            0.195
      cross-emotion  ground truth        0.000            0.233            0.172
      neutral-base   a2m (no emotion)    1.209            0.087            0.163

    Claims (3 seeds; holds = the mean and a majority of seeds on the claimed side)
      (a) A2M M-LMD cross-emotion > neutral-base        1.209 vs 1.753 (shared A2M)        holds (3/3)
      (b) M-LMD cemnet < w/o AEE (cross-emotion)        1.197 +- 0.073 vs 1.259 +- 0.097   holds (3/3)
      (b) M-LMD cemnet < w/o EBM (cross-emotion)        1.197 +- 0.073 vs 1.254 +- 0.071   holds (3/3)
      (b) EA ea_lower cemnet > w/o AEE (cross-emotion)  0.069 +- 0.026 vs 0.111 +- 0.023   does not hold (0/3)
      (b) EA ea_lower cemnet > w/o EBM (cross-emotion)  0.069 +- 0.026 vs 0.111 +- 0.021   does not hold (1/3)

What this says, plainly. (a) holds by a wide margin (1.21 vs 1.75 px). (b) in M-LMD holds on the 8 rendered
targets on every seed, by 0.06 px, less than one seed-to-seed std; on the larger window set (48 clips x 2
windows, neutral references included) the same networks give the opposite order: the trained "w/o EBM"
(0.98 px) and "w/o AEE" (1.04) beat CEM-Net (1.14, one seed at 1.39), so the M-LMD part of (b) is not
established; the two sets differ in targets (8 vs 48 clips), in references (no neutral ones in the
protocol) and in the target emotion (the protocol's pipeline takes one AEE segment around each window, the
EBM dataset the mean over 4 segments of the utterance). (b) in lower-face EA does not hold: CEM-Net's 0.07 is
below both ablations and below Audio2Mouth alone (0.12); the lower-face judge itself reaches only 0.23 on
the true frames of these held-out speakers (chance 0.125), so EA differences of 0.04 on 8 clips are within
its noise, and whole-face EA (0.17 for every row, the truth included) is uninformative. No EBM beats the
mean-displacement tables: a per-target-emotion table (true label) gives 0.85 px and a per-(target, source)
table 0.64 px against 1.14 for CEM-Net. The EBM does use what it is given (it beats Audio2Mouth alone and a
table keyed by the AEE's own predicted emotion on 2 of 3 seeds), and its inputs carry the information:
the AEE target emotion is linearly decodable on new speakers (0.54 vs 0.125), the identity carries the
speaker and, unexpectedly, the references' emotion (0.56 vs 0.21: dlib embeddings of drawn faces change
with the expression), while the image emotion extractor's source-emotion features are at chance. What was
tried: the sizes are what fitted the shared CPU (AEE 400 steps, EBM 250, each seed 9-12 min); the learning
benchmark's EBM needed 1000 steps to reach 0.85 px on a 1200-step AEE, so longer EBM training is the first
thing to try, then a source-emotion extractor that works (or the identity's emotion content removed).
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

from cemnet_core.eval.claims import design_claims

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

    print(f"\nClaims ({n} seeds; a claim holds when the mean and a majority of seeds are on its side)")
    for claim in design_claims(ea):
        name, better, worse, lower = claim.name, row(*claim.better), row(*claim.worse), claim.lower_is_better
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
