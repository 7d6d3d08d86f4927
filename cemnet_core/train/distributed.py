"""Single-process and multi-process (``torchrun``) training support.

``torchrun --nproc_per_node P cemnet train ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them and joins the process group
(gloo on CPU, nccl on CUDA, one GPU per local rank). Without them training runs as one process and every
helper here is a no-op.

Semantics, chosen so that P processes with a global batch G give the result of one process with batch G:

- :class:`ResumableBatchSampler` shuffles with a generator seeded by ``(seed, epoch)`` only, cuts the epoch
  into global batches of G indices, and hands rank r the r-th slice of G/P of each; its state (epoch,
  position) is checkpointed, so a resumed run sees exactly the batches an unbroken run would.
- :func:`average_gradients` all-reduces the gradients after ``backward`` (the mean of per-rank means of
  equal-sized slices is the global mean). This is DistributedDataParallel's arithmetic done explicitly:
  stages call model methods other than ``forward`` (``loss``, ``encode``), which DDP's hooks would not see.
- :func:`broadcast_module_state` makes every rank start from rank 0's weights and keeps buffers (BatchNorm
  statistics) equal after each step, as DDP's ``broadcast_buffers`` does.
- Only rank 0 writes (checkpoints, logs, samples); metrics are averaged over ranks before logging.

Exception: BatchNorm. Each rank normalises with the statistics of its own G/P items, as DDP does without
SyncBatchNorm, and torch's ``SyncBatchNorm`` runs only on GPUs ("SyncBatchNorm layers only work with GPU
modules", torch 2.11). So the equality above is exact for networks without BatchNorm (the loop test's) and
approximate for the stages whose networks use ``layers.ConvBN`` blocks. Measured with ``torchrun
--nproc_per_node 2 -m cemnet_cli.main train a2m --run-dir ... --steps 30 --set preset=tiny --set
loop.batch_size=8`` against one process: training loss 0.01475 / 0.01506 / 0.01428 vs 0.01492 / 0.01534 /
0.01401 at steps 5 / 10 / 15, final validation loss 0.00744 vs 0.00772.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from cemnet_core.errors import ConfigError

_BUCKET_ELEMENTS = 25_000_000  # about 100 MB of fp32 per all-reduce call


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits: ``rank`` of ``world_size`` processes, on ``device``."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on the one process that writes files (rank 0)."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1


def pick_device(requested: str | None = None, local_rank: int = 0) -> torch.device:
    """``cuda`` when present, else ``cpu``, unless ``requested`` (``cpu``, ``cuda``, ``cuda:i``) is given."""
    name = (requested or ("cuda" if torch.cuda.is_available() else "cpu")).lower()
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name} was asked for but no CUDA GPU is visible; use --device cpu")
        if name == "cuda":
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device(name)
    raise ConfigError(f"unknown device {requested!r}; use cpu, cuda or cuda:<index>")


def init_distributed(requested_device: str | None = None) -> DistEnv:
    """Join the ``torchrun`` process group described by the environment, or describe a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size)
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown_distributed(env: DistEnv) -> None:
    """Leave the process group (call once at the end of training)."""
    if env.is_distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    """Wait until every rank gets here (e.g. rank 0 finished writing a checkpoint)."""
    if env.is_distributed:
        dist.barrier()


def _buckets(tensors: list[torch.Tensor]) -> Iterator[list[torch.Tensor]]:
    bucket: list[torch.Tensor] = []
    size = 0
    for tensor in tensors:
        if bucket and (size + tensor.numel() > _BUCKET_ELEMENTS or tensor.dtype != bucket[0].dtype):
            yield bucket
            bucket, size = [], 0
        bucket.append(tensor)
        size += tensor.numel()
    if bucket:
        yield bucket


def average_gradients(parameters: Iterable[nn.Parameter], env: DistEnv) -> None:
    """Replace each gradient by its mean over ranks (parameters without a gradient get zeros first)."""
    if not env.is_distributed:
        return
    params = [param for param in parameters if param.requires_grad]
    for param in params:
        if param.grad is None:  # every rank must join every all-reduce, even if its loss skipped a param
            param.grad = torch.zeros_like(param)
    for bucket in _buckets([param.grad for param in params]):  # type: ignore[misc]
        flat = torch.cat([grad.reshape(-1) for grad in bucket])  # (sum of numel,)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= env.world_size
        offset = 0
        for grad in bucket:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()


def broadcast_module_state(modules: Iterable[nn.Module], env: DistEnv, buffers_only: bool = False) -> None:
    """Copy rank 0's parameters (unless ``buffers_only``) and buffers to every other rank."""
    if not env.is_distributed:
        return
    for module in modules:
        tensors = list(module.buffers()) if buffers_only else [*module.parameters(), *module.buffers()]
        for tensor in tensors:
            dist.broadcast(tensor.data, src=0)


def all_reduce_mean(values: Mapping[str, float], env: DistEnv) -> dict[str, float]:
    """The mean over ranks of each named float (every rank must pass the same names)."""
    totals = all_reduce_sum(values, env)
    if not env.is_distributed:
        return totals
    return {name: total / env.world_size for name, total in totals.items()}


def all_reduce_sum(values: Mapping[str, float], env: DistEnv) -> dict[str, float]:
    """The sum over ranks of each named float (every rank must pass the same names)."""
    if not env.is_distributed or not values:
        return dict(values)
    names = sorted(values)
    packed = torch.tensor([float(values[name]) for name in names], dtype=torch.float64, device=_comm(env))
    dist.all_reduce(packed, op=dist.ReduceOp.SUM)
    return dict(zip(names, packed.tolist(), strict=True))


def any_rank(flag: bool, env: DistEnv) -> bool:
    """True if ``flag`` is true on any rank (e.g. one rank saw Ctrl-C), so all ranks stop together."""
    if not env.is_distributed:
        return flag
    packed = torch.tensor([1.0 if flag else 0.0], device=_comm(env))
    dist.all_reduce(packed, op=dist.ReduceOp.MAX)
    return bool(packed.item() > 0)


def _comm(env: DistEnv) -> torch.device:
    return env.device if env.device.type == "cuda" else torch.device("cpu")


class ResumableBatchSampler:
    """Deterministic, resumable batches of dataset indices for this rank (see the module docstring).

    Each epoch is a permutation of ``range(num_items)`` from ``torch.Generator().manual_seed(seed + epoch)``
    (or the identity when ``shuffle`` is False), cut into ``batches_per_epoch`` global batches of
    ``global_batch`` indices (the incomplete tail is dropped so every step has the same size); this rank
    gets items ``[rank * b, (rank + 1) * b)`` of each, ``b = global_batch / world_size``.
    """

    def __init__(
        self,
        num_items: int,
        global_batch: int,
        seed: int,
        env: DistEnv,
        shuffle: bool = True,
    ) -> None:
        if global_batch < 1:
            raise ConfigError(f"batch size must be positive, got {global_batch}; set --set loop.batch_size=8")
        if global_batch % env.world_size:
            raise ConfigError(
                f"global batch {global_batch} does not split over {env.world_size} processes; "
                f"choose a multiple of {env.world_size} with --set loop.batch_size=..."
            )
        self.num_items = num_items
        self.global_batch = global_batch
        self.local_batch = global_batch // env.world_size
        self.seed = seed
        self.rank = env.rank
        self.shuffle = shuffle
        self.epoch = 0
        self.position = 0  # global batches of this epoch already consumed

    @property
    def batches_per_epoch(self) -> int:
        """Number of full global batches in one epoch."""
        return self.num_items // self.global_batch

    def _order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.num_items))
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(self.num_items, generator=generator).tolist()

    def epoch_batches(self) -> Iterator[list[int]]:
        """This rank's batches from the current position to the end of the current epoch."""
        order = self._order()
        for batch in range(self.position, self.batches_per_epoch):
            start = batch * self.global_batch + self.rank * self.local_batch
            yield order[start : start + self.local_batch]

    def advance(self) -> None:
        """Record that one batch of the current epoch has been consumed."""
        self.position += 1

    def next_epoch(self) -> None:
        """Move to the start of the next epoch."""
        self.epoch += 1
        self.position = 0

    def state_dict(self) -> dict[str, int]:
        """What a checkpoint must keep to continue the data order exactly."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "seed": self.seed,
            "num_items": self.num_items,
            "global_batch": self.global_batch,
        }

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Continue from ``state``; the dataset size and global batch must match the checkpointed run."""
        if state["num_items"] != self.num_items or state["global_batch"] != self.global_batch:
            raise ConfigError(
                f"the checkpoint was trained on {state['num_items']} items with global batch "
                f"{state['global_batch']}, now {self.num_items} and {self.global_batch}; resume with "
                "the same --data and batch size, or start a new --run"
            )
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self.seed = int(state["seed"])


def shard_indices(num_items: int, env: DistEnv) -> list[int]:
    """This rank's share of an evaluation set (every item exactly once over all ranks)."""
    return list(range(env.rank, num_items, env.world_size))
