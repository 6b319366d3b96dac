"""Sign-in for the servers a lab runs: the Jupyter server with the REST API and Voilà's dashboards.

One identity provider (``LabkitIdentityProvider``) serves both (``ServerApp.identity_provider_class``,
``Voila.identity_provider_class``; `labkit serve` names it when the lab's ``sign_in`` setting is on):

* ``Authorization: token lk_...``: the labkit token's user;
* the ``labkit-session`` cookie: a session started by signing in at ``/login`` (argon2-checked password,
  the session kept server-side by ``labkit.access``, so signing out or disabling the user ends it);
* anyone else is the public visitor (``labkit.access.PUBLIC_VISITOR``), who only reads what is public.

The two servers listen on different ports of one host, and a browser sends a host's cookies to every
port, so one sign-in serves both. ``LabkitAuthorizer`` keeps Jupyter's own resources (kernels, contents,
terminals) from every web user on the API's server: they would run code with the lab's rights.
"""
from __future__ import annotations

import asyncio
import html
import os
import time
from collections import defaultdict, deque
from typing import Any

from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.base.handlers import JupyterHandler
from tornado.httputil import parse_body_arguments
from tornado.web import HTTPError, stream_request_body
from traitlets import Unicode, default

from labkit import Forbidden, Lab
from labkit.access import PUBLIC_VISITOR, SESSION_COOKIE
from labkit.access.accounts import MAX_PASSWORD

MAX_NAME = 200  # labkit's user names are at most this long
from .handlers.base import SETTINGS_KEY
from .identity import header_token

ANONYMOUS_NAME = "not signed in"
MAX_FAILURES, FAILURE_WINDOW = 5, 15 * 60.0  # failed sign-ins per user name before a pause, and the pause (s)
MAX_TRACKED = 10_000  # user names whose failures are remembered
MAX_FORM_BYTES = 16 * 1024  # a sign-in form is a name, a password and a path


def anonymous() -> User:
    """The public visitor: reads what is public, changes nothing (the library refuses)."""
    return User(username=PUBLIC_VISITOR, name=ANONYMOUS_NAME, display_name=ANONYMOUS_NAME)


def is_anonymous(user: Any) -> bool:
    return getattr(user, "username", None) == PUBLIC_VISITOR


class _Throttle:
    """Sign-in attempts per user name in this process (a success forgets them): after ``MAX_FAILURES``
    within ``FAILURE_WINDOW`` seconds the name is refused until the oldest leaves the window. It makes
    guessing a password slow without letting a stranger lock an account for longer than the window.
    Attempts are counted before the password is checked, so that guesses sent at once count too."""

    def __init__(self) -> None:
        self.failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, name: str) -> deque[float]:
        recent, now = self.failures[name], time.monotonic()
        while recent and now - recent[0] > FAILURE_WINDOW:
            recent.popleft()
        return recent

    def wait(self, name: str) -> float:
        """Seconds until ``name`` may try again (0: now)."""
        recent = self._recent(name)
        if not recent:
            del self.failures[name]  # a name nobody tried lately takes no memory
        return FAILURE_WINDOW - (time.monotonic() - recent[0]) if len(recent) >= MAX_FAILURES else 0.0

    def attempt(self, name: str) -> None:
        """Count an attempt before its (slow) password check: guesses sent in parallel count too."""
        if len(self.failures) >= MAX_TRACKED:  # forget the quietest names rather than grow without bound
            for stale in sorted(self.failures, key=lambda n: self.failures[n][-1] if self.failures[n] else 0.0)[
                    :MAX_TRACKED // 10]:
                del self.failures[stale]
        self._recent(name).append(time.monotonic())

    def succeeded(self, name: str) -> None:
        self.failures.pop(name, None)


class LabkitIdentityProvider(IdentityProvider):
    """Web users are the lab's accounts (see the module docstring)."""

    lab_dir = Unicode(help="The lab whose accounts sign in (default: $LABKIT_LAB).").tag(config=True)

    @default("lab_dir")
    def _lab_dir_default(self) -> str:
        return os.environ.get("LABKIT_LAB", "")

    _lab: Lab | None = None
    throttle = _Throttle()

    def lab_for(self, handler: Any) -> Lab:
        """The lab of labkit's API where it runs in the same server (one database pool, one start-up
        check), else one of the provider's own (Voilà's server)."""
        extension = handler.settings.get(SETTINGS_KEY)
        if extension is not None and extension.lab is not None:
            return extension.lab
        if self._lab is None:
            if not self.lab_dir:
                raise RuntimeError("sign-in needs a lab: set LABKIT_LAB or --LabkitIdentityProvider.lab_dir")
            self._lab = Lab.open(self.lab_dir)
        return self._lab

    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return True

    async def get_user(self, handler: Any) -> User | None:
        """The token's or the session's user; the public visitor if neither is presented; None (401)
        for a token that does not authenticate, so that a script never silently reads as a stranger."""
        token = header_token(handler.request.headers.get("Authorization"))
        if token is not None:
            try:
                name = await asyncio.to_thread(self.lab_for(handler).user_for_token, token)
            except Forbidden:
                return None
            return User(username=name, name=name, display_name=name)
        secret = handler.get_cookie(SESSION_COOKIE)
        name = await asyncio.to_thread(self.lab_for(handler).session_user, secret) if secret else None
        return User(username=name, name=name, display_name=name) if name else anonymous()

    def get_handlers(self) -> list[tuple[str, object]]:
        return [(r"/login", SignInHandler), (r"/logout", SignOutHandler)]


# -- pages ----------------------------------------------------------------------------------------
_STYLE = """<style>
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; background: #eceff1; margin: 0; }
main { max-width: 380px; margin: 80px auto; background: #fff; padding: 24px 28px; border-radius: 6px;
       box-shadow: 0 1px 4px rgba(0,0,0,.15); }
h1 { font-size: 20px; margin: 0 0 16px 0; } label { display: block; font-size: 13px; margin: 10px 0 4px 0; }
input[type=text], input[type=password] { width: 100%; box-sizing: border-box; padding: 7px; font-size: 14px; }
button { margin-top: 16px; padding: 7px 18px; font-size: 14px; background: #263238; color: #fff; border: 0;
         border-radius: 4px; cursor: pointer; }
.error { background: #ffebee; color: #b71c1c; border-left: 4px solid #c62828; padding: 6px 10px; font-size: 13px; }
.muted { color: #666; font-size: 12px; margin-top: 14px; }
</style>"""


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)} · labkit</title>"
            f"{_STYLE}</head><body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>")


class _SignInPages(JupyterHandler):
    """What the sign-in and sign-out pages share: the lab, and where to go afterwards."""

    @property
    def provider(self) -> LabkitIdentityProvider:
        return self.identity_provider  # type: ignore[return-value]

    def next_url(self) -> str:
        """Where to go back to: only a path on this server (never another site: an open redirect
        would let a phishing link borrow our address)."""
        target = self.get_argument("next", "")
        if not target.startswith("/") or target.startswith("//") or "\\" in target or any(
                not 32 < ord(c) < 127 for c in target):
            return self.base_url
        return target

    def over_https(self) -> bool:
        """Did the browser use HTTPS? Directly, or through a TLS proxy on this machine (docs/deploy.md):
        only a proxy on loopback may say so (``X-Forwarded-Proto``), a remote client could claim anything."""
        if self.request.protocol == "https":
            return True
        local = self.request.remote_ip in ("127.0.0.1", "::1")
        return local and self.request.headers.get("X-Forwarded-Proto", "").lower() == "https"

    def cookie_path(self) -> str:
        return "/"  # both servers (API and dashboards) of the lab read it

    def render_form(self, message: str = "", status: int = 200) -> None:
        error = f'<div class="error">{html.escape(message)}</div>' if message else ""
        body = (f"{error}<form method='post' action='{html.escape(self.request.path)}'>"
                f"{self.xsrf_form_html()}"
                f"<input type='hidden' name='next' value='{html.escape(self.next_url(), quote=True)}'>"
                "<label for='username'>User name</label>"
                "<input type='text' id='username' name='username' autocomplete='username' autofocus required>"
                "<label for='password'>Password</label>"
                "<input type='password' id='password' name='password' autocomplete='current-password' required>"
                "<button type='submit' id='sign-in'>Sign in</button></form>"
                "<div class='muted'>No account, or forgot the password? The lab's admin creates accounts and "
                "resets passwords. Without signing in you can read everything public.</div>")
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.finish(_page("Sign in to labkit", body))


@stream_request_body
class _SmallForm(_SignInPages):
    """A form post of at most ``MAX_FORM_BYTES``: refused (413) as soon as it is larger, never held
    whole in memory (Jupyter's servers accept bodies of 512 MiB). The XSRF check waits for the form."""

    _form: bytearray | None = None

    async def prepare(self) -> None:  # type: ignore[override]
        self._form = bytearray()
        if self.request.method == "POST":
            declared = self.request.headers.get("Content-Length", "0")
            if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
                raise HTTPError(413, "the form is too large")
        await super().prepare()

    def data_received(self, chunk: bytes) -> None:
        assert self._form is not None
        self._form += chunk
        if len(self._form) > MAX_FORM_BYTES:
            raise HTTPError(413, "the form is too large")

    def check_xsrf_cookie(self) -> None:
        if self._form is not None and self.request.method == "POST" and not self.request.body_arguments:
            return  # called from prepare, before the form arrived: ``read_form`` checks it
        super().check_xsrf_cookie()

    def read_form(self) -> None:
        """Parse the form that arrived, then check its XSRF token."""
        parse_body_arguments(self.request.headers.get("Content-Type", ""), bytes(self._form or b""),
                             self.request.body_arguments, self.request.files, self.request.headers)
        for key, values in self.request.body_arguments.items():
            self.request.arguments.setdefault(key, []).extend(values)
        self.request.body_arguments.setdefault("_xsrf", [])  # marks the form as read, even without a token
        self.check_xsrf_cookie()


class SignInHandler(_SmallForm):
    @allow_unauthenticated
    def get(self) -> None:
        self.render_form()

    @allow_unauthenticated
    async def post(self) -> None:
        self.read_form()
        name, password = self.get_body_argument("username", ""), self.get_body_argument("password", "")
        if len(name) > MAX_NAME or len(password) > MAX_PASSWORD:
            self.render_form("wrong user name or password (or the account is disabled); ask the lab's admin "
                             "to reset it", 403)
            return
        wait = self.provider.throttle.wait(name)
        if wait:
            self.render_form(f"too many failed sign-ins for {name!r}: try again in {int(wait // 60) + 1} minutes",
                             429)
            return
        self.provider.throttle.attempt(name)
        try:
            secret = await asyncio.to_thread(self.provider.lab_for(self).sign_in, name, password)
        except Forbidden as err:
            self.render_form(str(err), 403)
            return
        self.provider.throttle.succeeded(name)
        self.set_cookie(SESSION_COOKIE, secret, path=self.cookie_path(), httponly=True, samesite="Lax",
                        secure=self.over_https(),
                        expires_days=self.provider.lab_for(self).settings.session_days)
        self.redirect(self.next_url())


class SignOutHandler(_SmallForm):
    """GET asks, POST signs out: a link on another site must not be able to sign anyone out."""

    @allow_unauthenticated
    def get(self) -> None:
        body = (f"<form method='post' action='{html.escape(self.request.path)}'>{self.xsrf_form_html()}"
                f"<input type='hidden' name='next' value='{html.escape(self.next_url(), quote=True)}'>"
                "<p>Sign out of labkit on this browser?</p><button type='submit' id='sign-out'>Sign out</button>"
                "</form>")
        self.set_header("Cache-Control", "no-store")
        self.finish(_page("Sign out", body))

    @allow_unauthenticated
    async def post(self) -> None:
        self.read_form()
        await asyncio.to_thread(self.provider.lab_for(self).sign_out, self.get_cookie(SESSION_COOKIE))
        self.clear_cookie(SESSION_COOKIE, path=self.cookie_path())
        self.redirect(self.next_url())


class LabkitAuthorizer(Authorizer):
    """On the API's Jupyter server: no web user reaches Jupyter's own kernels, contents, terminals or
    sessions (they would run code, or read files, with the lab's rights). labkit's endpoints do not ask
    this authorizer; the library decides what each user may do with the lab."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return False
