"""Experiments and runs: plan, submit (through Celery), watch, cancel. The run row is created and
its status decided before any message is sent, so the database is always the truth.

Everything here acts for ``settings.user`` and asks ``labkit.access``: a run is visible only to who
may read both its model version and its protocol version, and a hidden run looks like a missing one.
"""
from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import Celery
from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.orm import Session, aliased, selectinload

from . import access
from .config import Settings
from .errors import BrokerUnavailable, InvalidInput
from .protocols import Compatibility, Interface, compatibility
from .queue.tasks import send_run
from .runner import claims
from .runner.claims import FINAL
from .store import orm
from .store.db import insert_skipping_conflicts
from .store.db import Database
from .store.entities import EntityStore, VersionInfo



def parameter_mismatch(default: Any, value: Any) -> str | None:
    """Why ``value`` cannot stand for a parameter whose default is ``default`` (None when it can).

    A value must be of its default's kind: a bool for a bool, a whole number for an int, a finite
    number for a float, text for a str, a list of such values for a list. A default of None takes
    any of these. Anything else would reach the notebook as something its author never wrote for.
    """
    def kind(x: Any) -> str:
        if isinstance(x, bool):
            return "true or false"
        if isinstance(x, int):
            return "a whole number"
        if isinstance(x, float):
            return "a number"
        if isinstance(x, str):
            return "text"
        if isinstance(x, (list, tuple)):
            return "a list"
        if x is None:
            return "nothing"
        return type(x).__name__
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} is not a finite number"
    if isinstance(value, str) and len(value) > 10_000:
        return "text of more than 10000 characters"
    if isinstance(value, (list, tuple)):
        if len(value) > 10_000:
            return "a list of more than 10000 values"
        inner = [parameter_mismatch(None, v) for v in value]
        if any(not isinstance(v, (bool, int, float, str)) or p for v, p in zip(value, inner)):
            return "a list must hold numbers, text or true/false only"
    elif value is not None and not isinstance(value, (bool, int, float, str)):
        return f"{kind(value)} is not a parameter value (use numbers, text, true/false or lists)"
    if default is None:
        return None
    expected, given = kind(default), kind(value)
    if expected == given or (expected == "a number" and given == "a whole number"):
        return None
    return f"expected {expected} like its default {default!r}, got {given}: {value!r}"


@dataclass(frozen=True)
class RunInfo:
    id: str
    model: str
    model_version: int
    protocol: str
    protocol_version: int
    status: str
    attempt: int
    parameters: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    failing_cell: str | None
    missing_terms: tuple[str, ...]
    results_path: str | None
    history: tuple[tuple[str, int, datetime, str], ...]
    created_by: str = ""
    visibility: str = orm.PRIVATE  # the more restricted of its model's and its protocol's
    rerun_of: str | None = None  # the run this one repeats (`Lab.rerun`)
    binder_ref: str | None = None  # the branch of the lab's Binder remote holding its export

    @property
    def done(self) -> bool:
        return self.status in FINAL

    @property
    def error_line(self) -> str:
        """The last line of the error (a traceback's, naming the exception): what a reader needs first."""
        lines = [line.strip() for line in (self.error or "").splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def _repr_html_(self) -> str:
        """How a run shows itself in a notebook: what ran on what, its status and why it failed."""
        from .results.display import run_html
        return run_html(self)


# Everything run_info touches, loaded up front (a handful of queries however many runs are listed).
_RUN_INFO_LOADS = (
    selectinload(orm.Run.experiment).selectinload(orm.Experiment.model_version).selectinload(orm.Version.entity),
    selectinload(orm.Run.experiment).selectinload(orm.Experiment.protocol_version).selectinload(orm.Version.entity),
    selectinload(orm.Run.events),
)


def run_info(run: orm.Run) -> RunInfo:
    e = run.experiment
    return RunInfo(run.id, e.model_version.entity.name, e.model_version.number,
                   e.protocol_version.entity.name, e.protocol_version.number, run.status, run.attempt,
                   dict(run.parameters), run.created_at, run.started_at, run.finished_at, run.error,
                   run.failing_cell, tuple(run.missing_terms or ()), run.results_path,
                   tuple((ev.status, ev.attempt, ev.at, ev.detail) for ev in run.events), run.created_by,
                   access.run_visibility(e.model_version.visibility, e.protocol_version.visibility), run.rerun_of,
                   run.binder_ref)


def _experiment_id(s: Session, model_version_id: int, protocol_version_id: int) -> tuple[int, bool]:
    """The experiment of a (model version, protocol version) pair, created on its first run.

    Two processes (a notebook and the dashboards, two ``labkit matrix``) often submit the first run
    of a pair at the same moment. A look-then-insert lets both see no row and fails the second on the
    unique key when the first commits, so the insert itself skips an existing pair (``ON CONFLICT DO
    NOTHING``, as for blobs) and the row is read back, whoever wrote it. Returns (id, whether this
    call created it)."""
    def existing() -> int | None:
        return s.scalar(select(orm.Experiment.id).where(orm.Experiment.model_version_id == model_version_id,
                                                         orm.Experiment.protocol_version_id == protocol_version_id))
    found = existing()
    if found is not None:
        return found, False
    created = s.scalar(insert_skipping_conflicts(s, orm.Experiment)
                       .values(model_version_id=model_version_id, protocol_version_id=protocol_version_id,
                               created_at=orm.utcnow())
                       .on_conflict_do_nothing(index_elements=["model_version_id", "protocol_version_id"])
                       .returning(orm.Experiment.id))  # None when another process's row was there
    found = created if created is not None else existing()
    assert found is not None
    return found, created is not None


@dataclass(frozen=True)
class PlannedExperiment:
    model: VersionInfo
    protocol: VersionInfo


class Experiments:
    """The runs ``settings.user`` may see and start."""

    def __init__(self, settings: Settings, db: Database, store: EntityStore, celery: Celery) -> None:
        self.settings, self.db, self.store, self.celery = settings, db, store, celery

    @property
    def user(self) -> str:
        return self.settings.user

    def _require_readable(self, *versions: VersionInfo) -> None:
        """Versions come in as VersionInfo (ids); one the user may not read is missing for them."""
        with self.db.session() as s:
            for version in versions:
                if not access.can_read_version(s, self.user, version.id):
                    raise access.entity_not_found(version.kind, version.entity)

    def compatibility(self, model: VersionInfo, protocol: VersionInfo) -> Compatibility:
        self._require_readable(model, protocol)
        return compatibility(Interface.from_json(self.store.interface(protocol.id)), self.store.terms(model.id))

    def plan_for(self, version: VersionInfo) -> list[PlannedExperiment]:
        """The experiments a new model or protocol version implies: against the latest version of
        every compatible partner. A private model is planned only against the user's own (or shared)
        protocols and moderated ones: nobody else's code runs on it unless its owner asks for that
        run. (A protocol's own code is its author's; it is planned against every model they may read.)"""
        partner_kind = "protocol" if version.kind == "model" else "model"
        planned = []
        private_model = version.kind == "model" and version.visibility == orm.PRIVATE
        trusted = self._moderated_or_own_versions() if private_model else None
        for name in self.store.names(partner_kind, user=self.user):
            partner = self.store.version(partner_kind, name, user=self.user)
            if trusted is not None and partner.id not in trusted:
                continue
            model, protocol = (version, partner) if version.kind == "model" else (partner, version)
            if self.compatibility(model, protocol).compatible:
                planned.append(PlannedExperiment(model, protocol))
        return planned

    def _moderated_or_own_versions(self) -> set[int]:
        with self.db.session() as s:
            return set(s.scalars(select(orm.Version.id).where(access.version_moderated_or_own(self.user))))

    def submit(self, model: VersionInfo, protocol: VersionInfo, parameters: dict[str, Any] | None = None,
               *, queue: str | None = None, rerun_of: str | None = None) -> RunInfo:
        """Create a run; queue it, or mark it inapplicable at once if the model lacks required terms.
        Anyone who may read both versions may run them. ``rerun_of`` names the run this one repeats."""
        self._require_readable(model, protocol)
        interface = Interface.from_json(self.store.interface(protocol.id))
        parameters = dict(parameters or {})
        unknown = sorted(set(parameters) - set(interface.parameters))
        if unknown:
            raise InvalidInput(f"protocol {protocol.entity} has no parameters {unknown}; "
                               f"it takes {sorted(interface.parameters)}")
        for name, value in parameters.items():
            problem = parameter_mismatch(interface.parameters[name], value)
            if problem:
                raise InvalidInput(f"parameter {name!r} of protocol {protocol.entity}: {problem}")
        allowed = self.settings.queues
        if queue is not None and queue not in allowed:
            raise InvalidInput(f"{queue!r} is not one of this lab's run queues {list(allowed)}; its operator "
                               "names the queues that workers serve in the setting run_queues")
        compat = compatibility(interface, self.store.terms(model.id))
        if compat.compatible:  # a worker elsewhere rebuilds both versions from the database
            self.store.ensure_recorded(model)
            self.store.ensure_recorded(protocol)
        run_id = str(uuid.uuid4())
        status = "queued" if compat.compatible else "inapplicable"
        with self.db.session() as s:
            experiment_id, new_experiment = _experiment_id(s, model.id, protocol.id)
            run = orm.Run(id=run_id, experiment_id=experiment_id, parameters=parameters, status=status,
                          time_limit=min(interface.time_limit or math.inf, self.settings.run_time_limit),
                          queue=queue or self.settings.default_queue, created_by=self.user,
                          missing_terms=list(compat.missing_required), rerun_of=rerun_of,
                          error=None if compat.compatible else compat.explain())
            s.add(run)
            s.add(orm.RunEvent(run_id=run_id, status=status, detail="" if compat.compatible else compat.explain()))
        if compat.compatible:
            try:
                send_run(self.celery, self.settings, run_id, queue)
            except BrokerUnavailable as err:
                if self._withdraw(run_id, experiment_id if new_experiment else None):
                    raise BrokerUnavailable(
                        f"{err}. The run was not recorded. Make sure the broker is running and reachable "
                        "(the setting broker_url; docs/configuration.md), then submit it again.") from err
                # a worker has it already: the message did get through before the error
            else:
                claims.mark_sent(self.db, run_id)
        return self.get(run_id)

    def _withdraw(self, run_id: str, new_experiment: int | None) -> bool:
        """Take back a queued run whose message the broker refused, and the experiment row its submit
        created, so that a refused submit changes nothing (False if a worker took the run meanwhile).
        Should this fail too, the run stays queued unsent and the reaper sends it (claims.unsent_runs)."""
        with self.db.session() as s:
            untouched = (orm.Run.id == run_id) & (orm.Run.status == "queued") & (orm.Run.attempt == 0)
            s.execute(delete(orm.RunEvent).where(orm.RunEvent.run_id.in_(select(orm.Run.id).where(untouched))))
            if s.execute(delete(orm.Run).where(untouched)).rowcount != 1:
                return False
            if new_experiment is not None:
                s.execute(delete(orm.Experiment).where(
                    orm.Experiment.id == new_experiment,
                    ~select(orm.Run.id).where(orm.Run.experiment_id == new_experiment).exists()))
        return True

    def get(self, run_id: str) -> RunInfo:
        with self.db.session() as s:
            return run_info(access.readable_run(s, self.user, run_id))

    def list(self, *, status: str | None = None, model: str | None = None, protocol: str | None = None,
             created_by: str | None = None, limit: int | None = None, offset: int = 0) -> list[RunInfo]:
        """The runs this user may read, oldest first; ``limit``/``offset`` select a page in SQL."""
        query = (self._readable(select(orm.Run), status, model, protocol, created_by)
                 .options(*_RUN_INFO_LOADS).order_by(orm.Run.created_at, orm.Run.id).offset(offset).limit(limit))
        with self.db.session() as s:  # filtered in SQL and loaded in a few queries, not one per run
            return [run_info(r) for r in s.scalars(query)]

    def count(self, *, status: str | None = None, model: str | None = None, protocol: str | None = None,
              created_by: str | None = None) -> int:
        """How many runs ``list`` would return without a limit (counted in SQL)."""
        with self.db.session() as s:
            return s.scalar(self._readable(select(func.count(orm.Run.id)), status, model, protocol, created_by)) or 0

    def count_by_status(self) -> dict[str, int]:
        """How many runs this user may read have each status (one grouped query)."""
        with self.db.session() as s:
            rows = s.execute(self._readable(select(orm.Run.status, func.count(orm.Run.id)), None, None, None)
                             .group_by(orm.Run.status))
            return {status: count for status, count in rows}

    def _readable(self, query: Select, status: str | None, model: str | None, protocol: str | None,
                  created_by: str | None = None) -> Select:
        """``query`` over runs joined to their model and protocol, filtered, and only what this user may read."""
        model_version, protocol_version = aliased(orm.Version), aliased(orm.Version)
        model_entity, protocol_entity = aliased(orm.Entity), aliased(orm.Entity)
        query = (query.select_from(orm.Run).join(orm.Run.experiment)
                 .join(model_version, orm.Experiment.model_version_id == model_version.id)
                 .join(model_entity, model_version.entity_id == model_entity.id)
                 .join(protocol_version, orm.Experiment.protocol_version_id == protocol_version.id)
                 .join(protocol_entity, protocol_version.entity_id == protocol_entity.id)
                 .where(access.run_readable(self.user)))
        if status:
            query = query.where(orm.Run.status == status)
        if model is not None:
            query = query.where(model_entity.name == model)
        if protocol is not None:
            query = query.where(protocol_entity.name == protocol)
        if created_by is not None:
            query = query.where(orm.Run.created_by == created_by)
        return query

    def cancel(self, run_id: str) -> RunInfo:
        """Cancel a queued run at once; ask a running one to stop (its worker kills the kernel). Only
        who started it, the model's owner or a moderator may."""
        with self.db.session() as s:
            run = access.readable_run(s, self.user, run_id)
            access.require_may_cancel(access.viewer(s, self.user), run)
            if run.status == "queued":
                done = s.execute(update(orm.Run).where(orm.Run.id == run_id, orm.Run.status == "queued")
                                 .values(status="cancelled", cancel_requested=True)).rowcount
                if done:
                    s.add(orm.RunEvent(run_id=run_id, status="cancelled", attempt=run.attempt,
                                       detail="cancelled before it started"))
                    return self._after(s, run_id)
                s.refresh(run)  # a worker claimed it meanwhile: ask the running run to stop instead
            if run.status == "running":
                s.execute(update(orm.Run).where(orm.Run.id == run_id).values(cancel_requested=True))
            elif run.status in FINAL:
                raise InvalidInput(f"run {run_id} has already ended ({run.status}); nothing to cancel")
        return self.get(run_id)

    def _after(self, s: Any, run_id: str) -> RunInfo:
        s.flush()
        s.expire_all()
        return run_info(s.get(orm.Run, run_id))

    def wait(self, run_ids: Iterable[str], *, timeout: float | None = None,
             on_change: Callable[[RunInfo], None] | None = None) -> list[RunInfo]:
        """Block until every run has ended; call ``on_change`` whenever one changes status."""
        pending = list(dict.fromkeys(run_ids))
        seen: dict[str, str] = {}
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            infos = [self.get(r) for r in pending]
            for info in infos:
                if on_change and seen.get(info.id) != info.status:
                    on_change(info)
                seen[info.id] = info.status
            if all(i.done for i in infos):
                return infos
            if deadline is not None and time.monotonic() > deadline:
                waiting = [f"{i.id[:8]} ({i.status})" for i in infos if not i.done]
                raise TimeoutError(f"runs still not finished after {timeout:g} s: {', '.join(waiting)}. "
                                   "Are workers running? (`labkit workers status`)")
            time.sleep(0.3)
