"""Who a request acts for.

Two ways in, checked in this order:

1. ``Authorization: token <labkit token>`` (or ``Bearer``) that is not the Jupyter server's own
   token: the library resolves it to its user (``Lab.user_for_token``).
2. Jupyter's identity (``current_user``): with sign-in (``signin.LabkitIdentityProvider``: a
   session cookie, or the public visitor), under JupyterHub, or any identity provider that knows
   users, its username. Jupyter server's own token and password providers know no users (one
   shared secret), so whoever holds it is the server's owner and operates the lab:
   ``LabkitAPI.owner`` (by default the lab's ``user`` setting).

Anything else is refused with 401.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider

from labkit import Forbidden, Lab

_AUTH_HEADER = re.compile(r"(?:token|bearer)\s+(\S+)\s*$", re.IGNORECASE)
# Jupyter server's own providers: a shared token or password, no user names.
_SHARED_SECRET_PROVIDERS = (IdentityProvider, PasswordIdentityProvider)


class Unauthenticated(Exception):
    """No usable credentials; the message says how to authenticate."""


@dataclass(frozen=True)
class Identity:
    user: str
    via: str  # "labkit-token" or "jupyter"
    operator: bool = False  # holds the server's shared secret: as good as the lab folder


def header_token(authorization: str | None) -> str | None:
    match = _AUTH_HEADER.match(authorization or "")
    return match.group(1) if match else None


def from_labkit_token(lab: Lab, token: str) -> Identity:
    """The token's user, or Unauthenticated (not a labkit token, unknown or revoked)."""
    try:
        return Identity(lab.user_for_token(token), "labkit-token")
    except Forbidden as err:  # labkit.access.InvalidToken
        raise Unauthenticated(str(err)) from None


def from_jupyter(provider: Any, user: Any, owner: str) -> Identity:
    """The Jupyter user's name; the lab owner's for a server guarded by one shared secret."""
    if type(provider) in _SHARED_SECRET_PROVIDERS:
        return Identity(owner, "jupyter", operator=True)
    return Identity(user.username, "jupyter")


NO_CREDENTIALS = ("authenticate with the Jupyter server's token (header 'Authorization: token <jupyter token>'), "
                  "a labkit token (header 'Authorization: token lk_...'; `labkit token create NAME` makes one), "
                  "or by logging in to the Jupyter server")
