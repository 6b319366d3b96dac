"""Execute one run: a scratch folder with copies of the exact commits, papermill in a child
process tree inside the run's sandbox (``sandbox.py``; ``child.py`` watches it for cancellation, the
time limit and the resource limits), then the prediction collected and checked (``collect.py``) and
the simulations the run compiled added to the worker's cache by trusted code (``compile_requests``).
"""
from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass

import yaml

from ..config import Settings
from ..protocols import Interface, compatibility
from ..results.store import prediction_path
from ..store import blobs, orm
from ..store.db import Database
from ..store.entities import EntityStore, version_info
from . import claims
from .child import Outcome, run_papermill
from .collect import collect_prediction
from .compile_requests import compile_requested
from .portable import keep_inputs
from .sandbox import Launcher, Limits, cache_dir, launcher_for, remove_folder, unavailable_reason

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunPlan:
    """Everything an attempt needs, read from the database once."""

    run_id: str
    model: object
    protocol: object
    interface: Interface
    parameters: dict
    time_limit: float


def _plan(db: Database, store: EntityStore, run_id: str) -> RunPlan:
    with db.session() as s:
        run = s.get(orm.Run, run_id)
        assert run is not None
        exp = run.experiment
        model, protocol = version_info(exp.model_version), version_info(exp.protocol_version)
        interface = Interface.from_json(store.interface(exp.protocol_version_id))
        return RunPlan(run_id, model, protocol, interface, dict(run.parameters), run.time_limit)


def execute_run(settings: Settings, run_id: str) -> str:
    """Run ``run_id`` if this process can claim it; return the final status (or 'skipped')."""
    db = Database(settings.database_url)
    try:
        claim = claims.claim(db, run_id, settings.stale_after)
        if claim is None:
            return "skipped"
        try:
            return _execute_claimed(settings, db, claim)
        except Exception as err:  # a claimed run must end, or it is re-queued into the same error forever
            log.exception("run %s attempt %s could not be executed", claim.run_id, claim.attempt)
            claims.finish(db, claim, "failed", error=f"the worker could not execute the run: {err}")
            return "failed"
    finally:
        db.dispose()


def untrusted_refusal(settings: Settings, launcher: Launcher, plan: RunPlan) -> str | None:
    """Why this worker will not run ``plan``'s protocol: it cannot sandbox, and the protocol is not
    the operator's own (a lab set ``trusted_single_user`` runs everything, at its own risk)."""
    if launcher.sandboxed or settings.trusted_single_user or plan.protocol.author == settings.user:
        return None
    return (f"this worker cannot sandbox runs ({unavailable_reason(settings.sandbox_bwrap)}), so it runs only "
            f"protocols added by the lab's operator {settings.user!r}; {plan.protocol.label} is by "
            f"{plan.protocol.author!r}. Run it on a worker that can sandbox (docs/security.md)")


def _execute_claimed(settings: Settings, db: Database, claim: claims.Claim) -> str:
    store = EntityStore(db, settings.repositories)
    t0 = time.monotonic()
    plan = _plan(db, store, claim.run_id)
    launcher = launcher_for(settings)
    refusal = untrusted_refusal(settings, launcher, plan)
    if refusal:
        claims.finish(db, claim, "failed", error=refusal)
        return "failed"
    scratch = settings.scratch / f"{claim.run_id}-{claim.attempt}"
    shutil.rmtree(scratch, ignore_errors=True)
    paths = launcher.paths(scratch)
    model_path = store.fetch(plan.model, paths.inputs / "model")
    notebook_in = store.fetch(plan.protocol, paths.inputs / "protocol")

    compat = compatibility(plan.interface, store.terms(plan.model.id))
    if not compat.compatible:
        claims.finish(db, claim, "inapplicable", missing_terms=list(compat.missing_required),
                      error=compat.explain())
        remove_folder(scratch)
        return "inapplicable"

    limits = Limits.for_run(settings, plan.time_limit)
    cache = cache_dir(settings, plan.model.commit)
    with launcher.session(paths, limits, settings, cache) as session:
        parameters = {**plan.parameters, "model_path": str(paths.inside(model_path)),
                      "output_dir": str(paths.inside(paths.outputs))}
        command = [sys.executable, "-m", "papermill", str(paths.inside(notebook_in)),
                   str(paths.inside(paths.executed)), "-y", yaml.safe_dump(parameters),
                   "--cwd", str(paths.inside(paths.work)), "--log-output", "--no-progress-bar", "-k", "python3",
                   "--start-timeout", str(settings.kernel_start_timeout)]
        t_setup = time.monotonic()
        outcome: Outcome = run_papermill(settings, db, claim, session, command, {})
    t_exec = time.monotonic()
    if outcome.kind == "lost":
        log.warning("run %s attempt %s was taken over by another worker", claim.run_id, claim.attempt)
        return "skipped"
    timings = {"setup_s": round(t_setup - t0, 3), "execute_s": round(t_exec - t_setup, 3)}

    results_dir = settings.results / "runs" / claim.run_id
    collected = collect_prediction(plan, claim, paths, results_dir, outcome, limits, timings, settings)
    keep_inputs(store, plan.model, plan.protocol, plan.parameters, results_dir)
    timings["collect_s"] = round(time.monotonic() - t_exec, 3)
    timings["total_s"] = round(time.monotonic() - t0, 3)
    (results_dir / "timings.json").write_text(json.dumps(timings, indent=1))
    with db.session() as s:  # delivered through the database: the lab may be on another machine
        for o in collected.outputs:
            s.add(orm.Output(run_id=claim.run_id, **o))
        blobs.record_prediction_files(s, claim.run_id, blobs.tree_of_folder(results_dir))
    if not claims.finish(db, claim, collected.status, error=collected.error,
                         failing_cell=collected.failing_cell, results_path=prediction_path(claim.run_id),
                         timings=timings):
        log.warning("run %s attempt %s lost ownership; its results were not recorded", *claim.__dict__.values())
        with db.session() as s:
            s.query(orm.Output).filter(orm.Output.run_id == claim.run_id).delete()
            s.query(orm.PredictionFile).filter(orm.PredictionFile.run_id == claim.run_id).delete()
        return "skipped"
    if launcher.sandboxed:  # after the run is reported: the scientist does not wait for this
        compile_requested(settings, launcher, paths, cache)
    remove_folder(scratch)
    return collected.status
