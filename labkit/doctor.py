"""Find and repair what an interrupted save leaves between git and the database.

A save commits to git first and writes its database rows second (labkit/store/entities.py). A
process killed between the two leaves a commit on ``main`` with no row: the version is lost to the
lab although its files are in git. ``repair`` records such a commit as the version that save meant
to make (its author, message, main file, visibility and a dataset's protocol travel in the commit),
or, if it cannot be recorded any more, keeps it on a branch ``unrecorded/<sha>`` and says why. It
also reports what it cannot repair: commits already kept on such branches (a later save moved
``main`` past them) and versions whose commit git does not hold.

It is safe to run at any time, at start-up included: it takes each entity's save lock before it
changes anything, so it never races a save; running it twice changes nothing the second time; and
when nothing needs doing it only reads each repository's ``main`` and the latest version row.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, make_url, select

from .config import Settings
from .errors import LabkitError
from .store import orm
from .store.db import Database, current_revision, head_revision
from .store.entities import EntityStore
from .store.kinds import KINDS
from .store.repos import EntityRepository

log = logging.getLogger(__name__)


@dataclass
class Report:
    """What ``repair`` found and did. Each entry is one sentence naming the entity and commit."""

    recorded: list[str] = field(default_factory=list)  # interrupted saves now recorded as versions
    kept: list[str] = field(default_factory=list)  # unrecorded commits kept on a branch, with why
    missing: list[str] = field(default_factory=list)  # versions whose commit git does not hold
    unexplained: list[str] = field(default_factory=list)  # ``main`` somewhere labkit did not put it
    entities: int = 0
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        """Nothing was repaired and nothing needs a person's attention."""
        return not (self.recorded or self.kept or self.missing or self.unexplained)

    def __str__(self) -> str:
        lines = [f"checked {self.entities} entities in {self.seconds:.2f} s: "
                 + ("nothing to repair" if self.clean else
                    f"{len(self.recorded)} recorded, {len(self.kept)} kept on a branch, "
                    f"{len(self.missing)} missing commits, {len(self.unexplained)} unexplained")]
        for title, entries in (("recorded", self.recorded), ("kept", self.kept), ("missing", self.missing),
                               ("unexplained", self.unexplained)):
            lines += [f"  {title}: {entry}" for entry in entries]
        return "\n".join(lines)


def repair(target: Any, *, check_commits: bool = True) -> Report:
    """Repair the lab ``target`` (a ``Lab``, or the ``Settings`` of one) and report.

    ``check_commits`` also looks up every recorded version's commit in git (one object lookup each,
    no git process); without it only ``main`` and the ``unrecorded/`` branches are compared with
    the database, which is all an interrupted save can change: the quick check for start-up.
    Must run where the lab's repositories are (the lab's machine, not a scale-out worker).
    """
    started = time.monotonic()
    if isinstance(target, Settings):
        url = make_url(target.database_url)
        if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
            raise LabkitError(f"{target.root} has no lab database ({url.database}): is it a lab folder? "
                              "Open the lab once (or run `labkit upgrade`) before `labkit doctor`")
        db = Database(target.database_url)
        try:
            if current_revision(db.engine) != head_revision():
                raise LabkitError(f"the database of {target.root} is not at this labkit's schema revision: "
                                  "run `labkit upgrade` (or open the lab once) before `labkit doctor`")
            return repair_store(EntityStore(db, target.repositories), check_commits=check_commits,
                                started=started)
        finally:
            db.dispose()
    store = getattr(target, "store", None)
    if not isinstance(store, EntityStore):
        raise TypeError(f"repair() takes a Lab or its Settings, not {type(target).__name__}")
    return repair_store(store, check_commits=check_commits, started=started)


def repair_store(store: EntityStore, *, check_commits: bool = True, started: float | None = None) -> Report:
    """``repair`` for an entity store (its database and repositories)."""
    started = time.monotonic() if started is None else started
    report = Report()
    with store.db.session() as s:
        newest = (select(orm.Version.entity_id, func.max(orm.Version.number).label("number"))
                  .group_by(orm.Version.entity_id).subquery())
        latest = {(kind, name): commit for kind, name, commit in s.execute(
            select(orm.Entity.kind, orm.Entity.name, orm.Version.commit)
            .join(orm.Version, orm.Version.entity_id == orm.Entity.id)
            .join(newest, (newest.c.entity_id == orm.Entity.id) & (newest.c.number == orm.Version.number)))}
        named = {(kind, name) for kind, name in s.execute(select(orm.Entity.kind, orm.Entity.name))}
    on_disk = {(kind, path.name.removesuffix(".git")) for kind in KINDS
               for path in _repositories(store.repositories / f"{kind}s")}
    for kind, name in sorted(named | on_disk):
        report.entities += 1
        repo = store.repository(kind, name)
        if _needs_a_look(repo, latest.get((kind, name))):
            with store.save_lock(kind, name):  # a save in progress finishes first
                _repair_entity(store, kind, name, report)
        if check_commits:
            _check_commits(store, kind, name, repo, report)
    report.seconds = time.monotonic() - started
    return report


def at_startup(lab: Any) -> Report | None:
    """The quick ``repair`` for when a lab opens (``Lab.__init__``): interrupted saves are recorded
    before anyone saves on top of them, and what needs a person is logged. A failure of the check
    itself is logged, not raised: it must not keep the lab from opening (`labkit doctor` says more)."""
    try:
        report = repair(lab, check_commits=False)
    except Exception:
        log.exception("the start-up check of interrupted saves failed; run `labkit doctor`")
        return None
    for entry in report.recorded:
        log.warning("labkit doctor: %s", entry)
    for entry in report.kept + report.unexplained:
        log.warning("labkit doctor: %s (run `labkit doctor`)", entry)
    return report


def _repositories(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.git") if p.is_dir()) if folder.is_dir() else []


def _needs_a_look(repo: EntityRepository, recorded_head: str | None) -> bool:
    """Cheap, without the lock: does ``main`` differ from the latest version, or does a branch keep an
    unrecorded commit? (Looked at again under the lock before anything changes.)"""
    if not repo.path.exists():
        return False
    return repo.main_sha() != recorded_head or bool(repo.unrecorded_branches())


def _repair_entity(store: EntityStore, kind: str, name: str, report: Report) -> None:
    """Under the entity's save lock: record a commit an interrupted save left on ``main`` (or keep it
    on a branch, saying why), and report commits kept on branches earlier."""
    repo = store.repository(kind, name)
    with store.db.session() as s:
        versions = [(v.number, v.commit) for v in s.scalars(
            select(orm.Version).join(orm.Version.entity)
            .where(orm.Entity.kind == kind, orm.Entity.name == name).order_by(orm.Version.number))]
    recorded = {commit for _, commit in versions}
    base = versions[-1][1] if versions else None
    head = repo.head()
    label = f"{kind} {name}"
    kept_now = None
    if head is not None and head != base:
        if head in recorded:
            report.unexplained.append(f"{label}: main is at v{dict((c, n) for n, c in versions)[head]} "
                                      f"({head[:10]}), behind the latest version v{versions[-1][0]}; left as it is")
        elif repo.parent_of(head) == base and repo.made_by_labkit(head):
            try:
                version = store.record_interrupted(kind, name, head)
                report.recorded.append(f"{label}: commit {head[:10]} of an interrupted save recorded as "
                                       f"v{version.number} (by {version.author})")
            except Exception as err:  # the save's own checks refuse it now: keep it, say why
                branch, kept_now = repo.keep(head), head
                repo.reset_main(base, expected=head)
                report.kept.append(f"{label}: commit {head[:10]} of an interrupted save could not be recorded "
                                   f"({type(err).__name__}: {err}); kept on branch {branch}, main back at "
                                   f"{'v%d' % versions[-1][0] if versions else 'no version'}")
        else:
            report.unexplained.append(
                f"{label}: main is at {head[:10]}, which labkit did not commit on top of the latest version "
                f"({(base or 'none')[:10]}); saves are refused until someone puts main back "
                f"(`git --git-dir {repo.path} update-ref refs/heads/main {base or '<sha>'}`)")
    for branch, sha in sorted(repo.unrecorded_branches().items()):
        if sha not in recorded and sha != kept_now:
            report.kept.append(f"{label}: commit {sha[:10]} of an interrupted save is kept on branch {branch}, "
                               f"not recorded (main moved on without it): `git --git-dir {repo.path} show {sha[:10]}`")


def _check_commits(store: EntityStore, kind: str, name: str, repo: EntityRepository, report: Report) -> None:
    """Report every version whose commit git does not hold (nothing can recreate it)."""
    with store.db.session() as s:
        versions = s.execute(select(orm.Version.number, orm.Version.commit).join(orm.Version.entity)
                             .where(orm.Entity.kind == kind, orm.Entity.name == name)
                             .order_by(orm.Version.number)).all()
    for number, commit in versions:
        if not repo.path.exists() or not repo.has_commit(commit):
            report.missing.append(f"{kind} {name} v{number}: commit {commit[:10]} is not in {repo.path}"
                                  + ("" if repo.path.exists() else " (the repository is missing)")
                                  + "; its files may still be in the database (version_files)")
