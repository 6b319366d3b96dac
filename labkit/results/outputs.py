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


def read_outputs(output_dir: Path) -> dict[str, OutputData]:
    """Every output saved in ``output_dir``, by name."""
    manifest_path = output_dir / MANIFEST
    if not manifest_path.exists():
        return {}
    result = {}
    for name, meta in json.loads(manifest_path.read_text()).items():
        shape = tuple(meta["shape"])
        if 0 in shape:  # an empty output (e.g. no sweep qualified) has a header and no data rows
            values = np.empty(shape)
        else:
            values = np.loadtxt(output_dir / meta["file"], delimiter=",", ndmin=2 if len(shape) == 2 else 1)
        result[name] = OutputData(name, meta["units"], shape, meta.get("description", ""),
                                  values.reshape(shape))
    return result


def output_records(outputs: dict[str, OutputData]) -> list[dict[str, Any]]:
    return [{k: v for k, v in asdict(o).items() if k != "values"} for o in outputs.values()]
