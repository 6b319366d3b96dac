"""File trees kept in the database as content-addressed blobs.

Workers on other machines share nothing with the lab server but the database and the broker. A
version's files are recorded here when it is saved, so a worker can rebuild the exact commit, and a
worker records its prediction folder here, so the lab server can read it back. Identical content is
stored once (the key is its SHA-256).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import orm
from .db import insert_skipping_conflicts



def put_blob(session: Session, data: bytes) -> str:
    """Store ``data`` once; return its SHA-256.

    Two workers often deliver an identical file at the same moment (the same protocol's plots or
    log on two models). A look-then-insert would let both see no row and the second fail on the
    key when the first commits, so the insert itself skips an existing key (``ON CONFLICT DO
    NOTHING``, which PostgreSQL and SQLite both have).
    """
    sha = hashlib.sha256(data).hexdigest()
    if session.get(orm.Blob, sha) is None:
        session.execute(insert_skipping_conflicts(session, orm.Blob).values(sha256=sha, size=len(data), data=data)
                        .on_conflict_do_nothing(index_elements=["sha256"]))
    return sha


def tree_of_folder(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, by its POSIX path relative to it."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def record_version_files(session: Session, version_id: int, files: dict[str, bytes]) -> None:
    """Record a version's complete file tree (idempotent: an already recorded version is left alone)."""
    if has_version_files(session, version_id):
        return
    for path, data in sorted(files.items()):
        session.add(orm.VersionFile(version_id=version_id, path=path, blob_sha256=put_blob(session, data)))
    session.flush()


def has_version_files(session: Session, version_id: int) -> bool:
    return session.scalar(select(orm.VersionFile.id).where(orm.VersionFile.version_id == version_id)
                          .limit(1)) is not None


def record_prediction_files(session: Session, run_id: str, files: dict[str, bytes]) -> None:
    """Replace what is recorded for ``run_id`` with ``files`` (a later attempt supersedes an earlier one)."""
    for row in session.scalars(select(orm.PredictionFile).where(orm.PredictionFile.run_id == run_id)):
        session.delete(row)
    session.flush()
    for path, data in sorted(files.items()):
        session.add(orm.PredictionFile(run_id=run_id, path=path, blob_sha256=put_blob(session, data)))
    session.flush()


def _rows(session: Session, table: type[orm.VersionFile] | type[orm.PredictionFile], column, key) \
        -> list[tuple[str, bytes]]:
    return [(path, data) for path, data in session.execute(
        select(table.path, orm.Blob.data).join(orm.Blob, orm.Blob.sha256 == table.blob_sha256)
        .where(column == key).order_by(table.path))]


def version_files(session: Session, version_id: int) -> list[tuple[str, bytes]]:
    return _rows(session, orm.VersionFile, orm.VersionFile.version_id, version_id)


def prediction_files(session: Session, run_id: str) -> list[tuple[str, bytes]]:
    return _rows(session, orm.PredictionFile, orm.PredictionFile.run_id, run_id)


def write_tree(files: Iterable[tuple[str, bytes]], dest: Path) -> None:
    """Write ``files`` into ``dest`` atomically: built beside it, then renamed into place, so a
    reader never sees half a folder and two writers never mix their files."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        for path, data in files:
            relative = PurePosixPath(path)
            if relative.is_absolute() or ".." in relative.parts:
                raise ValueError(f"refusing to write {path!r} outside {dest}")
            target = staging.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        try:
            os.rename(staging, dest)
        except OSError:
            if not dest.exists():  # not a lost race with another writer of the same tree
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
