"""Celery tasks: execute a run, and re-queue runs whose worker was lost."""
from __future__ import annotations

import logging

from celery import Celery

from ..config import Settings
from ..runner import claims, execute_run
from ..store.db import Database
from .app import EXECUTE_RUN, REAP_STALE_RUNS

log = logging.getLogger(__name__)


def register(app: Celery, settings: Settings) -> None:
    @app.task(name=EXECUTE_RUN, bind=True, acks_late=True, time_limit=None)
    def execute(self, run_id: str) -> str:  # type: ignore[no-untyped-def]
        status = execute_run(settings, run_id)
        log.info("run %s: %s", run_id, status)
        return status

    @app.task(name=REAP_STALE_RUNS, ignore_result=True)
    def reap() -> list[str]:
        db = Database(settings.database_url)
        requeued = []
        try:
            for run_id in claims.stale_runs(db, settings.stale_after):
                if claims.requeue(db, run_id, "its worker was lost; queued again"):
                    send_run(app, settings, run_id, claims.queue_of(db, run_id))
                    requeued.append(run_id)
        finally:
            db.dispose()
        if requeued:
            log.warning("re-queued runs of lost workers: %s", requeued)
        return requeued


def send_run(app: Celery, settings: Settings, run_id: str, queue: str | None = None) -> str:
    """Put a run on the queue; return the Celery task id."""
    result = app.send_task(EXECUTE_RUN, args=[run_id], queue=queue or settings.default_queue)
    return result.id
