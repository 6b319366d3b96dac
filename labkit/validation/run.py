"""``labkit validate``: run the standard protocols on every model with reference outputs, through
the normal queue, and compare. Finished predictions in the validation lab are reused, so a long
validation can be stopped and resumed (in a later session) without redoing work."""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..experiments import RunInfo
from ..lab import Lab
from .catalogue import HARNESS_MODELS, OUTSIDE_HARNESS, PROTOCOLS, ReferenceProtocol
from .compare import HARNESS_MAX_PACES, Comparison, compare
from .reference import ReferenceOutput, reference_outputs

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks" / "protocols"
REUSABLE = ("success", "partial")


@dataclass
class OutputResult:
    """The verdict on one reference output: pass, fail or inapplicable."""

    reference: ReferenceOutput
    verdict: str
    comparison: Comparison | None
    run: RunInfo | None
    reason: str = ""


def _add_if_changed(lab: Lab, kind: str, path: Path, name: str) -> None:
    if name in lab.names(kind) and lab.read_file(kind, name) == path.read_bytes():
        return
    (lab.add_model if kind == "model" else lab.add_protocol)(path, name=name, message="validation input")


def _find_reusable(lab: Lab, model: str, protocol: ReferenceProtocol, parameters: dict[str, Any],
                   retry_failed: bool) -> RunInfo | None:
    statuses = REUSABLE if retry_failed else REUSABLE + ("failed", "queued", "running")
    return lab.latest_run(model, Path(protocol.notebook).stem, parameters, statuses=statuses)


def run_parameters(protocol: ReferenceProtocol, references: list[ReferenceOutput],
                   model: str | None = None) -> dict[str, Any]:
    """The protocol's parameters for one model, given that model's reference outputs.

    A model the Web Lab's harness does not re-run has references made with the protocol's own
    defaults (``catalogue.OUTSIDE_HARNESS``). Otherwise, a reference pace count of exactly the
    harness's cap (1000) was produced with ``max_paces = 1000`` (see :mod:`labkit.validation.compare`),
    so the run uses the same cap: the comparison would cap our count there anyway, and pacing on to
    10,000 beats would only cost time.
    """
    parameters = dict(protocol.parameters)
    if model is not None and model not in HARNESS_MODELS and protocol.name in OUTSIDE_HARNESS:
        return {**parameters, **OUTSIDE_HARNESS[protocol.name]}
    counts = [r for r in references if r.name == "num_paces" and r.values.size == 1]
    if "max_paces" in parameters and counts and float(counts[0].values.reshape(-1)[0]) == HARNESS_MAX_PACES:
        parameters["max_paces"] = min(int(parameters["max_paces"]), int(HARNESS_MAX_PACES))
    return parameters


def submit_validation(lab: Lab, references: list[ReferenceOutput], models_dir: Path,
                      retry_failed: bool = False) -> dict[tuple[str, str], RunInfo | str]:
    """Queue (or reuse) one run per (model, Web Lab protocol); a string says why there is none."""
    # Cheap protocols first, so that a long validation yields most of its verdicts early.
    pairs = sorted({(r.model, r.protocol) for r in references},
                   key=lambda pair: (PROTOCOLS[pair[1]].cost if pair[1] in PROTOCOLS else 0, pair))
    for model in sorted({m for m, _ in pairs}):
        path = models_dir / f"{model}.cellml"
        if path.exists():
            _add_if_changed(lab, "model", path, model)
    for name in sorted({PROTOCOLS[p].notebook for _, p in pairs if p in PROTOCOLS}):
        _add_if_changed(lab, "protocol", NOTEBOOKS / name, Path(name).stem)
    runs: dict[tuple[str, str], RunInfo | str] = {}
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
        parameters = run_parameters(protocol, [r for r in references
                                               if r.model == model and r.protocol == protocol_name], model)
        runs[(model, protocol_name)] = _find_reusable(lab, model, protocol, parameters, retry_failed) or \
            lab.run(model, Path(protocol.notebook).stem, parameters)
    return runs


def judge(lab: Lab, reference: ReferenceOutput, run: RunInfo | str) -> OutputResult:
    """Compare one reference output with what its run produced."""
    if isinstance(run, str):
        verdict = "inapplicable" if run.startswith("inapplicable") else "fail"
        return OutputResult(reference, verdict, None, None, run)
    if run.status == "inapplicable":
        return OutputResult(reference, "inapplicable", None, run,
                            "the model does not annotate " + ", ".join(run.missing_terms))
    if run.status == "failed" and "MissingTermError" in (run.error or ""):
        # The notebook found at run time that the model lacks a term it needs (an optional term of
        # the interface that this Web Lab protocol cannot do without): the model cannot produce it.
        return OutputResult(reference, "inapplicable", None, run, run.error_line)
    if not run.done:
        return OutputResult(reference, "pending", None, run, f"run {run.status}: not finished yet")
    if run.status not in REUSABLE:
        return OutputResult(reference, "fail", None, run, f"run {run.status}: {run.error or ''}".strip())
    rule = PROTOCOLS[reference.protocol].outputs.get(reference.name)
    if rule is None:
        return OutputResult(reference, "fail", None, run, f"no comparison rule for output {reference.name}")
    outputs = lab.prediction(run.id).outputs
    if rule.ours not in outputs:
        return OutputResult(reference, "fail", None, run, f"the run did not produce {rule.ours}")
    control = None
    if rule.control:
        if rule.control not in outputs:
            return OutputResult(reference, "fail", None, run, f"the run did not produce {rule.control}")
        index = -1
        if rule.control_index:
            if rule.control_index not in outputs:
                return OutputResult(reference, "fail", None, run, f"the run did not produce {rule.control_index}")
            index = int(np.asarray(outputs[rule.control_index].values).reshape(-1)[0])
        control = float(outputs[rule.control].values.reshape(-1)[index])
    result = compare(outputs[rule.ours].values, reference.values, rule.kind, control)
    return OutputResult(reference, "pass" if result.passed else "fail", result, run, result.note)


def validate(lab: Lab, reference_root: Path, models_dir: Path, *, models: set[str] | None = None,
             protocols: set[str] | None = None, retry_failed: bool = False, timeout: float | None = None,
             progress: bool = True, echo: Callable[[str], None] = print, wait: bool = True) -> list[OutputResult]:
    """Run everything needed for the reference outputs under ``reference_root`` and judge them.

    With ``wait=False`` nothing more is waited for: outputs whose runs are still queued or running
    are reported as *pending* (and count against the pass rate), so a long validation can be
    looked at while it goes on."""
    references = reference_outputs(reference_root, models, protocols)
    if not references:
        raise ValueError(f"no reference outputs under {reference_root} for the chosen models/protocols")
    runs = submit_validation(lab, references, models_dir, retry_failed)
    pending = [r for r in runs.values() if isinstance(r, RunInfo) and not r.done]
    echo(f"{len(references)} reference outputs from {len(runs)} (model, protocol) pairs; "
         f"{len(pending)} runs to wait for, {sum(isinstance(r, RunInfo) for r in runs.values()) - len(pending)} reused")
    if pending and wait:
        bar = tqdm(total=len(pending), desc="validation runs", unit="run", file=sys.stderr, disable=not progress)
        seen: set[str] = set()

        def on_change(info: RunInfo) -> None:
            if info.done and info.id not in seen:
                seen.add(info.id)
                bar.update(1)
                bar.set_postfix_str(f"{info.model} x {info.protocol}: {info.status}")

        try:
            lab.wait(pending, timeout=timeout, on_change=on_change)
        finally:
            bar.close()
    fresh = {key: (lab.status(r.id) if isinstance(r, RunInfo) else r) for key, r in runs.items()}
    return [judge(lab, ref, fresh[(ref.model, ref.protocol)]) for ref in references]
