"""The one mixed-precision helper of training (STYLE section 7).

Every forward pass of the training loop runs inside :meth:`Precision.autocast`; nothing else in the project
turns ``torch.autocast`` on or touches ``GradScaler`` (the landmark spline,
:func:`cemnet_core.models.landmark_warp.tps_grid`, turns it off for its float32 evaluation). Choices:

- ``"auto"``: bf16 on a CUDA device that supports it, fp32 everywhere else (CPU autocast changes the numbers
  of CPU runs, and on a CPU without native bf16 it is slower, so CPU stays fp32 unless asked).
- ``"native"``: bf16 wherever the hardware computes it natively: a CUDA device with bf16, or a CPU with
  Intel AMX (``amx_bf16``, whose tile units oneDNN uses for bf16 convolutions and matmuls); fp32 elsewhere.
  Measured on the project's 2-core Xeon with AMX (2026-12-07, ``cemnet train`` 40-60 steps each, same
  data): the ``small`` renderer 1.25 -> 2.00 steps/s (1.6x), Audio2Mouth (the starter's sizes) 5.2 -> 6.3
  (1.2x), the ``small`` lip-sync expert 7.4 -> 7.4 (no gain). The starter recipe trains its renderer so.
- ``"fp32"``, ``"bf16"``, ``"fp16"``: forced. fp16 needs a loss scaler (``GradScaler``) because its small
  range underflows gradients; bf16 has fp32's range and needs none.

The scaler is always created (disabled when not needed) so that checkpoints have the same layout whatever
the precision.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from cemnet_core.errors import ConfigError

PRECISIONS = ("auto", "native", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """A resolved precision: ``name`` is ``fp32``, ``bf16`` or ``fp16`` on ``device``."""

    name: str
    device: torch.device

    @property
    def dtype(self) -> torch.dtype | None:
        """Autocast dtype, or ``None`` for plain fp32."""
        return _DTYPES.get(self.name)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Context for a forward pass: autocast to :attr:`dtype`, or nothing for fp32."""
        if self.dtype is None:
            yield
            return
        with torch.autocast(device_type=self.device.type, dtype=self.dtype):
            yield

    def make_scaler(self) -> torch.amp.GradScaler:
        """A ``GradScaler`` that is active only for fp16 (a no-op pass-through otherwise)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.name == "fp16")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has Intel AMX tiles and AVX-512 bf16 (oneDNN then runs bf16 natively)."""
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(amx and avx512_bf16 and amx() and avx512_bf16())


def resolve_precision(requested: str, device: torch.device) -> Precision:
    """Turn ``auto|native|fp32|bf16|fp16`` into a :class:`Precision` that ``device`` can run.

    Raises :class:`ConfigError` for an unknown name, or for fp16/bf16 on hardware without it.
    """
    if requested not in PRECISIONS:
        raise ConfigError(
            f"precision {requested!r} is not one of {', '.join(PRECISIONS)}; set e.g. "
            "--set loop.precision=auto"
        )
    if requested == "auto":
        use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return Precision("bf16" if use_bf16 else "fp32", device)
    if requested == "native":
        if device.type == "cuda":
            native = torch.cuda.is_bf16_supported()
        else:
            native = device.type == "cpu" and cpu_has_native_bf16()
        return Precision("bf16" if native else "fp32", device)
    if requested == "fp16" and device.type != "cuda":
        raise ConfigError("fp16 training needs a CUDA device; use --set loop.precision=fp32 (or bf16) on CPU")
    if requested == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("this GPU has no bf16 support; use --set loop.precision=fp16 or fp32")
    return Precision(requested, device)
