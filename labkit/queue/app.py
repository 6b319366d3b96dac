"""The Celery application. One definition serves the embedded default (SQLite broker, workers that
labkit starts) and scale-out (RabbitMQ/PostgreSQL URLs, ``labkit worker`` on other machines)."""
from __future__ import annotations

import time

from celery import Celery
from kombu import Queue
from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy.exc import IntegrityError, OperationalError

from ..config import Settings

EXECUTE_RUN = "labkit.execute_run"
REAP_STALE_RUNS = "labkit.reap_stale_runs"


def control_queue(settings: Settings) -> str:
    """The queue of the re-queueing task. It must not wait behind the runs: a worker busy with an
    hour-long run, or a queue hundreds of runs deep, would delay the recovery of lost runs by as
    much. Only the reaper process (``labkit worker --beat``) consumes it."""
    return f"{settings.default_queue}.control"


def make_celery(settings: Settings) -> Celery:
    """A Celery app for ``settings``: late acks, one message at a time, lost workers re-queue."""
    app = Celery("labkit", broker=settings.broker_url, backend=settings.result_backend,
                 set_as_current=False)
    reap_period = max(settings.stale_after / 3, 1.0)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.default_queue,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        task_routes={REAP_STALE_RUNS: {"queue": control_queue(settings)}},
        # a reaping message not taken within one period is superseded by the next: never a backlog
        beat_schedule={"reap-stale-runs": {"task": REAP_STALE_RUNS, "schedule": reap_period,
                                           "options": {"expires": reap_period}}},
    )
    if not settings.broker_url.startswith("sqla+"):
        # task events for monitors (Flower, `celery events`); kombu's SQL transport has no fan-out
        app.conf.worker_send_task_events = True
        app.conf.task_send_sent_event = True
    if settings.broker_url.startswith("sqla+sqlite"):
        # kombu hands these to SQLAlchemy's create_engine: wait for SQLite's lock instead of failing
        app.conf.broker_transport_options = {"connect_args": {"timeout": 60}}
    if settings.result_backend.startswith("db+sqlite"):
        app.conf.database_engine_options = {"connect_args": {"timeout": 60}}
    from . import tasks
    tasks.register(app, settings)
    return app


def ensure_queue(app: Celery, settings: Settings, queue: str) -> None:
    """Make sure the SQL transport has ``queue``'s row before the first message to it from this app.

    kombu's SQL transport creates a queue's row on first use with a look-then-insert that only a
    thread lock guards: two processes sending the first message of a queue at once fail the second
    on the unique name (an IntegrityError, which also leaves that channel's session unusable for
    every later message). So the row is made here, once per app and queue, on a connection of its
    own that is thrown away: losing that race there is harmless, and the next attempt finds the row.
    (RabbitMQ declares queues idempotently; nothing to do there.)"""
    declared: set[str] = app.__dict__.setdefault("_labkit_declared_queues", set())
    if queue in declared or not settings.broker_url.startswith("sqla+"):
        return
    for attempt in range(3):
        try:
            with app.connection_for_write() as connection:
                Queue(queue, channel=connection.default_channel).declare()
            break
        except (IntegrityError, OperationalError, KombuOperationalError) as err:
            # another process created the row (or, in a new broker file, the tables: SQLAlchemy's
            # create_all looks before it creates too) between our look and our insert
            lost_race = isinstance(err, IntegrityError) or "already exists" in str(err)
            if not lost_race or attempt == 2:
                raise
            time.sleep(0.05)
    declared.add(queue)


def declare_queues(app: Celery, settings: Settings) -> None:
    """Create the broker's queue (and, for the SQL transport, its tables) before workers start."""
    with app.connection_for_write() as connection:
        for name in (settings.default_queue, control_queue(settings)):
            Queue(name, channel=connection.default_channel).declare()
