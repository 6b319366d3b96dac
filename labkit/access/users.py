"""Users, moderators and API tokens.

A user is a name: the JupyterHub or Jupyter server identity where there is one, the labkit token's
owner for the REST API, ``settings.user`` otherwise. Tokens are random and long, so a plain SHA-256
of each is all that is stored: the database never holds a usable token.
"""
from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..errors import Forbidden, InvalidInput, NotFound
from ..store import orm

TOKEN_PREFIX = "lk_"
#: Who a public, read-only dashboard site acts as: a user who owns nothing and so reads only public
#: and moderated versions (Voilà gives every visitor the same kernel identity).
PUBLIC_VISITOR = "guest"
_USER_NAME = re.compile(r"[^\s/\x00-\x1f\x7f-\x9f]{1,200}")  # no spaces, '/' or control characters


class InvalidToken(Forbidden):
    """The token is unknown or was revoked (a REST API answers 401)."""


def check_user_name(name: str) -> str:
    if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
        raise InvalidInput(f"{name!r} is not a user name: use 1 to 200 characters without spaces, '/' "
                           "or control characters")
    return name


def get_or_create_user(session: Session, name: str) -> orm.User:
    """The user row of ``name``, created on first use (saving, being shared with, ...)."""
    user = session.scalar(select(orm.User).where(orm.User.name == check_user_name(name)))
    if user is None:
        user = orm.User(name=name)
        session.add(user)
        session.flush()
    return user


def existing_user(session: Session, name: str) -> orm.User:
    user = session.scalar(select(orm.User).where(orm.User.name == name))
    if user is None:
        raise NotFound(f"there is no user {name!r}; add them first with `labkit user add {name}`")
    return user


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str) -> str:
    """A new token for user ``name``; the caller shows it once, it cannot be read back."""
    user = existing_user(session, name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(orm.ApiToken(user_id=user.id, token_hash=hash_token(token)))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> str:
    """The name of the user a token belongs to, or InvalidToken."""
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
        raise InvalidToken("that is not a labkit token (they start with 'lk_'); create one with "
                           "`labkit token create NAME`")
    name = session.scalar(select(orm.User.name).join(orm.ApiToken, orm.ApiToken.user_id == orm.User.id)
                          .where(orm.ApiToken.token_hash == hash_token(token)))
    if name is None:
        raise InvalidToken("unknown or revoked token; create a new one with `labkit token create NAME`")
    return name


def revoke_tokens(session: Session, name: str) -> int:
    """Revoke every token of ``name``; return how many there were."""
    user = existing_user(session, name)
    return session.execute(delete(orm.ApiToken).where(orm.ApiToken.user_id == user.id)).rowcount or 0
