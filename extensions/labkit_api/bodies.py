"""Request bodies: how much of one is accepted and how it is received (``StreamedBody``), then JSON
objects with typed fields and multipart uploads. A body over its endpoint's limit is refused with 413
before it is read, or as soon as it passes the limit; every other refusal is an InvalidInput (400)
that names the field and what it should be."""
from __future__ import annotations

import functools
import inspect
import json
import tempfile
from collections.abc import Callable
from typing import IO, Any

from tornado import web
from tornado.httputil import HTTPInputError, HTTPServerRequest, parse_body_arguments

from labkit import InvalidInput, access
from labkit.protocols.check import MAX_NOTEBOOK_BYTES
from labkit.store.repos import MAX_FILE_BYTES

from .handlers.base import ApiError, LabkitHandler
from .service import Submission, Upload
from .service_access import AccountChange, TokenRequest

MiB = 2**20
#: The largest upload of a new version's files (64 MiB): room for one file as large as the library
#: stores (MAX_FILE_BYTES, 50 MiB, also the data set limit) with the others and the multipart framing.
#: A version with several large files is refused here although the library would take it: the price
#: of a bound on what one request may make the server hold.
MAX_UPLOAD_BYTES = MAX_FILE_BYTES + 14 * MiB
#: The largest notebook sent to /protocol-check: the check's own limit (MAX_NOTEBOOK_BYTES) and framing,
#: so that a slightly larger notebook still gets the check's own message.
MAX_CHECK_BYTES = MAX_NOTEBOOK_BYTES + MiB
#: The largest JSON body (runs, tags, sharing): far above any real one.
MAX_JSON_BYTES = 1 * MiB
#: How much of a body arriving is kept in memory; past this it goes to an unnamed temporary file.
IN_MEMORY_BYTES = 1 * MiB


def _mib(n: int) -> str:
    return f"{n / MiB:.0f} MiB" if n % MiB == 0 else f"{n / MiB:.1f} MiB"


@web.stream_request_body
class StreamedBody(LabkitHandler):
    """A handler whose body is received as it arrives rather than whole by Tornado (which would
    hold up to the Jupyter server's ``max_body_size``, 512 MiB, in memory before any check).

    ``prepare`` refuses a declared ``Content-Length`` over ``body_limit`` before reading any of the
    body; a body without one (chunked) is refused as soon as it passes the limit, and the connection
    is closed so the rest is never read. What is accepted goes to a spooled temporary file (memory
    up to IN_MEMORY_BYTES, then an already-unlinked file), so a slow upload holds little memory and a
    refused one leaves nothing behind. The endpoint calls ``await self.receive()`` before reading
    ``request.body`` (JSON) or ``request.files``/``body_arguments`` (multipart).

    A request refused in ``prepare`` (no credentials, a failed XSRF check, an unknown query parameter)
    without a body, or with a small one, is answered only once its body is in (``_heard_out``).
    Answered from ``prepare``, before Tornado has read the request to its end, the connection is
    closed: with the body unread, the kernel resets it and the client sees "connection reset"
    instead of the 401; even without a body, a client reusing the connection may send its next
    request into the closing socket."""

    body_limit: int = MAX_JSON_BYTES
    body_advice: str = "a JSON request body is a small object (e.g. {\"tag\": \"published\"})"

    _spool: IO[bytes] | None = None
    _received: int = 0
    _deferred: web.HTTPError | None = None  # the refusal to answer once the body is in

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every endpoint method of a subclass first answers a refusal ``prepare`` kept for later."""
        super().__init_subclass__(**kwargs)
        for verb in ("get", "post", "put", "patch", "delete"):
            method = getattr(cls, verb)
            if method is not getattr(web.RequestHandler, verb) and not getattr(method, "_heard_out", False):
                setattr(cls, verb, _heard_out(method))

    async def checks(self) -> None:
        """What a request must pass before its endpoint runs: who is asking, the query (LabkitHandler)."""
        await super().prepare()

    async def prepare(self) -> None:  # type: ignore[override]
        try:
            await self.checks()  # who is asking first: an anonymous upload gets 401 whatever its size
        except web.HTTPError as refusal:
            declared = self._declared_length()
            chunked = "Transfer-Encoding" in self.request.headers
            if chunked or (declared or 0) > min(self.body_limit, IN_MEMORY_BYTES):
                raise  # a body too large, or of unknown size, to read only to refuse it: answer and close
            self._deferred = refusal  # also without a body: answered now, Tornado would close the connection
        self.start_receiving()

    def start_receiving(self) -> None:
        """Refuse a declared body over the limit, else get ready to keep it."""
        declared = self._declared_length()
        if declared is not None and declared > self.body_limit:
            raise self._too_large(declared)
        self._spool = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_BYTES)

    def _declared_length(self) -> int | None:
        value = self.request.headers.get("Content-Length")
        if value is None:
            return None
        first = value.split(",")[0].strip()  # Tornado itself refuses differing repeated values
        if not first.isdigit():
            raise ApiError(400, f"the Content-Length header must be a number of bytes (got {value[:40]!r})")
        return int(first)

    def _too_large(self, size: int | None) -> ApiError:
        sent = f"is {_mib(size)}, over" if size is not None else "grew past"
        return ApiError(413, f"the request body {sent} the limit of {_mib(self.body_limit)} "
                             f"({self.body_limit} bytes) for {self.request.method} {self.request.path}; "
                             f"{self.body_advice}", limit_bytes=self.body_limit)

    def data_received(self, chunk: bytes) -> None:
        """Called by Tornado for each piece of the body, on the event loop: keep it, or refuse."""
        if self._spool is None:  # already refused
            return
        self._received += len(chunk)
        if self._received > self.body_limit:
            self._refuse(self._too_large(None))
            return
        try:
            self._spool.write(chunk)
        except OSError as err:  # the temporary folder is full or unwritable
            self._refuse(ApiError(503, f"the server could not keep the request body while receiving it ({err}); "
                                       "try again later, or tell the lab's administrator"))

    def _refuse(self, error: ApiError) -> None:
        """Answer now, mid-body: Tornado then closes the connection instead of reading the rest."""
        self._discard()
        self.send_error(error.status_code, exc_info=(type(error), error, None))

    def _discard(self) -> None:
        if self._spool is not None:
            self._spool.close()  # frees the memory, or the unnamed file
            self._spool = None

    async def receive(self) -> None:
        """Put the received body where the parsers read it (off the event loop: it may be on disk)."""
        spool, self._spool = self._spool, None  # taken here, on the event loop, where it could be closed
        if spool is not None:
            await self.blocking(self._load, spool)

    def _load(self, spool: IO[bytes]) -> None:
        try:
            spool.seek(0)
            body = spool.read()
        finally:
            spool.close()
        content_type = self.request.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):  # parsed into files; the raw body is dropped
            try:
                parse_body_arguments(content_type, body, self.request.body_arguments, self.request.files,
                                     self.request.headers)
            except HTTPInputError as err:
                raise InvalidInput(f"the multipart/form-data body could not be read: {err}") from None
        else:
            self.request.body = body

    def on_finish(self) -> None:
        self._discard()
        super().on_finish()

    def on_connection_close(self) -> None:
        self._discard()  # the client went away mid-body
        super().on_connection_close()


def _heard_out(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method``, answering first the refusal its handler's ``prepare`` kept until the body was in.
    functools.wraps keeps Jupyter's ``@allow_unauthenticated`` mark."""
    @functools.wraps(method)
    async def endpoint(self: StreamedBody, *args: Any, **kwargs: Any) -> Any:
        if self._deferred is not None:
            raise self._deferred
        result = method(self, *args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    endpoint._heard_out = True  # type: ignore[attr-defined]
    return endpoint


class NoBody(StreamedBody):
    """An endpoint that reads no body (GET, DELETE, cancel...). It is streamed too, so that a body sent
    anyway is bounded and dropped as it arrives instead of being held whole by Tornado first."""

    body_advice = "this endpoint reads no request body: send none"


class StreamedUpload(StreamedBody):
    """An endpoint that takes files (multipart/form-data), up to MAX_UPLOAD_BYTES."""

    body_limit = MAX_UPLOAD_BYTES
    body_advice = f"send fewer or smaller files in one request (each file may be at most {_mib(MAX_FILE_BYTES)})"


class StreamedNotebook(StreamedUpload):
    """/protocol-check: one notebook, up to MAX_CHECK_BYTES."""

    body_limit = MAX_CHECK_BYTES
    body_advice = f"a protocol's notebook may be at most {_mib(MAX_NOTEBOOK_BYTES)}"

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def json_object(request: HTTPServerRequest) -> dict[str, Any]:
    if not request.body:
        raise InvalidInput("send a JSON object as the request body (Content-Type: application/json)")
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidInput(f"the request body is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object, e.g. {\"model\": ..., \"protocol\": ...}")
    return data


def _field(data: dict[str, Any], name: str, types: type | tuple[type, ...], what: str, *,
           required: bool = False, default: Any = None) -> Any:
    if name not in data or data[name] is None:
        if required:
            raise InvalidInput(f"the field {name!r} is required: {what}")
        return default
    value = data[name]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
        raise InvalidInput(f"the field {name!r} must be {what} (got {json.dumps(value)[:80]})")
    return value


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _unknown(data: dict[str, Any], known: set[str]) -> None:
    extra = sorted(set(data) - known)
    if extra:
        raise InvalidInput(f"unknown fields {extra}; this request takes {sorted(known)}")


def _ref(data: dict[str, Any], name: str) -> str:
    value = _field(data, name, (str, int), "a version number, tag, commit prefix or 'latest'", default="latest")
    return str(value)


def submission(data: dict[str, Any]) -> Submission:
    _unknown(data, {"model", "protocol", "parameters", "model_version", "protocol_version", "queue"})
    return Submission(
        model=_field(data, "model", str, "the model's name", required=True),
        protocol=_field(data, "protocol", str, "the protocol's name", required=True),
        parameters=_field(data, "parameters", dict, "an object of protocol parameter values", default={}),
        model_version=_ref(data, "model_version"), protocol_version=_ref(data, "protocol_version"),
        queue=_field(data, "queue", str, "the name of a worker queue"))


def matrix(data: dict[str, Any]) -> tuple[list[str] | None, list[str] | None, bool, bool]:
    _unknown(data, {"models", "protocols", "only_compatible", "rerun"})
    names = []
    for key in ("models", "protocols"):
        value = _field(data, key, list, f"a list of {key[:-1]} names (or null for every one)")
        if value is not None and not all(isinstance(v, str) for v in value):
            raise InvalidInput(f"the field {key!r} must list names as strings")
        names.append(value or None)
    only = _field(data, "only_compatible", bool, "true or false", default=True)
    rerun = _field(data, "rerun", bool, "true or false", default=False)
    return names[0], names[1], only, rerun


def visibility(data: dict[str, Any]) -> str:
    _unknown(data, {"visibility"})
    return _field(data, "visibility", str, "private, public or moderated", required=True)


def user(data: dict[str, Any]) -> str:
    _unknown(data, {"user"})
    return _field(data, "user", str, "a user's name", required=True)


def _strict(data: dict[str, Any], name: str, types: type | tuple[type, ...], what: str) -> Any:
    """An optional field that, when present, may not be null (absent means "leave it as it is")."""
    if name in data and data[name] is None:
        raise InvalidInput(f"the field {name!r} must be {what} (got null); leave it out to keep it as it is")
    return _field(data, name, types, what)


def account_change(data: dict[str, Any]) -> AccountChange:
    """PUT /users/{name}: ``roles`` (the full list the user should hold), ``disabled`` and, for older
    clients, ``moderator``; a field left out keeps its value. Every role is checked before anything
    changes, and ``moderator`` may not contradict ``roles``."""
    _unknown(data, {"moderator", "roles", "disabled"})
    moderator = _strict(data, "moderator", bool, "true or false")
    disabled = _strict(data, "disabled", bool, "true or false")
    roles = _strict(data, "roles", list, f"a list of roles, each one of {', '.join(access.ROLES)}")
    held: dict[str, bool] = {}
    if roles is not None:
        for role in roles:
            if not isinstance(role, str):
                raise InvalidInput(f"the field 'roles' must list role names as strings (got {json.dumps(role)[:80]})")
            access.check_role(role)
        if len(set(roles)) != len(roles):
            raise InvalidInput(f"the field 'roles' names a role twice: {roles}")
        held = {role: role in roles for role in access.ROLES}
        if moderator is not None and moderator != held[access.MODERATOR]:
            raise InvalidInput(f"'moderator': {json.dumps(moderator)} contradicts 'roles': {json.dumps(roles)}; "
                               "send only 'roles' (the full list the user should hold)")
    elif moderator is not None:
        held = {access.MODERATOR: moderator}
    return AccountChange(roles=held, disabled=disabled)


def token_request(data: dict[str, Any]) -> TokenRequest:
    """POST /users/{name}/tokens: an optional ``name`` and ``days`` (null: never expires; left out:
    the lab's ``token_days``). The library checks the name's form and the lifetime's range."""
    _unknown(data, {"name", "days"})
    name = _strict(data, "name", str, "the token's name, e.g. 'laptop'")
    if name == "":  # the document's pattern: leaving the field out is how to ask for a default name
        raise InvalidInput("the field 'name' is empty; give the token a name (e.g. 'laptop') or leave the "
                           "field out for a default one")
    if "days" not in data:
        return TokenRequest(name=name, days="default")
    days = data["days"]
    if days is not None and (isinstance(days, bool) or not isinstance(days, (int, float))):
        raise InvalidInput(f"the field 'days' must be a number of days, or null for a token that never expires "
                           f"(got {json.dumps(days)[:80]})")
    return TokenRequest(name=name, days=days)


def tag(data: dict[str, Any]) -> str:
    _unknown(data, {"tag"})
    return _field(data, "tag", str, "the tag's name, e.g. 'published'", required=True)


def _form_value(request: HTTPServerRequest, name: str) -> str | None:
    values = request.body_arguments.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidInput(f"give the form field {name!r} once")
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"the form field {name!r} is not UTF-8 text") from None


def _flag(request: HTTPServerRequest, name: str) -> bool:
    value = (_form_value(request, name) or "").strip().lower()
    if value not in _TRUE | _FALSE:
        raise InvalidInput(f"the form field {name!r} must be true or false (got {value!r})")
    return value in _TRUE


def _require_multipart(request: HTTPServerRequest) -> None:
    if not request.headers.get("Content-Type", "").startswith("multipart/form-data"):
        raise InvalidInput("send the files as multipart/form-data, one 'file' part per file "
                           "(curl: -F file=@model.cellml)")


def uploaded_files(request: HTTPServerRequest) -> dict[str, bytes]:
    """The request's 'file' parts by file name; at least one."""
    _require_multipart(request)
    parts = request.files.get("file", [])
    unexpected = sorted(set(request.files) - {"file"})
    if unexpected:
        raise InvalidInput(f"unexpected file fields {unexpected}: name every file part 'file'")
    if not parts:
        raise InvalidInput("no file was sent: add one 'file' part per file (curl: -F file=@model.cellml)")
    files: dict[str, bytes] = {}
    for part in parts:
        if not part.filename:
            raise InvalidInput("every 'file' part needs a file name (curl sends it with -F file=@path)")
        if part.filename in files:
            raise InvalidInput(f"the file {part.filename!r} was sent twice")
        files[part.filename] = part.body
    return files


def upload(request: HTTPServerRequest) -> Upload:
    files = uploaded_files(request)
    unknown = sorted(set(request.body_arguments) - {"message", "parent", "tag", "visibility", "protocol", "run"})
    if unknown:
        raise InvalidInput(f"unknown form fields {unknown}; an upload takes file, message, parent, tag, "
                           "visibility, protocol (data sets) and run")
    return Upload(files=files, message=_form_value(request, "message") or "", parent=_form_value(request, "parent"),
                  tag=_form_value(request, "tag"), visibility=_form_value(request, "visibility"),
                  protocol=_form_value(request, "protocol"), run=_flag(request, "run"))


def notebook(request: HTTPServerRequest) -> bytes:
    files = uploaded_files(request)
    if request.body_arguments:
        raise InvalidInput(f"unknown form fields {sorted(request.body_arguments)}; the check takes one 'file'")
    if len(files) != 1:
        raise InvalidInput(f"send exactly one notebook to check (got {len(files)} files)")
    return next(iter(files.values()))
