"""``labkit.connect(url, token=...)``: a shared lab through its REST API, as one user.

A scientist's JupyterLab on a shared lab holds no database credentials. ``RemoteLab`` gives the
reading, running and comparing methods of ``Lab`` (same names, same return types: ``RunInfo``,
``VersionInfo``, ``Interface``, ``Compatibility``, ``Prediction``, ``Reproduction``) by calling the
API (docs/api.md) with the user's token, so it sees and may do exactly what that user may. The API's
errors come back as labkit's own (``NotFound``, ``Forbidden``, ``InvalidInput``...) with its message.
A prediction is downloaded once (``prediction.zip``) into a local cache folder and read from there.
"""
from __future__ import annotations

import io
import shutil
import time
import zipfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import requests

from .errors import BrokerUnavailable, Forbidden, InvalidInput, LabkitError, NotFound
from .experiments import RunInfo
from .protocols import Compatibility, Interface
from .results import Prediction
from .results.reproduce import OutputAgreement, Reproduction
from .store.entities import VersionInfo

API_PATH = "/labkit/api/v1"
_ERRORS = {400: InvalidInput, 403: Forbidden, 404: NotFound, 503: BrokerUnavailable}
POLL_SECONDS = 1.0


def connect(url: str, token: str, *, cache: str | Path | None = None, timeout: float = 60.0) -> "RemoteLab":
    """A lab served at ``url`` (the Jupyter server's address, with or without the API path), acting as
    the user whose API token ``token`` is. Predictions are kept in ``cache`` (default
    ``~/.cache/labkit/<host>``)."""
    return RemoteLab(url, token, cache=cache, timeout=timeout)


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _run(data: dict[str, Any]) -> RunInfo:
    history = tuple((h["status"], h["attempt"], _when(h["at"]), h.get("detail") or "") for h in data["history"])
    return RunInfo(data["id"], data["model"], data["model_version"], data["protocol"], data["protocol_version"],
                   data["status"], data["attempt"], dict(data["parameters"]), _when(data["created_at"]),
                   _when(data["started_at"]), _when(data["finished_at"]), data["error"], data["failing_cell"],
                   tuple(data["missing_terms"]), f"runs/{data['id']}" if data["has_prediction"] else None,
                   history, visibility=data["visibility"], rerun_of=data.get("rerun_of"))


def _version(data: dict[str, Any]) -> VersionInfo:
    return VersionInfo(data["kind"], data["entity"], data["number"], data["commit"], tuple(data["tags"]),
                       data["author"], data["message"], _when(data["created_at"]), data["main_file"], 0,
                       data.get("visibility", "private"))


class RemoteLab:
    """The methods of ``Lab`` a scientist reads, runs and compares with, through the REST API."""

    def __init__(self, url: str, token: str, *, cache: str | Path | None = None, timeout: float = 60.0) -> None:
        base = url.rstrip("/")
        self.base = base if base.endswith(API_PATH) else base + API_PATH
        self.timeout = timeout
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"
        host = requests.utils.urlparse(self.base).netloc.replace(":", "_") or "lab"
        self.cache = Path(cache) if cache else Path.home() / ".cache" / "labkit" / host
        self.user: str = self._get("/me")["user"]

    def __repr__(self) -> str:
        return f"<RemoteLab {self.base} as {self.user}>"

    # -- HTTP --------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            answer = self.http.request(method, self.base + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as err:
            raise LabkitError(f"the lab at {self.base} cannot be reached: {err}") from None
        if answer.status_code >= 400:
            try:
                message = answer.json().get("error", answer.text)
            except ValueError:
                message = answer.text[:500]
            if answer.status_code == 401:
                raise Forbidden(f"the lab refused the token: {message}")
            raise _ERRORS.get(answer.status_code, LabkitError)(message)
        return answer

    def _get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params={k: v for k, v in params.items() if v is not None}).json()

    def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call("POST", path, json=body).json()

    @staticmethod
    def _entity(kind: str, name: str) -> str:
        return f"/{kind}s/{quote(name, safe='')}"

    def _paged(self, path: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self._get(path, limit=500, offset=len(items), **params)
            items += page["items"]
            if len(items) >= page["total"] or not page["items"]:
                return items

    # -- entities ----------------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return sorted(e["name"] for e in self._paged(f"/{kind}s"))

    def versions(self, kind: str, name: str) -> list[VersionInfo]:
        return [_version(v) for v in self._paged(self._entity(kind, name) + "/versions")]

    def version(self, kind: str, name: str, ref: str | int = "latest") -> VersionInfo:
        return _version(self._get(f"{self._entity(kind, name)}/versions/{quote(str(ref), safe='')}"))

    def read_file(self, kind: str, name: str, ref: str | int = "latest", file: str | None = None) -> bytes:
        version = self.version(kind, name, ref)
        path = quote(file or version.main_file)
        return self._call("GET", f"{self._entity(kind, name)}/versions/{version.number}/files/{path}").content

    def annotations(self, model: str, ref: str | int = "latest") -> dict[str, str]:
        items = self._paged(f"/models/{quote(model, safe='')}/versions/{quote(str(ref), safe='')}/annotations")
        return {a["term"]: a["variable"] for a in items}

    def models_with_term(self, term: str) -> list[str]:
        return sorted(e["name"] for e in self._paged("/models", term=term))

    def interface(self, protocol: str, ref: str | int = "latest") -> Interface:
        return Interface.from_json(self._get(f"/protocols/{quote(protocol, safe='')}/versions/"
                                             f"{quote(str(ref), safe='')}/interface"))

    def compatibility(self, model: str, protocol: str, model_version: str | int = "latest",
                      protocol_version: str | int = "latest") -> Compatibility:
        found = self._get("/compatibility", model=model, protocol=protocol, model_version=model_version,
                          protocol_version=protocol_version)
        return Compatibility(tuple(found["missing_required"]), tuple(found["missing_optional"]))

    # -- runs --------------------------------------------------------------------------------------
    def run(self, model: str, protocol: str, parameters: dict[str, Any] | None = None, *,
            model_version: str | int = "latest", protocol_version: str | int = "latest",
            queue: str | None = None) -> RunInfo:
        body = {"model": model, "protocol": protocol, "parameters": parameters or {},
                "model_version": model_version, "protocol_version": protocol_version}
        if queue is not None:
            body["queue"] = queue
        return _run(self._post("/runs", body))

    def status(self, run_id: str) -> RunInfo:
        return _run(self._get(f"/runs/{quote(run_id, safe='')}"))

    def runs(self, *, status: str | None = None, model: str | None = None, protocol: str | None = None
             ) -> list[RunInfo]:
        return [_run(r) for r in self._paged("/runs", status=status, model=model, protocol=protocol)]

    def cancel(self, run_id: str) -> RunInfo:
        return _run(self._post(f"/runs/{quote(run_id, safe='')}/cancel"))

    def rerun(self, run_id: str) -> RunInfo:
        return _run(self._post(f"/runs/{quote(run_id, safe='')}/rerun"))

    def wait(self, runs: Iterable[str | RunInfo], *, timeout: float | None = None) -> list[RunInfo]:
        """Poll until every run has ended; TimeoutError after ``timeout`` seconds."""
        ids = [r.id if isinstance(r, RunInfo) else r for r in runs]
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            infos = [self.status(i) for i in ids]
            if all(i.done for i in infos):
                return infos
            if deadline is not None and time.monotonic() > deadline:
                pending = [i.id for i in infos if not i.done]
                raise TimeoutError(f"{len(pending)} runs still unfinished after {timeout} s: {pending}")
            time.sleep(POLL_SECONDS)

    def prediction(self, run_id: str) -> Prediction:
        """The run's prediction folder, downloaded once into the cache."""
        info = self.status(run_id)
        if not info.results_path:
            raise InvalidInput(f"run {run_id} has no prediction (status {info.status})"
                               + (f": {info.error}" if info.error else ""))
        folder = self.cache / "runs" / run_id
        if not (folder / "timings.json").exists():
            data = self._call("GET", f"/runs/{quote(run_id, safe='')}/prediction.zip").content
            staging = folder.with_name(f".{run_id}.partial")
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for entry in archive.infolist():
                    parts = PurePosixPath(entry.filename).parts
                    if entry.is_dir() or entry.filename.startswith("/") or ".." in parts or len(parts) < 2 \
                            or parts[0] != run_id:
                        continue  # the API's zip holds <run id>/...; nothing may land outside the folder
                    parts = parts[1:]
                    target = staging.joinpath(*parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(entry))
            if folder.exists():
                shutil.rmtree(folder)
            staging.rename(folder)
        return Prediction(run_id, info.status, folder)

    def reproduction(self, rerun_id: str) -> Reproduction:
        found = self._get(f"/runs/{quote(rerun_id, safe='')}/reproduction")
        outputs = tuple(OutputAgreement(o["name"], o["verdict"], o["units"], o["elements"], o["differing"],
                                        o["max_abs"] if o["max_abs"] is not None else float("nan"),
                                        o["max_rel"] if o["max_rel"] is not None else float("inf"),
                                        o["tolerance"], o["note"]) for o in found["outputs"])
        return Reproduction(found["original"], found["rerun"], found["rerun_status"], outputs)
