"""Config dataclasses <-> plain dicts: the one type-checked (de)serialiser of every ``XConfig``.

A config (STYLE section 4) is a frozen dataclass whose fields are JSON-safe scalars, tuples/lists of them,
``X | None``, ``Literal`` values or nested frozen dataclasses. :func:`config_to_dict` gives the nested plain
dict that a release folder's ``config.json`` and a run's ``config.toml`` store (tuples become lists);
:func:`config_from_dict` reads one back, checking every value against the field's type (lists become
tuples, integers become floats where a float is declared) and refusing unknown keys with a
:class:`ConfigError` that names them. Config classes expose the pair as ``to_dict()`` / ``from_dict()``,
each a one-line delegation to these functions.

Hook for stored forms that changed: a config class whose older ``config.json`` files lack keys that now
have other defaults upgrades the dict in its own ``from_dict`` before delegating here (e.g.
:meth:`cemnet_core.models.renderer.RendererConfig.from_dict` loads a config without ``motion_prior`` /
``composite`` / ``pixel_weight`` as the paper's renderer). :func:`config_from_dict` itself never guesses.

A foundation module: it imports only :mod:`cemnet_core.errors`, so models, data, training and evaluation
can all use it.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from cemnet_core.errors import ConfigError

T = TypeVar("T")


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

    ``where`` is the dotted path of ``data`` inside an outer config, for messages.

    Raises:
        ConfigError: ``data`` is not a mapping, has unknown keys (all named, with the closest valid key)
            or values that do not fit the field's type, or the config class rejects the values.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'} must be a table of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [key for key in data if key not in fields]
    if unknown:
        raise ConfigError(_unknown_keys(cls, where, unknown, list(fields)))
    values: dict[str, Any] = {}
    for key, raw in data.items():
        path = f"{where}.{key}" if where else key
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


def _unknown_keys(cls: type, where: str, unknown: list[str], known: list[str]) -> str:
    named = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        named.append(f"{(f'{where}.{key}' if where else str(key))!r}{hint}")
    return (
        f"unknown keys in {where or cls.__name__}: {', '.join(named)}; remove or rename them "
        f"(valid keys here: {', '.join(sorted(known))})"
    )


def _coerce(hint: Any, raw: Any, path: str, current: Any = None) -> Any:
    """Check ``raw`` (from JSON, TOML or a parsed override) against type ``hint``; lists become tuples."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        base = current if dataclasses.is_dataclass(current) else None
        return config_from_dict(hint, raw, base=base, where=path)  # type: ignore[arg-type]
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
