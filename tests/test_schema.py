"""The Alembic migrations and the ORM agree, and upgrading is repeatable."""
from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from labkit.store.db import Database, alembic_config, current_revision
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
            "api_tokens", "collaborators", "alembic_version"} <= tables


def old_database(path: Path, revision: str, *rows: str) -> Database:
    """A lab database at an earlier schema ``revision``, holding ``rows`` (SQL inserts)."""
    db = Database(f"sqlite:///{path}")
    with db.engine.begin() as connection:
        config = alembic_config(str(db.engine.url))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        for row in rows:
            connection.execute(text(row))
    return db


def test_versions_saved_before_permissions_existed_stay_readable_by_everyone(tmp_path: Path) -> None:
    """Migration 0003 publishes the versions already there: every user could read them until then."""
    db = old_database(
        tmp_path / "old.sqlite", "0002",
        "INSERT INTO users (id, name, created_at) VALUES (1, 'old', '2026-01-01')",
        "INSERT INTO entities (id, kind, name, owner_id, created_at) VALUES (1, 'model', 'm', 1, '2026-01-01')",
        "INSERT INTO versions (id, entity_id, number, \"commit\", main_file, message, author, created_at) "
        "VALUES (1, 1, 1, 'abc', 'm.cellml', '', 'old', '2026-01-01')")
    db.upgrade()
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT visibility FROM versions")).scalars().all() == ["public"]
        assert connection.execute(text("SELECT is_moderator FROM users")).scalars().all() == [False]
        connection.execute(text("INSERT INTO versions (id, entity_id, number, \"commit\", main_file, message, "
                                "author, created_at) VALUES (2, 1, 2, 'def', 'm.cellml', '', 'old', '2026-01-02')"))
        assert connection.execute(text("SELECT visibility FROM versions WHERE id = 2")).scalar() == "private"
    db.dispose()


def test_an_upgrade_that_fails_half_way_changes_nothing(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'half.sqlite'}")
    with db.engine.begin() as connection:  # a lab at the first revision ...
        config = alembic_config(str(db.engine.url))
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    with db.engine.begin() as connection:  # ... holding a table that revision 0002 wants to create
        connection.execute(text("CREATE TABLE version_files (id INTEGER PRIMARY KEY)"))
    with pytest.raises(Exception, match="version_files"):
        db.upgrade()
    with db.engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
    assert current_revision(db.engine) == "0001"
    assert "blobs" not in tables  # created before the failure in the same migration, and rolled back
    with db.engine.begin() as connection:
        connection.execute(text("DROP TABLE version_files"))
    db.upgrade()  # once the obstacle is gone, the upgrade goes through
    with db.engine.connect() as connection:
        assert {"blobs", "version_files"} <= set(inspect(connection).get_table_names())


def test_tokens_made_before_accounts_existed_keep_working_under_a_name(tmp_path: Path) -> None:
    """Migration 0004 names the existing tokens ``token-<id>`` without expiry; no user gets a role."""
    import labkit
    from labkit.access.users import hash_token
    lab_root = tmp_path / "lab"
    lab_root.mkdir()
    old_database(lab_root / "labkit.sqlite", "0003",
                 "INSERT INTO users (id, name, created_at, is_moderator) VALUES (7, 'old', '2026-01-01', 1)",
                 "INSERT INTO api_tokens (id, user_id, token_hash, created_at) "
                 f"VALUES (3, 7, '{hash_token('lk_old-token')}', '2026-01-01')").dispose()
    with labkit.Lab.open(lab_root, database_url=f"sqlite:///{lab_root / 'labkit.sqlite'}") as lab:  # opening upgrades
        assert lab.user_for_token("lk_old-token") == "old"
        assert [(t.name, t.expires_at) for t in lab.tokens("old")] == [("token-3", None)]
        account = lab.account("old")
        assert account.roles == ("moderator",) and not account.has_password and not account.disabled
