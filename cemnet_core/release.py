"""Release folders of our own sub-models (STYLE section 5): how a trained model is stored and loaded.

A release is a folder: ``model.safetensors`` (metadata ``cemnet_version`` and ``kind``) + ``config.json``
(``{"kind", "config", "cemnet_version"}``) + ``checksums.json`` (size and sha256 of every other file,
:func:`write_manifest`), written atomically by :func:`save_release` and read by :func:`load_release`, which
first checks every file against ``checksums.json`` (:func:`verify_manifest`), so data damaged after export
(a flipped block inside the tensors, which still parse) is refused instead of giving a broken face. A folder
without ``checksums.json`` (exported before it existed) still loads, unchecked (``Release.verified`` is
False); safetensors' own header checks still catch truncation there.

Most callers want a model, not tensors: :func:`save_model` writes one (its kind from
:data:`cemnet_core.models.MODEL_KINDS`, its config from ``model.config``) and :func:`load_model` builds the
model a folder holds, loads its weights and, by default, freezes it (``eval()``, ``requires_grad_(False)``):
the one way every frozen upstream network, judge and generation stage is loaded. Which folder holds which
role of a weights bundle is :mod:`cemnet_core.bundle`; the registry of third-party files is
:mod:`cemnet_core.weights`.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn

from cemnet_core import __version__
from cemnet_core.errors import ChecksumError, ConfigError, OutputError, WeightsError
from cemnet_core.fileio import make_folder, sha256_file, temp_beside, write_error
from cemnet_core.models import MODEL_KINDS, build_model

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CHECKSUMS_FILE = "checksums.json"  # {"format": 1, "files": {name: {"size": int, "sha256": hex}}}
ModelBuilder = Callable[[Mapping[str, Any]], nn.Module]  # config dict -> model with random weights


@dataclass
class Release:
    """A loaded release folder: tensors, the model ``kind``, its config dict and the safetensors metadata."""

    state_dict: dict[str, torch.Tensor]
    kind: str
    config: dict[str, Any]
    metadata: dict[str, str] = field(default_factory=dict)
    verified: bool = False  # every file matched checksums.json (False: an older folder without one)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    try:
        temp = temp_beside(path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; choose a writable folder") from exc
    try:
        write(temp)
        os.replace(temp, path)
    except OSError as exc:
        error = write_error(path, exc)  # before the partial file frees its space
        temp.unlink(missing_ok=True)
        raise error from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def canonical_safetensors(data: bytes) -> bytes:
    """safetensors bytes with a canonical header: metadata keys sorted, tensors in data order.

    The library writes its metadata map from a hash map, in a different order from one call to the next,
    so identical weights gave different file bytes (and ``sha256``, e.g. ``results.json``'s
    ``weights_sha256``). Same JSON, same length: the data part and every offset stay as they are.
    """
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    metadata = header.pop("__metadata__", None)
    ordered: dict[str, Any] = {} if metadata is None else {"__metadata__": dict(sorted(metadata.items()))}
    ordered.update(sorted(header.items(), key=lambda item: (item[1]["data_offsets"][0], item[0])))
    text = json.dumps(ordered, separators=(",", ":")).encode("utf-8")
    if len(text) > length:  # not the library's compact JSON: keep its bytes
        return data
    return data[:8] + text + b" " * (length - len(text)) + data[8 + length :]


def save_release(
    folder: str | os.PathLike[str],
    model: torch.nn.Module | Mapping[str, torch.Tensor],
    kind: str,
    config: Mapping[str, Any] | Any,
) -> Path:
    """Write ``folder/model.safetensors`` + ``folder/config.json`` atomically; returns the folder.

    ``config`` is a JSON-safe dict or a config object with ``to_dict()``.
    """
    folder = Path(folder)
    config_dict = dict(config.to_dict()) if hasattr(config, "to_dict") else dict(config)
    state = model.state_dict() if isinstance(model, torch.nn.Module) else model
    # Clone so that tied/shared tensors are stored separately (safetensors refuses shared storage).
    tensors = {key: value.detach().to("cpu").contiguous().clone() for key, value in state.items()}
    metadata = {"cemnet_version": __version__, "kind": kind}
    document = json.dumps({"kind": kind, "config": config_dict, "cemnet_version": __version__}, indent=2)
    make_folder(folder)
    data = canonical_safetensors(safetensors_bytes(tensors, metadata=metadata))
    _atomic_write(folder / MODEL_FILE, lambda temp: temp.write_bytes(data))
    _atomic_write(folder / CONFIG_FILE, lambda temp: temp.write_text(document + "\n", encoding="utf-8"))
    write_manifest(folder)
    return folder


def _release_files(folder: Path) -> list[Path]:
    """The files a manifest covers: every visible regular file of ``folder`` except the manifest."""
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.name != CHECKSUMS_FILE
    )


def write_manifest(folder: str | os.PathLike[str]) -> Path:
    """Record the size and sha256 of every file of a release folder in ``folder/checksums.json``.

    Called by :func:`save_release` once the files are in place; call it again after adding a file (a model
    card, say) to a release. Returns the manifest's path.
    """
    folder = Path(folder)
    files = {
        path.name: {"size": path.stat().st_size, "sha256": sha256_file(path)}
        for path in _release_files(folder)
    }
    document = json.dumps({"format": 1, "files": files}, indent=2, sort_keys=True) + "\n"
    target = folder / CHECKSUMS_FILE
    _atomic_write(target, lambda temp: temp.write_text(document, encoding="utf-8"))
    return target


def _read_manifest(folder: Path) -> dict[str, tuple[int, str]] | None:
    """``checksums.json`` as {file name: (size, sha256)}; None when the folder has none."""
    manifest = folder / CHECKSUMS_FILE
    if not manifest.is_file():
        return None
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        return {str(name): (int(item["size"]), str(item["sha256"]).lower()) for name, item in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WeightsError(
            f"{manifest} is unreadable ({exc}); export the release again or download it again"
        ) from exc


def verified_files(folder: str | os.PathLike[str]) -> list[str]:
    """The files of a release folder that pass their checks: ``checksums.json`` and every file it lists.

    Raises:
        WeightsError: the folder has no ``checksums.json`` (its files could not be checked).
        ChecksumError: a listed file is missing or differs (:func:`verify_manifest`).
    """
    folder = Path(folder)
    if not verify_manifest(folder):
        raise WeightsError(
            f"{folder} has no {CHECKSUMS_FILE}, so its files cannot be checked; export the release again "
            "(`cemnet export RUN DST` writes one)"
        )
    return [CHECKSUMS_FILE, *sorted(_read_manifest(folder) or {})]


def verify_manifest(folder: str | os.PathLike[str]) -> bool:
    """Check every file listed in ``folder/checksums.json``; False when there is no manifest (not checked).

    Raises:
        ChecksumError: a listed file is missing, has another size or another sha256 (the message names it).
        WeightsError: the manifest itself cannot be read.
    """
    folder = Path(folder)
    expected = _read_manifest(folder)
    if expected is None:
        return False
    redo = "export it again (`cemnet export RUN DST`) or download the release again"
    for name, (size, sha256) in sorted(expected.items()):
        path = folder / name
        if not path.is_file():
            raise ChecksumError(f"{path} is missing but listed in {CHECKSUMS_FILE}; {redo}")
        actual_size = path.stat().st_size
        if actual_size != size:
            raise ChecksumError(
                f"{path} has {actual_size} bytes where {CHECKSUMS_FILE} recorded {size} at export: "
                f"the file is truncated or was changed; {redo}"
            )
        if sha256_file(path) != sha256:
            raise ChecksumError(
                f"{path} does not match the sha256 {CHECKSUMS_FILE} recorded at export: the file is "
                f"damaged or was changed; {redo}"
            )
    return True


def load_release(folder: str | os.PathLike[str], kind: str | None = None) -> Release:
    """Read a release folder written by :func:`save_release`; ``kind``, if given, must match its kind."""
    folder = Path(folder)
    model_file, config_file = folder / MODEL_FILE, folder / CONFIG_FILE
    missing = [p.name for p in (model_file, config_file) if not p.is_file()]
    if missing:
        raise WeightsError(
            f"{folder} is not a release folder (missing {', '.join(missing)}); give a folder "
            "written by `cemnet train ... ` export or `save_release`"
        )
    verified = verify_manifest(folder)
    try:
        document = json.loads(config_file.read_text(encoding="utf-8"))
        stored_kind, config = str(document["kind"]), dict(document["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"{config_file}: unreadable release config ({exc}); re-export it") from exc
    try:
        with safe_open(str(model_file), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise WeightsError(f"{model_file}: unreadable safetensors file ({exc}); re-export it") from exc
    if metadata.get("kind", stored_kind) != stored_kind:
        raise WeightsError(
            f"{folder}: model.safetensors says kind {metadata.get('kind')!r} but config.json "
            f"says {stored_kind!r}; the two files come from different releases"
        )
    if kind is not None and stored_kind != kind:
        raise WeightsError(f"{folder} holds a {stored_kind!r} release, expected {kind!r}; check the path")
    return Release(state_dict=state, kind=stored_kind, config=config, metadata=metadata, verified=verified)


def load_state_into(model: torch.nn.Module, release: Release) -> torch.nn.Module:
    """Copy the release's tensors into ``model``; WeightsError naming missing/unexpected/mis-shaped keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(release.state_dict))
    unexpected = sorted(set(release.state_dict) - set(expected))
    mismatched = sorted(
        key
        for key in set(expected) & set(release.state_dict)
        if tuple(expected[key].shape) != tuple(release.state_dict[key].shape)
    )
    if missing or unexpected or mismatched:

        def show(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")

        parts = [
            f"{label}: {show(keys)}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched))
            if keys
        ]
        raise WeightsError(
            f"the {release.kind!r} release does not fit this model ({'; '.join(parts)}); "
            "build the model from the release's config.json"
        )
    model.load_state_dict(release.state_dict, strict=True)
    return model


# ---------------------------------------------------------------- models


def model_kind(model: nn.Module) -> str:
    """The kind :data:`cemnet_core.models.MODEL_KINDS` registers for ``model``'s class.

    Raises:
        WeightsError: the class is not registered (pass ``kind=`` to :func:`save_model`).
    """
    kinds = [kind for kind, (_, model_cls) in sorted(MODEL_KINDS.items()) if type(model) is model_cls]
    if len(kinds) != 1:
        raise WeightsError(
            f"{type(model).__name__} has no single registered model kind; pass kind= to save_model"
        )
    return kinds[0]


def save_model(folder: str | os.PathLike[str], model: nn.Module, kind: str | None = None) -> Path:
    """Write ``model`` (its weights and ``model.config``) as a release folder; returns the folder.

    kind: the release's kind; default the one :data:`~cemnet_core.models.MODEL_KINDS` registers for the
    model's class (:func:`model_kind`).
    """
    return save_release(folder, model, kind or model_kind(model), model.config)


def load_model(
    folder: str | os.PathLike[str],
    kind: str | None = None,
    frozen: bool = True,
    device: str | torch.device | None = None,
    *,
    build: ModelBuilder | None = None,
) -> nn.Module:
    """The model a release folder holds, with its weights.

    Args:
        kind: the kind the folder must hold (``WeightsError`` otherwise); None accepts any.
        frozen: put it in eval mode with ``requires_grad_(False)`` (STYLE section 6: frozen in plain
            sight); False returns it as built, trainable.
        device: where to move it; None leaves it on the CPU.
        build: config dict -> model for kinds outside :data:`~cemnet_core.models.MODEL_KINDS` (the
            evaluation judges); default :func:`cemnet_core.models.build_model`.

    Raises:
        WeightsError: not a release folder, damaged files, another kind, or tensors that do not fit.
        ConfigError: its config is not one the model's config class accepts.
    """
    release = load_release(folder, kind=kind)
    model = build_model(release.kind, release.config) if build is None else build(release.config)
    load_state_into(model, release)
    if frozen:
        model.eval().requires_grad_(False)
    if device is not None:
        model.to(torch.device(device))
    return model


def init_from_release(model: nn.Module, folder: str | os.PathLike[str], kind: str) -> nn.Module:
    """Start ``model`` from the weights of a release of ``kind`` (a training stage's ``init_from``,
    fine-tuning); the release's config must equal ``model.config``, except in the fields the config class
    lists as ``FINE_TUNABLE`` (settings that change what the weights compute, not which weights exist,
    e.g. Audio2Mouth's ``base_motion``): those take ``model.config``'s values.

    Raises:
        ConfigError: the release holds a model with other settings.
        WeightsError: as :func:`load_release`.
    """
    release = load_release(folder, kind=kind)
    config_type = type(model.config)
    saved = config_type.from_dict(release.config)
    free = {name: getattr(model.config, name) for name in getattr(config_type, "FINE_TUNABLE", ())}
    if replace(saved, **free) != model.config:
        raise ConfigError(f"init_from {folder} holds a {kind} with other settings than model; set model to "
                          "the config in its config.json")  # fmt: skip
    return load_state_into(model, release)
