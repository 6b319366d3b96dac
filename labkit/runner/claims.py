"""Who runs a run: compare-and-set transitions on the run row, so a message delivered twice, or to
a second worker after the first died, leads to exactly one recorded execution."""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psutil
from sqlalchemy import func, select, update

from ..store import orm
from ..store.db import Database

FINAL = frozenset({"success", "partial", "failed", "inapplicable", "cancelled"})
HOST = socket.gethostname()

MAX_ATTEMPTS = 3  # times a run may lose its worker before it fails


@dataclass(frozen=True)
class Claim:
    run_id: str
    attempt: int


def now() -> datetime:
    return datetime.now(timezone.utc)


def owner_is_gone(run: orm.Run, stale_after: float) -> bool:
    """The worker holding a running run has died: its process is gone, or its heartbeat is stale."""
    if run.worker_host == HOST and run.worker_pid and not psutil.pid_exists(run.worker_pid):
        return True
    beat = orm.as_utc(run.heartbeat_at) or orm.as_utc(run.started_at)
    return beat is None or now() - beat > timedelta(seconds=stale_after)


def add_event(db: Database, run_id: str, status: str, attempt: int, detail: str = "") -> None:
    with db.session() as s:
        s.add(orm.RunEvent(run_id=run_id, status=status, attempt=attempt, detail=detail))


def claim(db: Database, run_id: str, stale_after: float) -> Claim | None:
    """Take a queued run (or one whose worker died) for this process, or return None."""
    with db.session() as s:
        run = s.get(orm.Run, run_id)
        if run is None or run.status in FINAL:
            return None
        if run.status == "running" and not owner_is_gone(run, stale_after):
            return None  # a live worker has it: this is a duplicate delivery
        if run.cancel_requested:  # cancelled while its lost worker held it: never start it again
            ended = s.execute(update(orm.Run).where(orm.Run.id == run_id, orm.Run.status == run.status,
                                                    orm.Run.attempt == run.attempt)
                              .values(status="cancelled", finished_at=now(), worker_pid=None)).rowcount
            if ended == 1:
                s.add(orm.RunEvent(run_id=run_id, status="cancelled", attempt=run.attempt,
                                   detail="cancel requested before this delivery"))
            return None
        previous = run.attempt
        result = s.execute(
            update(orm.Run)
            .where(orm.Run.id == run_id, orm.Run.attempt == previous, orm.Run.status == run.status)
            .values(status="running", attempt=previous + 1, worker_host=HOST, worker_pid=os.getpid(),
                    heartbeat_at=now(), started_at=now(), error=None, failing_cell=None))
        if result.rowcount != 1:
            return None
        detail = f"on {HOST} pid {os.getpid()}" + (" (taking over from a lost worker)" if previous else "")
        s.add(orm.RunEvent(run_id=run_id, status="running", attempt=previous + 1, detail=detail))
    return Claim(run_id, previous + 1)


def heartbeat(db: Database, c: Claim) -> tuple[bool, bool]:
    """Refresh the heartbeat; return (still ours, cancel requested)."""
    with db.session() as s:
        result = s.execute(update(orm.Run).where(orm.Run.id == c.run_id, orm.Run.attempt == c.attempt,
                                                 orm.Run.status == "running").values(heartbeat_at=now()))
        if result.rowcount != 1:
            return False, False
        cancel = s.scalar(select(orm.Run.cancel_requested).where(orm.Run.id == c.run_id))
        return True, bool(cancel)


def finish(db: Database, c: Claim, status: str, **values: object) -> bool:
    """Record the outcome if this attempt still owns the run."""
    with db.session() as s:
        result = s.execute(update(orm.Run).where(orm.Run.id == c.run_id, orm.Run.attempt == c.attempt,
                                                 orm.Run.status == "running")
                           .values(status=status, finished_at=now(), **values))
        if result.rowcount != 1:
            return False
        s.add(orm.RunEvent(run_id=c.run_id, status=status, attempt=c.attempt,
                           detail=str(values.get("error") or "")[:2000]))
        return True


def stale_runs(db: Database, stale_after: float) -> list[str]:
    """Running runs whose worker is gone: to be queued again."""
    with db.session() as s:
        running = s.scalars(select(orm.Run).where(orm.Run.status == "running")).all()
        return [r.id for r in running if owner_is_gone(r, stale_after)]


def requeue(db: Database, run_id: str, reason: str) -> bool:
    """Queue a run whose worker was lost again; one whose cancel was requested ends cancelled instead,
    and one that has lost its worker MAX_ATTEMPTS times ends failed (a run that kills every worker
    that takes it must not go round for ever)."""
    with db.session() as s:
        run = s.get(orm.Run, run_id)
        if run is None or run.status != "running":
            return False
        if run.cancel_requested:
            values: dict[str, object] = {"status": "cancelled", "finished_at": now()}
            status, detail = "cancelled", f"{reason}; its cancel had been requested, so it ends here"
        elif run.attempt >= MAX_ATTEMPTS:
            detail = (f"{reason}, for the {run.attempt}th time: it is not queued again. If the workers "
                      "died of the run (memory?), see their logs; submit it again to retry")
            values, status = {"status": "failed", "finished_at": now(), "error": detail}, "failed"
        else:
            values = {"status": "queued"}
            status, detail = "queued", reason
        result = s.execute(update(orm.Run).where(orm.Run.id == run_id, orm.Run.attempt == run.attempt,
                                                 orm.Run.status == "running")
                           .values(worker_pid=None, heartbeat_at=None, **values))
        if result.rowcount != 1:
            return False
        s.add(orm.RunEvent(run_id=run_id, status=status, attempt=run.attempt, detail=detail))
        return status == "queued"


def mark_sent(db: Database, run_id: str) -> bool:
    """Record that a queued run's message is on the broker.

    A queued run's ``heartbeat_at`` is the moment its message was handed to the broker (NULL: not
    yet). The run row is written before its message is sent, so a process that dies between the
    two, or a broker that fails then, leaves a queued run that no worker will ever receive;
    ``unsent_runs`` finds those by this mark. (A running run's ``heartbeat_at`` is its worker's.)"""
    with db.session() as s:
        return s.execute(update(orm.Run).where(orm.Run.id == run_id, orm.Run.status == "queued",
                                               orm.Run.heartbeat_at.is_(None))
                         .values(heartbeat_at=now())).rowcount == 1


def unsent_runs(db: Database, grace: float) -> list[str]:
    """Queued runs whose message was never marked sent, recorded more than ``grace`` seconds ago (a
    submit still talking to the broker is left alone): to be sent again. A re-sent message that
    turns out to be a duplicate is harmless, since a run is claimed once."""
    with db.session() as s:
        candidates = s.execute(select(orm.Run.id, orm.Run.created_at)
                               .where(orm.Run.status == "queued", orm.Run.heartbeat_at.is_(None))).all()
        # a re-queued run was created long ago: its last event says when it was queued again
        last_queued = dict(s.execute(select(orm.RunEvent.run_id, func.max(orm.RunEvent.at))
                                     .where(orm.RunEvent.run_id.in_([c.id for c in candidates]))
                                     .group_by(orm.RunEvent.run_id)).all()) if candidates else {}
    cutoff = now() - timedelta(seconds=grace)
    return [c.id for c in candidates
            if (orm.as_utc(last_queued.get(c.id)) or orm.as_utc(c.created_at) or cutoff) <= cutoff]


def queue_of(db: Database, run_id: str) -> str | None:
    """The queue a run was submitted to, so a re-queued run goes back to the same kind of worker."""
    with db.session() as s:
        return s.scalar(select(orm.Run.queue).where(orm.Run.id == run_id))
