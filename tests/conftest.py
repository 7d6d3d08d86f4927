"""Shared fixtures: seeded RNGs and the paths to ../shared media that CI provides.

``CEMNET_WEIGHTS_DIR`` (pretrained assets) and ``CEMNET_REAL_DATA`` (real clips) are set by ``.ci/run``.
Outside CI a test that needs them is skipped with the reason; under CI (``CI=true``) their absence fails.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from fake_hub import FakeHub, serve

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _shared_path(variable: str, what: str) -> Path:
    value = os.environ.get(variable)
    if value and Path(value).is_dir():
        return Path(value).resolve()
    reason = f"{what} not available: set {variable} (CI points it into ../shared)"
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    """Folder with the pretrained assets of ../shared/assets."""
    return _shared_path("CEMNET_WEIGHTS_DIR", "pretrained assets")


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Folder ../shared/data/real with real video, audio and images."""
    return _shared_path("CEMNET_REAL_DATA", "real sample media")


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """The local Hub of ``tests/fake_hub.py`` on 127.0.0.1 (``HF_ENDPOINT``), online, with empty caches."""
    with serve() as state:
        monkeypatch.setenv("HF_ENDPOINT", state.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
        monkeypatch.setenv("CEMNET_CACHE", str(tmp_path / "cemnet_cache"))
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("CEMNET_WEIGHTS_DIR", raising=False)
        yield state
