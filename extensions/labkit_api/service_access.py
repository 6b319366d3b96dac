"""Sharing, visibility, accounts and tokens, on a ``Lab`` acting as the requesting user. As in
``service``, the library decides who may: these functions only call it and shape the JSON."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from labkit import Lab

from . import serialize
from .service import Listing


def collaborators(lab: Lab, kind: str, name: str) -> dict[str, Any]:
    owner, others = lab.collaborators(kind, name)
    return {"owner": owner, "collaborators": others}


def share(lab: Lab, kind: str, name: str, user: str) -> dict[str, Any]:
    lab.share(kind, name, user)
    return collaborators(lab, kind, name)


def unshare(lab: Lab, kind: str, name: str, user: str) -> dict[str, Any]:
    lab.unshare(kind, name, user)
    return collaborators(lab, kind, name)


def set_visibility(lab: Lab, kind: str, name: str, ref: str, level: str) -> dict[str, Any]:
    return serialize.version(lab.set_visibility(kind, name, ref, level))


# -- accounts ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AccountChange:
    """What PUT /users/{name} asks for: each named role held (True) or not (False), and whether the
    account is disabled (None: as it is). Roles not named keep their value."""

    roles: dict[str, bool] = field(default_factory=dict)
    disabled: bool | None = None


def list_users(lab: Lab, listing: Listing) -> dict[str, Any]:
    return listing.of(lab.accounts(), serialize.account)


def put_user(lab: Lab, name: str, change: AccountChange) -> dict[str, Any]:
    """Add the user if new, and change their roles and whether they are disabled: one transaction in
    the library, so a refused request (no admin rights, a lab left without an active admin) changes
    nothing."""
    return serialize.account(lab.update_account(name, roles=change.roles, disabled=change.disabled, create=True))


def delete_user(lab: Lab, name: str) -> dict[str, Any]:
    """Delete an account; the library refuses one that owns entities (disable it instead)."""
    lab.delete_user(name)
    return {"name": name, "deleted": True}


# -- API tokens -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenRequest:
    """POST /users/{name}/tokens: the token's name (None: the library's next ``token-N``) and lifetime
    in days (None: never expires; "default": the lab's ``token_days``)."""

    name: str | None = None
    days: float | None | str = "default"


def create_token(lab: Lab, user: str, request: TokenRequest) -> dict[str, Any]:
    """A new token, shown in this answer only, with the name and expiry it was given."""
    token, info = lab.issue_token(user, name=request.name, days=request.days)
    return {"user": user, "name": info.name, "token": token, "expires_at": serialize.timestamp(info.expires_at)}


def list_tokens(lab: Lab, user: str, listing: Listing) -> dict[str, Any]:
    return listing.of(lab.tokens(user), serialize.token)


def revoke_token(lab: Lab, user: str, token_name: str) -> dict[str, Any]:
    lab.revoke_token(token_name, user)
    return {"user": user, "name": token_name, "revoked": 1}


def revoke_tokens(lab: Lab, user: str) -> dict[str, Any]:
    return {"user": user, "revoked": lab.revoke_tokens(user)}
