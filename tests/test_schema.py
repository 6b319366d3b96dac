"""The Alembic migrations and the ORM agree, and upgrading is repeatable."""
from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from labkit.store.db import Database
from labkit.store.orm import Base


def test_migrations_create_exactly_the_orm_schema(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'schema.sqlite'}")
    db.upgrade()
    db.upgrade()  # a second upgrade is a no-op, not an error
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        tables = set(inspect(connection).get_table_names())
    assert diff == []
    assert {"users", "entities", "versions", "tags", "annotations", "protocol_interfaces", "datasets",
            "experiments", "runs", "run_events", "outputs", "blobs", "version_files", "prediction_files",
            "alembic_version"} <= tables
