"""The protocol interface: what a protocol notebook needs from a model and what it produces.

A protocol author declares it in a *raw* cell tagged ``interface``, written in YAML::

    title: Steady pacing
    description: Pace at a fixed rate to steady state and measure the action potential.
    requires: [membrane_voltage, membrane_stimulus_current]
    optional: [cytosolic_calcium_concentration]
    outputs:
      APD90: {units: ms, description: APD at 90 % repolarisation of the last beat}
      membrane_voltage: {units: mV, shape: [n], description: the last beat, tolerance: {abs: 0.01}}
      time: {units: ms, shape: [n]}
    plots:
      - {x: time, y: membrane_voltage, title: Steady-state action potential}
    time_limit: 600

``shape`` is a list of extents (numbers, or names for extents only known after the run); a
missing shape means a scalar. ``tolerance`` (``abs`` in the output's units, ``rel`` a fraction)
says how far a re-run of the prediction may differ and still reproduce it (``labkit rerun``). ``time_limit`` (seconds) asks for less than the lab's ``run_time_limit``, which caps it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import nbformat
import yaml

from ..config import MAX_TIME_LIMIT

INTERFACE_TAG = "interface"
PARAMETERS_TAG = "parameters"
REQUIRED_PARAMETERS = ("model_path", "output_dir")


@dataclass(frozen=True)
class OutputSpec:
    name: str
    units: str
    description: str = ""
    shape: tuple[int | str, ...] = ()
    tolerance: tuple[float, float] | None = None  # (abs, rel) a re-run may differ by; None: the default


@dataclass(frozen=True)
class PlotSpec:
    x: str
    y: str
    title: str = ""


@dataclass(frozen=True)
class Interface:
    title: str
    description: str
    requires: tuple[str, ...]
    optional: tuple[str, ...]
    outputs: tuple[OutputSpec, ...]
    plots: tuple[PlotSpec, ...]
    parameters: dict[str, Any] = field(default_factory=dict)
    time_limit: float | None = None

    def output(self, name: str) -> OutputSpec | None:
        return next((o for o in self.outputs if o.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Interface":
        return cls(
            title=data.get("title", ""), description=data.get("description", ""),
            requires=tuple(data.get("requires", ())), optional=tuple(data.get("optional", ())),
            outputs=tuple(OutputSpec(o["name"], o["units"], o.get("description", ""), tuple(o.get("shape", ())),
                                     tuple(o["tolerance"]) if o.get("tolerance") else None)
                          for o in data.get("outputs", ())),
            plots=tuple(PlotSpec(**p) for p in data.get("plots", ())),
            parameters=dict(data.get("parameters", {})), time_limit=data.get("time_limit"))


def tagged_cells(nb: nbformat.NotebookNode, tag: str) -> list[tuple[int, nbformat.NotebookNode]]:
    return [(i, c) for i, c in enumerate(nb.cells) if tag in c.get("metadata", {}).get("tags", [])]


def _tolerance(name: object, value: object, problems: list[str]) -> list[float] | None:
    """An output's ``tolerance: {abs: A, rel: R}`` as [A, R] (either may be left out: 0)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not value or not set(value) <= {"abs", "rel"} or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
            for v in value.values()):
        problems.append(f"output {name!r}: tolerance must be {{abs: A, rel: R}} with finite numbers >= 0 "
                        f"(abs in the output's units, rel a fraction, e.g. 0.01); got {value!r}")
        return None
    return [float(value.get("abs", 0.0)), float(value.get("rel", 0.0))]


def parse_interface_yaml(text: str, problems: list[str]) -> dict[str, Any] | None:
    """Read the YAML of an interface cell, appending every problem found to ``problems``."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        problems.append(f"the interface cell is not valid YAML: {err}")
        return None
    if not isinstance(data, dict):
        problems.append("the interface cell must be a YAML mapping (title, requires, outputs, ...)")
        return None
    known = {"title", "description", "requires", "optional", "outputs", "plots", "time_limit"}
    for key in sorted(set(data) - known, key=str):
        problems.append(f"the interface has an unknown key {key!r}; known keys: {sorted(known)}")
    if not str(data.get("title", "")).strip():
        problems.append("the interface needs a title")
    for key in ("requires", "optional"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            problems.append(f"interface '{key}' must be a list of oxmeta term names")
            data[key] = []
    outputs = data.get("outputs")
    parsed_outputs = []
    if not isinstance(outputs, dict) or not outputs:
        problems.append("the interface must declare its outputs: a mapping of name -> {units, description, shape}")
    else:
        for name, spec in outputs.items():
            if not isinstance(spec, dict) or not isinstance(spec.get("units"), str) or not spec["units"]:
                problems.append(f"output {name!r} must give its units (use 'dimensionless' for pure numbers)")
                continue
            shape = spec.get("shape", [])
            if not isinstance(shape, list) or not all(isinstance(s, (int, str)) for s in shape):
                problems.append(f"output {name!r}: shape must be a list of extents, e.g. [n] or [3, n]")
                shape = []
            parsed_outputs.append({"name": str(name), "units": spec["units"],
                                   "description": str(spec.get("description", "")), "shape": shape,
                                   "tolerance": _tolerance(name, spec.get("tolerance"), problems)})
    plots = data.get("plots", [])
    parsed_plots = []
    names = {o["name"] for o in parsed_outputs}
    if not isinstance(plots, list):
        problems.append("interface 'plots' must be a list of {x, y, title}")
        plots = []
    for plot in plots:
        if not isinstance(plot, dict) or not {"x", "y"} <= set(plot):
            problems.append(f"plot {plot!r} must name an output for x and one for y")
            continue
        for axis in ("x", "y"):
            if plot[axis] not in names:
                problems.append(f"plot {axis}={plot[axis]!r} is not a declared output")
        parsed_plots.append({"x": plot["x"], "y": plot["y"], "title": str(plot.get("title", ""))})
    limit = data.get("time_limit")
    if limit is not None and (not isinstance(limit, (int, float)) or isinstance(limit, bool)
                              or not math.isfinite(limit) or not 0 < limit <= MAX_TIME_LIMIT):
        problems.append(f"interface 'time_limit' must be a finite, positive number of seconds, at most "
                        f"{MAX_TIME_LIMIT:g} (a week); got {limit!r}")
        limit = None
    return {"title": str(data.get("title", "")), "description": str(data.get("description", "")),
            "requires": data.get("requires", []), "optional": data.get("optional", []),
            "outputs": parsed_outputs, "plots": parsed_plots, "time_limit": limit}
