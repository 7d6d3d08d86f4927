"""A tiny regression task for testing the generic training machinery (not a CEMNet model).

``y = x @ W`` with Gaussian input noise drawn from torch's global RNG in ``__getitem__`` and optional dropout,
so that exact resumption depends on restoring the RNG states. Also used as the torchrun worker:
``torchrun --nproc_per_node 2 tests/train/toy_task.py RUN_DIR STEPS GLOBAL_BATCH`` trains and writes
``RUN_DIR/final.pt`` (rank 0).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from cemnet_core.train.distributed import init_distributed, shutdown_distributed
from cemnet_core.train.loop import FitResult, LoopConfig, Phase, StepContext, TrainTask, fit, seed_everything


class ToyDataset(Dataset):
    """``count`` items {"x": (4,), "y": (2,)}; ``noise`` > 0 adds global-RNG noise to x on each access."""

    def __init__(self, count: int, noise: float = 0.0, seed: int = 1) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(count, 4, generator=generator)
        weight = torch.tensor([[1.0, -2.0], [0.5, 0.0], [0.0, 1.5], [-1.0, 1.0]])
        self.y = self.x @ weight
        self.noise = noise

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        x = self.x[index]
        if self.noise:
            x = x + self.noise * torch.randn(4)
        return {"x": x, "y": self.y[index]}


class ToyModel(nn.Module):
    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_toy_task(noise: float = 0.0, dropout: float = 0.0, count: int = 24, lr: float = 1e-2) -> TrainTask:
    model = ToyModel(dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def loss(
        batch: dict[str, torch.Tensor], ctx: StepContext
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        error = (model(batch["x"]) - batch["y"]).abs().mean()
        return error, {"l1": error}

    def evaluate(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"l1": (model(batch["x"]) - batch["y"]).abs().mean()}

    def sample(batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        value = int(model(batch["x"]).abs().mean().clamp(max=1).item() * 255)
        return {"preview": np.full((8, 8, 3), value, dtype=np.uint8)}

    return TrainTask(
        models={"toy": model},
        optimizers={"adam": optimizer},
        phases=[Phase("fit", "adam", loss)],
        train_data=ToyDataset(count, noise),
        val_data=ToyDataset(8, 0.0, seed=2),
        evaluate=evaluate,
        sample=sample,
    )


def _worker(run_dir: Path, steps: int, global_batch: int) -> FitResult:
    env = init_distributed("cpu")
    seed_everything(0)
    task = build_toy_task()
    config = LoopConfig(
        steps=steps,
        batch_size=global_batch,
        val_every=3,
        checkpoint_every=0,
        progress=False,
        tensorboard=False,
    )
    result = fit(task, config, run_dir, env)
    if env.is_main:
        torch.save(task.models["toy"].state_dict(), run_dir / "final.pt")
        torch.save(result.val_metrics, run_dir / "val.pt")
    shutdown_distributed(env)
    return result


if __name__ == "__main__":
    _worker(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
