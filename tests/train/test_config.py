"""Stage configs from presets, TOML files and type-checked --set overrides; saved and read back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cemnet_core.errors import ConfigError
from cemnet_core.train.config import load_config, resolve_config, save_config
from cemnet_core.train.loop import LoopConfig


@dataclass(frozen=True)
class NetConfig:
    width: int = 64
    kernel: tuple[int, int] = (3, 3)
    dropout: float | None = None


@dataclass(frozen=True)
class ToyStageConfig:
    model: NetConfig = field(default_factory=NetConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    name: str = "toy"
    weight: float = 1.0

    @classmethod
    def presets(cls) -> dict:
        return {"paper": cls, "tiny": lambda: cls(model=NetConfig(width=8), loop=LoopConfig(steps=10))}


def test_preset_file_and_overrides_apply_in_order(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('preset = "tiny"\nweight = 2\n[loop]\nsteps = 50\nlr = 0.001\n[model]\nkernel = [5, 5]\n')
    config = resolve_config(ToyStageConfig, path, ["loop.steps=7", "model.dropout=0.5", "name=run/x"])
    assert config.model == NetConfig(width=8, kernel=(5, 5), dropout=0.5)
    assert config.loop.steps == 7 and config.loop.lr == 0.001 and config.loop.batch_size == 16
    assert config.weight == 2.0 and isinstance(config.weight, float) and config.name == "run/x"
    assert resolve_config(ToyStageConfig, None, ["preset=tiny"]).model.width == 8
    assert resolve_config(ToyStageConfig).model.width == 64


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("loop.stpes=3", "did you mean 'steps'"),
        ("loop.steps=many", "integer"),
        ("loop.steps=1.5", "integer"),
        ("loop.progress=2", "true or false"),
        ("model.kernel=[1, 2, 3]", "2 items"),
        ("model.width", "key=value"),
        ("preset=huge", "tiny"),
        ("loop.steps=0", "at least 1"),
        ("loop=3", "table"),
    ],
)
def test_bad_overrides_say_what_is_wrong(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_config(ToyStageConfig, None, [override])


def test_bad_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_config(ToyStageConfig, tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("steps = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve_config(ToyStageConfig, tmp_path / "bad.toml")


def test_saved_config_reads_back_identically(tmp_path: Path) -> None:
    config = resolve_config(
        ToyStageConfig, None, ["preset=tiny", "model.dropout=0.25", 'name="a \\"quoted\\" name"']
    )
    path = save_config(config, tmp_path, extra={"stage": "toy"})
    assert path.name == "config.toml" and 'stage = "toy"' in path.read_text()
    assert load_config(ToyStageConfig, tmp_path, ignore=["stage"]) == config
    with pytest.raises(ConfigError, match="without --resume"):
        load_config(ToyStageConfig, tmp_path / "elsewhere")
