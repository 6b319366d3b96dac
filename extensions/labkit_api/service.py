"""What each endpoint does, on a ``Lab`` already acting as the requesting user.

The handlers parse HTTP and call these; these call the library and build JSON-ready values. No
permission is decided here: the library raises NotFound / Forbidden / InvalidInput as it sees fit.
Everything here blocks (SQL, git), so the handlers run it in a thread pool.
"""
from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit import InvalidInput, Lab, NotFound, RunInfo
from labkit.protocols import ProtocolCheckError, check_protocol
from labkit.results import OutputData, Prediction

from . import serialize
from .pagination import Page, page, page_of

@dataclass(frozen=True)
class Listing:
    """Where a listing lives, so that its ``next`` link can be built."""

    window: Page
    path: str
    query: dict[str, str]

    def of(self, items: list[Any], render: Callable[[Any], Any]) -> dict[str, Any]:
        return page(items, self.window, self.path, self.query, render)

    def selected(self, shown: list[Any], total: int, render: Callable[[Any], Any]) -> dict[str, Any]:
        """A page the database already cut (``shown`` of ``total``)."""
        return page_of(shown, total, self.window, self.path, self.query, render)


@dataclass(frozen=True)
class Download:
    """Bytes to send, with their media type and the file name a client should save them as."""

    content: bytes
    media_type: str
    file_name: str


# -- entities and versions ------------------------------------------------------------------------
def list_entities(lab: Lab, kind: str, listing: Listing) -> dict[str, Any]:
    return listing.of(lab.names(kind), lambda name: get_entity(lab, kind, name))


def get_entity(lab: Lab, kind: str, name: str) -> dict[str, Any]:
    """The entity with its owner and whether this user may add versions and tag."""
    owner, _ = lab.collaborators(kind, name)
    return {**serialize.entity(kind, name, lab.versions(kind, name)), "owner": owner,
            "may_edit": lab.may_edit(kind, name)}


def list_versions(lab: Lab, kind: str, name: str, listing: Listing) -> dict[str, Any]:
    return listing.of(lab.versions(kind, name), serialize.version)


def get_version(lab: Lab, kind: str, name: str, ref: str) -> dict[str, Any]:
    return serialize.version(lab.version(kind, name, ref))


@dataclass(frozen=True)
class Upload:
    """A new version's files and options, as parsed from the request."""

    files: dict[str, bytes]
    message: str = ""
    parent: str | None = None
    tag: str | None = None
    visibility: str | None = None  # private or public (default: the lab's default_visibility)
    protocol: str | None = None  # datasets: the protocol whose outputs they measure
    run: bool = False  # also queue the experiments the new version implies


def add_version(lab: Lab, kind: str, name: str, upload: Upload) -> dict[str, Any]:
    options: dict[str, Any] = {"name": name, "message": upload.message, "parent": upload.parent, "tag": upload.tag,
                               "visibility": upload.visibility}
    if kind == "dataset":
        if not upload.protocol:
            raise InvalidInput("a data set needs the 'protocol' field: the protocol whose outputs it measures")
        result = lab.add_dataset(upload.files, protocol=upload.protocol, **options)
    else:
        if upload.protocol:
            raise InvalidInput(f"the 'protocol' field is for data sets; a {kind} does not take it")
        result = (lab.add_model if kind == "model" else lab.add_protocol)(upload.files, **options)
    runs = lab.run_planned(result) if upload.run else []
    return serialize.saved(result, runs)


def tag_version(lab: Lab, kind: str, name: str, ref: str, tag: str) -> dict[str, Any]:
    return serialize.version(lab.tag(kind, name, ref, tag))


def list_files(lab: Lab, kind: str, name: str, ref: str, listing: Listing) -> dict[str, Any]:
    info = lab.version(kind, name, ref)
    base = f"{serialize.entity_path(kind, name)}/versions/{info.number}/files/"
    return listing.of(lab.files(kind, name, info.number),
                      lambda file: {"name": file, "main": file == info.main_file, "url": base + file})


def read_file(lab: Lab, kind: str, name: str, ref: str, file: str) -> Download:
    info = lab.version(kind, name, ref)
    if file not in lab.files(kind, name, info.number):
        raise NotFound(f"{info.label} has no file {file!r}; list its files at .../versions/{info.number}/files")
    return Download(lab.read_file(kind, name, info.number, file), _media_type(file), Path(file).name)


def annotations(lab: Lab, model: str, ref: str, listing: Listing) -> dict[str, Any]:
    found = lab.annotations(model, ref)
    return listing.of(sorted(found.items()), lambda pair: {"term": pair[0], "variable": pair[1]})


def models_with_term(lab: Lab, term: str, listing: Listing) -> dict[str, Any]:
    return listing.of(lab.models_with_term(term), lambda name: get_entity(lab, "model", name))


def interface(lab: Lab, protocol: str, ref: str) -> dict[str, Any]:
    return serialize.interface(lab.interface(protocol, ref))


def dataset_columns(lab: Lab, dataset: str, ref: str) -> dict[str, Any]:
    return serialize.plain(lab.dataset(dataset, ref))


def check(notebook: bytes) -> dict[str, Any]:
    """The protocol check on a notebook that is not stored: every problem, or its interface."""
    try:
        found = check_protocol(notebook)
    except ProtocolCheckError as err:
        return {"valid": False, "problems": list(err.problems), "interface": None}
    return {"valid": True, "problems": [], "interface": serialize.interface(found)}


def compatibility(lab: Lab, model: str, protocol: str, model_version: str, protocol_version: str) -> dict[str, Any]:
    return serialize.compatibility(lab.compatibility(model, protocol, model_version, protocol_version))


# -- experiments and runs -------------------------------------------------------------------------
def list_runs(lab: Lab, filters: dict[str, str], listing: Listing) -> dict[str, Any]:
    """One page of runs, cut and counted in SQL: a lab may hold many thousands."""
    shown = lab.runs(**filters, limit=listing.window.limit, offset=listing.window.offset)
    return listing.selected(shown, lab.count_runs(**filters), serialize.run)


@dataclass(frozen=True)
class Submission:
    model: str
    protocol: str
    parameters: dict[str, Any]
    model_version: str = "latest"
    protocol_version: str = "latest"
    queue: str | None = None


def submit(lab: Lab, order: Submission) -> dict[str, Any]:
    return serialize.run(lab.run(order.model, order.protocol, order.parameters, model_version=order.model_version,
                                 protocol_version=order.protocol_version, queue=order.queue))


def matrix(lab: Lab, models: list[str] | None, protocols: list[str] | None, only_compatible: bool,
           rerun: bool) -> dict[str, Any]:
    runs = lab.run_matrix(models, protocols, only_compatible=only_compatible, rerun=rerun)
    return {"items": [serialize.run(r) for r in runs], "total": len(runs)}


def get_run(lab: Lab, run_id: str) -> dict[str, Any]:
    return serialize.run(lab.status(run_id))


def cancel(lab: Lab, run_id: str) -> dict[str, Any]:
    return serialize.run(lab.cancel(run_id))


def rerun(lab: Lab, run_id: str) -> dict[str, Any]:
    """The same model and protocol versions with the same parameters, as a new run that names the
    run it repeats (compare them at /runs/{new id}/reproduction once it ends)."""
    return serialize.run(lab.rerun(run_id))


def reproduction(lab: Lab, run_id: str) -> dict[str, Any]:
    return serialize.reproduction(lab.reproduction(run_id))


# -- predictions ----------------------------------------------------------------------------------
def _prediction(lab: Lab, run_id: str) -> Prediction:
    info = lab.status(run_id)
    if info.results_path is None:
        raise NotFound(f"run {run_id} has no prediction yet (status {info.status})"
                       + (f": {info.error}" if info.error else "") + "; wait for it to finish")
    return lab.prediction(run_id)


def prediction(lab: Lab, run_id: str) -> dict[str, Any]:
    found = _prediction(lab, run_id)
    base = f"{serialize.API_PREFIX}/runs/{run_id}"
    return {"run_id": run_id, "status": found.status,
            "outputs": [serialize.output_meta(run_id, o) for o in found.outputs.values()],
            "plots": [{"name": p.name, "url": f"{base}/plots/{p.name}"} for p in found.plots],
            "notebook_url": f"{base}/notebook", "log_url": f"{base}/log", "zip_url": f"{base}/prediction.zip",
            "provenance": serialize.plain(found.provenance), "timings": serialize.plain(found.timings)}


def list_outputs(lab: Lab, run_id: str, listing: Listing) -> dict[str, Any]:
    return listing.of(list(_prediction(lab, run_id).outputs.values()), lambda o: serialize.output_meta(run_id, o))


def _output(found: Prediction, name: str) -> OutputData:
    outputs = found.outputs
    if name not in outputs:
        raise NotFound(f"run {found.run_id} has no output {name!r}; it has {sorted(outputs)}")
    return outputs[name]


def output(lab: Lab, run_id: str, name: str) -> dict[str, Any]:
    return serialize.output_values(run_id, _output(_prediction(lab, run_id), name))


def output_csv(lab: Lab, run_id: str, name: str) -> Download:
    found = _prediction(lab, run_id)
    _output(found, name)
    return Download((found.folder / "outputs" / f"{name}.csv").read_bytes(), "text/csv", f"{name}.csv")


def notebook(lab: Lab, run_id: str) -> Download:
    found = _prediction(lab, run_id)
    if not found.notebook.exists():
        raise NotFound(f"run {run_id} kept no executed notebook")
    return Download(found.notebook.read_bytes(), "application/x-ipynb+json", f"{run_id}.ipynb")


def list_plots(lab: Lab, run_id: str, listing: Listing) -> dict[str, Any]:
    base = f"{serialize.API_PREFIX}/runs/{run_id}/plots/"
    return listing.of(_prediction(lab, run_id).plots, lambda p: {"name": p.name, "url": base + p.name})


def plot(lab: Lab, run_id: str, file: str) -> Download:
    plots = {p.name: p for p in _prediction(lab, run_id).plots}
    if file not in plots:
        raise NotFound(f"run {run_id} has no plot {file!r}; it has {sorted(plots)}")
    return Download(plots[file].read_bytes(), "image/png", file)


def log(lab: Lab, run_id: str) -> Download:
    return Download(_prediction(lab, run_id).log.encode(), "text/plain; charset=utf-8", f"{run_id}.log")


def archive(lab: Lab, run_id: str) -> Download:
    """The whole prediction folder (notebook, outputs, plots, log, provenance) as one zip."""
    folder = _prediction(lab, run_id).folder
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            zipped.write(path, f"{run_id}/{path.relative_to(folder).as_posix()}")
    return Download(buffer.getvalue(), "application/zip", f"prediction-{run_id}.zip")


_MEDIA = {".cellml": "application/cellml+xml", ".xml": "application/xml", ".ipynb": "application/x-ipynb+json",
          ".csv": "text/csv", ".txt": "text/plain; charset=utf-8", ".json": "application/json", ".png": "image/png"}


def _media_type(file: str) -> str:
    return _MEDIA.get(Path(file).suffix.lower(), "application/octet-stream")
