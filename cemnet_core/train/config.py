"""Training configuration: TOML files + ``--set key=value`` overrides, type-checked against dataclasses.

A stage's config is a frozen dataclass whose fields are JSON-safe scalars, tuples/lists of them, ``X | None``
or nested frozen dataclasses (the model config, the loop config). Resolution, in order:

1. the preset named by the ``preset`` key (from the file or an override; the stage config's default
   otherwise): ``cls.presets()[name]()`` gives the starting instance;
2. the TOML file (tables map to nested dataclasses);
3. each ``--set a.b.c=value`` override, parsed by the type of field ``a.b.c``.

Unknown keys and values of the wrong type raise :class:`ConfigError` naming the key and the expected type
(the type checks are :func:`cemnet_core.configs.config_from_dict`, shared with the models' configs).
The resolved config is written to ``<run>/config.toml`` before the first step (:func:`save_config`), and a
run resumes with the exact config it started with (:func:`load_config`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from cemnet_core.configs import config_from_dict, config_to_dict
from cemnet_core.errors import ConfigError, OutputError
from cemnet_core.fileio import temp_beside

T = TypeVar("T")
CONFIG_FILE = "config.toml"


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b=value`` into (["a", "b"], value) with ``value`` parsed as a TOML value.

    A value that is not valid TOML (``cpu``, ``runs/x``) is a plain string; ``none``/``null`` is None.
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {text!r} is not of the form key=value (e.g. --set loop.steps=100)")
    value = value.strip()
    if value.lower() in ("none", "null"):
        return key.split("."), None
    try:
        parsed: Any = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.split("."), parsed


def _nest(keys: list[str], value: Any, into: dict[str, Any]) -> None:
    node = into
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override of {'.'.join(keys)} conflicts with a value set for {key!r}")
        node = child
    node[keys[-1]] = value


def _merge(into: dict[str, Any], update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def resolve_config(
    cls: type[T], path: Path | None = None, overrides: Sequence[str] = (), stage: str | None = None
) -> T:
    """The stage config from its preset, an optional TOML file and ``--set`` overrides (see module doc).

    A file may carry a top-level ``stage`` key, as a run's own resolved ``config.toml`` does; it must equal
    ``stage`` (when given) and is dropped, so a run's config can start another run of the same stage.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist; check the --config path") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        saved_stage = data.pop("stage", stage)
        if stage is not None and saved_stage != stage:
            raise ConfigError(
                f"config file {path} is for the {saved_stage!r} stage, not {stage!r}; train "
                f"{saved_stage!r} with it, or give a config of the {stage!r} stage"
            )
    for text in overrides:
        keys, value = parse_override(text)
        override: dict[str, Any] = {}
        _nest(keys, value, override)
        _merge(data, override)
    preset = data.pop("preset", None)
    base = _preset(cls, preset)
    return config_from_dict(cls, data, base=base)


def _preset(cls: type[T], name: Any) -> T:
    presets = cls.presets()  # type: ignore[attr-defined]
    if name is None:
        return cls()
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r} for {cls.__name__}; choose one of {', '.join(presets)}")
    return presets[name]()


def to_toml(data: Mapping[str, Any]) -> str:
    """Serialise a nested dict of scalars / lists / tables to TOML (what :func:`tomllib.loads` reads back)."""
    lines: list[str] = []
    _write_table(data, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _write_table(data: Mapping[str, Any], prefix: list[str], lines: list[str]) -> None:
    scalars = {key: value for key, value in data.items() if not isinstance(value, Mapping)}
    tables = {key: value for key, value in data.items() if isinstance(value, Mapping)}
    if prefix and scalars:
        lines.append("")
        lines.append(f"[{'.'.join(prefix)}]")
    for key, value in scalars.items():
        if value is None:
            continue  # TOML has no null: a missing key means the default, which is None for X | None fields
        lines.append(f"{key} = {_toml_value(value)}")
    for key, value in tables.items():
        _write_table(value, [*prefix, key], lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {"nan": "nan", "inf": "inf", "-inf": "-inf"}[repr(value)]
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise ConfigError(f"cannot write {value!r} ({type(value).__name__}) to TOML")


def save_config(config: Any, run_dir: Path, extra: Mapping[str, Any] | None = None) -> Path:
    """Write the resolved ``config`` (plus top-level ``extra`` keys such as the stage name) atomically."""
    data = {**(extra or {}), **config_to_dict(config)}
    target = Path(run_dir) / CONFIG_FILE
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_beside(target)
        try:
            tmp.write_text(to_toml(data), encoding="utf-8")
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc}; choose a writable --run folder") from exc
    return target


def load_config(cls: type[T], run_dir: Path, ignore: Sequence[str] = ()) -> T:
    """Read back what :func:`save_config` wrote (top-level ``ignore`` keys are dropped first)."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path} is missing, so this run cannot be resumed; start it again without --resume"
        ) from exc
    for key in ignore:
        data.pop(key, None)
    return config_from_dict(cls, data, base=cls())
