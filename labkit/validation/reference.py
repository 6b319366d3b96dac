"""Reading the Web Lab's reference outputs (``<model>/<Protocol>/outputs_<name>.csv``).

Two layouts exist: the 0-d/1-d one (``# description``, a shape line ``ndim,extents...``, then one
value per line) and the 2-d one (no shape line; each row is one index of the *last* array
dimension, so the file holds the transpose of the array).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ReferenceOutput:
    model: str
    protocol: str
    name: str
    description: str
    values: np.ndarray
    path: Path


def read_reference_csv(path: Path) -> tuple[str, np.ndarray]:
    """The description and the array stored in one reference file."""
    lines = path.read_text().splitlines()
    if not lines or not lines[0].startswith("#"):
        raise ValueError(f"{path} does not start with a '# description' line")
    description = lines[0].lstrip("# ").strip()
    body = [line for line in lines[1:] if line.strip()]
    if not body:
        raise ValueError(f"{path} holds no values")
    first = [float(x) for x in body[0].split(",")]
    ndim = int(first[0]) if first and float(first[0]).is_integer() else -1
    if "," not in body[0] and ndim == 0 and len(body) == 2:
        return description, np.array(float(body[1]))
    if ndim >= 1 and len(first) == ndim + 1 and all(float(v).is_integer() for v in first):
        shape = tuple(int(v) for v in first[1:])
        values = np.array([float(x) for x in body[1:]])
        if values.size == int(np.prod(shape)):
            return description, values.reshape(shape)
        if len(shape) == 1 and all("," not in line for line in body[1:]):
            # the 2011 C++ tool's S1S2 files declare fewer values than they hold: trust the values
            return description, values
    table = np.array([[float(x) for x in line.split(",")] for line in body])
    return description, table.T  # rows of the file run over the last dimension


def reference_outputs(root: Path, models: set[str] | None = None,
                      protocols: set[str] | None = None) -> list[ReferenceOutput]:
    """Every reference output under ``root``, optionally only for some models and protocols."""
    if not root.is_dir():
        raise FileNotFoundError(f"no reference folder at {root}")
    found = []
    for path in sorted(root.glob("*/*/outputs_*.csv")):
        model, protocol = path.parent.parent.name, path.parent.name
        if (models and model not in models) or (protocols and protocol not in protocols):
            continue
        description, values = read_reference_csv(path)
        found.append(ReferenceOutput(model, protocol, path.stem.removeprefix("outputs_"), description,
                                     values, path))
    return found
