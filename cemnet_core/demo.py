"""``cemnet demo``: the whole method end to end on a procedural corpus, with no download (DESIGN section 1).

Each step is one call into core, the same functions the commands call, in the order of DESIGN section 6::

    synth        cemnet_core.data.synthetic.synth        -> OUT/corpus       (MEAD layout + true landmarks)
    preprocess   cemnet_core.preprocess.preprocess       -> OUT/data         (--landmarks true)
    train <s>    cemnet_core.train.stages.train_stage    -> OUT/runs/<s>     (a2m, renderer, aee, emotion,
    export <s>   cemnet_core.train.stages.export_run     -> OUT/weights/      ebm, the networks of the
                                                            Table IV ablations, + syncnet when registered)
                                                         -> OUT/helpers/     (training-only networks, never
                                                            shipped: StagePlan.training_only)
    eval         cemnet_core.eval.report (protocol)      -> OUT/eval/        (results.json/.csv, examples.png)
    generate     cemnet_core.generate.generate           -> OUT/demo.mp4

Every stage trains for a fixed number of steps (:class:`DemoConfig`), so the run time is predictable.
Measured from a fresh clone with the README's main command on the idle 2-core machine: 185 s wall, of
which the demo 179 s; per step synth 8 s, preprocess 7 s, a2m 32 s (1500 steps), renderer 81 s (200 steps
at 64 px), aee 3 s, emotion 1 s, ebm 5 s, the two ablations' networks 4 s, syncnet 2 s, eval 35 s (of
which about 25 s train the two corpus judges), generate 2 s. Earlier, with other jobs keeping the load
average at 3-4: 352 s wall. The quick sizes (the test's
``DemoConfig.quick()``): 30 s for the whole run at the same load.

With the 128-px renderer (issue #12, 2026-12, renderer 200 steps): 563 s on a machine where the unchanged
a2m step took 131 s (4x the idle figure above): synth 21 s, preprocess 17 s, a2m 131 s, renderer 116 s,
aee + emotion + the three EBMs + syncnet 49 s, eval 216 s, generate 13 s. The renderer now trains 100 steps
(it starts from its landmark warp, which already gives 35.9 dB on held-out procedural speakers).

2026-12-02, idle 2-core machine, this checkout: 248 s (255 s wall): synth 12 s, preprocess 11 s, a2m 75 s,
renderer 42 s, aee + emotion + the three EBMs + syncnet 31 s, eval 70 s (its three corpus judges now train
500 steps each, ``DemoConfig.judge_steps``; 160 s with 1500 on a slower day), generate 7 s.

The demo video is cross-emotion, the paper's setting: the references are a *neutral* video of a held-out
(test split) speaker, the driving audio the same speaker's sentence in another emotion. At the default sizes
the face is as sharp as the 128-px crops and keeps its colours (PSNR about 30 dB against the ground truth in
the evaluation, where the 64-px renderer gave 12 dB), and the mouth opens and closes with the speech, but
with less amplitude than the truth: on test windows the predicted lip opening has a standard deviation
of 0.006 against 0.013 for the true landmarks (correlation 0.45; 0.004 and 0.27 after 300 steps).

Resumable: a step whose output is already there is skipped (the corpus manifest, the processed manifest with
every clip, the release folders of a stage, the metrics file, the video); an interrupted training run
continues from its last checkpoint. ``OUT/demo_config.json`` records the settings, and a rerun with other
settings in the same folder is refused rather than mixing the two. ``OUT/demo.json`` lists the outputs and
the seconds each step took.

Pretrained assets: the demo's tiny models start from random weights (the renderer's perceptual loss uses
random VGG19 features, as VGG19 ImageNet weights cannot be fetched offline). The demo needs only
:data:`DEMO_ASSETS`: the MediaPipe face landmarker, the dlib identity models and the FER2013 mini-Xception
(the renderer's perceptual network). They are found in
``CEMNET_WEIGHTS_DIR`` or fetched and sha256-checked by :func:`cemnet_core.weights.resolve` (the first step,
so a missing file is reported before any work); nothing else is downloaded.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from cemnet_core.bundle import ablation_folder, export_folder
from cemnet_core.demo_config import DemoConfig, StagePlan
from cemnet_core.errors import CemnetError, ConfigError, DataError, OutputError
from cemnet_core.fileio import make_folder
from cemnet_core.train.checkpoint import LAST, checkpoint_path

CONFIG_FILE = "demo_config.json"
SUMMARY_FILE = "demo.json"
VIDEO_FILE = "demo.mp4"
# The registry assets the demo needs: MediaPipe (generation tracks the references) and dlib (identity of the
# references in the ebm stage, generation and evaluation). Evaluation on the procedural corpus uses judges
# trained on the corpus itself, so the FER2013 classifier is not needed.
DEMO_ASSETS = ("mediapipe.face_landmarker", "dlib.face_recognition_resnet_v1", "dlib.shape_predictor_5",
               "fer2013.mini_xception")  # fmt: skip


class DemoLog(Protocol):
    """Where :func:`run_demo` reports: a heading per step and lines under it (the CLI draws them; a
    ``rich`` console is one as it is)."""

    def rule(self, title: str) -> object:
        """A step begins: ``title`` is ``"<number>/<steps> <what it does>"``."""
        ...

    def print(self, item: Any) -> object:
        """A line of text, or the evaluation's table (:func:`cemnet_core.eval.report.results_table`)."""
        ...


class _Silent:
    def rule(self, title: str) -> None:
        pass

    def print(self, item: Any) -> None:
        pass


StepProgress = Callable[[str, int, int], None]  # (step name, done, total)


@dataclass(frozen=True)
class DemoResult:
    """Where the demo put its outputs, the clips the video was made from, and the seconds of each step.

    ``reference``: the neutral video of the references; ``speech``: the driving audio; ``seconds``: per step
    (0 for a skipped step) and ``total``.
    """

    out: Path
    video: Path
    reference: Path
    speech: Path
    metrics: Path
    weights: Path
    seconds: dict[str, float]
    skipped: tuple[str, ...]


@dataclass(frozen=True)
class _Step:
    name: str
    title: str
    done: Callable[[], bool]
    run: Callable[[], None]


class _Paths:
    """The layout of the demo folder (module docstring)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.corpus = out / "corpus"
        self.data = out / "data"
        self.runs = out / "runs"
        self.weights = out / "weights"
        self.helpers = out / "helpers"  # training-only networks (StagePlan.training_only), not shipped
        self.eval = out / "eval"
        self.video = out / VIDEO_FILE


def run_demo(
    out: str | os.PathLike[str] = "demo_out",
    config: DemoConfig | None = None,
    log: DemoLog | None = None,
    progress: StepProgress | None = None,
) -> DemoResult:
    """Run (or resume) the demo into ``out``; see the module docstring.

    ``log`` gets each step's heading, its outcome and the evaluation table (None: silent);
    ``progress(step, done, total)`` follows the clips of the preprocess step.

    Raises:
        ConfigError: ``out`` holds a demo made with other settings.
        CemnetError subclasses from the step that failed, with the step named in the message.
    """
    config = config or DemoConfig.default()
    log = log or _Silent()
    paths = _Paths(Path(out))
    _claim_folder(paths.out, config)
    steps = _plan(paths, config, log, progress)
    threads = torch.get_num_threads()
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    try:
        seconds, skipped = _run_steps(steps, log)
    finally:
        torch.set_num_threads(threads)
    reference, speech = _demo_clips(paths, config)
    result = DemoResult(paths.out, paths.video, reference, speech, _metrics_file(paths), paths.weights,
                        seconds, tuple(skipped))  # fmt: skip
    _write_summary(result, config)
    return result


def _run_steps(steps: list[_Step], log: DemoLog) -> tuple[dict[str, float], list[str]]:
    """Run each step that is not done, with a header and its time; returns (seconds per step, skipped)."""
    seconds: dict[str, float] = {}
    skipped: list[str] = []
    began = time.perf_counter()
    for number, step in enumerate(steps, start=1):
        log.rule(f"{number}/{len(steps)} {step.title}")
        if step.done():
            log.print("  already done: skipped")
            seconds[step.name] = 0.0
            skipped.append(step.name)
            continue
        started = time.perf_counter()
        try:
            step.run()
        except CemnetError as exc:
            raise type(exc)(f"demo step {number}/{len(steps)} ({step.name}): {exc}") from exc
        seconds[step.name] = time.perf_counter() - started
        log.print(f"  done in {seconds[step.name]:.1f} s")
    seconds["total"] = time.perf_counter() - began
    return seconds, skipped


def _claim_folder(out: Path, config: DemoConfig) -> None:
    """Create ``out`` and record ``config`` there; refuse a folder made with other settings."""
    make_folder(out, "choose a writable --out")
    path = out / CONFIG_FILE
    wanted = config.to_dict()
    if path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            saved = None
        if saved != wanted:
            raise ConfigError(
                f"{out} holds a demo made with other settings ({path}); use another --out or delete {out}"
            )
        return
    if any(out.iterdir()):
        raise ConfigError(f"{out} is not empty and holds no demo; choose an empty or new --out folder")
    _write_json(path, wanted)


def _plan(paths: _Paths, config: DemoConfig, log: DemoLog, progress: StepProgress | None) -> list[_Step]:
    from cemnet_core.train.stages import STAGES

    steps = [
        _Step("assets", "find the pretrained assets (registry, sha256-checked)", lambda: False,
              lambda: _assets()),
        _Step("synth", "make the procedural corpus (cemnet synth)", lambda: _synth_done(paths),
              lambda: _synth(paths, config)),
        _Step("preprocess", "preprocess it (cemnet preprocess mead --landmarks true)",
              lambda: _preprocess_done(paths, config), lambda: _preprocess(paths, config, progress)),
    ]  # fmt: skip
    for plan in config.stages:
        if plan.optional and plan.stage not in STAGES:
            continue
        steps.append(
            _Step(f"train.{plan.name}", f"train {plan.name} for {plan.steps} steps, then export it",
                  lambda plan=plan: _stage_done(paths, plan), lambda plan=plan: _train(paths, plan, config))
        )  # fmt: skip
    steps.append(_Step("eval", f"evaluate ({config.eval_runs} run(s), cross-emotion and neutral-base)",
                       lambda: _metrics_file(paths).is_file(),
                       lambda: _evaluate(paths, config, log)))  # fmt: skip
    steps.append(_Step("generate", "render a cross-emotion video (cemnet generate)",
                       lambda: paths.video.is_file(), lambda: _generate(paths, config)))  # fmt: skip
    return steps


# ---------------------------------------------------------------- corpus


def _synth_config(config: DemoConfig) -> Any:
    from cemnet_core.data.synthetic import SynthConfig

    return SynthConfig(speakers=config.speakers, sentences=config.sentences, emotions=config.emotions,
                       levels=config.levels, seed=config.seed, size=config.frame_size)  # fmt: skip


def _expected_clips(config: DemoConfig) -> int:
    return config.speakers * config.sentences * len(_synth_config(config).labels())


def _synth_done(paths: _Paths) -> bool:
    from cemnet_core.data.synthetic import MANIFEST_NAME

    return (paths.corpus / MANIFEST_NAME).is_file()


def _synth(paths: _Paths, config: DemoConfig) -> None:
    from cemnet_core.data.synthetic import synth

    synth(_synth_config(config), paths.corpus, workers=config.workers, overwrite=True)


def _preprocess_done(paths: _Paths, config: DemoConfig) -> bool:
    from cemnet_core.data.manifest import read_manifest

    if not (paths.data / "manifest.jsonl").is_file():
        return False
    return len(read_manifest(paths.data)) == _expected_clips(config)


def _preprocess(paths: _Paths, config: DemoConfig, progress: StepProgress | None) -> None:
    from cemnet_core.preprocess import PreprocessOptions, preprocess

    report = None if progress is None else lambda done, total: progress("preprocess", done, total)
    summary = preprocess("mead", paths.corpus, paths.data, workers=config.workers,
                         options=PreprocessOptions(landmarks="true"), progress=report)  # fmt: skip
    if summary.failed:
        first = next(iter(summary.failures.items()))
        raise DataError(f"preprocess: {summary.failed} clip(s) failed (first: {first[0]}: {first[1]}); see "
                        f"{paths.data / 'failures.jsonl'}")  # fmt: skip


def _assets() -> None:
    from cemnet_core.weights import resolve

    for name in DEMO_ASSETS:
        resolve(name)


# ---------------------------------------------------------------- training


def _releases(plan: StagePlan) -> list[str]:
    """The release folder names a stage exports (from its tiny config; names do not depend on sizes)."""
    from cemnet_core.train.stages import get_stage

    module = get_stage(plan.stage)
    return list(module.releases(module.Config.tiny()))


def _export_dir(paths: _Paths, plan: StagePlan, ablation: str | None = None) -> Path:
    """Where a plan's releases go: the bundle, or its ablation folder (``bundle.ablation_folder``);
    ``ablation`` overrides the plan's (the folder of its snapshot)."""
    ablation = plan.ablation if ablation is None else ablation
    if plan.training_only:
        return paths.helpers
    if not ablation:
        return paths.weights
    return ablation_folder(paths.weights, ablation)


def _exported(paths: _Paths, plan: StagePlan, ablation: str | None = None) -> bool:
    folder = _export_dir(paths, plan, ablation)
    return all((folder / name / "config.json").is_file() for name in _releases(plan))


EXPORTED = "exported"  # runs/<name>/exported: the run's final export is in the bundle


def _stage_done(paths: _Paths, plan: StagePlan) -> bool:
    from cemnet_core.train.stages import STAGES

    if plan.stage not in STAGES:
        return False  # _train says that the stage is missing
    snapshot_done = plan.snapshot is None or _exported(paths, plan, plan.snapshot[1])
    marked = (paths.runs / plan.name / EXPORTED).is_file()  # a later phase exports over the same folder
    return snapshot_done and marked and _exported(paths, plan)


def _train(paths: _Paths, plan: StagePlan, config: DemoConfig) -> None:
    from cemnet_core.train.stages import STAGES, export_run, train_stage

    if plan.stage not in STAGES:
        raise ConfigError(
            f"the demo trains stage {plan.stage!r}, but this build of cemnet has no such training stage "
            f"(it has {', '.join(STAGES)}); the demo cannot go on without it"
        )
    run = paths.runs / plan.name
    weights = json.dumps(str(paths.weights))[1:-1]  # the bundle folder, as inside a TOML string
    overrides = [item.replace("{weights}", weights) for item in plan.all_overrides()]
    overrides += _upstream_overrides(paths, plan)
    data = Path(config.real_data) if plan.data == "real" else paths.data

    def train_to(steps: int) -> None:
        if checkpoint_path(run, LAST).exists():  # an interrupted or stopped run: continue it exactly
            train_stage(plan.stage, data, run, resume=True, device=config.device, steps=steps)
        else:
            train_stage(plan.stage, data, run, overrides=overrides, device=config.device, steps=steps)

    if plan.snapshot is not None and not _exported(paths, plan, plan.snapshot[1]):
        steps, ablation = plan.snapshot
        train_to(steps)  # stop here (e.g. the AEE after its pre-training) and export that state ...
        export_run(run, _export_dir(paths, plan, ablation))
    train_to(plan.steps)  # ... then resume to the plan's steps
    export_run(run, _export_dir(paths, plan))
    (run / EXPORTED).write_text(f"{_export_dir(paths, plan)}\n", encoding="utf-8")


def _upstream_overrides(paths: _Paths, plan: StagePlan) -> list[str]:
    """The ebm stage trains on frozen upstream networks: point it at the release folders the demo wrote
    (an ablation folder that holds its own AEE, "w/o AEE", gives that one; a training-only Audio2Mouth in
    ``helpers/``, :attr:`StagePlan.training_only`, replaces the bundle's)."""
    if plan.stage != "ebm":
        return []
    folders = {key: paths.weights / export_folder(role)
               for key, role in (("a2m", "audio_to_mouth"), ("aee", "emotion_enhancer"),
                                 ("image_emotion", "image_emotion"))}  # fmt: skip
    helper = paths.helpers / export_folder("audio_to_mouth")
    if (helper / "config.json").is_file():
        folders["a2m"] = helper
    own_aee = _export_dir(paths, plan) / export_folder("emotion_enhancer")
    if plan.ablation and own_aee.is_dir():
        folders["aee"] = own_aee
    return [f"{key}={json.dumps(str(folder))}" for key, folder in folders.items()]


# ---------------------------------------------------------------- evaluation and generation


def _metrics_file(paths: _Paths) -> Path:
    return paths.eval / "results.json"


# The demo's numbers check that the protocol runs end to end; they say nothing about the paper's.
EVAL_TITLE = "Table II protocol check: procedural corpus, tiny models (not a reproduction of Table II)"


def _evaluate(paths: _Paths, config: DemoConfig, log: DemoLog) -> None:
    from cemnet_core.eval.claims import claim_lines
    from cemnet_core.eval.protocol import SETTINGS
    from cemnet_core.eval.report import evaluate_and_report

    result, table, _ = evaluate_and_report(
        paths.data, paths.weights, paths.eval, SETTINGS, runs=config.eval_runs, ablate=config.eval_ablate,
        max_clips=config.eval_clips, device=config.device, title=EVAL_TITLE, judge_steps=config.judge_steps,
    )  # fmt: skip
    claims = claim_lines(result.rows) or ["none measurable (no cross-emotion pair, or no ablation)"]
    head = "the claims of DESIGN section 9 at this size (benchmarks/claims.py tests them over 3 seeds):"
    table.caption = "\n".join([table.caption or "", head, *claims])  # what the table says of the paper's
    log.print(table)


def _demo_clips(paths: _Paths, config: DemoConfig) -> tuple[Path, Path]:
    """(neutral reference video, emotional speech) of one test-split speaker, same sentence."""
    from cemnet_core.data.layouts import discover
    from cemnet_core.data.manifest import read_manifest, split_records

    speaker = split_records(read_manifest(paths.data), "test")[0].speaker
    sources = [clip for clip in discover("mead", paths.corpus) if clip.speaker == speaker]
    sentence = sources[0].sentence
    reference = [c for c in sources if c.emotion == "neutral" and c.sentence == sentence]
    speech = [c for c in sources if c.emotion == config.speech_emotion and c.level == str(config.speech_level)
              and c.sentence == sentence and c.audio is not None]  # fmt: skip
    if not reference or not speech:
        raise DataError(f"{paths.corpus} lacks the neutral video or the {config.speech_emotion} speech of "
                        f"speaker {speaker}; delete {paths.corpus} and rerun the demo")  # fmt: skip
    assert speech[0].audio is not None
    return reference[0].video, speech[0].audio


def _generate(paths: _Paths, config: DemoConfig) -> None:
    from cemnet_core.generate import GenerateConfig, generate

    reference, speech = _demo_clips(paths, config)
    options = GenerateConfig(device=config.device)
    generate(reference, speech, paths.video, weights=paths.weights, config=options)


def _write_summary(result: DemoResult, config: DemoConfig) -> None:
    summary = {
        "video": str(result.video),
        "reference": str(result.reference),
        "speech": str(result.speech),
        "metrics": str(result.metrics),
        "weights": str(result.weights),
        "seconds": {name: round(value, 2) for name, value in result.seconds.items()},
        "skipped": list(result.skipped),
        "config": config.to_dict(),
    }
    _write_json(result.out / SUMMARY_FILE, summary)


def _write_json(path: Path, value: Any) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    try:
        temp.write_text(json.dumps(value, indent=1) + "\n", encoding="utf-8")
        os.replace(temp, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; choose a writable --out") from exc
