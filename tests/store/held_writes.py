"""Holding back a lab's database writes from another connection, to stop other processes at a chosen
point for real: between a save's git commit and its database commit, or between looking for a row
and inserting it. Reads go on meanwhile."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import labkit


@contextmanager
def writes_held(lab: labkit.Lab, tables: tuple[str, ...]) -> Iterator[None]:
    """Until the block ends, inserts into ``tables`` wait (on SQLite every write waits: it has one
    write lock for the whole file)."""
    if lab.db.engine.dialect.name == "sqlite":
        connection = sqlite3.connect(lab.db.engine.url.database, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")  # the write lock: readers go on (WAL), writers wait
        try:
            yield
        finally:
            connection.rollback()
            connection.close()
    else:
        with lab.db.engine.connect() as connection:
            connection.exec_driver_sql(f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE")  # reads go on
            try:
                yield
            finally:
                connection.rollback()
