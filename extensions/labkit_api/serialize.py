"""Library objects as the API's JSON: one function per resource, and nothing else.

Internal details stay out (database ids, server paths); datetimes are RFC 3339 with an offset;
numbers that JSON cannot carry (NaN, infinities) become null.
"""
from __future__ import annotations

import dataclasses
import math
from datetime import datetime
from typing import Any
from urllib.parse import quote

import numpy as np

from labkit import RunInfo
from labkit.access import Account, TokenInfo
from labkit.lab import SaveResult
from labkit.protocols import Compatibility, Interface
from labkit.results import OutputData
from labkit.results.reproduce import Reproduction
from labkit.store.entities import VersionInfo
from labkit.store.orm import as_utc

API_PREFIX = "/labkit/api/v1"
_VERSION_HIDDEN = {"id"}  # the database's row id means nothing to a client


def timestamp(value: datetime | None) -> str | None:
    """RFC 3339; the database hands back naive datetimes that are in UTC."""
    return None if value is None else as_utc(value).isoformat()


def plain(value: Any) -> Any:
    """A JSON-safe copy: datetimes as text, tuples as lists, non-finite floats as null."""
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def entity_path(kind: str, name: str) -> str:
    return f"{API_PREFIX}/{kind}s/{quote(name, safe='')}"


def version(info: VersionInfo) -> dict[str, Any]:
    """Every public field of a version (new library fields, such as visibility, appear as they come)."""
    data = {f.name: plain(getattr(info, f.name)) for f in dataclasses.fields(info) if f.name not in _VERSION_HIDDEN}
    data["url"] = f"{entity_path(info.kind, info.entity)}/versions/{info.number}"
    return data


def entity(kind: str, name: str, versions: list[VersionInfo]) -> dict[str, Any]:
    return {"kind": kind, "name": name, "versions": len(versions),
            "latest": version(versions[-1]) if versions else None, "url": entity_path(kind, name)}


def run(info: RunInfo) -> dict[str, Any]:
    return {
        "id": info.id, "model": info.model, "model_version": info.model_version,
        "protocol": info.protocol, "protocol_version": info.protocol_version,
        "status": info.status, "done": info.done, "attempt": info.attempt,
        "parameters": plain(info.parameters),
        "created_at": timestamp(info.created_at), "started_at": timestamp(info.started_at),
        "finished_at": timestamp(info.finished_at),
        "error": info.error, "failing_cell": info.failing_cell, "missing_terms": list(info.missing_terms),
        "has_prediction": info.results_path is not None, "visibility": info.visibility,
        "history": [{"status": s, "attempt": a, "at": timestamp(at), "detail": d} for s, a, at, d in info.history],
        "url": f"{API_PREFIX}/runs/{info.id}", "rerun_of": info.rerun_of,
    }


def reproduction(report: Reproduction) -> dict[str, Any]:
    return plain({"original": report.original, "rerun": report.rerun, "rerun_status": report.rerun_status,
                  "reproduced": report.reproduced, "counts": report.counts(),
                  "outputs": [{"name": o.name, "verdict": o.verdict, "units": o.units, "elements": o.elements,
                               "differing": o.differing, "max_abs": o.max_abs, "max_rel": o.max_rel,
                               "tolerance": o.tolerance, "note": o.note} for o in report.outputs]})


def saved(result: SaveResult, runs: list[RunInfo]) -> dict[str, Any]:
    return {"version": version(result.version),
            "planned": [{"model": version(p.model), "protocol": version(p.protocol)} for p in result.planned],
            "runs": [run(r) for r in runs]}


def interface(value: Interface) -> dict[str, Any]:
    return plain(value.to_json())


def compatibility(value: Compatibility) -> dict[str, Any]:
    return {"compatible": value.compatible, "missing_required": list(value.missing_required),
            "missing_optional": list(value.missing_optional), "explanation": value.explain()}


def output_meta(run_id: str, output: OutputData) -> dict[str, Any]:
    base = f"{API_PREFIX}/runs/{run_id}/outputs/{output.name}"
    data: dict[str, Any] = {"name": output.name, "units": output.units, "shape": list(output.shape),
                            "description": output.description, "url": base, "csv_url": base + ".csv"}
    if output.values.size == 1:
        data["value"] = plain(float(output.values.reshape(-1)[0]))
    return data


def output_values(run_id: str, output: OutputData) -> dict[str, Any]:
    return {**output_meta(run_id, output), "values": plain(output.values.tolist())}


def account(value: Account) -> dict[str, Any]:
    """A user as an admin sees them; ``moderator`` repeats one of ``roles`` for older clients."""
    return {"name": value.name, "roles": list(value.roles), "moderator": "moderator" in value.roles,
            "disabled": value.disabled, "has_password": value.has_password,
            "created_at": timestamp(value.created_at)}


def token(info: TokenInfo) -> dict[str, Any]:
    """A token's name and dates: never the token, which only its creation answer shows."""
    return {"name": info.name, "created_at": timestamp(info.created_at), "expires_at": timestamp(info.expires_at),
            "last_used_at": timestamp(info.last_used_at), "expired": info.expired}
