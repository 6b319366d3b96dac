"""A lab's versions and predictions to and from COMBINE/OMEX archives (the format: ``omex.py``).

Exported versions carry what a lab needs to save them again as they were: their files (the main
file as the archive's master), kind, name, message and tags, and a dataset's protocol. Importing
saves a new version through the same checks as any upload (a model is parsed, a protocol checked),
as the importing user, and refuses a tag already used before saving anything. A prediction archive
is unpacked, after the same checks, under ``<results>/imported/<run id>/`` and its model and protocol
are imported as versions.
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, LabkitError
from ..results import Prediction
from ..results.prediction import MODEL_FOLDER, PROTOCOL_FOLDER
from ..store.blobs import tree_of_folder
from . import omex

if TYPE_CHECKING:
    from ..lab import Lab
    from ..store.entities import VersionInfo

ARCHIVE_SUFFIXES = (".omex", ".sedx", ".zip")
IMPORTED = "imported"  # <results>/imported/<run id>/: predictions read from archives


@dataclass(frozen=True)
class Imported:
    """What one archive (or file) became in the lab."""

    source: Path
    kind: str
    name: str
    version: "VersionInfo | None" = None
    prediction: Prediction | None = None


@dataclass(frozen=True)
class Refused:
    source: Path
    reason: str


def export_version(lab: "Lab", kind: str, name: str, ref: str | int, target: str | Path) -> Path:
    """One version of a model, protocol or dataset as an OMEX archive at ``target``."""
    version = lab.version(kind, name, ref)
    files = {path: lab.read_file(kind, name, version.number, path) for path in lab.files(kind, name, version.number)}
    description: dict[str, Any] = {"kind": kind, "name": version.entity, "version": version.number,
                                   "commit": version.commit, "message": version.message, "tags": list(version.tags),
                                   "author": version.author, "main_file": version.main_file}
    if kind == "dataset":
        description["protocol"] = lab.dataset(name, version.number).get("protocol")
    return omex.write_archive(_new_file(target), files, description, version.main_file, author=version.author,
                              text=version.message)


def export_prediction(lab: "Lab", run_id: str, target: str | Path) -> Path:
    """A whole prediction (executed notebook, inputs, outputs, plots, provenance) as an OMEX archive."""
    info = lab.status(run_id)
    if not info.results_path:
        raise InvalidInput(f"run {run_id} has no prediction to export (status {info.status})")
    folder = lab.prediction(run_id).folder
    files = tree_of_folder(folder)
    description = {"kind": "prediction", "run": run_id, "status": info.status, "model": info.model,
                   "model_version": info.model_version, "protocol": info.protocol,
                   "protocol_version": info.protocol_version, "parameters": info.parameters}
    return omex.write_archive(_new_file(target), files, description, "notebook.ipynb", author=info.created_by,
                              text=f"labkit prediction {run_id}: {info.protocol} on {info.model}")


def _new_file(target: str | Path) -> Path:
    path = Path(target).expanduser()
    if path.exists():
        raise InvalidInput(f"{path} already exists; choose a new file name for the archive")
    if path.suffix.lower() not in ARCHIVE_SUFFIXES:
        raise InvalidInput(f"name the archive *.omex (got {path.name})")
    return path


def import_archive(lab: "Lab", path: str | Path, limits: omex.Limits = omex.Limits()) -> Imported:
    """Import one archive; refused (with nothing stored) when it is unsafe, inconsistent or not valid."""
    source = Path(path)
    content = omex.read_archive(source, limits)
    kind = omex.kind_of(content)
    try:
        if kind == "prediction":
            return _import_prediction(lab, source, content)
        return _import_version(lab, source, kind, content)
    except InvalidInput as err:  # say which archive: a bulk import refuses many
        if str(err).startswith(source.name):
            raise
        raise InvalidInput(f"{source.name}: {err}") from None


def _latest_holds(lab: "Lab", kind: str, name: str, files: dict[str, bytes]) -> bool:
    """Does the latest version of an existing entity hold exactly ``files``?"""
    latest = lab.version(kind, name)
    return lab.files(kind, name, latest.number) == sorted(files) and all(
        lab.read_file(kind, name, latest.number, f) == data for f, data in files.items())


def _import_version(lab: "Lab", source: Path, kind: str, content: omex.ArchiveContent) -> Imported:
    description = content.description
    name = str(description.get("name") or Path(content.master or source.stem).stem)
    tags = [str(t) for t in description.get("tags", []) if isinstance(t, str)]
    main = str(description.get("main_file") or content.master or "")
    if not content.files:
        raise InvalidInput(f"{source.name} holds no files to import")
    if main not in content.files:
        raise InvalidInput(f"{source.name}: its main file {main!r} is not in the archive")
    if name in lab.names(kind):
        latest = lab.version(kind, name)
        if latest.main_file == main and _latest_holds(lab, kind, name, content.files):
            return Imported(source, kind, name, latest)  # imported already: nothing changes
        for tag in tags:  # before anything is saved
            lab.store.check_tag(kind, name, tag, user=lab.user)
    protocol = description.get("protocol") if kind == "dataset" else None
    if kind == "dataset" and not protocol:
        raise InvalidInput(f"{source.name} is a dataset without the protocol whose outputs it measures")
    saved = lab._save(kind, content.files, name, str(description.get("message", "")), None, tags[0] if tags else None,
                      protocol=protocol, main_file=main)
    version = saved.version
    for tag in tags[1:]:
        version = lab.tag(kind, name, version.number, tag)
    return Imported(source, kind, name, version)


def _import_prediction(lab: "Lab", source: Path, content: omex.ArchiveContent) -> Imported:
    run_id = str(content.description.get("run", ""))
    if not run_id or not all(c.isalnum() or c == "-" for c in run_id) or len(run_id) > 64:
        raise InvalidInput(f"{source.name}: a prediction archive must name its run (letters, digits, '-')")
    target = lab.settings.results / IMPORTED / run_id
    if target.exists():
        raise InvalidInput(f"the prediction of run {run_id} was imported already ({target})")
    model_files = {p[len(MODEL_FOLDER) + 1:]: d for p, d in content.files.items() if p.startswith(MODEL_FOLDER + "/")}
    protocol_files = {p[len(PROTOCOL_FOLDER) + 1:]: d for p, d in content.files.items()
                      if p.startswith(PROTOCOL_FOLDER + "/")}
    if "notebook.ipynb" not in content.files or not model_files or not protocol_files:
        raise InvalidInput(f"{source.name} is not a self-contained prediction: it needs notebook.ipynb, "
                           f"{MODEL_FOLDER}/ and {PROTOCOL_FOLDER}/")
    description = content.description
    to_save = []
    for kind, files, name in (("model", model_files, description.get("model")),
                              ("protocol", protocol_files, description.get("protocol"))):
        name = str(name or next(iter(files)).rsplit(".", 1)[0])
        if name in lab.names(kind):
            if _latest_holds(lab, kind, name, files):
                continue  # the lab holds exactly these files already
            if not lab.may_edit(kind, name):  # before anything is saved
                raise InvalidInput(f"{source.name} holds another version of {kind} {name}, which you may not "
                                   "change; import it in a lab where that name is yours")
        to_save.append((kind, files, name))
    for kind, files, name in to_save:
        lab._save(kind, files, name, f"imported with prediction {run_id}", None, None)
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=_parent(target)))
    try:
        for relative, data in content.files.items():
            destination = staging / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(data)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Imported(source, "prediction", run_id,
                    prediction=Prediction(run_id, str(description.get("status", "")), target))


def _parent(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.parent


def import_file(lab: "Lab", path: Path) -> Imported:
    """An archive, or a bare CellML file (a new model version named after the file)."""
    if path.suffix.lower() == ".cellml":
        saved = lab.add_model(path, message=f"imported from {path.name}")
        return Imported(path, "model", saved.version.entity, saved.version)
    return import_archive(lab, path)


def importable(folder: Path) -> list[Path]:
    """The files of ``folder`` a folder import takes: archives and CellML files, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (*ARCHIVE_SUFFIXES, ".cellml"))


def import_folder(lab: "Lab", folder: str | Path, *, on_each: Callable[[Path], None] | None = None
                  ) -> tuple[list[Imported], list[Refused]]:
    """Import every archive and CellML file directly in ``folder`` (sorted by name); each one that is
    refused is reported with its reason and the rest go on."""
    root = Path(folder)
    if not root.is_dir():
        raise InvalidInput(f"{root} is not a folder")
    candidates = importable(root)
    imported: list[Imported] = []
    refused: list[Refused] = []
    for path in candidates:
        try:
            imported.append(import_file(lab, path))
        except LabkitError as err:
            refused.append(Refused(path, str(err).splitlines()[0]))
        if on_each is not None:
            on_each(path)
    return imported, refused
