"""Users, moderators and API tokens.

A user is a name: the JupyterHub or Jupyter server identity where there is one, the labkit token's
owner for the REST API, ``settings.user`` otherwise. Tokens are random and long, so a plain SHA-256
of each is all that is stored: the database never holds a usable token.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..errors import Forbidden, InvalidInput, NotFound
from ..store import orm
from ..store.db import insert_skipping_conflicts

TOKEN_PREFIX = "lk_"
#: Who a public, read-only dashboard site acts as: a user who owns nothing and so reads only public
#: and moderated versions (Voilà gives every visitor the same kernel identity).
PUBLIC_VISITOR = "guest"
_USER_NAME = re.compile(r"[^\s/\x00-\x1f\x7f-\x9f]{1,200}")  # no spaces, '/' or control characters
_TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MAX_TOKEN_DAYS = 3650.0
_TOUCH_EVERY = timedelta(minutes=5)  # how stale a token's "last used" may get: not a write per request


@dataclass(frozen=True)
class TokenInfo:
    """A token as its owner sees it: never the token itself, which is shown once when created."""

    name: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and orm.as_utc(self.expires_at) <= orm.utcnow()


class InvalidToken(Forbidden):
    """The token is unknown or was revoked (a REST API answers 401)."""


def check_user_name(name: str) -> str:
    if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
        raise InvalidInput(f"{name!r} is not a user name: use 1 to 200 characters without spaces, '/' "
                           "or control characters")
    return name


def get_or_create_user(session: Session, name: str) -> orm.User:
    """The user row of ``name``, created on first use (saving, being shared with, ...). The public
    visitor never gets one: whoever is not signed in owns nothing and only reads."""
    if name == PUBLIC_VISITOR:
        raise Forbidden(f"{PUBLIC_VISITOR!r} is the name of visitors who are not signed in: it cannot own, "
                        "share or be shared anything; sign in (or choose another user name)")
    query = select(orm.User).where(orm.User.name == check_user_name(name))
    user = session.scalar(query)
    if user is None:  # two processes may meet a new name at once: the second skips the insert
        session.execute(insert_skipping_conflicts(session, orm.User).values(name=name, created_at=orm.utcnow())
                        .on_conflict_do_nothing(index_elements=["name"]))
        user = session.scalar(query)
        assert user is not None
    return user


def existing_user(session: Session, name: str) -> orm.User:
    user = session.scalar(select(orm.User).where(orm.User.name == name))
    if user is None:
        raise NotFound(f"there is no user {name!r}; add them first with `labkit user add {name}`")
    return user


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_token_name(name: str) -> str:
    if not isinstance(name, str) or not _TOKEN_NAME.fullmatch(name):
        raise InvalidInput(f"{name!r} is not a token name: use up to 100 letters, digits, '.', '_' or '-', "
                           "starting with a letter or digit (say what the token is for: 'laptop', 'ci')")
    return name


def create_token(session: Session, name: str, token_name: str, days: float | None) -> str:
    """A new token for user ``name``, called ``token_name`` (unique among theirs), expiring after
    ``days`` (None: never). The caller shows it once; it cannot be read back."""
    user = existing_user(session, name)
    check_token_name(token_name)
    if days is not None and not (isinstance(days, (int, float)) and 0 < days <= MAX_TOKEN_DAYS):
        raise InvalidInput(f"a token's lifetime must be more than 0 and at most {MAX_TOKEN_DAYS:g} days")
    taken = session.scalar(select(orm.ApiToken.id).where(orm.ApiToken.user_id == user.id,
                                                         orm.ApiToken.name == token_name))
    if taken is not None:
        raise InvalidInput(f"{name} already has a token called {token_name!r}; revoke it first "
                           f"(`labkit token revoke {name} {token_name}`) or choose another name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = orm.utcnow() + timedelta(days=days) if days is not None else None
    session.add(orm.ApiToken(user_id=user.id, token_hash=hash_token(token), name=token_name, expires_at=expires))
    session.flush()
    return token


def tokens(session: Session, name: str) -> list[TokenInfo]:
    user = existing_user(session, name)
    return [TokenInfo(t.name, orm.as_utc(t.created_at), orm.as_utc(t.expires_at),
                      orm.as_utc(t.last_used_at))
            for t in session.scalars(select(orm.ApiToken).where(orm.ApiToken.user_id == user.id)
                                     .order_by(orm.ApiToken.created_at, orm.ApiToken.id))]


def user_for_token(session: Session, token: str) -> str:
    """The name of the user a token belongs to, or InvalidToken (unknown, revoked, expired, or its
    user disabled)."""
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise InvalidToken("that is not a labkit token (they start with 'lk_'); create one with "
                           "`labkit token create USER`")
    row = session.execute(select(orm.ApiToken, orm.User.name, orm.User.disabled)
                          .join(orm.User, orm.ApiToken.user_id == orm.User.id)
                          .where(orm.ApiToken.token_hash == hash_token(token))).first()
    if row is None:
        raise InvalidToken("unknown or revoked token; create a new one with `labkit token create USER`")
    record, user, disabled = row
    now = orm.utcnow()
    if record.expires_at is not None and orm.as_utc(record.expires_at) <= now:
        raise InvalidToken(f"token {record.name!r} expired on {orm.as_utc(record.expires_at):%Y-%m-%d}; create a "
                           "new one with `labkit token create USER`")
    if disabled:
        raise InvalidToken(f"the account {user!r} is disabled; ask the lab's admin")
    if record.last_used_at is None or now - orm.as_utc(record.last_used_at) > _TOUCH_EVERY:
        record.last_used_at = now
    return user


def revoke_token(session: Session, name: str, token_name: str) -> None:
    """Revoke one of ``name``'s tokens; the others keep working."""
    user = existing_user(session, name)
    gone = session.execute(delete(orm.ApiToken).where(orm.ApiToken.user_id == user.id,
                                                      orm.ApiToken.name == token_name)).rowcount
    if not gone:
        raise NotFound(f"{name} has no token called {token_name!r}; `labkit token list {name}` shows them")


def revoke_tokens(session: Session, name: str) -> int:
    """Revoke every token of ``name``; return how many there were."""
    user = existing_user(session, name)
    return session.execute(delete(orm.ApiToken).where(orm.ApiToken.user_id == user.id)).rowcount or 0
