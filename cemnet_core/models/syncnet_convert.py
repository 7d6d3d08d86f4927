"""Conversion of syncnet_python's ``syncnet_v2.model`` into a ``syncnet`` release folder (STYLE section 5).

syncnet_python ships its SyncNet v2 weights (:class:`~cemnet_core.models.syncnet.SyncNet`, the judge of the
LipSync metric, Sec. IV-D) as a pickled PyTorch state dict. It is read once, safely
(``torch.load(weights_only=True)``: a file that pickles Python objects is refused), its keys are mapped onto
:class:`~cemnet_core.models.syncnet.SyncNet` (they already carry the ``S`` names: only wrapper prefixes are
stripped and missing batch-norm counters filled). :func:`cemnet_core.pretrained.convert_syncnet_checkpoint`
writes the result as a release folder, the one :func:`cemnet_core.pretrained.load_syncnet` reads.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from cemnet_core.errors import WeightsError
from cemnet_core.models.syncnet import SyncNet, SyncNetConfig

_PREFIXES = ("__S__.", "module.", "S.")


def load_syncnet_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read syncnet_python's ``syncnet_v2.model`` (a pickled state dict) safely, with ``weights_only=True``.

    Accepts a plain ``{name: tensor}`` dict, or one nested under ``state_dict``/``model``, with optional
    ``__S__.``/``module.`` prefixes. A file that pickles a whole module cannot be read safely and is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"SyncNet checkpoint not found at {path}: download syncnet_v2.model "
            "(syncnet_python's download_model.sh) and pass its path."
        )
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise WeightsError(
            f"{path} is not a plain state dict: it pickles Python objects (probably a whole nn.Module), "
            "which cannot be loaded without running arbitrary code. Load it once in a trusted environment, "
            "save `model.state_dict()` with torch.save, and convert that file instead."
        ) from error
    except (RuntimeError, OSError, EOFError) as error:
        raise WeightsError(
            f"{path} is not a readable PyTorch checkpoint ({error}); download it again."
        ) from error
    if isinstance(loaded, dict):
        for key in ("state_dict", "model"):
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsError(f"{path} does not hold a {{name: tensor}} state dict; it is not syncnet_v2.model.")
    state = {}
    for key, tensor in loaded.items():
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        state[key] = tensor
    return state


def syncnet_from_state(state: dict[str, torch.Tensor], config: SyncNetConfig | None = None) -> SyncNet:
    """Build a :class:`SyncNet` and load an original-named state dict; mismatches raise :class:`WeightsError`.

    Batch-norm ``num_batches_tracked`` counters, absent from checkpoints older than PyTorch 0.4, default to 0.
    """
    model = SyncNet(config or SyncNetConfig.paper())
    own = model.state_dict()
    missing = sorted(k for k in own if k not in state and not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in state if k not in own)
    if missing or unexpected:
        raise WeightsError(
            f"checkpoint keys do not match SyncNet v2: missing {missing[:4]}, "
            f"unexpected {unexpected[:4]}; is this syncnet_v2.model?"
        )
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[key].shape):
            raise WeightsError(
                f"{key}: checkpoint shape {tuple(tensor.shape)} != SyncNet v2 shape "
                f"{tuple(own[key].shape)}; is this syncnet_v2.model?"
            )
    full = {key: state.get(key, own[key]) for key in own}
    model.load_state_dict(full)
    return model
