"""Turn a finished attempt's scratch folder into a stored prediction and decide its status.

Layout of ``<results>/runs/<run id>/``: ``notebook.ipynb`` (the executed protocol),
``outputs/<name>.csv`` + ``outputs/outputs.json``, ``plots/*.png``, ``log.txt``,
``provenance.json`` and ``timings.json``.
"""
from __future__ import annotations

import json
import platform
import shutil
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat

from ..config import Settings
from ..results.outputs import read_outputs
from ..results.plots import render_default_plots
from .child import KERNEL_START_ATTEMPTS
from .claims import HOST, Claim, now

if TYPE_CHECKING:
    from .execute import RunPlan

SOFTWARE = ("labkit", "myokit", "papermill", "nbclient", "ipykernel", "numpy", "pandas", "celery")


@dataclass
class Collected:
    status: str
    error: str | None = None
    failing_cell: str | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)


def _failure(notebook: Path) -> tuple[str | None, str | None]:
    """The first cell that raised, and its error, from an executed notebook."""
    if not notebook.exists():
        return None, None
    nb = nbformat.read(notebook, as_version=4)
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"cell {index}:\n{cell.source}", f"{out.get('ename')}: {out.get('evalue')}"
    return None, None


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in SOFTWARE:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def collect_prediction(plan: "RunPlan", claim: Claim, scratch: Path, results: Path, outcome: str,
                       timings: dict[str, float], settings: Settings) -> Collected:
    if results.exists():
        shutil.rmtree(results)  # an earlier, lost attempt of the same run
    results.mkdir(parents=True)
    notebook = scratch / "executed.ipynb"
    if notebook.exists():
        shutil.copy2(notebook, results / "notebook.ipynb")
    if (scratch / "log.txt").exists():
        shutil.copy2(scratch / "log.txt", results / "log.txt")
    shutil.copytree(scratch / "outputs", results / "outputs")

    outputs = read_outputs(results / "outputs")
    render_default_plots(plan.interface, outputs, results / "plots")
    records = [{"name": o.name, "units": o.units, "shape": list(o.shape), "description": o.description,
                "file": f"outputs/{o.name}.csv"} for o in outputs.values()]

    if outcome == "cancelled":
        collected = Collected("cancelled", "cancelled on request; the kernel was stopped")
    elif outcome == "timeout":
        collected = Collected("failed", f"the run exceeded its time limit of {plan.time_limit:g} s and "
                              "its kernel was stopped; raise the protocol's time_limit or the lab's "
                              "run_time_limit if it needs longer")
    elif outcome == "no kernel":
        collected = Collected("failed", f"the notebook's kernel did not answer papermill within "
                              f"{settings.kernel_start_timeout} s, {KERNEL_START_ATTEMPTS} times in a row; "
                              "the protocol never ran. If the worker's machine is overloaded, raise the lab's "
                              "kernel_start_timeout; otherwise check that the worker's python3 kernel starts "
                              "(`jupyter console --kernel python3`). Each start's messages are in log.txt")
    elif outcome == "error":
        cell, error = _failure(notebook)
        tail = (scratch / "log.txt").read_text(errors="replace")[-2000:] if (scratch / "log.txt").exists() else ""
        collected = Collected("failed", error or f"papermill failed before the notebook ran:\n{tail}", cell)
    else:
        missing = [o.name for o in plan.interface.outputs if o.name not in outputs]
        collected = Collected("partial", "declared outputs not produced: " + ", ".join(missing)) \
            if missing else Collected("success")
    collected.outputs = records

    provenance = {
        "run": plan.run_id, "attempt": claim.attempt, "status": collected.status,
        "model": {"name": plan.model.entity, "version": plan.model.number, "commit": plan.model.commit,
                  "file": plan.model.main_file},
        "protocol": {"name": plan.protocol.entity, "version": plan.protocol.number,
                     "commit": plan.protocol.commit, "file": plan.protocol.main_file},
        "parameters": plan.parameters, "worker": HOST, "finished_at": now().isoformat(),
        "software": _versions(), "timings": timings,
    }
    (results / "provenance.json").write_text(json.dumps(provenance, indent=1, default=str))
    return collected
