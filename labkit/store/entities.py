"""The entity store: versions in git, their metadata in SQL, kept in step.

A save is checked first (the kind's validation), then committed to git with a compare-and-swap on
the branch, then recorded in the database; if the database refuses, the git branch is put back.

Every method that names an entity acts for a user (``user=``) and asks ``labkit.access`` whether they
may: an entity they may not read looks exactly like a missing one. The methods that take a version
id (``interface``, ``terms``, ``fetch``, ``export``) are for code that already holds a checked version
(or a worker, which runs what the lab queued).
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import access
from ..errors import InvalidInput, NotFound, StaleVersion
from . import blobs, orm
from .db import Database
from .kinds import MAIN_SUFFIX, DatasetColumns, check_kind, describe
from .repos import (LABKIT_EMAIL_DOMAIN, MAX_FILE_BYTES, EntityRepository, check_file_name, check_tag_name,
                    split_trailers, with_trailers)

LATEST = "latest"
log = logging.getLogger(__name__)
_NUMBER_REF = re.compile(r"v?(\d+)")


@dataclass(frozen=True)
class VersionInfo:
    """A version as a scientist sees it."""

    kind: str
    entity: str
    number: int
    commit: str
    tags: tuple[str, ...]
    author: str
    message: str
    created_at: datetime
    main_file: str
    id: int
    visibility: str = orm.PRIVATE

    @property
    def label(self) -> str:
        return f"{self.kind} {self.entity} v{self.number} ({self.commit[:10]})"


def version_info(v: orm.Version) -> VersionInfo:
    return VersionInfo(v.entity.kind, v.entity.name, v.number, v.commit, tuple(t.name for t in v.tags),
                       v.author, v.message, v.created_at, v.main_file, v.id, v.visibility)


class EntityStore:
    """Models, protocols and datasets with every version kept."""

    def __init__(self, db: Database, repositories: Path) -> None:
        self.db = db
        self.repositories = repositories

    @contextlib.contextmanager
    def save_lock(self, kind: str, name: str) -> Iterator[None]:
        """Held by a save from reading the entity's latest version to recording the new one, so that
        saves of one entity on this machine take turns, and an unrecorded commit found while holding
        it can only be left by a save that died (a file lock goes with its process). Lock files live
        beside the repositories, in ``<storage root>/locks``."""
        folder = self.repositories.parent / "locks" / f"{kind}s"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{name}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def repository(self, kind: str, name: str) -> EntityRepository:
        return EntityRepository(self.repositories / f"{kind}s" / f"{name}.git")

    # -- saving ---------------------------------------------------------------------------------
    def save(self, kind: str, name: str, files: dict[str, bytes], *, author: str, message: str = "",
             main_file: str | None = None, parent: str | None = None,
             protocol: str | None = None, visibility: str = orm.PRIVATE) -> VersionInfo:
        """Store ``files`` as a new version of ``kind``/``name`` (created if new, owned by ``author``).

        Only the owner and collaborators may add a version to an existing entity. ``parent`` is the
        commit the user's change is based on; if another version was saved since, the save is
        refused (StaleVersion) and nothing changes. ``visibility`` may not be "moderated" (only a
        moderator grants that, afterwards).
        """
        access.check_visibility(visibility)
        if visibility == orm.MODERATED:
            raise InvalidInput("a new version cannot be saved as moderated: save it public and ask a "
                               "moderator to moderate it")
        check_kind(kind)
        name = check_file_name(name)
        if "/" in name or not files:
            raise InvalidInput("an entity name is one plain name, and a version needs at least one file")
        for file_name, content in files.items():
            check_file_name(file_name)
            if len(content) > MAX_FILE_BYTES:  # before any repository is created
                raise InvalidInput(f"{file_name} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        if parent is not None and len(parent.strip()) < 4:
            raise InvalidInput(f"parent {parent!r} is not a commit: give at least 4 characters of its sha")
        # one save of an entity at a time on this machine, from reading its latest version to
        # recording the new one (and an unrecorded commit found under the lock was left by a save that died)
        with self.save_lock(kind, name):
            with self.db.session() as session:
                author_viewer = access.viewer(session, access.check_user_name(author))
                entity = self._entity(session, kind, name, missing_ok=True)
                if entity is not None:
                    access.require_editor(session, author_viewer, entity)
                latest = entity.versions[-1] if entity and entity.versions else None
                if parent is not None and latest is not None and not latest.commit.startswith(parent):
                    raise StaleVersion(
                        f"{kind} {name} was changed since version {parent[:10]}: the latest is "
                        f"v{latest.number} ({latest.commit[:10]}) by {latest.author}. Re-open the latest "
                        "version, re-apply your change and save again.")
                main = main_file or (latest.main_file if latest and latest.main_file not in files else None) \
                    or _guess_main(kind, files)
                if main in files:
                    content = files[main]
                elif latest is not None:
                    content = self.repository(kind, name).read(latest.commit, main)
                else:
                    raise InvalidInput(f"the main file {main!r} is not among the files given")
                if not main.endswith(MAIN_SUFFIX[kind]):
                    raise InvalidInput(f"a {kind}'s main file must end in {MAIN_SUFFIX[kind]} (got {main!r})")
                described = describe(kind, content)
                protocol_entity = None
                if kind == "dataset":
                    if not protocol:
                        raise InvalidInput("a data set must name the protocol whose outputs it measures")
                    protocol_entity = access.readable_entity(session, author, "protocol", protocol)
                repo = self.repository(kind, name)
                if latest is None and not repo.path.exists():
                    EntityRepository.create(repo.path)
                base = latest.commit if latest else None
                head = repo.head()
                interrupted = (head != base and head is not None and repo.parent_of(head) == base
                               and repo.made_by_labkit(head)
                               and session.scalar(select(orm.Version.id).where(orm.Version.commit == head)) is None)
                if interrupted:
                    # a save that died between its git commit and its database commit: it never
                    # completed (nobody was told it did), so main goes back to the last recorded
                    # version; the commit is kept on a branch of its own, which labkit.doctor reports
                    branch = repo.keep(head)
                    log.warning("%s %s: commit %s was never recorded (an interrupted save); main reset to %s, "
                                "the commit kept on branch %s", kind, name, head[:10], (base or "empty")[:10], branch)
                    repo.reset_main(base, expected=head)
                if repo.head() != base:
                    raise StaleVersion(f"{kind} {name}'s repository has moved on; reload and try again")
                text = message or f"{kind} {name}: new version"
                # every database write comes after the git commit: a save holds no database lock
                # while git works, and a save cut in between leaves a commit that labkit.doctor can
                # record from the commit alone (its trailers say what the row needs)
                commit = repo.commit(files, message=with_trailers(text, {
                    "Main-File": main, "Visibility": visibility, "Protocol": protocol if kind == "dataset" else None}),
                    author=author, email=f"{author}{LABKIT_EMAIL_DOMAIN}", base=base)
                try:
                    version = self._record(session, kind, name, entity, latest, repo, commit.sha, main=main,
                                           described=described, protocol_entity=protocol_entity, author=author,
                                           message=text, visibility=visibility)
                    session.commit()
                except BaseException:
                    session.rollback()
                    repo.reset_main(base, expected=commit.sha)
                    raise
                return version_info(version)

    def _record(self, session: Session, kind: str, name: str, entity: orm.Entity | None,
                latest: orm.Version | None, repo: EntityRepository, sha: str, *, main: str, described: Any,
                protocol_entity: orm.Entity | None, author: str, message: str, visibility: str) -> orm.Version:
        """Write the rows of a version whose commit is on ``main`` (the entity's too, if new): what a
        save does after its git commit, and what labkit.doctor does for a save cut before this."""
        user = access.get_or_create_user(session, author)
        if entity is None:
            entity = orm.Entity(kind=kind, name=name, owner=user)
            session.add(entity)
            session.flush()
        version = orm.Version(entity=entity, number=(latest.number + 1) if latest else 1, commit=sha,
                              parent_commit=latest.commit if latest else None, main_file=main, message=message,
                              author=author, visibility=visibility)
        session.add(version)
        session.flush()
        _record_metadata(session, kind, version, described, protocol_entity)
        blobs.record_version_files(session, version.id, self._commit_tree(repo, sha))
        return version

    def record_interrupted(self, kind: str, name: str, sha: str) -> VersionInfo:
        """Record commit ``sha``, left on ``main`` by a save cut before its database commit, as the
        version that save meant to make: the same checks as a save (the main file is valid, its
        author may still add versions, a dataset's protocol exists) and the same rows. The caller
        (labkit.doctor) holds the entity's save lock and has checked that ``sha`` is a labkit commit
        on top of the latest recorded version. Raises what a save would raise if it cannot."""
        repo = self.repository(kind, name)
        info = repo.info(sha)
        text, fields = split_trailers(info.message)
        files = self._commit_tree(repo, sha)
        with self.db.session() as session:
            entity = self._entity(session, kind, name, missing_ok=True)
            latest = entity.versions[-1] if entity and entity.versions else None
            if (latest.commit if latest else None) != repo.parent_of(sha):
                raise StaleVersion(f"{kind} {name}: commit {sha[:10]} is not on top of the latest recorded version")
            author = access.check_user_name(info.author)
            if entity is not None:
                access.require_editor(session, access.viewer(session, author), entity)
            main = fields.get("Main-File") or (latest.main_file if latest and latest.main_file in files else None) \
                or _guess_main(kind, files)
            if main not in files or not main.endswith(MAIN_SUFFIX[kind]):
                raise InvalidInput(f"commit {sha[:10]} has no {kind} main file {main!r}")
            described = describe(kind, files[main])
            protocol_entity = None
            if kind == "dataset":
                protocol = fields.get("Protocol") or (latest and session.scalar(
                    select(orm.Entity.name).join(orm.Dataset, orm.Dataset.protocol_id == orm.Entity.id)
                    .where(orm.Dataset.version_id == latest.id)))
                if not protocol:
                    raise InvalidInput(f"commit {sha[:10]} does not say which protocol the data set measures")
                protocol_entity = access.readable_entity(session, author, "protocol", protocol)
            visibility = fields.get("Visibility") or orm.PRIVATE  # never more visible than it was asked to be
            access.check_visibility(visibility)
            if visibility == orm.MODERATED:
                raise InvalidInput("a new version cannot be recorded as moderated")
            version = self._record(session, kind, name, entity, latest, repo, sha, main=main, described=described,
                                   protocol_entity=protocol_entity, author=author, message=text,
                                   visibility=visibility)
            session.flush()
            return version_info(version)

    def check_tag(self, kind: str, name: str, tag: str, *, user: str) -> str:
        """Before saving: refuse a tag that is malformed or already names a version of this entity,
        or a user who may not change the entity (the same refusal the save itself would give)."""
        with self.db.session() as session:
            return self._check_tag(session, access.viewer(session, user), kind,
                                   self._entity(session, kind, name, missing_ok=True), tag)

    def tag(self, kind: str, name: str, ref: str | int, tag: str, *, user: str) -> VersionInfo:
        """Name a version (the owner and collaborators only)."""
        with self.db.session() as session:
            version = self._version(session, kind, name, ref, user)
            tag = self._check_tag(session, access.viewer(session, user), kind, version.entity, tag)
            session.add(orm.Tag(entity_id=version.entity_id, version=version, name=tag))
            self.repository(kind, name).tag(version.commit, tag)
            session.flush()
            return version_info(version)

    def _check_tag(self, session: Session, viewer: access.Viewer, kind: str, entity: orm.Entity | None,
                   tag: str) -> str:
        tag = check_tag_name(tag)
        if tag == LATEST or _NUMBER_REF.fullmatch(tag):
            raise InvalidInput(f"a tag cannot be {tag!r}: it would read as a version number or 'latest'")
        if entity is None:
            return tag
        access.require_editor(session, viewer, entity)
        existing = session.scalar(select(orm.Tag).where(orm.Tag.entity_id == entity.id, orm.Tag.name == tag))
        if existing is not None:
            raise InvalidInput(f"{kind} {entity.name} already has a tag {tag!r} (on v{existing.version.number})")
        return tag

    # -- reading --------------------------------------------------------------------------------
    def names(self, kind: str, *, user: str) -> list[str]:
        """The names of the entities of ``kind`` that ``user`` may read."""
        check_kind(kind)
        with self.db.session() as session:
            return list(session.scalars(select(orm.Entity.name)
                                        .where(orm.Entity.kind == kind, access.entity_readable(user))
                                        .order_by(orm.Entity.name)))

    def versions(self, kind: str, name: str, *, user: str) -> list[VersionInfo]:
        """The versions of an entity that ``user`` may read, oldest first."""
        with self.db.session() as session:
            entity = access.readable_entity(session, user, check_kind(kind), name)
            return [version_info(v) for v in access.readable_versions(session, user, entity)]

    def version(self, kind: str, name: str, ref: str | int = LATEST, *, user: str) -> VersionInfo:
        with self.db.session() as session:
            return version_info(self._version(session, kind, name, ref, user))

    def files(self, kind: str, name: str, ref: str | int = LATEST, *, user: str) -> list[str]:
        v = self.version(kind, name, ref, user=user)
        return self.repository(kind, name).files(v.commit)

    def read(self, kind: str, name: str, ref: str | int = LATEST, file: str | None = None, *,
             user: str) -> bytes:
        v = self.version(kind, name, ref, user=user)
        return self.repository(kind, name).read(v.commit, file or v.main_file)

    # -- sharing and visibility ---------------------------------------------------------------
    def set_visibility(self, kind: str, name: str, ref: str | int, level: str, *, user: str) -> VersionInfo:
        """Make one version private, public or moderated (rules in labkit.access.policy)."""
        with self.db.session() as session:
            viewer = access.viewer(session, user)
            version = self._version(session, kind, name, ref, user)
            access.require_may_set_visibility(viewer, version.entity, level)
            version.visibility = level
            session.flush()
            return version_info(version)

    def share(self, kind: str, name: str, collaborator: str, *, user: str) -> list[str]:
        """Let ``collaborator`` read every version, add versions and tag (the owner only); return the
        entity's collaborators."""
        with self.db.session() as session:
            viewer = access.viewer(session, user)
            entity = access.readable_entity(session, user, check_kind(kind), name)
            access.require_owner(viewer, entity, "share it")
            other = access.existing_user(session, collaborator)
            if other.id != entity.owner_id and other.id not in {c.user_id for c in entity.collaborators}:
                entity.collaborators.append(orm.Collaborator(user_id=other.id))
            session.flush()
            return sorted(c.user.name for c in entity.collaborators)

    def unshare(self, kind: str, name: str, collaborator: str, *, user: str) -> list[str]:
        """Stop sharing with ``collaborator`` (the owner only); return the remaining collaborators."""
        with self.db.session() as session:
            viewer = access.viewer(session, user)
            entity = access.readable_entity(session, user, check_kind(kind), name)
            access.require_owner(viewer, entity, "stop sharing it")
            entity.collaborators = [c for c in entity.collaborators if c.user.name != collaborator]
            session.flush()
            return sorted(c.user.name for c in entity.collaborators)

    def may_edit(self, kind: str, name: str, *, user: str) -> bool:
        """May ``user`` add versions to (and tag) this entity they can read?"""
        with self.db.session() as session:
            entity = access.readable_entity(session, user, check_kind(kind), name)
            return access.is_editor(session, access.viewer(session, user), entity)

    def collaborators(self, kind: str, name: str, *, user: str) -> tuple[str, list[str]]:
        """(owner, collaborators) of an entity ``user`` may read."""
        with self.db.session() as session:
            entity = access.readable_entity(session, user, check_kind(kind), name)
            return entity.owner.name, sorted(c.user.name for c in entity.collaborators)

    def export(self, version: VersionInfo, dest: Path) -> Path:
        """Write a version's files into ``dest`` from its git repository; return its main file."""
        self.repository(version.kind, version.entity).export(version.commit, dest)
        return dest / version.main_file

    def fetch(self, version: VersionInfo, dest: Path) -> Path:
        """Write a version's files into ``dest`` from the database alone (what a worker on another
        machine does: it has no access to the repositories); return the path of its main file."""
        with self.db.session() as session:
            files = blobs.version_files(session, version.id)
        if not files and self.repository(version.kind, version.entity).path.exists():
            # saved by an older labkit, and this process shares the lab's storage: record it now
            self.ensure_recorded(version)
            with self.db.session() as session:
                files = blobs.version_files(session, version.id)
        if not files:
            raise NotFound(f"the files of {version.label} are not in the database; submit the run "
                           "again from the lab, which records them before queueing it")
        blobs.write_tree(files, dest)
        return dest / version.main_file

    def ensure_recorded(self, version: VersionInfo) -> None:
        """Record a version's files in the database if an older labkit saved it without them."""
        with self.db.session() as session:
            if not blobs.has_version_files(session, version.id):
                repo = self.repository(version.kind, version.entity)
                blobs.record_version_files(session, version.id, self._commit_tree(repo, version.commit))

    @staticmethod
    def _commit_tree(repo: EntityRepository, sha: str) -> dict[str, bytes]:
        return {name: repo.read(sha, name) for name in repo.files(sha)}

    def annotations(self, name: str, ref: str | int = LATEST, *, user: str) -> list[orm.Annotation]:
        with self.db.session() as session:
            return list(self._version(session, "model", name, ref, user).annotations)

    def terms(self, version_id: int) -> set[str]:
        with self.db.session() as session:
            return set(session.scalars(select(orm.Annotation.term)
                                       .where(orm.Annotation.version_id == version_id)))

    def models_with_term(self, term: str, *, user: str) -> list[str]:
        """Names of models whose latest version (that ``user`` may read) annotates ``term``."""
        with self.db.session() as session:
            newest = access.latest_readable(user).subquery()
            return list(session.scalars(
                select(orm.Entity.name).distinct()
                .join(newest, newest.c.entity_id == orm.Entity.id)
                .join(orm.Version, (orm.Version.entity_id == orm.Entity.id) & (orm.Version.number == newest.c.number))
                .join(orm.Annotation, orm.Annotation.version_id == orm.Version.id)
                .where(orm.Entity.kind == "model", orm.Annotation.term == term).order_by(orm.Entity.name)))

    def interface(self, version_id: int) -> dict[str, Any]:
        with self.db.session() as session:
            row = session.scalar(select(orm.ProtocolInterface)
                                 .where(orm.ProtocolInterface.version_id == version_id))
            if row is None:
                raise NotFound(f"no protocol interface for version id {version_id}")
            return {"title": row.title, "description": row.description, "requires": row.required,
                    "optional": row.optional, "outputs": row.outputs, "plots": row.plots,
                    "parameters": row.parameters, "time_limit": row.time_limit}

    def dataset(self, name: str, ref: str | int = LATEST, *, user: str) -> dict[str, Any]:
        """A data set's columns, row count and protocol (None if ``user`` may not read the protocol)."""
        with self.db.session() as session:
            v = self._version(session, "dataset", name, ref, user)
            row = session.scalar(select(orm.Dataset).where(orm.Dataset.version_id == v.id))
            assert row is not None
            protocol_visible = session.scalar(select(orm.Entity.id).where(
                orm.Entity.id == row.protocol_id, access.entity_readable(user)))
            return {"protocol": row.protocol.name if protocol_visible else None, "columns": row.columns,
                    "rows": row.n_rows}

    # -- lookups --------------------------------------------------------------------------------
    def _entity(self, session: Session, kind: str, name: str, missing_ok: bool = False) -> orm.Entity | None:
        """The entity whatever its visibility: only for saving (names are lab-wide)."""
        check_kind(kind)
        entity = session.scalar(select(orm.Entity).where(orm.Entity.kind == kind, orm.Entity.name == name))
        if entity is None and not missing_ok:
            raise access.entity_not_found(kind, name)
        return entity

    def _version(self, session: Session, kind: str, name: str, ref: str | int, user: str) -> orm.Version:
        """Resolve ``latest``, a version number, a tag or a commit prefix among the versions ``user``
        may read (their "latest" is the newest of those)."""
        entity = access.readable_entity(session, user, check_kind(kind), name)
        versions = access.readable_versions(session, user, entity)
        ref_text = str(ref).strip()
        if ref_text == LATEST and versions:
            return versions[-1]
        number = _NUMBER_REF.fullmatch(ref_text)
        found = [v for v in versions if v.number == int(number[1])] if number else \
            [v for v in versions if ref_text in (t.name for t in v.tags)]
        if not found and len(ref_text) >= 4:  # a commit prefix (it may be all digits)
            found = [v for v in versions if v.commit.startswith(ref_text)]
        if len(found) != 1:
            raise NotFound(f"{kind} {name} has no version {ref_text!r}; it has "
                           + ", ".join(f"v{v.number}" for v in versions)
                           + (f" and tags {sorted(t.name for v in versions for t in v.tags)}" if versions else ""))
        return found[0]


def _guess_main(kind: str, files: dict[str, bytes]) -> str:
    candidates = [f for f in files if f.endswith(MAIN_SUFFIX[kind])]
    if len(candidates) != 1:
        raise InvalidInput(f"say which file is the main {kind} file (found {len(candidates)} "
                           f"files ending in {MAIN_SUFFIX[kind]})")
    return candidates[0]


def _record_metadata(session: Session, kind: str, version: orm.Version, described: Any,
                     protocol_entity: orm.Entity | None) -> None:
    if kind == "model":
        for a in described.annotations:
            session.add(orm.Annotation(version_id=version.id, term=a.term, cmeta_id=a.cmeta_id,
                                       component=a.component, variable=a.variable, units=a.units,
                                       is_state=a.is_state))
    elif kind == "protocol":
        data = described.to_json()
        session.add(orm.ProtocolInterface(
            version_id=version.id, title=data["title"], description=data["description"],
            required=list(data["requires"]), optional=list(data["optional"]),
            outputs=[{**o, "shape": list(o["shape"])} for o in data["outputs"]],
            plots=list(data["plots"]), parameters=data["parameters"], time_limit=data["time_limit"]))
    else:
        assert isinstance(described, DatasetColumns) and protocol_entity is not None
        session.add(orm.Dataset(version_id=version.id, protocol_id=protocol_entity.id,
                                columns=described.columns, n_rows=described.n_rows))
