"""COMBINE/OMEX archives: how the Web Lab exchanged models, protocols and results, read and written
with libcombine (python-libcombine).

An archive labkit writes holds the files of one model, protocol or dataset version (the main file is
the archive's master), or a whole prediction folder (the executed notebook is the master), each
named in ``manifest.xml`` with its format, plus ``labkit.json``: what the archive is (kind, name,
version, message, tags; for a dataset its protocol; for a prediction its run). The archive's
OMEX description (``metadata.rdf``) carries the same description and author for other tools.

Reading treats the archive as hostile: before libcombine opens it, ``zipfile`` checks every entry
(no absolute or ``..`` paths, no links, no duplicates, a bounded size, count and compression ratio);
then the manifest must be present and name exactly the files in the archive. Only then is
anything stored, and a refusal stores nothing.
"""
from __future__ import annotations

import json
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import InvalidInput

MANIFEST = "manifest.xml"
DESCRIPTION = "labkit.json"
FORMATS = {  # by file extension; anything else is application/octet-stream
    ".cellml": "http://identifiers.org/combine.specifications/cellml",
    ".ipynb": "http://purl.org/NET/mediatypes/application/x-ipynb+json",
    ".csv": "http://purl.org/NET/mediatypes/text/csv",
    ".json": "http://purl.org/NET/mediatypes/application/json",
    ".png": "http://purl.org/NET/mediatypes/image/png",
    ".txt": "http://purl.org/NET/mediatypes/text/plain",
    ".xml": "http://purl.org/NET/mediatypes/application/xml",
    ".rdf": "http://identifiers.org/combine.specifications/omex-metadata",
}
OTHER_FORMAT = "http://purl.org/NET/mediatypes/application/octet-stream"
KINDS = ("model", "protocol", "dataset", "prediction")


@dataclass(frozen=True)
class Limits:
    """What an archive from outside may hold."""

    archive_bytes: int = 200 * 2**20
    unpacked_bytes: int = 500 * 2**20
    entries: int = 5000
    ratio: float = 200.0  # uncompressed / compressed, per entry (a zip bomb is thousands)


@dataclass(frozen=True)
class ArchiveContent:
    """A checked archive: its labkit description, its files by path and their formats."""

    description: dict[str, Any]
    files: dict[str, bytes]
    formats: dict[str, str] = field(default_factory=dict)
    master: str | None = None


def file_format(path: str) -> str:
    return FORMATS.get(PurePosixPath(path).suffix.lower(), OTHER_FORMAT)


def write_archive(target: Path, files: dict[str, bytes], description: dict[str, Any], master: str,
                  *, author: str = "", text: str = "") -> Path:
    """Write ``files`` (POSIX paths relative to the archive) and ``description`` as an OMEX archive."""
    import libcombine

    archive = libcombine.CombineArchive()
    with tempfile.TemporaryDirectory(prefix="labkit-omex-") as scratch:
        contents = {**files, DESCRIPTION: json.dumps(description, indent=1, sort_keys=True).encode()}
        for path, data in sorted(contents.items()):
            local = Path(scratch) / path
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(data)
            if not archive.addFile(str(local), f"./{path}", file_format(path), path == master):
                raise InvalidInput(f"libcombine could not add {path} to the archive")
        omex = libcombine.OmexDescription()
        omex.setAbout(".")
        omex.setDescription(text or f"labkit {description.get('kind')} {description.get('name', '')}".strip())
        if author:
            creator = libcombine.VCard()
            creator.setGivenName(author)
            omex.addCreator(creator)
        omex.setCreated(libcombine.OmexDescription.getCurrentDateAndTime())
        archive.addMetadata(".", omex)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not archive.writeToFile(str(target)):
            raise InvalidInput(f"libcombine could not write {target}")
        archive.cleanUp()
    return target


def _check_entries(path: Path, limits: Limits) -> None:
    """Refuse an archive whose zip entries are unsafe, before any library unpacks it."""
    size = path.stat().st_size
    if size > limits.archive_bytes:
        raise InvalidInput(f"{path.name} is {size // 2**20} MB; archives may be at most "
                           f"{limits.archive_bytes // 2**20} MB")
    try:
        with zipfile.ZipFile(path) as zipped:
            infos = zipped.infolist()
    except (zipfile.BadZipFile, OSError) as err:
        raise InvalidInput(f"{path.name} is not a COMBINE archive (not a zip file: {err})") from None
    if len(infos) > limits.entries:
        raise InvalidInput(f"{path.name} has {len(infos)} entries; at most {limits.entries} are accepted")
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        parts = PurePosixPath(name).parts
        if name.startswith("/") or "\\" in name or ".." in parts or (parts and parts[0].endswith(":")):
            raise InvalidInput(f"{path.name} holds the path {name!r}: archive paths must be relative, "
                               "without '..', '\\' or drive letters")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InvalidInput(f"{path.name} holds a symbolic link ({name}); archives may hold files only")
        if name in seen:
            raise InvalidInput(f"{path.name} holds {name} twice")
        seen.add(name)
        total += info.file_size
        if total > limits.unpacked_bytes:
            raise InvalidInput(f"{path.name} unpacks to more than {limits.unpacked_bytes // 2**20} MB")
        if info.file_size > 1024 * 1024 and info.file_size > limits.ratio * max(info.compress_size, 1):
            raise InvalidInput(f"{path.name}: {name} compresses {info.file_size // max(info.compress_size, 1)}"
                               f" to 1, more than {limits.ratio:g} to 1 (a zip bomb?)")


def read_archive(path: Path, limits: Limits = Limits()) -> ArchiveContent:
    """Check ``path`` and read it: its files, their formats, its master and labkit description."""
    import libcombine

    if not path.is_file():
        raise InvalidInput(f"{path} is not a file")
    _check_entries(path, limits)
    with zipfile.ZipFile(path) as zipped:
        names = {i.filename for i in zipped.infolist() if not i.is_dir()}
        if MANIFEST not in names:
            raise InvalidInput(f"{path.name} has no {MANIFEST}: not a COMBINE archive")
        archive = libcombine.CombineArchive()
        if not archive.initializeFromArchive(str(path)):
            raise InvalidInput(f"{path.name}: libcombine could not read its {MANIFEST}")
        try:
            manifest = archive.getManifest()
            formats: dict[str, str] = {}
            master = None
            for index in range(manifest.getNumContents()):
                entry = manifest.getContent(index)
                location = entry.getLocation()
                relative = location[2:] if location.startswith("./") else location
                if relative in ("", ".", MANIFEST):
                    continue
                if relative not in names:
                    raise InvalidInput(f"{path.name}: {MANIFEST} names {location}, which the archive does not hold")
                formats[relative] = entry.getFormat()
                if entry.getMaster():
                    master = relative
        finally:
            archive.cleanUp()
        # libcombine keeps the OMEX metadata files (format omex-metadata, *.rdf) out of the contents it
        # lists: they describe the others and are not imported
        unlisted = sorted(n for n in names - set(formats) - {MANIFEST} if not n.endswith(".rdf"))
        if unlisted:
            raise InvalidInput(f"{path.name} holds files its {MANIFEST} does not name: {', '.join(unlisted[:5])}")
        files = {name: zipped.read(name) for name in formats if not name.endswith(".rdf")}
    description: dict[str, Any] = {}
    if DESCRIPTION in files:
        try:
            description = json.loads(files.pop(DESCRIPTION))
        except ValueError:
            raise InvalidInput(f"{path.name}: its {DESCRIPTION} is not JSON") from None
        if not isinstance(description, dict):
            raise InvalidInput(f"{path.name}: its {DESCRIPTION} must be a JSON object")
        formats.pop(DESCRIPTION, None)
    formats = {name: f for name, f in formats.items() if name in files}
    return ArchiveContent(description, files, formats, master)


def kind_of(content: ArchiveContent) -> str:
    """What an archive holds: labkit's own description says; otherwise its master's format does."""
    kind = content.description.get("kind")
    if kind is not None:
        if kind not in KINDS:
            raise InvalidInput(f"the archive says it holds a {kind!r}; labkit reads {', '.join(KINDS)}")
        return str(kind)
    master = content.master or ""
    by_suffix = {".cellml": "model", ".ipynb": "protocol"}
    found = by_suffix.get(PurePosixPath(master).suffix.lower())
    if found is None:
        raise InvalidInput("the archive has no labkit.json and no CellML model or notebook as its master file: "
                           "labkit does not know what to import")
    return found
