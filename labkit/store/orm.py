"""The lab's metadata tables (SQLAlchemy 2). The schema is owned by Alembic migrations in
``labkit/store/migrations``; these classes must match the latest migration."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, overload

from sqlalchemy import (JSON, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text,
                        UniqueConstraint, false)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@overload
def as_utc(moment: datetime) -> datetime: ...
@overload
def as_utc(moment: None) -> None: ...
def as_utc(moment: datetime | None) -> datetime | None:
    """A stored moment as an aware datetime: every moment labkit stores is UTC, and SQLite hands them
    back naive."""
    return moment.replace(tzinfo=timezone.utc) if moment is not None and moment.tzinfo is None else moment


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


# Who may read a version (labkit/access.py holds the rules; docs/permissions.md explains them).
PRIVATE, PUBLIC, MODERATED = "private", "public", "moderated"
VISIBILITIES = (PRIVATE, PUBLIC, MODERATED)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    is_moderator: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Sign-in and roles (labkit/access/accounts.py): an argon2 hash, never the password; a user without
    # one cannot sign in (they may still hold API tokens).
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    is_protocol_author: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ApiToken(Base):
    """A user's API token: only its SHA-256 is kept, so a stolen database yields no usable token."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    user: Mapped[User] = relationship()


class UserSession(Base):
    """A signed-in browser: the cookie holds a random id, the database only its SHA-256, so signing out
    (or an admin disabling the user) ends the session at once, unlike a signed cookie."""

    __tablename__ = "user_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user: Mapped[User] = relationship()


class Collaborator(Base):
    """A user the owner shared an entity with: may read every version, add versions and tag."""

    __tablename__ = "collaborators"
    __table_args__ = (UniqueConstraint("entity_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user: Mapped[User] = relationship()


class Entity(Base):
    """A model, protocol or dataset: one git repository, many versions."""

    __tablename__ = "entities"
    __table_args__ = (UniqueConstraint("kind", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    owner: Mapped[User] = relationship()
    versions: Mapped[list[Version]] = relationship(
        back_populates="entity", order_by="Version.number", cascade="all, delete-orphan")
    collaborators: Mapped[list[Collaborator]] = relationship(cascade="all, delete-orphan")


class Version(Base):
    """One commit of an entity's repository."""

    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("entity_id", "commit"), UniqueConstraint("entity_id", "number"))
    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    commit: Mapped[str] = mapped_column(String(64))
    parent_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    main_file: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # private until its owner publishes it; existing versions became public in migration 0003
    visibility: Mapped[str] = mapped_column(String(20), default=PRIVATE, server_default=PRIVATE)
    entity: Mapped[Entity] = relationship(back_populates="versions")
    tags: Mapped[list[Tag]] = relationship(back_populates="version", cascade="all, delete-orphan")
    annotations: Mapped[list[Annotation]] = relationship(cascade="all, delete-orphan")


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("entity_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[Version] = relationship(back_populates="tags")


class Annotation(Base):
    """An oxmeta term on a model version's variable: queryable by term."""

    __tablename__ = "annotations"
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"), index=True)
    term: Mapped[str] = mapped_column(String(200), index=True)
    cmeta_id: Mapped[str] = mapped_column(String(200))
    component: Mapped[str] = mapped_column(String(200))
    variable: Mapped[str] = mapped_column(String(200))
    units: Mapped[str] = mapped_column(String(200))
    is_state: Mapped[bool] = mapped_column(Boolean, default=False)


class ProtocolInterface(Base):
    """What a protocol version needs from a model and what it produces."""

    __tablename__ = "protocol_interfaces"
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"), unique=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    required: Mapped[list[Any]] = mapped_column(default=list)
    optional: Mapped[list[Any]] = mapped_column(default=list)
    outputs: Mapped[list[Any]] = mapped_column(default=list)
    plots: Mapped[list[Any]] = mapped_column(default=list)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    time_limit: Mapped[float | None] = mapped_column(Float, nullable=True)
    version: Mapped[Version] = relationship()


class Dataset(Base):
    """An experimental data set: its columns with units and the protocol whose outputs it measures."""

    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"), unique=True)
    protocol_id: Mapped[int] = mapped_column(ForeignKey("entities.id"), index=True)
    columns: Mapped[list[Any]] = mapped_column(default=list)
    n_rows: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[Version] = relationship()
    protocol: Mapped[Entity] = relationship()


class Experiment(Base):
    """One protocol version on one model version; its runs are the attempts to compute it."""

    __tablename__ = "experiments"
    __table_args__ = (UniqueConstraint("model_version_id", "protocol_version_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"))
    protocol_version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    model_version: Mapped[Version] = relationship(foreign_keys=[model_version_id])
    protocol_version: Mapped[Version] = relationship(foreign_keys=[protocol_version_id])
    runs: Mapped[list[Run]] = relationship(back_populates="experiment", order_by="Run.created_at")


class Run(Base):
    """One execution of an experiment. This row, not the broker message, is the truth about status."""

    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    time_limit: Mapped[float] = mapped_column(Float)
    queue: Mapped[str] = mapped_column(String(100))
    worker_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    worker_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    failing_cell: Mapped[str | None] = mapped_column(Text, nullable=True)
    missing_terms: Mapped[list[Any]] = mapped_column(default=list)
    results_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    # the run this one repeats (`labkit rerun`), to compare their outputs; not a foreign key: a
    # re-run outlives nothing it needs from its original but the id
    rerun_of: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    binder_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)  # its export's branch, once pushed
    experiment: Mapped[Experiment] = relationship(back_populates="runs")
    events: Mapped[list[RunEvent]] = relationship(order_by="RunEvent.id", cascade="all, delete-orphan")
    outputs: Mapped[list[Output]] = relationship(cascade="all, delete-orphan")


class RunEvent(Base):
    """The status history of a run, one row per transition."""

    __tablename__ = "run_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    detail: Mapped[str] = mapped_column(Text, default="")


class Output(Base):
    """A declared output of a run, stored as a file under the run's results folder."""

    __tablename__ = "outputs"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    units: Mapped[str] = mapped_column(String(100))
    shape: Mapped[list[Any]] = mapped_column(default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    file: Mapped[str] = mapped_column(String(500))


class Blob(Base):
    """File content addressed by its SHA-256: how version files and predictions travel between the
    lab server and workers that share no filesystem with it (only the database)."""

    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class VersionFile(Base):
    """One file of a version's commit, so a worker can rebuild the exact commit without git access."""

    __tablename__ = "version_files"
    __table_args__ = (UniqueConstraint("version_id", "path"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(500))
    blob_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))


class PredictionFile(Base):
    """One file of a run's prediction folder, delivered by the worker that computed it."""

    __tablename__ = "prediction_files"
    __table_args__ = (UniqueConstraint("run_id", "path"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(500))
    blob_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
