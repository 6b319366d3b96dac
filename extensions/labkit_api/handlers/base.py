"""What every labkit API handler shares: who is asking, running the library off the event loop,
JSON replies and the mapping of labkit's errors to HTTP statuses."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler
from tornado import web

from labkit import (BrokerUnavailable, Forbidden, Incompatible, InvalidInput, Lab, LabkitError, NotFound,
                    StaleVersion)

from .. import identity
from ..pagination import parse
from ..service import Download, Listing

T = TypeVar("T")

# labkit's errors -> HTTP statuses (docs/api.md, "Errors"); the library decides, the API only maps.
_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (NotFound, 404), (Forbidden, 403), (InvalidInput, 400), (StaleVersion, 400), (Incompatible, 400),
    (BrokerUnavailable, 503),
)
SETTINGS_KEY = "labkit_api"


class ApiError(web.HTTPError):
    """An error reply: ``{"error": message, ...extra}`` with ``status``."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(status, reason=None)
        self.message, self.extra = message, extra


def _status_of(err: LabkitError) -> int:
    return next((status for kind, status in _STATUS if isinstance(err, kind)), 400)


class LabkitHandler(APIHandler):
    """Base of every endpoint. Methods are ``@allow_unauthenticated`` for Jupyter so that a labkit
    token can reach ``prepare``, which then insists on one identity or the other (401 otherwise)."""

    identity: identity.Identity | None = None

    @property
    def extension(self) -> Any:
        return self.settings[SETTINGS_KEY]

    # -- identity -------------------------------------------------------------------------------
    def check_xsrf_cookie(self) -> None:
        """Only a request authenticated by a login cookie needs an XSRF token: a browser never adds
        an Authorization header to a forged cross-site request on its own, and a request with no
        identity at all is refused with 401 in ``prepare`` anyway. A token in the Authorization
        header either authenticates the request or gets it refused (``_identify``), so the cookie is
        never used with one; any other Authorization header (``Basic ...``) leaves the cookie in
        charge, and so the XSRF check too."""
        no_identity = getattr(self, "_jupyter_current_user", "not yet known") is None  # set by Jupyter's prepare
        if identity.header_token(self.request.headers.get("Authorization")) is not None or no_identity:
            return
        super().check_xsrf_cookie()

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        self.identity = await self._identify()
        self._refuse_unknown_query()

    #: The query parameters this endpoint reads; any other is refused, so a typo is never ignored.
    query_parameters: tuple[str, ...] = ()
    _ALWAYS_ALLOWED = ("token",)  # Jupyter's own ?token= authentication

    def _refuse_unknown_query(self) -> None:
        unknown = sorted(set(self.request.query_arguments) - set(self.query_parameters) - set(self._ALWAYS_ALLOWED))
        if unknown:
            takes = f"it takes {list(self.query_parameters)}" if self.query_parameters else "it takes none"
            raise ApiError(400, f"unknown query parameters {unknown} for {self.request.path}; {takes}")

    async def _identify(self) -> identity.Identity:
        lab = self._base_lab()
        token = identity.header_token(self.request.headers.get("Authorization"))
        if token is not None and not self.token_authenticated:  # not the Jupyter server's own token
            try:
                return await self.blocking(identity.from_labkit_token, lab, token)
            except identity.Unauthenticated as err:
                raise ApiError(401, str(err)) from None
        if self.current_user:
            found = identity.from_jupyter(self.identity_provider, self.current_user,
                                          self.extension.owner or lab.settings.user)
            if not found.operator and await self.blocking(lab.user_disabled, found.user):
                raise ApiError(403, f"the account {found.user!r} is disabled in this lab; ask the lab's admin")
            return found
        raise ApiError(401, identity.NO_CREDENTIALS)

    def _base_lab(self) -> Lab:
        lab = self.extension.lab
        if lab is None:
            raise ApiError(503, "no lab is configured for the labkit API: start the server with LABKIT_LAB=<lab "
                                "folder> or --LabkitAPI.lab_dir=<lab folder>")
        return lab

    def lab(self) -> Lab:
        """The lab acting as the requesting user (every permission is checked by the library)."""
        assert self.identity is not None
        return self._base_lab().as_user(self.identity.user, operator=self.identity.operator)

    # -- calling the library --------------------------------------------------------------------
    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` in the extension's thread pool (SQL and git block), mapping labkit's errors."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self.extension.executor, lambda: fn(*args))
        except LabkitError as err:
            extra = {"problems": list(err.problems)} if hasattr(err, "problems") else {}
            raise ApiError(_status_of(err), str(err), **extra) from None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(lab_as_user, *args)`` off the event loop."""
        return await self.blocking(lambda: fn(self.lab(), *args))

    def listing(self, *, keep: tuple[str, ...] = ()) -> Listing:
        """This request's page window, and the query to repeat in its ``next`` link."""
        try:
            window = parse(self.get_query_argument("limit", None), self.get_query_argument("offset", None))
        except InvalidInput as err:
            raise ApiError(400, str(err)) from None
        query = {k: v for k in keep if (v := self.get_query_argument(k, None)) is not None}
        return Listing(window, self.request.path, query)

    def required_query(self, name: str, what: str) -> str:
        value = self.get_query_argument(name, None)
        if not value:
            raise ApiError(400, f"the query parameter {name!r} is required: {what}")
        return value

    # -- replies --------------------------------------------------------------------------------
    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, allow_nan=False))

    def send_file(self, download: Download, *, attachment: bool = True) -> None:
        disposition = "attachment" if attachment else "inline"
        # a plain ASCII name for every client (curl -J reads only this one), the exact one in RFC 5987 form
        plain = download.file_name.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
        self.set_header("Content-Disposition",
                        f"{disposition}; filename=\"{plain}\"; filename*=UTF-8''{quote(download.file_name)}")
        self.finish(download.content, set_content_type=download.media_type)  # APIHandler's way

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """The HTTP methods this endpoint answers (a 405 lists them in ``Allow``)."""
        return [m.upper() for m in ("get", "post", "put", "patch", "delete")
                if getattr(cls, m) is not getattr(web.RequestHandler, m)]

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Every error is ``{"error": message}`` (plus details such as ``problems``)."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            body = {"error": exc.message, **exc.extra}
        elif isinstance(exc, web.HTTPError):
            body = {"error": exc.log_message or exc.reason or self._reason}
        else:  # a bug: the server log has the traceback
            body = {"error": "internal error in the labkit API; the Jupyter server's log has the details"}
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'token realm="labkit"')
        if status_code == 405:
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        self.clear_header("Content-Disposition")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


def endpoint(method: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a handler method as an API endpoint (reachable with a labkit token; see LabkitHandler)."""
    return allow_unauthenticated(method)


class NotFoundHandler(LabkitHandler):
    """Anything else under the API's prefix: a JSON 404 rather than Jupyter's HTML page."""

    def _missing(self, *_: Any) -> None:
        raise ApiError(404, f"no endpoint {self.request.method} {self.request.path}; the API's endpoints are "
                            "listed in its OpenAPI document at /labkit/api/v1/openapi.json")

    get = post = put = delete = patch = endpoint(_missing)
