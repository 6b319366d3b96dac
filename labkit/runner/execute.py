"""Execute one run: a scratch folder with copies of the exact commits, papermill in a child
process tree (``child.py``: watched for cancellation and the time limit), then the prediction
collected (``collect.py``).
"""
from __future__ import annotations

import json
import logging
import os
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
from .child import run_papermill
from .collect import collect_prediction

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


def _execute_claimed(settings: Settings, db: Database, claim: claims.Claim) -> str:
    store = EntityStore(db, settings.repositories)
    t0 = time.monotonic()
    plan = _plan(db, store, claim.run_id)
    scratch = settings.scratch / f"{claim.run_id}-{claim.attempt}"
    shutil.rmtree(scratch, ignore_errors=True)
    model_path = store.fetch(plan.model, scratch / "model")
    notebook_in = store.fetch(plan.protocol, scratch / "protocol")
    output_dir = scratch / "outputs"
    output_dir.mkdir(parents=True)

    compat = compatibility(plan.interface, store.terms(plan.model.id))
    if not compat.compatible:
        claims.finish(db, claim, "inapplicable", missing_terms=list(compat.missing_required),
                      error=compat.explain())
        return "inapplicable"

    parameters = {**plan.parameters, "model_path": str(model_path), "output_dir": str(output_dir)}
    notebook_out = scratch / "executed.ipynb"
    command = [sys.executable, "-m", "papermill", str(notebook_in), str(notebook_out),
               "-y", yaml.safe_dump(parameters), "--cwd", str(scratch), "--log-output",
               "--no-progress-bar", "-k", "python3", "--start-timeout", str(settings.kernel_start_timeout)]
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1",
           "LABKIT_SIM_CACHE": os.environ.get("LABKIT_SIM_CACHE", str(settings.storage_root / "cache" / "sim"))}
    t_setup = time.monotonic()
    outcome = run_papermill(settings, db, claim, command, env, scratch, plan.time_limit)
    t_exec = time.monotonic()
    if outcome == "lost":
        log.warning("run %s attempt %s was taken over by another worker", claim.run_id, claim.attempt)
        return "skipped"
    timings = {"setup_s": round(t_setup - t0, 3), "execute_s": round(t_exec - t_setup, 3)}

    results_dir = settings.results / "runs" / claim.run_id
    collected = collect_prediction(plan, claim, scratch, results_dir, outcome, timings, settings)
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
    shutil.rmtree(scratch, ignore_errors=True)
    return collected.status
