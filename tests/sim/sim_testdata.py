"""Where the shared Web Lab data is, and how to read it (imported by the labkit.sim tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

WEBDATA = Path(__file__).resolve().parents[2].parent / "shared" / "webdata"

#: The harness rule of the Web Lab reproducibility tests: |a - e| <= atol + rtol*|e|.
RTOL, ATOL = 0.005, 2.5e-4


def webdata_path(*parts: str) -> Path:
    """A file of the shared reference data; fails (never skips) when it is missing."""
    path = WEBDATA.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"shared reference data missing: expected {path} (webdata lives beside the repository)")
    return path


def model_path(name: str) -> Path:
    return webdata_path("models", f"{name}.cellml")


def load_reference_1d(path: Path) -> np.ndarray:
    """Read a Web Lab 1-d output file: '# description', then 'ndims,extent', then one value a line."""
    lines = path.read_text().splitlines()
    assert lines[0].startswith("#"), f"{path}: no description line"
    shape = [int(x) for x in lines[1].split(",")]
    values = np.array([float(x) for x in lines[2:] if x.strip()])
    assert shape[0] == 1 and values.size == shape[1], f"{path}: header says {shape}, found {values.size} values"
    return values
