"""Request bodies: JSON objects with typed fields, and multipart uploads. Every refusal is an
InvalidInput (400) that names the field and what it should be."""
from __future__ import annotations

import json
from typing import Any

from tornado.httputil import HTTPServerRequest

from labkit import InvalidInput

from .service import Submission, Upload

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


def moderator(data: dict[str, Any]) -> bool:
    _unknown(data, {"moderator"})
    return _field(data, "moderator", bool, "true or false", default=False)


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
