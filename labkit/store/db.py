"""Database engines and sessions, and schema upgrades through Alembic."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}

from ..errors import InvalidInput

MIGRATIONS = Path(__file__).with_name("migrations")
SUPPORTED_DATABASES = ("sqlite", "postgresql")


def make_engine(url: str) -> Engine:
    """An engine; SQLite gets WAL, a busy timeout and foreign keys so several processes can share it."""
    backend = make_url(url).get_backend_name()
    if backend not in SUPPORTED_DATABASES:
        raise InvalidInput(f"labkit keeps its metadata in SQLite or PostgreSQL, not {backend!r}: set "
                           "database_url to sqlite:///PATH or postgresql://USER@HOST/DB (docs/configuration.md)")
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (a no-op when it is already there).

    The whole upgrade is one transaction. On SQLite that needs care: the driver would commit every
    CREATE and ALTER on its own, so a failure half-way would leave tables that the recorded
    revision knows nothing about, and every later upgrade would fail on them. There the upgrade
    runs under an explicit ``BEGIN IMMEDIATE``, which also makes processes that open the same lab
    at once wait for each other instead of migrating twice.
    """
    if current_revision(engine) == head_revision():
        return
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        try:
            if sqlite:
                connection.connection.driver_connection.isolation_level = None  # we say BEGIN ourselves
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            config = alembic_config(str(engine.url.render_as_string(hide_password=False)))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            if sqlite:
                connection.invalidate()  # its transaction handling was changed: never pool it again


def head_revision() -> str:
    """The schema revision this labkit's code expects."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (``None`` for an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


class Database:
    """One lab's metadata database: an engine and a session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def upgrade(self) -> None:
        upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


def insert_skipping_conflicts(session: Session, model: type) -> Any:
    """An INSERT of ``model`` in the session's dialect, to finish with ``.on_conflict_do_nothing(...)``:
    for rows that two processes may create at the same moment (a blob, an experiment, a user), where a
    look-then-insert fails the second one on the unique key."""
    return _INSERTS[session.get_bind().dialect.name](model)
