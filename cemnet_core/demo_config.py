"""The sizes of the ``cemnet demo`` run (:mod:`cemnet_core.demo`): corpus, training stages, evaluation.

:class:`DemoConfig` holds every size of the demo; :class:`StagePlan` is one training stage of it (steps,
preset, ``--set`` overrides, the corpus it trains on, the Table IV ablation it trains).
``DemoConfig.default()`` is the README's run (about ten minutes on two CPU cores), ``DemoConfig.quick()``
the same path at the smallest scale (the tests), and ``DemoConfig.starter(real_data)`` the recipe of the
starter release shipped with the package (``scripts/build_starter.py``): Audio2Mouth, the renderer and the
lip-sync expert trained on real talking videos (a processed corpus, ``real_data``), the emotion stages on
the procedural corpus, which is the only emotion-labelled talking corpus here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cemnet_core.configs import config_to_dict
from cemnet_core.errors import ConfigError


@dataclass(frozen=True)
class StagePlan:
    """One training stage of the demo: its name in ``STAGES``, its steps, and ``--set`` overrides.

    The overrides start from the stage's ``preset`` (``tiny`` unless set; it comes first). An ``optional``
    stage that this build does not register is left out (the LipSync expert, ``syncnet``); any other
    missing stage stops the demo. ``ablation`` (``aee`` or ``ebm``) trains a network of a Table IV ablation
    and exports it where :meth:`CEMNetPipeline.from_bundle` looks for it (``weights/ablations/wo_<name>/``).
    ``snapshot`` (steps, ablation) stops the run after that many steps, exports it to that ablation's
    folder, then resumes it to ``steps`` (``cemnet train --steps`` / ``cemnet export`` / ``--resume``): the
    "w/o AEE" encoder is the ``aee`` run stopped at its ``pretrain_steps`` (classification only).
    ``phase`` names a further run of a stage already planned (its own run folder ``<name>.<phase>``) that
    exports over the earlier one: a fine-tuning, whose overrides start it from the earlier export with
    ``init_from="{weights}/<folder>"`` (``{weights}`` is replaced by the bundle folder being built).
    ``training_only``: a network that only the training of later stages reads, exported to the demo's
    ``helpers/`` folder instead of the bundle (never shipped). One kind exists: an Audio2Mouth there is the
    frozen upstream of the ``ebm`` stage instead of the bundle's (``cemnet_core.demo._upstream_overrides``;
    the starter's reason is in :meth:`DemoConfig.starter`).
    """

    stage: str
    steps: int
    overrides: tuple[str, ...] = ()
    optional: bool = False
    preset: str = "tiny"  # the stage preset the overrides start from
    data: str = "corpus"  # "corpus": the demo's procedural corpus; "real": DemoConfig.real_data
    ablation: str = ""  # a Table IV ablation: run runs/<stage>.<ablation>, export to weights/ablations/...
    phase: str = ""  # a further run of the stage (runs/<stage>.<phase>), exported over the earlier one
    snapshot: tuple[int, str] | None = None  # (steps, ablation): export there mid-run, then go on
    training_only: bool = False  # export to OUT/helpers/, not the bundle: the ebm stage's Audio2Mouth

    @property
    def name(self) -> str:
        """The step and run name: ``<stage>``, then ``.<ablation>`` and ``.<phase>`` when set."""
        return ".".join(part for part in (self.stage, self.ablation, self.phase) if part)

    def all_overrides(self) -> list[str]:
        """``--set`` strings as ``cemnet train`` takes them: the plan's preset, then its values."""
        return [f'preset="{self.preset}"', "loop.progress=false", "loop.tensorboard=false", *self.overrides]


@dataclass(frozen=True)
class DemoConfig:
    """The sizes of every demo step.

    Corpus: ``speakers`` x (``emotions`` at ``levels``; neutral at level 1 only) x ``sentences`` clips of
    ``frame_size`` pixels. ``stages``: what to train, in order. Evaluation: ``eval_runs`` seeds of the
    protocol, ``eval_clips`` targets each, with the ``eval_ablate`` ablations, judged by corpus judges of
    ``judge_steps`` steps each (500, a third of ``cemnet eval``'s 1500: on the demo's corpus, 2 training
    speakers, the emotion judges score near chance (0.25) on the val speaker either way, 0.30-0.41 for the
    whole face and 0.29-0.66 for the lower face at 500 steps in two runs, 0.32 / 0.29 at 1500; the speaker
    judge 1.00 both).
    ``speech_emotion`` and ``speech_level``: the driving audio of the demo video. ``torch_threads``: the
    demo's networks are tiny, and torch's intra-op threads cost more than they give on them; on the 2-core
    machine with other jobs running, an Audio2Mouth run of 1500 steps took 288 s with torch's default 2
    threads and 83 s with 1.
    """

    speakers: int = 4
    sentences: int = 2
    emotions: tuple[str, ...] = ("angry", "happy", "neutral", "sad")
    levels: tuple[int, ...] = (1, 3)
    frame_size: int = 128
    seed: int = 0
    workers: int = 2
    stages: tuple[StagePlan, ...] = field(default_factory=tuple)
    eval_runs: int = 1
    eval_clips: int = 4  # test-split targets evaluated per setting and run
    eval_ablate: tuple[str, ...] = ("aee", "ebm")  # Table IV rows beside the full model
    judge_steps: int = 500  # training steps of each corpus judge of the evaluation
    speech_emotion: str = "happy"
    speech_level: int = 3
    device: str | None = None
    torch_threads: int = 1  # intra-op threads while the demo runs (0: leave torch's default)
    real_data: str = ""  # a processed real talking corpus, for plans with data="real" (the starter)

    def __post_init__(self) -> None:
        if self.speakers < 3:
            raise ConfigError(f"the demo needs at least 3 speakers (train / val / test), got {self.speakers}")
        if "neutral" not in self.emotions or self.speech_emotion not in self.emotions:
            raise ConfigError(
                f"emotions must include neutral (the references) and {self.speech_emotion!r} (the speech)"
            )
        if 1 not in self.levels or self.speech_level not in self.levels:
            raise ConfigError(f"levels must include 1 (neutral) and {self.speech_level} (the speech)")
        if (
            min(self.sentences, self.workers, self.eval_runs, self.eval_clips, self.judge_steps) < 1
            or self.torch_threads < 0
        ):
            raise ConfigError(
                "sentences, workers, eval_runs, eval_clips and judge_steps must be >= 1, torch_threads >= 0"
            )
        if any(plan.data not in ("corpus", "real") for plan in self.stages):
            raise ConfigError("a stage plan's data must be 'corpus' or 'real'")
        if any(plan.training_only and (plan.stage != "a2m" or plan.ablation) for plan in self.stages):
            raise ConfigError("only an Audio2Mouth plan without ablation can be training_only (the EBM's "
                              "upstream)")  # fmt: skip
        if any(plan.data == "real" for plan in self.stages) and not self.real_data:
            raise ConfigError("stages that train on real videos need real_data: a `cemnet preprocess` folder")

    @classmethod
    def default(cls) -> DemoConfig:
        """About ten minutes on two CPU cores: enough training for a mouth that follows the audio."""
        stages = _stages(a2m=1500, renderer=100, aee=60, emotion=60, ebm=100, syncnet=60, speakers=4,
                         renderer_size=128, ablate=("aee", "ebm"))  # fmt: skip
        return cls(stages=stages, eval_clips=2)

    @classmethod
    def quick(cls) -> DemoConfig:
        """The same path at the smallest useful scale (tests): a couple of minutes on two CPU cores."""
        stages = _stages(a2m=4, renderer=4, aee=4, emotion=4, ebm=4, syncnet=4, speakers=3, renderer_size=32,
                         ablate=("aee", "ebm"))  # fmt: skip
        return cls(
            speakers=3, sentences=2, emotions=("happy", "neutral"), levels=(1,), speech_level=1, eval_clips=1,
            eval_ablate=("aee", "ebm"), judge_steps=50,
            stages=(*_before_ebm(stages, _EBM_UPSTREAM), _ONE_PHOTO),
        )  # fmt: skip

    @classmethod
    def starter(cls, real_data: str) -> DemoConfig:
        """The starter release's recipe (module docstring): about 1.7 hours on two CPU cores with AMX.

        Measured end to end on the project's 2-core Xeon (AMX, idle; 2026-12-07, ``scripts/build_starter.py
        --out DIR --no-install``, one run stopped once during Audio2Mouth and resumed): 5748 s in all. Real
        corpus and procedural corpus about 3 min; Audio2Mouth 4000 + 500 + 1000 steps about 18 min; the
        renderer in bf16 (``loop.precision="native"``) 2267 + 540 + 535 + 265 s; AEE, image emotion and the
        three EBMs 394 s; lip-sync expert 433 s; corpus evaluation and video 69 s. Without AMX the renderer
        runs in fp32, 1.6x slower (:mod:`cemnet_core.train.precision`): about 2.2 hours, estimated from that
        ratio (3607 s x 1.6), not measured. The EBMs then trained on the real Audio2Mouth; on the six
        portraits of ``benchmarks/portrait_generate.py`` (ESD happy speech) that EBM shrank the driving mouth
        to an opening of 0.05-0.09 (shipped 0.12-0.18) and the rendered mouth barely opened (0/6 >= 0.12): it
        had learned to undo the real model's error on drawn faces (:mod:`cemnet_core.train.stages.ebm`,
        ``benchmarks/ebm_articulation.py``). So the EBMs now train on ``a2m.corpus``, the real Audio2Mouth
        fine-tuned 1000 steps on the procedural corpus (``training_only``: in ``OUT/helpers/``, not shipped).
        Measured by rerunning the recipe on that build with the new plan (the earlier stages, unchanged, were
        kept; 2026-12-07): ``a2m.corpus`` 158 s, the three EBMs 95 + 77 + 67 s, so the recipe is about 6
        minutes longer (about 1.7 hours; without AMX about 2.3). That release: driving mouth 0.13-0.19 on
        all six portraits, rendered 0.111-0.198 (4 of 6 >= 0.12; uncrop_face 0.116 and happy 0.111 fall
        short): the renderer damps driving openings below about 0.15. So ``scripts/build_starter.py`` now
        sets the gain on the rendered mouth of the val people (:mod:`cemnet_core.eval.mouth_gain`, 87 s):
        1.74 instead of 1.53, driving 0.15-0.21, rendered 0.146-0.215 (6 of 6), lower-face dE2000 <= 1.36.
        That release is the shipped one (2026-12-07); its renderer scores 27.19 dB on the test people and its
        Audio2Mouth correlates with the true opening at 0.32 (the earlier shipped one: 27.33 dB, 0.24;
        ``benchmarks/renderer_quality.py``, ``benchmarks/a2m_articulation.py``).

        Real videos (``real_data``): Audio2Mouth (2.1 M parameters, 4000 steps of batch 16, then 500 steps of
        fine-tuning in which half the items have one repeated closed-mouth reference, both with the
        translation base, then 1000 more such steps with the similarity base; its ``motion_gain`` is then
        calibrated on the val people by ``scripts/build_starter.py``, on the landmarks, then on the rendered
        mouth), the ``small``
        renderer (1.5 M; 4000 steps, the run of ``benchmarks/renderer_quality.py --preset small --steps
        4000``, then 1000 steps of fine-tuning in which half the items have one repeated closed-mouth
        reference, as a single portrait gives ``generate``, then 1200 more such steps with motion estimated
        at 32x32 and the mouth-box loss term, then 600 steps with one closed-mouth photo in every item and
        the mouth-box term doubled) and the ``small`` lip-sync expert (3000 steps with
        augmentation). Procedural corpus (6 speakers, the 8 emotions at 3 levels): the AEE, the image
        emotion extractor and the EBM at their tiny sizes, with the Table IV ablations. N = 5 references
        and T = 5 frames, as in the paper.
        """

        def loop(val: int) -> tuple[str, ...]:
            return (f"loop.val_every={val}", "loop.checkpoint_every=500", "loop.log_every=50")

        a2m = ("model.dim=192", "model.feedforward=384", "model.layers=2",
               "model.audio_channels=[16, 32, 64, 128]", "loop.lr=5e-4", "loop.batch_size=16")  # fmt: skip
        translation = 'model.base_motion="translation"'
        native = 'loop.precision="native"'
        one_photo = ('init_from="{weights}/audio_to_mouth"', "single_reference_rate=0.5", "loop.lr=2e-4")
        speakers = 6
        stages = (
            # the release's lineage: 4000 + 500 steps with the translation base (the base before 2026-12),
            # then 1000 steps that switch to the similarity base (AudioToMouthConfig.base_motion)
            StagePlan("a2m", 4000, (*loop(500), *a2m, translation), preset="paper", data="real"),
            StagePlan("a2m", 500, (*loop(500), *a2m, translation, *one_photo),
                      preset="paper", data="real", phase="onephoto"),
            StagePlan("a2m", 1000, (*loop(500), *a2m, *one_photo), preset="paper", data="real",
                      phase="similarity"),
            # the renderer in bf16 where the CPU has AMX (loop.precision="native"; 1.6x, precision.py)
            StagePlan("renderer", 4000, (native,), preset="small", data="real"),
            # the release's onephoto phase drew a random one of the references as the photo (before
            # 2026-12-03); a rebuild gives it the most closed one (RendererDataset), as the mouth phase had
            StagePlan("renderer", 1000, ('init_from="{weights}/renderer"', "single_reference_rate=0.5",
                                         native),
                      preset="small", data="real", phase="onephoto"),
            # motion at 32x32 (1.35x faster generate) with the mouth-box L1 (renderer_loss): same test PSNR
            StagePlan("renderer", 1200, ('init_from="{weights}/renderer"', "single_reference_rate=0.5",
                                         "loop.lr=2e-4", "model.flow_scale=0.25", "model.mouth_weight=8.0",
                                         native),
                      preset="small", data="real", phase="mouth"),
            # every item one closed-mouth photo, mouth-box L1 doubled: on portraits the calibrated
            # Audio2Mouth opens the mouth wider than most training frames, and the renderer drew it with
            # stretched lips; after this phase the open mouth shows a dark gap (portrait_generate.py)
            StagePlan("renderer", 600, ('init_from="{weights}/renderer"', "single_reference_rate=1.0",
                                        "loop.lr=2e-4", "model.flow_scale=0.25", "model.mouth_weight=16.0",
                                        "loop.early_stop_metric=", native),
                      preset="small", data="real", phase="closedmouth"),
            StagePlan("aee", 600, (*loop(600), f"model.num_speakers={speakers}", "pretrain_steps=300"),
                      snapshot=(300, "aee")),
            StagePlan("emotion", 600, loop(600)),
            # the EBMs' frozen Audio2Mouth: the real one fine-tuned on the procedural corpus, so that what
            # the EBM learns to add is the emotion, not the real model's error on drawn faces (docstring)
            StagePlan("a2m", 1000, (*loop(500), *a2m, *one_photo, native), preset="paper", phase="corpus",
                      training_only=True),
            StagePlan("ebm", 1500, loop(1500)),
            StagePlan("ebm", 1500, loop(1500), ablation="aee"),
            StagePlan("ebm", 1500, (*loop(1500), "model.use_memory=false"), ablation="ebm"),
            # the expert keeps its last weights: without augmentation its loss on the val people stayed
            # above chance (ln 31 = 3.43) at every validation (3.52 / 3.55 / 3.72 at 1000 / 2000 / 3000
            # steps: clips not checked to be in sync), so it cannot choose a checkpoint
            # with augment (flip, crop, colour; SyncNetDataset) the val loss fell to 3.43 / 3.35 / 3.31 and
            # the test offsets within +-1 frame rose 64% -> 79%; continued to 6000 steps it rose again
            # (3.76 / 3.89 / 4.36 at 4000 / 5000 / 6000), so 3000 steps stay
            StagePlan("syncnet", 3000, (*loop(1000), "loop.early_stop_metric=", "augment=true"),
                      preset="small", data="real", optional=True),
        )  # fmt: skip
        emotions = ("angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised")
        return cls(speakers=speakers, sentences=2, emotions=emotions, levels=(1, 2, 3), stages=stages,
                   eval_clips=2, real_data=real_data, torch_threads=0)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (``demo_config.json``; :func:`~cemnet_core.configs.config_to_dict`)."""
        return config_to_dict(self)


# The quick demo also runs a fine-tuning phase and a training-only Audio2Mouth for the EBMs (as the starter
# does), so the tests cover both.
_ONE_PHOTO = StagePlan("renderer", 2, ('init_from="{weights}/renderer"', "single_reference_rate=0.5"),
                       phase="onephoto")  # fmt: skip
_EBM_UPSTREAM = StagePlan("a2m", 2, ('init_from="{weights}/audio_to_mouth"',), phase="corpus",
                          training_only=True)  # fmt: skip


def _before_ebm(plans: tuple[StagePlan, ...], plan: StagePlan) -> tuple[StagePlan, ...]:
    """``plans`` with ``plan`` inserted before the first ``ebm`` plan."""
    first = next(index for index, item in enumerate(plans) if item.stage == "ebm")
    return (*plans[:first], plan, *plans[first:])


def _stages(
    a2m: int, renderer: int, aee: int, emotion: int, ebm: int, syncnet: int, speakers: int,
    renderer_size: int, ablate: tuple[str, ...],
) -> tuple[StagePlan, ...]:  # fmt: skip
    """The demo's stage plans: tiny presets with the step counts given, validation only at the end, and the
    networks of the Table IV ablations in ``ablate``.

    ``renderer_size``: side of the rendered face (32 is the tiny preset; 128, the crop size, renders the
    face as sharp as the crops are: the renderer starts from its landmark warp, so few steps suffice). Above
    32 px the perceptual network is the pretrained FER2013 mini-Xception (random VGG19 features at 128 px
    cost seconds a step and measure little).
    """
    render = () if renderer_size == 32 else (
        f"model.image_size={renderer_size}", "model.flow_scale=0.5", "model.flow_channels=[16, 32]",
        "model.generator_channels=[16, 32]", f"warmup_steps={renderer * 3 // 10}",
        'vgg_weights="fer2013.mini_xception"',
    )  # fmt: skip

    def loop(steps: int) -> tuple[str, ...]:
        return (f"loop.val_every={steps}", f"loop.checkpoint_every={max(1, steps // 2)}",
                f"loop.log_every={max(1, min(10, steps))}")  # fmt: skip

    speaker_classes = f"model.num_speakers={speakers}"
    pretrain = max(1, aee // 2)
    plans = [
        StagePlan("a2m", a2m, loop(a2m)),
        StagePlan("renderer", renderer, (*loop(renderer), *render)),
        # w/o AEE: this run stopped after its classification pre-training (pretrain_steps) is exported to
        # the ablation folder, then resumed into cross-reconstruction (the full AEE).
        StagePlan(
            "aee",
            aee,
            (*loop(aee), speaker_classes, f"pretrain_steps={pretrain}"),
            snapshot=(pretrain, "aee") if "aee" in ablate else None,
        ),
        StagePlan("emotion", emotion, loop(emotion)),
        StagePlan("ebm", ebm, loop(ebm)),
    ]
    if "aee" in ablate:  # w/o AEE: an EBM trained on the classification-only encoder
        plans.append(StagePlan("ebm", ebm, loop(ebm), ablation="aee"))
    if "ebm" in ablate:  # w/o EBM: an EBM without memories
        plans.append(StagePlan("ebm", ebm, (*loop(ebm), "model.use_memory=false"), ablation="ebm"))
    plans.append(StagePlan("syncnet", syncnet, loop(syncnet), optional=True))
    return tuple(plans)
