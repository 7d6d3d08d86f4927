"""Shared fixtures: seeded RNGs and the paths to ../shared media that CI provides.

``CEMNET_WEIGHTS_DIR`` (pretrained assets) and ``CEMNET_REAL_DATA`` (real clips) are set by ``.ci/run``.
Outside CI a test that needs them is skipped with the reason; under CI (``CI=true``) their absence fails.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

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
