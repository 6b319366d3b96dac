"""Outputs as data with units: one self-describing CSV per output, plus a manifest.

Each ``<name>.csv`` starts with ``#`` lines giving name, units, shape and description, then the
values (one row per line; a 2-D output has comma-separated columns). Both
``numpy.loadtxt(path, delimiter=",")`` and ``pandas.read_csv(path, comment="#", header=None)`` read
it directly. ``outputs.json`` lists every output with the same metadata.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "outputs.json"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,100}$")


@dataclass(frozen=True)
class OutputData:
    name: str
    units: str
    shape: tuple[int, ...]
    description: str
    values: np.ndarray

    @property
    def scalar(self) -> float:
        if self.values.size != 1:
            raise ValueError(f"output {self.name} has shape {self.shape}, not a scalar")
        return float(self.values.reshape(-1)[0])


class OutputWriter:
    """What a protocol notebook uses to save its declared outputs into ``output_dir``."""

    def __init__(self, output_dir: str | Path) -> None:
        self.dir = Path(output_dir)
        self.dir.mkdir(parents=True, exist_ok=True)

    def save(self, name: str, value: Any, *, units: str, description: str = "") -> Path:
        if not _NAME.match(name):
            raise ValueError(f"output name {name!r} must be a Python-style identifier")
        array = np.asarray(value, dtype=float)
        if array.ndim > 2:
            raise ValueError(f"output {name!r} has {array.ndim} dimensions; at most 2 are supported")
        path = self.dir / f"{name}.csv"
        header = [f"name: {name}", f"units: {units}", f"shape: {json.dumps(list(array.shape))}",
                  f"description: {' '.join(description.split())}"]
        np.savetxt(path, np.atleast_1d(array), delimiter=",", header="\n".join(header), fmt="%.17g")
        manifest = self._manifest()
        manifest[name] = {"units": units, "shape": list(array.shape), "description": description,
                          "file": path.name}
        (self.dir / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        return path

    def _manifest(self) -> dict[str, Any]:
        path = self.dir / MANIFEST
        return json.loads(path.read_text()) if path.exists() else {}


class OutputsRefused(ValueError):
    """A run's output folder that does not hold what the output format allows (see ``check_manifest``)."""


def check_manifest(manifest: Any, declared: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """``outputs.json`` as written by ``OutputWriter``, or OutputsRefused saying what is wrong.

    A run's outputs come from untrusted code: every name must be an identifier (and declared, when
    ``declared`` is given), each file exactly ``<name>.csv`` beside the manifest, units and
    descriptions short strings, and shapes at most two whole numbers.
    """
    if not isinstance(manifest, dict):
        raise OutputsRefused(f"{MANIFEST} must map output names to their metadata")
    checked = {}
    for name, meta in manifest.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise OutputsRefused(f"output name {name!r} is not an identifier")
        if declared is not None and name not in declared:
            raise OutputsRefused(f"output {name!r} is not declared in the protocol's interface")
        if not isinstance(meta, dict) or meta.get("file") != f"{name}.csv":
            raise OutputsRefused(f"output {name!r} must be stored as {name}.csv beside {MANIFEST}")
        shape = meta.get("shape")
        if (not isinstance(shape, list) or len(shape) > 2
                or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
            raise OutputsRefused(f"output {name!r} has an unusable shape {shape!r}")
        units, description = meta.get("units"), meta.get("description", "")
        if not isinstance(units, str) or len(units) > 200 or not isinstance(description, str) \
                or len(description) > 5000:
            raise OutputsRefused(f"output {name!r} needs units (a short string) and an optional description")
        checked[name] = {"units": units, "shape": shape, "description": description, "file": f"{name}.csv"}
    return checked


def read_outputs(output_dir: Path, declared: set[str] | None = None) -> dict[str, OutputData]:
    """Every output saved in ``output_dir``, by name (checked as ``check_manifest`` says)."""
    manifest_path = output_dir / MANIFEST
    if not manifest_path.exists():
        return {}
    result = {}
    for name, meta in check_manifest(json.loads(manifest_path.read_text()), declared).items():
        shape = tuple(meta["shape"])
        if 0 in shape:  # an empty output (e.g. no sweep qualified) has a header and no data rows
            values = np.empty(shape)
        else:
            values = np.loadtxt(output_dir / meta["file"], delimiter=",", ndmin=2 if len(shape) == 2 else 1)
        if values.size != int(np.prod(shape)):
            raise OutputsRefused(f"output {name!r} holds {values.size} values, not shape {list(shape)}")
        result[name] = OutputData(name, meta["units"], shape, meta.get("description", ""),
                                  values.reshape(shape))
    return result


def output_records(outputs: dict[str, OutputData]) -> list[dict[str, Any]]:
    return [{k: v for k, v in asdict(o).items() if k != "values"} for o in outputs.values()]
