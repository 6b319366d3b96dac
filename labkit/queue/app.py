"""The Celery application. One definition serves the embedded default (SQLite broker, workers that
labkit starts) and scale-out (RabbitMQ/PostgreSQL URLs, ``labkit worker`` on other machines)."""
from __future__ import annotations

from celery import Celery
from kombu import Queue

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


def declare_queues(app: Celery, settings: Settings) -> None:
    """Create the broker's queue (and, for the SQL transport, its tables) before workers start."""
    with app.connection_for_write() as connection:
        for name in (settings.default_queue, control_queue(settings)):
            Queue(name, channel=connection.default_channel).declare()
