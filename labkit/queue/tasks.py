"""Celery tasks: execute a run, and re-queue runs whose worker was lost or whose message never
reached the broker."""
from __future__ import annotations

import logging

from celery import Celery
from sqlalchemy import make_url

from ..config import Settings
from ..errors import BrokerUnavailable
from ..runner import claims, execute_run
from ..store.db import Database
from .app import EXECUTE_RUN, REAP_STALE_RUNS, ensure_queue

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
        requeued, resent = [], []
        try:
            for run_id in claims.stale_runs(db, settings.stale_after):
                if claims.requeue(db, run_id, "its worker was lost; queued again"):
                    if _send_or_log(app, settings, db, run_id):
                        requeued.append(run_id)
            # a run recorded as queued whose message never reached the broker (its submitter died
            # between the two, or a re-queue's send failed): send it now that the broker answers
            for run_id in claims.unsent_runs(db, settings.stale_after):
                if _send_or_log(app, settings, db, run_id):
                    resent.append(run_id)
        finally:
            db.dispose()
        if requeued:
            log.warning("re-queued runs of lost workers: %s", requeued)
        if resent:
            log.warning("sent queued runs whose message had never reached the broker: %s", resent)
        return requeued + resent


def broker_name(settings: Settings) -> str:
    """The broker as a user recognises it, without its password."""
    url = make_url(settings.broker_url.removeprefix("sqla+"))
    if url.get_backend_name() == "sqlite":
        return f"the lab's broker database {url.database}"
    return f"the message broker at {url.host or 'localhost'}:{url.port or 5672}"


def send_run(app: Celery, settings: Settings, run_id: str, queue: str | None = None) -> str:
    """Put a run on the queue; return the Celery task id. Raises BrokerUnavailable, saying which
    broker and why, when the message could not be handed over (after Celery's own few retries)."""
    queue = queue or settings.default_queue
    try:
        ensure_queue(app, settings, queue)
        result = app.send_task(EXECUTE_RUN, args=[run_id], queue=queue)
    except Exception as err:  # kombu's OperationalError, or a socket or SQLite error it let through
        reason = str(err).splitlines()[0] if str(err).strip() else type(err).__name__
        raise BrokerUnavailable(f"{broker_name(settings)} did not take run {run_id} ({reason})") from err
    return result.id


def _send_or_log(app: Celery, settings: Settings, db: Database, run_id: str) -> bool:
    """Send a queued run and mark it sent; a broker that fails now is left to the next round."""
    try:
        send_run(app, settings, run_id, claims.queue_of(db, run_id))
    except BrokerUnavailable as err:
        log.error("%s; it stays queued and is sent again in the next round", err)
        return False
    claims.mark_sent(db, run_id)
    return True
