"""The two deployments the test suite runs on, chosen by ``LABKIT_TEST_STACK``.

* ``embedded`` (the default): every lab is a folder with SQLite files; workers share the folder.
* ``scaleout``: every lab gets its own schema in the machine's PostgreSQL (database ``test``) and its
  own queue on the machine's RabbitMQ; the workers labkit starts run in folders of their own and
  reach the lab only through those two services, as workers on other machines would.

Labs are told by ``LABKIT_*`` environment variables (``lab_environment``) or by explicit settings
(``lab_settings``), so the code under test is the same in both stacks.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

STACK = os.environ.get("LABKIT_TEST_STACK", "embedded")
if STACK not in ("embedded", "scaleout"):
    raise SystemExit(f"LABKIT_TEST_STACK must be 'embedded' or 'scaleout', not {STACK!r}")

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"


def scaleout() -> bool:
    return STACK == "scaleout"


def _admin(sql: str) -> None:
    import psycopg
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as connection:
        connection.execute(sql)


def _delete_queue(name: str) -> None:
    from kombu import Connection
    with Connection(RABBITMQ) as connection:
        try:
            connection.default_channel.queue_delete(name)
        except Exception:  # never declared: nothing to delete
            pass


@contextmanager
def lab_settings() -> Iterator[dict[str, Any]]:
    """Settings for one new lab on this stack (empty on the embedded stack); cleaned up afterwards."""
    if not scaleout():
        yield {}
        return
    with scaleout_settings() as settings:
        yield settings


@contextmanager
def scaleout_settings() -> Iterator[dict[str, Any]]:
    """Settings for one new lab on PostgreSQL and RabbitMQ with isolated workers; cleaned up afterwards."""
    name = f"lab_{uuid.uuid4().hex[:12]}"
    _admin(f"CREATE SCHEMA {name}")
    try:
        yield {"database_url": f"{POSTGRES}?options=-csearch_path%3D{name}", "broker_url": RABBITMQ,
               "default_queue": f"labkit-{name}", "isolate_workers": True}
    finally:
        _delete_queue(f"labkit-{name}")
        _admin(f"DROP SCHEMA {name} CASCADE")


@contextmanager
def lab_environment() -> Iterator[None]:
    """Point labs opened without explicit settings (and child processes) at this stack."""
    with lab_settings() as settings:
        saved = {k: os.environ.get(k) for k in _names(settings)}
        os.environ.update({f"LABKIT_{k.upper()}": str(v) for k, v in settings.items()})
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _names(settings: dict[str, Any]) -> list[str]:
    return [f"LABKIT_{k.upper()}" for k in settings]


def cli_environment(settings: Any) -> dict[str, str]:
    """The environment for a ``labkit`` child process that must open the same lab as ``settings``
    (a lab opened with explicit settings: on the scale-out stack, a schema and queue of its own that
    the stack's LABKIT_* variables do not name)."""
    env = dict(os.environ)
    env.update({"LABKIT_DATABASE_URL": settings.database_url, "LABKIT_BROKER_URL": settings.broker_url,
                "LABKIT_RESULT_BACKEND": settings.result_backend, "LABKIT_DEFAULT_QUEUE": settings.default_queue,
                "LABKIT_STORAGE_ROOT": str(settings.storage_root),
                "LABKIT_ISOLATE_WORKERS": "1" if settings.isolate_workers else "0"})
    return env
