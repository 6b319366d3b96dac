"""The content-addressed blob table under concurrent writers, on the stack under test."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

import labkit
from labkit.errors import InvalidInput
from labkit.store import blobs, orm
from labkit.store.db import Database


def test_two_writers_storing_the_same_content_at_once_both_succeed(tmp_path: Path) -> None:
    """Two workers deliver an identical file at the same moment: the second must wait for the first
    and then find the content stored, not fail on the key (as a look-then-insert does)."""
    data = b"the same plot, delivered by two workers"
    first_stored = threading.Event()
    errors: list[BaseException] = []

    with labkit.Lab.open(tmp_path / "lab") as lab:
        def second_writer() -> None:
            first_stored.wait(timeout=30)
            try:
                with lab.db.session() as session:  # sees no committed row yet, then waits on the first
                    blobs.put_blob(session, data)
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        thread = threading.Thread(target=second_writer)
        thread.start()
        with lab.db.session() as session:
            sha = blobs.put_blob(session, data)
            first_stored.set()
            thread.join(timeout=2)  # the second writer is now blocked on our uncommitted row
            assert thread.is_alive(), "the second writer should wait for the first one's commit"
        thread.join(timeout=60)

        assert not thread.is_alive()
        assert errors == []
        with lab.db.session() as session:
            assert session.scalar(select(func.count()).select_from(orm.Blob).where(orm.Blob.sha256 == sha)) == 1
            assert session.get(orm.Blob, sha).data == data


def test_an_unsupported_database_is_refused_with_what_to_set() -> None:
    with pytest.raises(InvalidInput, match="SQLite or PostgreSQL.*database_url"):
        Database("mysql://root@127.0.0.1/test")
