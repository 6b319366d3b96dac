"""The lab's one permission policy: who may read, edit, run, cancel and moderate what.

Reading is decided in SQL (``version_readable`` and the clauses built on it) so that listing queries
never load a row the viewer may not see; single lookups use the same clauses, so there is exactly one
definition of "readable". Anything the viewer may not read is reported exactly like something that
does not exist (``entity_not_found``, ``run_not_found``): the message must not reveal it.

Rules (docs/permissions.md):

* a version is readable by everyone if it is public or moderated, and by the entity's owner, its
  collaborators and the lab's moderators whatever its visibility;
* an entity is readable if one of its versions is; a run (and its prediction) if both its model
  version and its protocol version are, and its visibility is the most restrictive of theirs;
* the owner and collaborators add versions and tags; the owner shares and sets private/public;
  only a moderator grants "moderated" (and moderators may set any level);
* anyone who may read both versions may run them; a run is cancelled by whoever started it, the
  model's owner or a moderator.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from ..errors import Forbidden, InvalidInput, NotFound
from ..store import orm
from ..store.orm import MODERATED, PRIVATE, PUBLIC, VISIBILITIES

# Most restrictive last: a run's visibility is the highest rank among its inputs.
_RESTRICTIVENESS = {MODERATED: 0, PUBLIC: 1, PRIVATE: 2}


@dataclass(frozen=True)
class Viewer:
    """The user a request acts for. ``id`` is None for a name the lab has never seen: such a viewer
    reads only public and moderated versions and owns nothing."""

    name: str
    id: int | None
    moderator: bool = False
    admin: bool = False
    protocol_author: bool = False


def viewer(session: Session, name: str) -> Viewer:
    """Load ``name``'s identity and roles (read fresh for every operation, so a change of role takes
    effect at once). A disabled user is seen as a stranger: no roles, nothing owned."""
    row = session.execute(select(orm.User.id, orm.User.is_moderator, orm.User.is_admin,
                                 orm.User.is_protocol_author, orm.User.disabled)
                          .where(orm.User.name == name)).first()
    if row is None or row.disabled:
        return Viewer(name, None)
    return Viewer(name, row.id, bool(row.is_moderator), bool(row.is_admin), bool(row.is_protocol_author))


def require_protocol_author(viewer: Viewer) -> None:
    """Protocols are code that every compatible model meets: adding one is a role an admin grants."""
    if not (viewer.protocol_author or viewer.admin):
        raise Forbidden(f"{viewer.name} may not add protocols: that needs the protocol-author role, which "
                        f"the lab's admin grants (`labkit user role {viewer.name} protocol-author`)")


# -- errors that must look the same for hidden and missing things ---------------------------------
def entity_not_found(kind: str, name: str) -> NotFound:
    return NotFound(f"there is no {kind} called {name!r}; `labkit list {kind}s` shows what there is")


def run_not_found(run_id: str) -> NotFound:
    return NotFound(f"there is no run {run_id!r}; `labkit runs` lists them")


def check_visibility(level: str) -> str:
    if level not in VISIBILITIES:
        raise InvalidInput(f"unknown visibility {level!r}; use one of {', '.join(VISIBILITIES)}")
    return level


def run_visibility(model_visibility: str, protocol_visibility: str) -> str:
    """A run and its prediction are as restricted as the more restricted of their two inputs."""
    return max(model_visibility, protocol_visibility, key=_RESTRICTIVENESS.__getitem__)


# -- reading, as SQL clauses -----------------------------------------------------------------------
# They take the user's name and look the user up inside the statement itself, so a listing stays one
# SQL statement (the matrix reads a page of statuses in one query) and a role change applies at once.
def _is_moderator(user: str) -> ColumnElement[bool]:
    return select(orm.User.id).where(orm.User.name == user, orm.User.is_moderator.is_(True)).exists()


def _editable_entity_ids(user: str) -> tuple[Select, Select]:
    """Ids of the entities ``user`` owns, and of those shared with them."""
    owned = select(orm.Entity.id).join(orm.User, orm.User.id == orm.Entity.owner_id).where(orm.User.name == user)
    shared = (select(orm.Collaborator.entity_id).join(orm.User, orm.User.id == orm.Collaborator.user_id)
              .where(orm.User.name == user))
    return owned, shared


def version_readable(user: str, version: type[orm.Version] = orm.Version) -> ColumnElement[bool]:
    """True for the rows of ``version`` (orm.Version or an alias of it) that ``user`` may read."""
    owned, shared = _editable_entity_ids(user)
    return or_(version.visibility.in_((PUBLIC, MODERATED)), version.entity_id.in_(owned),
               version.entity_id.in_(shared), _is_moderator(user))


def entity_readable(user: str, entity: type[orm.Entity] = orm.Entity) -> ColumnElement[bool]:
    """True for the entities with at least one version ``user`` may read."""
    v = aliased(orm.Version)
    return select(v.id).where(v.entity_id == entity.id, version_readable(user, v)).exists()


def experiment_readable(user: str, experiment: type[orm.Experiment] = orm.Experiment) -> ColumnElement[bool]:
    """True for experiments whose model version and protocol version ``user`` may both read."""
    mv, pv = aliased(orm.Version), aliased(orm.Version)
    return and_(select(mv.id).where(mv.id == experiment.model_version_id, version_readable(user, mv)).exists(),
                select(pv.id).where(pv.id == experiment.protocol_version_id, version_readable(user, pv)).exists())


def run_readable(user: str, run: type[orm.Run] = orm.Run) -> ColumnElement[bool]:
    """True for runs (and so predictions, outputs, events) ``user`` may read."""
    return run.experiment_id.in_(select(orm.Experiment.id).where(experiment_readable(user)))


def version_moderated_or_own(user: str, version: type[orm.Version] = orm.Version) -> ColumnElement[bool]:
    """The matrix's default view: moderated versions, and every version of the user's own and shared
    entities (so a single-user lab's matrix shows everything its owner saved)."""
    owned, shared = _editable_entity_ids(user)
    return or_(version.visibility == MODERATED, version.entity_id.in_(owned), version.entity_id.in_(shared))


def latest_readable(user: str, *, moderated_or_own: bool = False) -> Select:
    """(entity_id, number) of each entity's newest version that ``user`` may read: what "latest"
    means for them (an outsider's latest is the newest published version). ``moderated_or_own``
    narrows it to the matrix's default view."""
    condition = version_readable(user)
    if moderated_or_own:
        condition = and_(condition, version_moderated_or_own(user))
    return (select(orm.Version.entity_id, func.max(orm.Version.number).label("number"))
            .where(condition).group_by(orm.Version.entity_id))


# -- single lookups ---------------------------------------------------------------------------------
def readable_entity(session: Session, user: str, kind: str, name: str) -> orm.Entity:
    """The entity, or NotFound exactly as if it did not exist."""
    entity = session.scalar(select(orm.Entity).where(orm.Entity.kind == kind, orm.Entity.name == name,
                                                     entity_readable(user)))
    if entity is None:
        raise entity_not_found(kind, name)
    return entity


def readable_versions(session: Session, user: str, entity: orm.Entity) -> list[orm.Version]:
    return list(session.scalars(select(orm.Version).where(orm.Version.entity_id == entity.id,
                                                          version_readable(user))
                                .order_by(orm.Version.number)))


def can_read_version(session: Session, user: str, version_id: int) -> bool:
    return session.scalar(select(orm.Version.id).where(orm.Version.id == version_id,
                                                       version_readable(user))) is not None


def readable_run(session: Session, user: str, run_id: str) -> orm.Run:
    run = session.scalar(select(orm.Run).where(orm.Run.id == run_id, run_readable(user)))
    if run is None:
        raise run_not_found(run_id)
    return run


# -- writing ---------------------------------------------------------------------------------------
def is_editor(session: Session, viewer: Viewer, entity: orm.Entity) -> bool:
    """Owner or collaborator: may add versions and tags."""
    if viewer.id is None:
        return False
    if entity.owner_id == viewer.id:
        return True
    return session.scalar(select(orm.Collaborator.id).where(orm.Collaborator.entity_id == entity.id,
                                                            orm.Collaborator.user_id == viewer.id)) is not None


def require_editor(session: Session, viewer: Viewer, entity: orm.Entity) -> None:
    """Refuse a new version or tag from anyone but the owner and collaborators. The message is the same
    whether or not the viewer can read the entity, so it tells an outsider only that the name is taken
    (names are lab-wide)."""
    if not is_editor(session, viewer, entity):
        raise Forbidden(f"{viewer.name} may not change {entity.kind} {entity.name!r}: only its owner and the "
                        "collaborators it is shared with may. Ask the owner to share it with you "
                        f"(`labkit share {entity.kind} {entity.name} {viewer.name}`), or choose another name.")


def require_owner(viewer: Viewer, entity: orm.Entity, action: str) -> None:
    if viewer.id is None or entity.owner_id != viewer.id:
        raise Forbidden(f"only the owner of {entity.kind} {entity.name!r} ({entity.owner.name}) may {action}")


def require_may_set_visibility(viewer: Viewer, entity: orm.Entity, level: str) -> None:
    """private/public: the owner or a moderator; moderated: a moderator only."""
    check_visibility(level)
    if viewer.moderator:
        return
    if level == MODERATED:
        raise Forbidden(f"only a moderator may make a version moderated; {viewer.name} is not one. Make it "
                        "public and ask a moderator (a lab operator can name one: `labkit user add NAME --moderator`)")
    require_owner(viewer, entity, f"make its versions {level}")


def require_may_cancel(viewer: Viewer, run: orm.Run) -> None:
    """Who started the run, the owner of its model, or a moderator."""
    model_owner = run.experiment.model_version.entity.owner_id
    if viewer.moderator or run.created_by == viewer.name or (viewer.id is not None and model_owner == viewer.id):
        return
    raise Forbidden(f"{viewer.name} may not cancel run {run.id}: only who started it "
                    f"({run.created_by or 'unknown'}), the model's owner or a moderator may")


