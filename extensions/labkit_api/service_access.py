"""Sharing, visibility, users and tokens, on a ``Lab`` acting as the requesting user. As in
``service``, the library decides who may: these functions only call it and shape the JSON."""
from __future__ import annotations

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


def list_users(lab: Lab, listing: Listing) -> dict[str, Any]:
    return listing.of(lab.users(), lambda row: {"name": row[0], "moderator": row[1]})


def put_user(lab: Lab, name: str, moderator: bool) -> dict[str, Any]:
    """Add a user, or change whether they are a moderator."""
    return {"name": lab.add_user(name, moderator=moderator), "moderator": moderator}


def create_token(lab: Lab, user: str) -> dict[str, Any]:
    return {"user": user, "token": lab.create_token(user)}


def revoke_tokens(lab: Lab, user: str) -> dict[str, Any]:
    return {"user": user, "revoked": lab.revoke_tokens(user)}
