"""The one config (de)serialiser: dataclass -> plain dict -> the same dataclass, type-checked."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import pytest

from cemnet_core.configs import config_from_dict, config_to_dict
from cemnet_core.errors import ConfigError
from cemnet_core.models import MODEL_KINDS


@dataclass(frozen=True)
class Inner:
    widths: tuple[int, ...] = (4, 8)
    mode: Literal["lsgan", "hinge"] = "lsgan"


@dataclass(frozen=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    scale: float = 1.0
    size: tuple[int, int] = (64, 32)
    name: str | None = None
    on: bool = True


def test_round_trip_through_json_gives_the_same_config() -> None:
    config = Outer(inner=Inner(widths=(1, 2, 3), mode="hinge"), scale=0.5, name="x", on=False)
    data = config_to_dict(config)
    assert data == {
        "inner": {"widths": [1, 2, 3], "mode": "hinge"},
        "scale": 0.5,
        "size": [64, 32],
        "name": "x",
        "on": False,
    }
    assert config_from_dict(Outer, json.loads(json.dumps(data))) == config


def test_values_are_converted_to_the_declared_types() -> None:
    config = config_from_dict(Outer, {"scale": 2, "size": [1, 2], "inner": {"widths": [5]}})
    assert isinstance(config.scale, float) and config.scale == 2.0
    assert config.size == (1, 2) and config.inner == Inner(widths=(5,))
    assert config_from_dict(Outer, {"name": None}).name is None


def test_missing_keys_keep_the_base_or_the_defaults() -> None:
    base = Outer(scale=3.0, inner=Inner(mode="hinge"))
    assert config_from_dict(Outer, {"on": False}, base=base) == Outer(
        scale=3.0, inner=Inner(mode="hinge"), on=False
    )
    assert config_from_dict(Outer, {"inner": {"widths": [2]}}, base=base).inner == Inner((2,), "hinge")
    assert config_from_dict(Outer, {}) == Outer()


def test_unknown_keys_are_all_named_with_the_closest_valid_key() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown keys in Outer: 'scael' \(did you mean 'scale'\?\), 'zzz'"
    ):
        config_from_dict(Outer, {"scael": 1.0, "zzz": 1})
    with pytest.raises(ConfigError, match=r"unknown keys in inner: 'inner\.mod' \(did you mean 'mode'\?\)"):
        config_from_dict(Outer, {"inner": {"mod": "hinge"}})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"scale": "big"}, "scale must be a number"),
        ({"scale": True}, "scale must be a number"),
        ({"on": 1}, "on must be true or false"),
        ({"size": [1, 2, 3]}, "size must have 2 items"),
        ({"size": 4}, "size must be a list"),
        ({"inner": {"widths": [1.5]}}, r"inner\.widths\[0\] must be an integer"),
        ({"inner": {"mode": "wgan"}}, "inner.mode must be one of 'lsgan', 'hinge'"),
        ({"inner": 3}, "inner must be a table"),
    ],
)
def test_values_of_the_wrong_type_say_what_is_expected(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict(Outer, data)


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_every_model_config_delegates_to_the_generic_pair(kind: str) -> None:
    config_cls, _ = MODEL_KINDS[kind]
    config = config_cls.tiny()
    assert config.to_dict() == config_to_dict(config)
    assert config_cls.from_dict(config.to_dict()) == config_from_dict(config_cls, config.to_dict()) == config
