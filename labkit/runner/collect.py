"""Turn a finished attempt's scratch folder into a stored prediction and decide its status.

Layout of ``<results>/runs/<run id>/``: ``notebook.ipynb`` (the executed protocol),
``outputs/<name>.csv`` + ``outputs/outputs.json``, ``plots/*.png``, ``log.txt``,
``provenance.json`` and ``timings.json``.

Everything in the run's ``work/`` folder was written by the protocol, i.e. by untrusted code: files
are taken only when they are regular files (never links, pipes or devices, opened with O_NOFOLLOW),
of a bounded size, with names the output format allows, and outputs only when they are declared.
"""
from __future__ import annotations

import errno
import functools
import json
import os
import platform
import shutil
import stat
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat

from ..config import Settings
from ..results.outputs import MANIFEST, OutputsRefused, check_manifest, read_outputs
from ..results.plots import render_default_plots
from .child import KERNEL_START_ATTEMPTS, Outcome
from .claims import HOST, Claim, now
from .sandbox import Limits, RunPaths

if TYPE_CHECKING:
    from .execute import RunPlan

LOG_KEPT_BYTES = 10 * 1024 * 1024  # of a longer log.txt, the prediction keeps the end
# What a notebook's error says when the kernel refused a resource, and the limit that refused it.
LIMIT_HINTS = (("MemoryError", "memory", "run_memory_mb"),
               ("File too large", "file size", "run_file_mb"),
               ("Resource temporarily unavailable", "process", "run_processes"),
               ("Kernel died", "resource", "run_memory_mb, run_processes, run_cpu_seconds"))

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
    try:  # written inside the sandbox: any JSON at all
        nb = nbformat.read(notebook, as_version=4)
        for index, cell in enumerate(nb.cells):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    return (f"cell {index}:\n{_bounded(str(cell.source))}",
                            f"{str(out.get('ename'))[:200]}: {_bounded(str(out.get('evalue')))}")
    except Exception as err:  # noqa: BLE001 - whatever the protocol left, the run must still end
        return None, f"the executed notebook could not be read ({type(err).__name__})"
    return None, None


def _bounded(text: str, keep: int = 10_000) -> str:
    """``text``, or its beginning and end when longer than ``keep`` characters (a solver's error
    says what happened in its last line, after the state it reached)."""
    if len(text) <= keep:
        return text
    return f"{text[:keep // 2]}\n[... {len(text) - keep} characters ...]\n{text[-keep // 2:]}"


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in SOFTWARE:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


@functools.cache
def environment() -> dict[str, Any]:
    """The whole environment a run executed in, for re-running it elsewhere: Python, the platform,
    the SUNDIALS that Myokit's CVODES uses, and every installed distribution with its version. The
    kernel runs on the worker's interpreter, so the worker's environment is the run's (computed once
    per worker process)."""
    distributions: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            distributions.setdefault(name, dist.version)
    try:
        import myokit
        sundials = str(myokit.Sundials.version())
    except Exception as err:  # noqa: BLE001 - provenance must never fail a run
        sundials = f"unknown ({type(err).__name__})"
    return {"python": sys.version.split()[0], "implementation": platform.python_implementation(),
            "platform": platform.platform(), "machine": platform.machine(), "sundials": sundials,
            "distributions": dict(sorted(distributions.items(), key=lambda item: item[0].lower()))}


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``; OutputsRefused otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise OutputsRefused(f"{path.name} is a symbolic link; a run may only write regular files") from None
        raise OutputsRefused(f"{path.name} cannot be read: {err.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OutputsRefused(f"{path.name} is not a regular file")
        if info.st_size > max_bytes:
            raise OutputsRefused(f"{path.name} is {info.st_size // 2**20} MB, more than the run's limit of "
                                 f"{max_bytes // 2**20} MB (setting run_outputs_mb)")
        return f.read(max_bytes + 1)[:max_bytes]


def _take_outputs(paths: RunPaths, results: Path, declared: set[str], limits: Limits) -> list[str]:
    """Copy the declared outputs into ``results/outputs`` after checking them; return what was left
    behind (undeclared names), or raise OutputsRefused for anything that must fail the run."""
    target = results / "outputs"
    target.mkdir()
    manifest_path = paths.outputs / MANIFEST
    try:
        entries = [] if not paths.outputs.is_dir() or paths.outputs.is_symlink() else list(os.scandir(paths.outputs))
    except OSError:
        entries = []
    if not entries:
        return []
    if manifest_path.is_symlink() or not manifest_path.exists():
        raise OutputsRefused(f"the output folder has files but no {MANIFEST} (write outputs with OutputWriter)")
    try:
        manifest = json.loads(read_regular(manifest_path, 2**20))
    except ValueError as err:
        raise OutputsRefused(f"{MANIFEST} is not readable JSON: {err}") from None
    if not isinstance(manifest, dict):
        raise OutputsRefused(f"{MANIFEST} must map output names to their metadata")
    ignored = sorted(str(n) for n in manifest if n not in declared)
    checked = check_manifest({n: m for n, m in manifest.items() if n in declared}, declared)
    budget = limits.output_bytes
    for meta in checked.values():
        data = read_regular(paths.outputs / meta["file"], budget)
        budget -= len(data)
        if budget < 0:
            raise OutputsRefused(f"the outputs are larger than the run's limit of "
                                 f"{limits.output_bytes // 2**20} MB (setting run_outputs_mb)")
        (target / meta["file"]).write_bytes(data)
    (target / MANIFEST).write_text(json.dumps(checked, indent=1, sort_keys=True))
    return ignored


def _limit_hint(error: str | None) -> str:
    for marker, what, setting in LIMIT_HINTS:
        if error and marker in error:
            return f" (the run may have met its {what} limit: setting {setting}; see docs/security.md)"
    return ""


def collect_prediction(plan: "RunPlan", claim: Claim, paths: RunPaths, results: Path, outcome: Outcome,
                       limits: Limits, timings: dict[str, float], settings: Settings) -> Collected:
    if results.exists():
        shutil.rmtree(results)  # an earlier, lost attempt of the same run
    results.mkdir(parents=True)
    notebook = results / "notebook.ipynb"
    refused: list[str] = []
    try:
        if paths.executed.exists() or paths.executed.is_symlink():
            notebook.write_bytes(read_regular(paths.executed, limits.output_bytes))
    except (OutputsRefused, OSError) as err:  # the run may have taken away our permissions
        refused.append(f"the executed notebook was refused: {err}")
    log_path = paths.scratch / "log.txt"  # written by the worker's file handle, outside the sandbox
    if log_path.exists():
        with open(log_path, "rb") as f:
            f.seek(max(0, log_path.stat().st_size - LOG_KEPT_BYTES))
            (results / "log.txt").write_bytes(f.read())
    declared = {o.name for o in plan.interface.outputs}
    ignored: list[str] = []
    try:
        ignored = _take_outputs(paths, results, declared, limits)
        outputs = read_outputs(results / "outputs", declared)
    except (OutputsRefused, ValueError, OSError) as err:
        refused.append(f"outputs refused: {err}")
        shutil.rmtree(results / "outputs")
        (results / "outputs").mkdir()
        outputs = {}
    if ignored:
        with open(results / "log.txt", "a") as f:
            f.write(f"\nlabkit: outputs not declared in the protocol's interface were not kept: {ignored}\n")
    render_default_plots(plan.interface, outputs, results / "plots")
    records = [{"name": o.name, "units": o.units, "shape": list(o.shape), "description": o.description,
                "file": f"outputs/{o.name}.csv"} for o in outputs.values()]

    if outcome.kind == "cancelled":
        collected = Collected("cancelled", "cancelled on request; the kernel was stopped")
    elif outcome.kind == "timeout":
        collected = Collected("failed", f"the run exceeded its time limit of {limits.wall_seconds:g} s and "
                              "its kernel was stopped; raise the protocol's time_limit or the lab's "
                              "run_time_limit if it needs longer")
    elif outcome.kind == "limit":
        collected = Collected("failed", f"{outcome.detail}; every process of the run was stopped")
    elif outcome.kind == "no kernel":
        collected = Collected("failed", f"the notebook's kernel did not answer papermill within "
                              f"{settings.kernel_start_timeout} s, {KERNEL_START_ATTEMPTS} times in a row; "
                              "the protocol never ran. If the worker's machine is overloaded, raise the lab's "
                              "kernel_start_timeout; otherwise check that the worker's python3 kernel starts "
                              "(`jupyter console --kernel python3`). Each start's messages are in log.txt")
    elif refused:
        collected = Collected("failed", "; ".join(refused))
    elif outcome.kind == "error":
        cell, error = _failure(notebook)
        tail = (results / "log.txt").read_text(errors="replace")[-2000:] if (results / "log.txt").exists() else ""
        error = error or f"papermill failed before the notebook ran:\n{tail}"
        # Outputs saved before the failing cell are kept: the run is partial, with the cell and its error.
        collected = Collected("partial" if outputs and cell else "failed", error + _limit_hint(error if cell else tail),
                              cell)
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
        "software": _versions(), "environment": environment(), "timings": timings,
    }
    (results / "provenance.json").write_text(json.dumps(provenance, indent=1, default=str))
    return collected
