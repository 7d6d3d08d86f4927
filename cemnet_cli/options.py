"""Options shared by several ``cemnet`` commands, defined once as ``Annotated`` aliases (STYLE section 8).

Use them as parameter types, with the default on the parameter::

    def train(data: DataOption, run: RunOption, device: DeviceOption = None, seed: SeedOption = 0) -> None:
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# The type column of a switch (``--preview``, ``--resume``, ...) in --help: empty, since a switch takes no
# value; Typer would show ``<bool>`` and users then write ``--preview true``, which Click refuses.
FLAG = ""
WeightsDirOption = Annotated[
    Path | None,
    typer.Option(
        "--weights-dir",
        envvar="CEMNET_WEIGHTS_DIR",
        help="Folder with pretrained files, looked up by filename before any download.",
        show_default=False,
    ),
]
DeviceOption = Annotated[
    str | None,
    typer.Option("--device", help="Torch device: cpu, cuda or cuda:N. Default: CUDA when present, else CPU."),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Random seed (Python, NumPy and torch).")]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML file with config values.", exists=True, dir_okay=False)
]
OverridesOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override one config value: key=value (repeatable).", show_default=False),
]
DataOption = Annotated[Path, typer.Option("--data", help="Processed dataset folder (manifest.jsonl, clips).")]
RunOption = Annotated[
    Path,
    typer.Option(
        "--run",
        "--run-dir",
        help="Run folder: checkpoints, logs, resolved config (--run-dir after torchrun, which takes --run).",
    ),
]
OutputOption = Annotated[Path | None, typer.Option("--out", "-o", help="Output file.", show_default=False)]
WorkersOption = Annotated[int, typer.Option("--workers", "-j", help="Worker processes.", min=1)]
BatchSizeOption = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        help="Frames per renderer batch (default: the fastest measured, 2 on CPU and 16 on CUDA).",
        min=1,
    ),
]
