"""``cemnet train <stage>``, ``cemnet export RUN DST`` and ``cemnet calibrate RELEASE``: thin wrappers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cemnet_cli.options import FLAG, ConfigOption, DataOption, DeviceOption, OverridesOption, RunOption
from cemnet_cli.progress import train_bar
from cemnet_core.errors import ConfigError
from cemnet_core.train.stages import STAGES, export_run, train_stage


def train_command(
    stage: Annotated[str, typer.Argument(help=f"Stage to train: {', '.join(STAGES)}.")],
    data: DataOption,
    run: RunOption,
    config: ConfigOption = None,
    overrides: OverridesOption = None,
    resume: Annotated[
        bool, typer.Option("--resume", metavar=FLAG, help="Continue the run in --run exactly.")
    ] = False,
    device: DeviceOption = None,
    steps: Annotated[
        int | None, typer.Option("--steps", help="Total optimiser steps (overrides loop.steps).", min=1)
    ] = None,
) -> None:
    """Train one stage; checkpoints, metrics and the resolved config go to --run (torchrun-ready)."""
    with train_bar() as progress:
        result = train_stage(
            stage, data, run, config, overrides or [], resume, device, steps, progress=progress
        )
    how = "stopped early" if result.stopped_early else "finished"
    best = (
        f"; best val {result.best_metric:.5g} at step {result.best_step}"
        if result.best_metric is not None
        else ""
    )
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one line, not one per process
        Console().print(
            f"{stage}: {how} at step {result.step}{best}; run folder {run}", highlight=False, soft_wrap=True
        )


def export_command(
    run: Annotated[Path, typer.Argument(help="Training run folder.")],
    dst: Annotated[Path, typer.Argument(help="Folder to write release folders into.")],
) -> None:
    """Write a run's trained models as release folders (model.safetensors + config.json)."""
    for folder in export_run(run, dst):
        Console().print(f"wrote {folder}", highlight=False, soft_wrap=True)


def calibrate_command(
    release: Annotated[
        Path, typer.Argument(help="An audio_to_mouth release folder, or a bundle holding one.")
    ],
    data: DataOption,
    split: Annotated[str, typer.Option("--split", help="Held-out people to calibrate on.")] = "val",
    rendered: Annotated[
        bool,
        typer.Option(
            "--rendered",
            help="Then on the mouth rendered from one photo of each person (RELEASE must be a whole bundle).",
        ),
    ] = False,
    speech_level: Annotated[
        bool,
        typer.Option(
            "--speech-level",
            help="First store the 'train' clips' median loudness: generate scales the driving audio to it.",
        ),
    ] = False,
) -> None:
    """Set Audio2Mouth's motion gain from held-out people, so its mouth opens as far as theirs."""
    from cemnet_core.bundle import find_release
    from cemnet_core.eval.mouth_gain import calibrate_rendered_gain
    from cemnet_core.release import load_release
    from cemnet_core.train.calibrate import audio_to_mouth_release, calibrate_motion_gain

    console = Console()
    folder = audio_to_mouth_release(release)
    if rendered and folder == release:
        raise ConfigError(f"--rendered needs the whole weights bundle, not the release folder {release}")
    if rendered:
        find_release(release, "renderer")  # a clear error before the first calibration writes anything
    gain = calibrate_motion_gain(folder, data, split, "train" if speech_level else None)
    level = load_release(folder, "audio_to_mouth").config.get("speech_lufs")
    console.print(f"{folder}: motion_gain = {gain} (from the {split!r} split of {data}), speech_lufs = "
                  f"{level}", highlight=False, soft_wrap=True)  # fmt: skip
    if rendered:
        gain = calibrate_rendered_gain(release, data, split, log=console.print)
        console.print(f"{folder}: motion_gain = {gain} (rendered, from the {split!r} split)", highlight=False,
                      soft_wrap=True)  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add ``train``, ``export`` and ``calibrate`` to the ``cemnet`` app."""
    app.command("train")(train_command)
    app.command("export")(export_command)
    app.command("calibrate")(calibrate_command)
