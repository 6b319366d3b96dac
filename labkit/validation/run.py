"""``labkit validate``: run the standard protocols on every model with reference outputs, through
the normal queue, and compare. Finished predictions in the validation lab are reused, so a long
validation can be stopped and resumed without redoing work; a ledger (:mod:`.ledger`) carries them
to later sittings on other machines."""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..experiments import RunInfo
from ..lab import Lab
from ..progress import wait_with_progress
from ..sim.solver import failure_reason
from .catalogue import HARNESS_MODELS, PROTOCOLS, ReferenceProtocol
from .compare import HARNESS_MAX_PACES, Comparison, compare
from .ledger import Ledger, LedgerEntry, code_fingerprint, entry_key
from .reference import ReferenceOutput, reference_outputs

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks" / "protocols"
REUSABLE = ("success", "partial")
UNFINISHED = ("queued", "running")
#: Exceptions by which a protocol notebook says it cannot finish on this model with this code: the
#: same inputs raise them again, so the ledger keeps them. Anything else raised in a cell (a full
#: disk, no C compiler, no memory) may be the machine's doing, and is tried again next time.
INPUT_FAILURES = ("SimulationError", "MissingTermError")


@dataclass
class OutputResult:
    """The verdict on one reference output: pass, fail or inapplicable."""

    reference: ReferenceOutput
    verdict: str
    comparison: Comparison | None
    run: RunInfo | None
    reason: str = ""
    outputs: Mapping[str, Any] | None = None  # our outputs it was judged on (values and units)
    ledger: LedgerEntry | None = None         # set when those came from the ledger, not from a run here

    @property
    def run_id(self) -> str:
        return self.run.id if self.run else (self.ledger.run if self.ledger else "")


def _add_if_changed(lab: Lab, kind: str, path: Path, name: str) -> None:
    if name in lab.names(kind) and lab.read_file(kind, name) == path.read_bytes():
        return
    (lab.add_model if kind == "model" else lab.add_protocol)(path, name=name, message="validation input")


def _find_reusable(lab: Lab, model: str, protocol: ReferenceProtocol, parameters: dict[str, Any],
                   retry_failed: bool) -> RunInfo | None:
    """The lab's newest run of this pair worth showing again: finished or on its way, and a failed
    one too unless asked to retry."""
    statuses = REUSABLE + UNFINISHED + (() if retry_failed else ("failed",))
    return lab.latest_run(model, Path(protocol.notebook).stem, parameters, statuses=statuses)


def run_parameters(protocol: ReferenceProtocol, references: list[ReferenceOutput],
                   model: str | None = None) -> dict[str, Any]:
    """The protocol's parameters for one model, given that model's reference outputs.

    A model the Web Lab's harness does not re-run has references made with the protocol's own
    caps (``ReferenceProtocol.defaults``). Otherwise, a reference pace count of exactly the
    harness's cap (1000) was produced with ``max_paces = 1000`` (see :mod:`labkit.validation.compare`),
    so the run uses the same cap: the comparison would cap our count there anyway, and pacing on to
    10,000 beats would only cost time.
    """
    parameters = dict(protocol.parameters)
    if model is not None and model not in HARNESS_MODELS and protocol.defaults:
        return {**parameters, **protocol.defaults}
    counts = [r for r in references if r.name == "num_paces" and r.values.size == 1]
    if "max_paces" in parameters and counts and float(counts[0].values.reshape(-1)[0]) == HARNESS_MAX_PACES:
        parameters["max_paces"] = min(int(parameters["max_paces"]), int(HARNESS_MAX_PACES))
    return parameters


Pair = tuple[str, str]  # (model, Web Lab protocol)


def _references_of(references: list[ReferenceOutput], model: str, protocol: str) -> list[ReferenceOutput]:
    return [r for r in references if r.model == model and r.protocol == protocol]


def ledger_keys(references: list[ReferenceOutput], models_dir: Path, code: str | None = None,
                notebooks: Path = NOTEBOOKS) -> dict[Pair, str]:
    """The ledger key of every pair that can be run: model file, notebook, parameters, code
    (this labkit's simulation code and notebooks unless ``code`` and ``notebooks`` give others)."""
    code = code or code_fingerprint()
    content = functools.cache(Path.read_bytes)  # each model file and notebook is read once, not once per pair
    keys = {}
    for model, name in sorted({(r.model, r.protocol) for r in references}):
        protocol, path = PROTOCOLS.get(name), models_dir / f"{model}.cellml"
        if protocol is not None and path.exists():
            parameters = run_parameters(protocol, _references_of(references, model, name), model)
            keys[(model, name)] = entry_key(content(path), content(notebooks / protocol.notebook), parameters, code)
    return keys


def submit_validation(lab: Lab, references: list[ReferenceOutput], models_dir: Path,
                      retry_failed: bool = False, ledger: Ledger | None = None,
                      keys: Mapping[Pair, str] | None = None) -> dict[Pair, RunInfo | LedgerEntry | str]:
    """Queue (or reuse) one run per (model, Web Lab protocol); a string says why there is none, and
    a ledger entry with the pair's key stands in for a run."""
    # Cheap protocols first, so that a long validation yields most of its verdicts early.
    pairs = sorted({(r.model, r.protocol) for r in references},
                   key=lambda pair: (PROTOCOLS[pair[1]].cost if pair[1] in PROTOCOLS else 0, pair))
    for model in sorted({m for m, _ in pairs}):
        path = models_dir / f"{model}.cellml"
        if path.exists():
            _add_if_changed(lab, "model", path, model)
    for name in sorted({PROTOCOLS[p].notebook for _, p in pairs if p in PROTOCOLS}):
        _add_if_changed(lab, "protocol", NOTEBOOKS / name, Path(name).stem)
    runs: dict[Pair, RunInfo | LedgerEntry | str] = {}
    for model, protocol_name in pairs:
        protocol = PROTOCOLS.get(protocol_name)
        if protocol is None:
            runs[(model, protocol_name)] = f"labkit has no protocol for {protocol_name}"
            continue
        if model not in lab.names("model"):
            runs[(model, protocol_name)] = f"no model file {model}.cellml in {models_dir}"
            continue
        missing = [t for t in protocol.requires if t not in lab.annotations(model)]
        if missing:
            runs[(model, protocol_name)] = "inapplicable: the model does not annotate " + ", ".join(missing)
            continue
        key = (keys or {}).get((model, protocol_name))
        entry = ledger.find(model, protocol_name, key) if ledger is not None and key else None
        if entry is not None and not entry.failed:
            runs[(model, protocol_name)] = entry
            continue
        parameters = run_parameters(protocol, _references_of(references, model, protocol_name), model)
        # A failure on record (entry) stands unless this lab has tried again (a retry of an earlier
        # sitting, finished or not) or is asked to now; the lab's own failed runs do not replace it.
        found = _find_reusable(lab, model, protocol, parameters, retry_failed or entry is not None)
        if found is None and entry is not None and not retry_failed:
            runs[(model, protocol_name)] = entry
            continue
        runs[(model, protocol_name)] = found or lab.run(model, Path(protocol.notebook).stem, parameters)
    return runs


def _failed_verdict(error: str) -> str:
    """A failed run's verdict. A notebook that stops with MissingTermError found at run time that
    the model lacks a term it needs (an optional term of the interface that this Web Lab protocol
    cannot do without): the model cannot produce the output, which is not our failure."""
    return "inapplicable" if "MissingTermError" in error else "fail"


def judge(lab: Lab, reference: ReferenceOutput, run: RunInfo | LedgerEntry | str) -> OutputResult:
    """Compare one reference output with what its run (or its ledger entry) produced."""
    if isinstance(run, LedgerEntry):
        if run.failed:
            return OutputResult(reference, _failed_verdict(run.error), None, None,
                                f"run failed (kept in the ledger): {run.error}", ledger=run)
        return judge_outputs(reference, run.outputs, None, ledger=run)
    if isinstance(run, str):
        verdict = "inapplicable" if run.startswith("inapplicable") else "fail"
        return OutputResult(reference, verdict, None, None, run)
    if run.status == "inapplicable":
        return OutputResult(reference, "inapplicable", None, run,
                            "the model does not annotate " + ", ".join(run.missing_terms))
    if run.status in ("failed", "partial") and _failed_verdict(run.error or "") == "inapplicable":
        return OutputResult(reference, "inapplicable", None, run, run.error_line)
    if not run.done:
        return OutputResult(reference, "pending", None, run, f"run {run.status}: not finished yet")
    if run.status not in REUSABLE:
        return OutputResult(reference, "fail", None, run, f"run {run.status}: {run.error or ''}".strip())
    return judge_outputs(reference, lab.prediction(run.id).outputs, run)


def judge_outputs(reference: ReferenceOutput, outputs: Mapping[str, Any], run: RunInfo | None,
                  ledger: LedgerEntry | None = None) -> OutputResult:
    """Compare one reference output with our outputs (objects with ``values`` and ``units``)."""
    def fail(reason: str) -> OutputResult:
        return OutputResult(reference, "fail", None, run, reason, outputs, ledger)

    rule = PROTOCOLS[reference.protocol].outputs.get(reference.name)
    if rule is None:
        return fail(f"no comparison rule for output {reference.name}")
    if rule.ours not in outputs:
        return fail(f"the run did not produce {rule.ours}")
    control = None
    if rule.control:
        if rule.control not in outputs:
            return fail(f"the run did not produce {rule.control}")
        index = -1
        if rule.control_index:
            if rule.control_index not in outputs:
                return fail(f"the run did not produce {rule.control_index}")
            index = int(np.asarray(outputs[rule.control_index].values).reshape(-1)[0])
        control = float(outputs[rule.control].values.reshape(-1)[index])
    result = compare(outputs[rule.ours].values, reference.values, rule.kind, control)
    return OutputResult(reference, "pass" if result.passed else "fail", result, run, result.note, outputs, ledger)


def validate(lab: Lab, reference_root: Path, models_dir: Path, *, models: set[str] | None = None,
             protocols: set[str] | None = None, retry_failed: bool = False, timeout: float | None = None,
             progress: bool = True, echo: Callable[[str], None] = print, wait: bool = True,
             ledger: Ledger | None = None) -> list[OutputResult]:
    """Run everything needed for the reference outputs under ``reference_root`` and judge them.

    With ``wait=False`` nothing more is waited for: outputs whose runs are still queued or running
    are reported as *pending* (and count against the pass rate), so a long validation can be
    looked at while it goes on. With a ``ledger``, pairs it holds under the same key are judged
    from it instead of being run, and every finished run is added to it (and saved)."""
    references = reference_outputs(reference_root, models, protocols)
    if not references:
        raise ValueError(f"no reference outputs under {reference_root} for the chosen models/protocols")
    keys = ledger_keys(references, models_dir) if ledger is not None else {}
    runs = submit_validation(lab, references, models_dir, retry_failed, ledger, keys)
    pending = [r for r in runs.values() if isinstance(r, RunInfo) and not r.done]
    reused = sum(isinstance(r, RunInfo) for r in runs.values()) - len(pending)
    from_ledger = sum(isinstance(r, LedgerEntry) for r in runs.values())
    failed_on_record = sum(isinstance(r, LedgerEntry) and r.failed for r in runs.values())
    echo(f"{len(references)} reference outputs from {len(runs)} (model, protocol) pairs; "
         f"{len(pending)} runs to wait for, {reused} reused"
         + (f", {from_ledger} from the ledger {ledger.path}" if ledger is not None else "")
         + (f" ({failed_on_record} of them failed runs: --retry-failed runs them again)" if failed_on_record else ""))
    if pending and wait:
        wait_with_progress(lab, pending, "validation runs", timeout=timeout, progress=progress)
    fresh = {key: (lab.status(r.id) if isinstance(r, RunInfo) else r) for key, r in runs.items()}
    if ledger is not None:
        _record(lab, ledger, fresh, keys)
    return [judge(lab, ref, fresh[(ref.model, ref.protocol)]) for ref in references]


def failure_to_keep(run: RunInfo) -> str | None:
    """What the ledger keeps of a failed run: ``"<exception>: <the line that says why>"`` when the
    notebook stopped with one of INPUT_FAILURES, else None (not kept). Time limits, kernels that
    never started and lost workers stop a run outside its cells and are never kept."""
    if run.status != "failed" or not run.failing_cell or not run.error:
        return None
    name, _, message = run.error.partition(":")
    if name.strip() not in INPUT_FAILURES:
        return None
    return f"{name.strip()}: {failure_reason(message)}"  # the telling line, as the solver's warnings pick it


def _record(lab: Lab, ledger: Ledger, runs: Mapping[Pair, RunInfo | LedgerEntry | str], keys: Mapping[Pair, str]) -> None:
    """Add every finished prediction's compared outputs (or its notebook's error) to the ledger and save it."""
    for (model, name), run in sorted(runs.items()):
        if not isinstance(run, RunInfo) or (model, name) not in keys:
            continue
        seconds = (run.finished_at - run.started_at).total_seconds() if run.started_at and run.finished_at else None
        kept = failure_to_keep(run)
        if kept is not None:
            ledger.record(model, name, keys[(model, name)], status=run.status, run=run.id, seconds=seconds,
                          outputs={}, error=kept)
            continue
        if run.status not in REUSABLE:
            continue
        rules = PROTOCOLS[name].outputs.values()
        needed = {n for rule in rules for n in (rule.ours, rule.control, rule.control_index, rule.x) if n}
        outputs = lab.prediction(run.id).outputs
        ledger.record(model, name, keys[(model, name)], status=run.status, run=run.id, seconds=seconds,
                      outputs={n: outputs[n] for n in sorted(needed & set(outputs))})
    ledger.save()
