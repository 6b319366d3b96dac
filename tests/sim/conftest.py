"""An isolated compiled-simulation cache for the labkit.sim tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_sim_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Compile into a fresh cache so tests neither depend on nor pollute ~/.cache."""
    path = tmp_path_factory.mktemp("sim-cache")
    old = os.environ.get("LABKIT_SIM_CACHE")
    os.environ["LABKIT_SIM_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("LABKIT_SIM_CACHE", None)
    else:
        os.environ["LABKIT_SIM_CACHE"] = old
