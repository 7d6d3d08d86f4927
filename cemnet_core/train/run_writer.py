"""The run folder's records of a training run: ``metrics.jsonl``, TensorBoard events, sample PNGs.

Written by rank 0 only (a no-op on the other ranks of a torchrun job). A resumed run first drops the
metric records that a crashed run wrote after its last checkpoint, so the file holds one course of training.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cemnet_core.errors import OutputError
from cemnet_core.train.distributed import DistEnv

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tb"
SAMPLES_DIR = "samples"


class RunWriter:
    """Metrics (JSONL + TensorBoard), sample PNGs: rank 0 only, a no-op elsewhere."""

    def __init__(self, run_dir: Path, env: DistEnv, start_step: int, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.active = env.is_main
        self._tb: Any = None
        if not self.active:
            return
        metrics = self.run_dir / METRICS_FILE
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if start_step and metrics.exists():  # drop records a crashed run wrote after its last checkpoint
                kept = [
                    line
                    for line in metrics.read_text(encoding="utf-8").splitlines()
                    if line.strip() and json.loads(line)["step"] <= start_step
                ]
                metrics.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            self._metrics = metrics.open("a", encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"cannot write {metrics}: {exc}; choose a writable --run folder") from exc
        if not tensorboard:
            return
        from torch.utils.tensorboard import SummaryWriter  # imported here: it loads tensorboard (slow)

        self._tb = SummaryWriter(
            str(self.run_dir / TENSORBOARD_DIR), purge_step=start_step + 1 if start_step else None
        )

    def scalars(self, step: int, split: str, values: Mapping[str, float]) -> None:
        """Append one record ``{step, split, time, **values}`` to metrics.jsonl (and TensorBoard)."""
        if not self.active:
            return
        record = {"step": step, "split": split, "time": round(time.time(), 3), **values}
        self._metrics.write(json.dumps(record) + "\n")
        self._metrics.flush()
        for name, value in values.items():
            if self._tb is not None:
                self._tb.add_scalar(f"{split}/{name}", value, step)

    def images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
        """Save ``(H, W, 3)`` uint8 samples as ``samples/step_<step>_<name>.png`` (and to TensorBoard)."""
        if not self.active:
            return
        folder = self.run_dir / SAMPLES_DIR
        folder.mkdir(parents=True, exist_ok=True)
        for name, image in images.items():
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"sample {name!r} must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
            Image.fromarray(image).save(folder / f"step_{step:07d}_{name}.png")
            if self._tb is not None:
                self._tb.add_image(f"samples/{name}", image, step, dataformats="HWC")

    def close(self) -> None:
        """Close the metrics file and the TensorBoard writer."""
        if self.active:
            self._metrics.close()
            if self._tb is not None:
                self._tb.close()
