"""The dashboards' read queries, each one SQL statement however large the lab: a page of the
matrix (25 models x 20 protocols) must not cost one query per cell.

Each query shows only what the lab's user may read: it filters with ``labkit.access``'s clauses in
SQL, so hidden rows are never loaded (not even counted)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import aliased

from .. import access
from ..lab import Lab
from ..store import orm


@dataclass(frozen=True)
class LatestVersion:
    name: str
    version_id: int
    number: int
    commit: str


@dataclass(frozen=True)
class CellRun:
    """The newest run of one (model version, protocol version) pair."""

    run_id: str
    status: str
    results: bool
    runs: int  # how many runs the pair has had


@dataclass(frozen=True)
class Activity:
    at: datetime
    kind: str  # "version" or "run"
    text: str
    page: str
    params: dict[str, str]


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    status: str
    model: str
    model_version: int
    protocol: str
    protocol_version: int
    created_at: datetime

    @property
    def label(self) -> str:
        return (f"{self.model} v{self.model_version} · {self.protocol} v{self.protocol_version} · "
                f"{self.status} · {self.created_at:%Y-%m-%d %H:%M} · {self.run_id[:8]}")


def counts(lab: Lab) -> dict[str, int]:
    """Entities by kind, runs by status and stored predictions, in three small queries."""
    with lab.db.session() as s:
        user = lab.user
        result = {f"{kind}s": n for kind, n in
                  s.execute(select(orm.Entity.kind, func.count()).where(access.entity_readable(user))
                            .group_by(orm.Entity.kind))}
        result.update({status: n for status, n in
                       s.execute(select(orm.Run.status, func.count()).where(access.run_readable(user))
                                 .group_by(orm.Run.status))})
        result["predictions"] = s.scalar(select(func.count()).select_from(orm.Run)
                                         .where(orm.Run.results_path.is_not(None),
                                                access.run_readable(user))) or 0
    for key in ("models", "protocols", "datasets", "queued", "running", "success", "failed"):
        result.setdefault(key, 0)
    return result


MATRIX_VIEWS = {"moderated": "moderated and yours", "all": "everything you may read"}


def latest_versions(lab: Lab, kind: str, names: Iterable[str] | None = None, *,
                    view: str = "all") -> list[LatestVersion]:
    """Every entity of ``kind`` (or only ``names``) with its latest version the user may read, sorted
    by name; ``view="moderated"``: only moderated versions and the user's own and shared entities."""
    if view not in MATRIX_VIEWS:
        raise ValueError(f"view is one of {sorted(MATRIX_VIEWS)}, not {view!r}")
    with lab.db.session() as s:
        newest = access.latest_readable(lab.user, moderated_or_own=view == "moderated").subquery()
        query = (select(orm.Entity.name, orm.Version.id, orm.Version.number, orm.Version.commit)
                 .join(newest, newest.c.entity_id == orm.Entity.id)
                 .join(orm.Version, (orm.Version.entity_id == orm.Entity.id) & (orm.Version.number == newest.c.number))
                 .where(orm.Entity.kind == kind).order_by(orm.Entity.name))
        if names is not None:
            query = query.where(orm.Entity.name.in_(list(names)))
        return [LatestVersion(*row) for row in s.execute(query)]


def version_ids(lab: Lab, kind: str, pins: dict[str, int]) -> dict[str, tuple[int, int]]:
    """name -> (version id, number) for chosen version numbers of several entities, in one query."""
    if not pins:
        return {}
    with lab.db.session() as s:
        rows = s.execute(select(orm.Entity.name, orm.Version.number, orm.Version.id)
                         .join(orm.Version, orm.Version.entity_id == orm.Entity.id)
                         .where(orm.Entity.kind == kind, orm.Entity.name.in_(list(pins)),
                                access.version_readable(lab.user)))
        return {name: (vid, number) for name, number, vid in rows if pins.get(name) == number}


def grid_statuses(lab: Lab, model_version_ids: Iterable[int],
                  protocol_version_ids: Iterable[int]) -> dict[tuple[int, int], CellRun]:
    """The newest run of every (model version, protocol version) pair of a matrix page: one query."""
    models, protocols = list(set(model_version_ids)), list(set(protocol_version_ids))
    if not models or not protocols:
        return {}
    found: dict[tuple[int, int], CellRun] = {}
    with lab.db.session() as s:
        query = (select(orm.Experiment.model_version_id, orm.Experiment.protocol_version_id, orm.Run.id,
                        orm.Run.status, orm.Run.results_path, orm.Run.created_at)
                 .join(orm.Run, orm.Run.experiment_id == orm.Experiment.id)
                 .where(orm.Experiment.model_version_id.in_(models),
                        orm.Experiment.protocol_version_id.in_(protocols),
                        access.experiment_readable(lab.user))
                 .order_by(orm.Run.created_at))
        for mv, pv, run_id, status, results, _ in s.execute(query):
            before = found.get((mv, pv))
            found[(mv, pv)] = CellRun(run_id, status, bool(results), (before.runs if before else 0) + 1)
    return found


def recent_activity(lab: Lab, limit: int = 12) -> list[Activity]:
    """The newest saved versions and run status changes, newest first."""
    entity = aliased(orm.Entity)
    mv, pv = aliased(orm.Version), aliased(orm.Version)
    me, pe = aliased(orm.Entity), aliased(orm.Entity)
    with lab.db.session() as s:
        user = lab.user
        versions = s.execute(select(orm.Version.created_at, entity.kind, entity.name, orm.Version.number,
                                    orm.Version.author, orm.Version.message)
                             .join(entity, entity.id == orm.Version.entity_id)
                             .where(access.version_readable(user))
                             .order_by(orm.Version.created_at.desc()).limit(limit)).all()
        events = s.execute(select(orm.RunEvent.at, orm.RunEvent.status, orm.Run.id, me.name, mv.number,
                                  pe.name, pv.number)
                           .join(orm.Run, orm.Run.id == orm.RunEvent.run_id)
                           .join(orm.Experiment, orm.Experiment.id == orm.Run.experiment_id)
                           .join(mv, mv.id == orm.Experiment.model_version_id).join(me, me.id == mv.entity_id)
                           .join(pv, pv.id == orm.Experiment.protocol_version_id).join(pe, pe.id == pv.entity_id)
                           .where(access.version_readable(user, mv), access.version_readable(user, pv))
                           .order_by(orm.RunEvent.id.desc()).limit(limit)).all()
    items = [Activity(at, "version", f"{author} saved {kind} {name} v{number}"
                      + (f": {message.strip().splitlines()[0]}" if message and message.strip() else ""),
                      "browse", {"kind": kind, "name": name, "version": str(number)})
             for at, kind, name, number, author, message in versions]
    items += [Activity(at, "run", f"run {status}: {model} v{mvn} × {protocol} v{pvn}", "prediction",
                       {"run": run_id})
              for at, status, run_id, model, mvn, protocol, pvn in events]
    items.sort(key=lambda a: orm.as_utc(a.at), reverse=True)
    return items[:limit]


def search(lab: Lab, text: str, *, kind: str | None = None, by: str = "name",
           limit: int = 500) -> list[tuple[str, str]]:
    """(kind, name) of entities whose name, annotation term (models) or tag contains ``text``; terms
    and tags count only on versions the user may read."""
    text = text.strip()
    literal = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{literal}%"  # '%' and '_' typed by the user are characters, not wildcards
    query = select(orm.Entity.kind, orm.Entity.name).distinct()
    if by == "name":
        query = query.where(orm.Entity.name.ilike(pattern, escape="\\")) if text else query
    elif by == "term":
        query = (query.join(orm.Version, orm.Version.entity_id == orm.Entity.id)
                 .join(orm.Annotation, orm.Annotation.version_id == orm.Version.id)
                 .where(or_(orm.Annotation.term.ilike(pattern, escape="\\"))))
    elif by == "tag":
        query = (query.join(orm.Tag, orm.Tag.entity_id == orm.Entity.id)
                 .join(orm.Version, orm.Version.id == orm.Tag.version_id).where(orm.Tag.name.ilike(pattern, escape="\\")))
    else:
        raise ValueError(f"search by name, term or tag, not {by!r}")
    if kind:
        query = query.where(orm.Entity.kind == kind)
    with lab.db.session() as s:
        user = lab.user
        query = query.where(access.entity_readable(user))
        if by != "name":
            query = query.where(access.version_readable(user))
        return [(k, n) for k, n in s.execute(query.order_by(orm.Entity.kind, orm.Entity.name).limit(limit))]


def predictions_for(lab: Lab, protocol: str) -> list[RunSummary]:
    """Runs of any version of ``protocol`` that stored a prediction, newest first."""
    mv, pv = aliased(orm.Version), aliased(orm.Version)
    me, pe = aliased(orm.Entity), aliased(orm.Entity)
    query = (select(orm.Run.id, orm.Run.status, me.name, mv.number, pe.name, pv.number, orm.Run.created_at)
             .join(orm.Experiment, orm.Experiment.id == orm.Run.experiment_id)
             .join(mv, mv.id == orm.Experiment.model_version_id).join(me, me.id == mv.entity_id)
             .join(pv, pv.id == orm.Experiment.protocol_version_id).join(pe, pe.id == pv.entity_id)
             .where(pe.name == protocol, orm.Run.results_path.is_not(None),
                    orm.Run.status.in_(("success", "partial")))
             .order_by(orm.Run.created_at.desc()))
    with lab.db.session() as s:
        user = lab.user
        query = query.where(access.version_readable(user, mv), access.version_readable(user, pv))
        return [RunSummary(*row) for row in s.execute(query)]


def datasets_for(lab: Lab, protocol: str) -> list[str]:
    """Names of the data sets that measure ``protocol``'s outputs."""
    pe = aliased(orm.Entity)
    de = aliased(orm.Entity)
    query = (select(de.name).distinct()
             .join(orm.Version, orm.Version.entity_id == de.id)
             .join(orm.Dataset, orm.Dataset.version_id == orm.Version.id)
             .join(pe, pe.id == orm.Dataset.protocol_id)
             .where(pe.name == protocol).order_by(de.name))
    with lab.db.session() as s:
        user = lab.user
        query = query.where(access.version_readable(user), access.entity_readable(user, pe))
        return list(s.scalars(query))
