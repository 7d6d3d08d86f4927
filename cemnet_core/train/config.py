"""Training configuration: TOML files + ``--set key=value`` overrides, type-checked against dataclasses.

A stage's config is a frozen dataclass whose fields are JSON-safe scalars, tuples/lists of them, ``X | None``
or nested frozen dataclasses (the model config, the loop config). Resolution, in order:

1. the preset named by the ``preset`` key (from the file or an override; the stage config's default
   otherwise): ``cls.presets()[name]()`` gives the starting instance;
2. the TOML file (tables map to nested dataclasses);
3. each ``--set a.b.c=value`` override, parsed by the type of field ``a.b.c``.

Unknown keys and values of the wrong type raise :class:`ConfigError` naming the key and the expected type.
The resolved config is written to ``<run>/config.toml`` before the first step (:func:`save_config`), and a
run resumes with the exact config it started with (:func:`load_config`).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from cemnet_core.errors import ConfigError, OutputError
from cemnet_core.fileio import temp_beside

T = TypeVar("T")
CONFIG_FILE = "config.toml"


def config_to_dict(config: Any) -> dict[str, Any]:
    """A nested plain dict (tuples become lists) of a dataclass instance."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def config_from_dict(cls: type[T], data: Mapping[str, Any], base: T | None = None, where: str = "") -> T:
    """Build ``cls`` from ``data``, type-checking every value; missing keys keep ``base``'s (or defaults).

    Raises :class:`ConfigError` for unknown keys or values that do not fit the field's type.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'} must be a table of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, raw in data.items():
        path = f"{where}.{key}" if where else key
        if key not in fields:
            raise ConfigError(_unknown_key(path, key, list(fields)))
        current = getattr(base, key) if base is not None else None
        values[key] = _coerce(hints[key], raw, path, current)
    try:
        if base is not None:
            return dataclasses.replace(base, **values)  # type: ignore[type-var]
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{where or cls.__name__}: {exc}; fix the config file or the --set overrides"
        ) from exc


def _unknown_key(path: str, key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown config key {path!r}{hint}; valid keys here: {', '.join(sorted(known))}"


def _coerce(hint: Any, raw: Any, path: str, current: Any = None) -> Any:
    """Check ``raw`` (from TOML or a parsed override) against type ``hint`` and convert lists to tuples."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        base = current if dataclasses.is_dataclass(current) else None
        return config_from_dict(hint, raw, base=base, where=path)
    if origin in (typing.Union, types.UnionType):
        if raw is None and type(None) in args:
            return None
        options = [arg for arg in args if arg is not type(None)]
        errors = []
        for option in options:
            try:
                return _coerce(option, raw, path, current)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{path}: {raw!r} fits none of {hint}")
    if origin is typing.Literal:
        if raw not in args:
            raise ConfigError(f"{path} must be one of {', '.join(map(repr, args))}, got {raw!r}")
        return raw
    if origin in (tuple, list):
        if not isinstance(raw, list | tuple):
            raise ConfigError(f"{path} must be a list like [1, 2], got {raw!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(raw):
                raise ConfigError(f"{path} must have {len(args)} items, got {len(raw)}")
            items = [
                _coerce(arg, item, f"{path}[{i}]")
                for i, (arg, item) in enumerate(zip(args, raw, strict=True))
            ]
        else:
            item_hint = args[0] if args else Any
            items = [_coerce(item_hint, item, f"{path}[{i}]") for i, item in enumerate(raw)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{path} must be a table, got {raw!r}")
        value_hint = args[1] if args else Any
        return {str(key): _coerce(value_hint, item, f"{path}.{key}") for key, item in raw.items()}
    if hint is Any:
        return raw
    if hint is bool:
        if not isinstance(raw, bool):
            raise ConfigError(f"{path} must be true or false, got {raw!r}")
        return raw
    if hint is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ConfigError(f"{path} must be an integer, got {raw!r}")
        return raw
    if hint is float:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ConfigError(f"{path} must be a number, got {raw!r}")
        return float(raw)
    if hint is str:
        if not isinstance(raw, str):
            raise ConfigError(f"{path} must be a string, got {raw!r}")
        return raw
    raise ConfigError(f"{path}: fields of type {hint} cannot be configured from TOML")


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
