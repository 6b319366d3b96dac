"""Accounts: passwords, roles, disabling and deleting users, and sign-in sessions.

Passwords are hashed with argon2 (``argon2-cffi``, the library Jupyter server itself uses); the
database never holds a password. A session is a random id in the visitor's cookie whose SHA-256 is a
row here, so signing out, disabling a user or changing their password ends it at once: a signed cookie
could not be revoked short of changing the server's secret.

The roles are the Web Lab's (docs/permissions.md): ``admin`` manages accounts, ``moderator`` chooses
what the default matrix shows, ``protocol-author`` may add protocols (they are code that every model
meets), and every user may add models and data sets and run experiments.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ..errors import Forbidden, InvalidInput
from ..store import orm
from .users import existing_user

ADMIN, MODERATOR, PROTOCOL_AUTHOR = "admin", "moderator", "protocol-author"
ROLES = (ADMIN, MODERATOR, PROTOCOL_AUTHOR)
_ROLE_COLUMNS = {ADMIN: "is_admin", MODERATOR: "is_moderator", PROTOCOL_AUTHOR: "is_protocol_author"}
MIN_PASSWORD, MAX_PASSWORD = 10, 1024  # characters; the upper bound stops a hash of megabytes
SESSION_COOKIE = "labkit-session"

_hasher = PasswordHasher()
# Verified against when the user is unknown, so that "no such user" and "wrong password" take the same
# time and say the same thing.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class SignInFailed(Forbidden):
    """Wrong user name or password, or a disabled account; the message never says which."""


@dataclass(frozen=True)
class Account:
    """What an admin page and `labkit user list` show of a user."""

    name: str
    roles: tuple[str, ...]
    has_password: bool
    disabled: bool
    created_at: datetime | None


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    return role


def roles_of(user: orm.User) -> tuple[str, ...]:
    return tuple(role for role in ROLES if getattr(user, _ROLE_COLUMNS[role]))


def account(user: orm.User) -> Account:
    return Account(user.name, roles_of(user), user.password_hash is not None, bool(user.disabled),
                   user.created_at)


def accounts(session: Session) -> list[Account]:
    return [account(u) for u in session.scalars(select(orm.User).order_by(orm.User.name))]


def update_account(session: Session, name: str, roles: dict[str, bool], disabled: bool | None = None) -> Account:
    """Grant (True) or withdraw (False) each named role, and disable or enable the account (None: as it
    is): all of it or (refused, the caller's transaction rolled back) none of it. A disabled user cannot
    sign in and their tokens and sessions stop working; nothing they made is removed (runs and
    predictions keep their provenance)."""
    user = existing_user(session, name)
    before = _active_admins(session)
    for role, granted in roles.items():
        setattr(user, _ROLE_COLUMNS[check_role(role)], bool(granted))
    if disabled is not None:
        user.disabled = disabled
        if disabled:
            end_sessions(session, user)
    _keep_an_admin(session, before)
    return account(user)


def _active_admins(session: Session) -> int:
    session.flush()
    return session.scalar(select(func.count()).select_from(orm.User)
                          .where(orm.User.is_admin.is_(True), orm.User.disabled.is_(False))) or 0


def _keep_an_admin(session: Session, before: int) -> None:
    """Refuse the change that would leave a lab that had an admin with none (nobody could manage it
    from the web; the operator would have to, from the command line). The caller's transaction is
    rolled back by the error, so nothing changes."""
    if before and not _active_admins(session):
        raise Forbidden("that would leave the lab without an admin; make another user admin first "
                        "(`labkit user role NAME admin`)")


def is_disabled(session: Session, name: str) -> bool:
    return bool(session.scalar(select(orm.User.disabled).where(orm.User.name == name)))


def check_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"a password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    if password.strip() != password or not password.isprintable():
        raise InvalidInput("a password may not start or end with spaces or hold control characters")
    return password


def set_password(session: Session, name: str, password: str) -> None:
    """Set ``name``'s password and end their sessions (whoever knew the old one is signed out)."""
    user = existing_user(session, name)
    user.password_hash = _hasher.hash(check_password(password))
    end_sessions(session, user)


def reset_password(session: Session, name: str) -> str:
    """A new random password for ``name``, to hand over once; their sessions end."""
    password = secrets.token_urlsafe(12)
    set_password(session, name, password)
    return password


def verify_password(session: Session, name: str, password: str) -> orm.User:
    """The user, if ``password`` is theirs and the account is enabled; SignInFailed otherwise."""
    user = session.scalar(select(orm.User).where(orm.User.name == name)) if isinstance(name, str) else None
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    try:
        ok = isinstance(password, str) and len(password) <= MAX_PASSWORD and _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or not user.password_hash or user.disabled:
        raise SignInFailed("wrong user name or password (or the account is disabled); ask the lab's admin "
                           "to reset it")
    if _hasher.check_needs_rehash(user.password_hash):  # argon2's parameters moved on: upgrade the hash
        user.password_hash = _hasher.hash(password)
    return user


def delete_user(session: Session, name: str) -> None:
    """Delete an account that owns nothing. Someone who owns entities is disabled instead: their
    versions are other people's provenance."""
    user = existing_user(session, name)
    owned = session.scalar(select(func.count()).select_from(orm.Entity).where(orm.Entity.owner_id == user.id))
    if owned:
        raise Forbidden(f"{name} owns {owned} entit{'y' if owned == 1 else 'ies'}, which predictions refer to; "
                        f"disable the account instead (`labkit user disable {name}`)")
    before = _active_admins(session)
    for table in (orm.ApiToken, orm.UserSession, orm.Collaborator):
        session.execute(delete(table).where(table.user_id == user.id))
    session.delete(user)
    _keep_an_admin(session, before)


# -- sessions ----------------------------------------------------------------------------------------
def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def start_session(session: Session, user: orm.User, days: float) -> str:
    """A new session for ``user``; returns the cookie value (shown to nobody else, never stored)."""
    secret = secrets.token_urlsafe(32)
    session.add(orm.UserSession(user_id=user.id, session_hash=_digest(secret),
                                expires_at=orm.utcnow() + timedelta(days=days)))
    # Expired sessions of anyone are removed as new ones start: no cleaning job needed.
    session.execute(delete(orm.UserSession).where(orm.UserSession.expires_at < orm.utcnow()))
    session.flush()
    return secret


def user_for_session(session: Session, secret: str | None) -> str | None:
    """The signed-in user's name, or None (no such session, expired, or the user disabled)."""
    if not secret or not isinstance(secret, str) or len(secret) > 200:
        return None
    row = session.execute(select(orm.User.name, orm.User.disabled, orm.UserSession.expires_at)
                          .join(orm.UserSession, orm.UserSession.user_id == orm.User.id)
                          .where(orm.UserSession.session_hash == _digest(secret))).first()
    if row is None or row.disabled or orm.as_utc(row.expires_at) < orm.utcnow():
        return None
    return row.name


def end_session(session: Session, secret: str | None) -> None:
    if secret:
        session.execute(delete(orm.UserSession).where(orm.UserSession.session_hash == _digest(secret)))


def end_sessions(session: Session, user: orm.User) -> None:
    session.execute(delete(orm.UserSession).where(orm.UserSession.user_id == user.id))


def owned_entities(session: Session, name: str) -> list[tuple[str, str]]:
    """(kind, name) of what ``name`` owns, for their account page."""
    return [(kind, entity) for kind, entity in session.execute(
        select(orm.Entity.kind, orm.Entity.name).join(orm.User, orm.User.id == orm.Entity.owner_id)
        .where(orm.User.name == name).order_by(orm.Entity.kind, orm.Entity.name))]
