"""``labkit validate --sweep``: the cheap standard protocols on every model in a folder, references or
not, each run classified by why it ended. Models nobody tuned labkit for are how we learn whether it
generalises: every run must end well, be inapplicable (terms the model lacks, named), find no action
potential where the protocol measures one (the model not firing, said why), or fail in the solver (the
model's own limit, named); any other failure is a labkit bug.

Runs go through the lab's normal queue; finished runs of the same versions and parameters are reused,
so a sweep can be stopped and resumed (``wait=False`` reports what has finished so far)."""
from __future__ import annotations

import csv
import functools
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..experiments import RunInfo
from ..lab import Lab
from ..progress import wait_with_progress
from ..sim.solver import failure_reason
from .catalogue import PROTOCOLS
from .ledger import code_fingerprint, entry_key
from .run import NOTEBOOKS, REUSABLE, UNFINISHED, _add_if_changed
from .sweep_record import SweepRecord

#: The Web Lab protocols a sweep runs: every voltage clamp, steady pacing at every standard rate, and
#: S1-S2; each with the Web Lab protocol's own pacing caps (``defaults``), since most models have no
#: reproducibility-harness settings.
SWEEP_PROTOCOLS = ("ICaL", "ICaL_IV_curve", "INa_IV_curves", "IKr_IV_curve", "IKs_IV_curve", "IK1_IV_curve",
                   "SteadyStateRunner0_5Hz", "SteadyStateRunner", "SteadyStateRunner2Hz", "SteadyStateRunner3Hz",
                   "SteadyStateRunner4Hz", "S1S2")
#: The order runs are queued in: cheapest first, so that a sweep yields most of its verdicts early. A
#: steady-pacing run that reaches the cap of 10,000 paces simulates 10,000 periods, so the fast rates
#: come first and 0.5 Hz (up to 20,000 s of simulated time a model) last.
RUN_ORDER = ("ICaL", "ICaL_IV_curve", "INa_IV_curves", "IKr_IV_curve", "IKs_IV_curve", "IK1_IV_curve",
             "SteadyStateRunner4Hz", "SteadyStateRunner3Hz", "S1S2", "SteadyStateRunner2Hz", "SteadyStateRunner",
             "SteadyStateRunner0_5Hz")
assert sorted(RUN_ORDER) == sorted(SWEEP_PROTOCOLS)
SUCCESS, PARTIAL, INAPPLICABLE, NO_AP, SOLVER, LABKIT, PENDING = (
    "success", "partial", "inapplicable", "no action potential", "solver failure", "labkit failure", "pending")
CLASSES = (SUCCESS, PARTIAL, INAPPLICABLE, NO_AP, SOLVER, LABKIT, PENDING)
SYMBOLS = {SUCCESS: "✓", PARTIAL: "◐", INAPPLICABLE: "–", NO_AP: "○", SOLVER: "S", LABKIT: "✗", PENDING: "…"}


@dataclass(frozen=True)
class SweepResult:
    model: str
    protocol: str  # the Web Lab protocol's name
    verdict: str   # one of CLASSES
    reason: str    # why, in one line (missing terms, the solver's message, the error)
    run: str       # the run's id ("" when none was made)


def sweep_parameters(protocol: str) -> dict[str, Any]:
    """The notebook parameters of a Web Lab protocol with its own caps."""
    spec = PROTOCOLS[protocol]
    return {**spec.parameters, **spec.defaults}


def classify(run: RunInfo) -> tuple[str, str]:
    """(verdict, reason) of one run, from how it ended. A notebook raising ``SimulationError`` met the
    model's own limit in the solver; ``MissingTermError`` found at run time that a term is missing;
    ``NoActionPotentialError`` found the model not firing where the protocol measures an action
    potential. Those may come after some outputs were saved (a ``partial`` run), which the reason says."""
    if run.status in UNFINISHED:
        return PENDING, run.status
    if run.status == "success":
        return SUCCESS, ""
    if run.status == "inapplicable":
        return INAPPLICABLE, "does not annotate " + ", ".join(run.missing_terms)
    name, _, message = (run.error or "").partition(":")
    kept = " (the outputs before it are kept)" if run.status == "partial" else ""
    if name.strip() == "MissingTermError":
        return INAPPLICABLE, failure_reason(message) + kept
    if name.strip() == "SimulationError":
        return SOLVER, failure_reason(message) + kept
    if name.strip() == "NoActionPotentialError":
        return NO_AP, message.strip().splitlines()[0] + kept
    if run.status == "partial" and not run.failing_cell:
        return PARTIAL, run.error_line or "some outputs are missing"
    return LABKIT, run.error_line or f"run ended {run.status}"


def _chosen(models_dir: Path, models: Iterable[str] | None,
            protocols: Iterable[str] | None) -> tuple[list[str], tuple[str, ...]]:
    """The models and protocols of a sweep, refused with a clear error before anything runs."""
    chosen = sorted(models) if models else sorted(p.stem for p in models_dir.glob("*.cellml"))
    names = tuple(protocols) if protocols else SWEEP_PROTOCOLS
    unknown = [p for p in names if p not in SWEEP_PROTOCOLS]
    if unknown:
        raise ValueError(f"the sweep runs {', '.join(SWEEP_PROTOCOLS)}; not {', '.join(unknown)}")
    missing = [m for m in chosen if not (models_dir / f"{m}.cellml").is_file()]
    if missing or not chosen:
        raise ValueError(f"no model file {missing[0] if missing else '*'}.cellml in {models_dir}")
    return chosen, names


def sweep_keys(models_dir: Path, models: Iterable[str], protocols: Iterable[str], code: str | None = None,
               notebooks: Path = NOTEBOOKS) -> dict[tuple[str, str], str]:
    """The key of each pair's run: model file, notebook, parameters and simulation code (this labkit's
    unless ``code`` and ``notebooks`` give others)."""
    code = code or code_fingerprint()
    content = functools.cache(Path.read_bytes)  # each file once, not once per pair (as ledger_keys does)
    return {(model, protocol): entry_key(content(models_dir / f"{model}.cellml"),
                                         content(notebooks / PROTOCOLS[protocol].notebook),
                                         sweep_parameters(protocol), code)
            for protocol in protocols for model in models}


def submit_sweep(lab: Lab, models_dir: Path, *, models: Iterable[str] | None = None,
                 protocols: Iterable[str] | None = None, skip: Iterable[tuple[str, str]] = (),
                 retry_failed: bool = False) -> dict[tuple[str, str], RunInfo]:
    """Add the models and notebooks (when changed) and queue, or reuse, one run per pair not in ``skip``
    (a failed run is reused too, unless ``retry_failed``)."""
    chosen, names = _chosen(models_dir, models, protocols)
    skipped = set(skip)
    for model in chosen:
        _add_if_changed(lab, "model", models_dir / f"{model}.cellml", model)
    for notebook in sorted({PROTOCOLS[p].notebook for p in names}):
        _add_if_changed(lab, "protocol", NOTEBOOKS / notebook, Path(notebook).stem)
    runs = {}
    for protocol in sorted(names, key=RUN_ORDER.index):
        notebook, parameters = Path(PROTOCOLS[protocol].notebook).stem, sweep_parameters(protocol)
        for model in chosen:
            if (model, protocol) in skipped:
                continue
            reusable = REUSABLE + UNFINISHED + ("inapplicable",) + (() if retry_failed else ("failed",))
            found = lab.latest_run(model, notebook, parameters, statuses=reusable)
            runs[(model, protocol)] = found or lab.run(model, notebook, parameters)
    return runs


def sweep(lab: Lab, models_dir: Path, *, models: Iterable[str] | None = None, protocols: Iterable[str] | None = None,
          wait: bool = True, timeout: float | None = None, progress: bool = True, record: SweepRecord | None = None,
          retry_failed: bool = False, echo: Callable[[str], None] = print) -> list[SweepResult]:
    """Run (or reuse) every pair and classify how each run ended. With a ``record``, pairs whose inputs
    and code match a recorded verdict are reported from it without running, and every finished run's
    verdict (labkit failures aside) is added to it and saved. ``retry_failed`` runs failed runs again
    (a failure that was the machine's, such as a worker whose environment changed under it)."""
    chosen, names = _chosen(models_dir, models, protocols)
    keys = sweep_keys(models_dir, chosen, names) if record is not None else {}
    recorded = {pair: entry for pair, key in keys.items()
                if (entry := record.find(*pair, key)) is not None} if record is not None else {}
    runs = submit_sweep(lab, models_dir, models=chosen, protocols=names, skip=recorded, retry_failed=retry_failed)
    pending = [r for r in runs.values() if not r.done]
    echo(f"{len(runs) + len(recorded)} runs in the sweep: {len(pending)} to wait for, "
         f"{len(runs) - len(pending)} reused" + (f", {len(recorded)} from the record {record.path}" if record else ""))
    if pending and wait:
        wait_with_progress(lab, pending, "sweep runs", timeout=timeout, progress=progress)
    results = [SweepResult(model, protocol, entry.verdict, entry.reason, entry.run)
               for (model, protocol), entry in recorded.items()]
    for (model, protocol), run in runs.items():
        info = lab.status(run.id)
        verdict, reason = classify(info)
        results.append(SweepResult(model, protocol, verdict, reason, run.id))
        if record is not None and verdict not in (LABKIT, PENDING):
            seconds = (info.finished_at - info.started_at).total_seconds() \
                if info.started_at and info.finished_at else None
            record.record(model, protocol, keys[(model, protocol)], verdict=verdict, reason=reason, run=run.id,
                          seconds=seconds)
    if record is not None:
        record.save()
    return sorted(results, key=lambda r: (r.model, r.protocol))


def write_sweep_report(results: list[SweepResult], folder: Path) -> Path:
    """``sweep.csv`` (one row per run) and ``sweep.md``: the models x protocols table, the counts, and
    every run that did not succeed with its reason. Returns the Markdown file."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "sweep.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "protocol", "verdict", "reason", "run"])
        writer.writerows([r.model, r.protocol, r.verdict, r.reason, r.run] for r in results)
    protocols = [p for p in SWEEP_PROTOCOLS if any(r.protocol == p for r in results)]
    cells = {(r.model, r.protocol): SYMBOLS[r.verdict] for r in results}
    counts = Counter(r.verdict for r in results)
    lines = ["# Sweep of the standard protocols", "",
             ", ".join(f"{counts[c]} {c}" for c in CLASSES if counts[c]) + f" ({len(results)} runs)", "",
             "Legend: " + ", ".join(f"{SYMBOLS[c]} {c}" for c in CLASSES), "",
             "| model | " + " | ".join(protocols) + " |", "| --- |" + " --- |" * len(protocols)]
    for model in sorted({r.model for r in results}):
        lines.append(f"| {model} | " + " | ".join(cells.get((model, p), "") for p in protocols) + " |")
    lines += ["", "## Every run that did not succeed", "", "| model | protocol | verdict | reason |",
              "| --- | --- | --- | --- |"]
    lines += [f"| {r.model} | {r.protocol} | {r.verdict} | {r.reason.replace('|', '/')} |"
              for r in results if r.verdict != SUCCESS]
    (folder / "sweep.md").write_text("\n".join(lines) + "\n")
    return folder / "sweep.md"
