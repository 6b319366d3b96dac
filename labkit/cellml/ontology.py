"""The Oxford metadata (oxmeta) ontology: which annotation terms exist.

The ontology file ships inside the ``chaste-codegen`` distribution. We only read
its data file through package metadata: importing ``chaste_codegen`` itself is
broken with numpy 2, and we need none of its code.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
from pathlib import Path

OXMETA_NS = "https://chaste.comlab.ox.ac.uk/cellml/ns/oxford-metadata#"
ENV_VAR = "LABKIT_ONTOLOGY"
_DIST_NAME = "chaste-codegen"
_DIST_FILE = "chaste_codegen/ontologies/oxford-metadata.ttl"
_INSTALL_HINT = (
    f"install chaste-codegen (`pip install --no-deps chaste-codegen`) "
    f"or set {ENV_VAR} to the path of oxford-metadata.ttl"
)


class OntologyNotFoundError(FileNotFoundError):
    """The oxmeta ontology file cannot be found; the message says how to fix it."""


def ontology_path() -> Path:
    """Locate ``oxford-metadata.ttl``: ``$LABKIT_ONTOLOGY`` first, else chaste-codegen's copy.

    An explicitly set ``LABKIT_ONTOLOGY`` that points nowhere is an error rather
    than silently falling back, so a misconfiguration is noticed.
    """
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        path = Path(env).expanduser()
        if path.is_file():
            return path
        raise OntologyNotFoundError(
            f"oxmeta ontology not found: {ENV_VAR}={env!r} is not a file; "
            f"point it at oxford-metadata.ttl, unset it, or {_INSTALL_HINT}"
        )
    try:
        dist = importlib.metadata.distribution(_DIST_NAME)
    except importlib.metadata.PackageNotFoundError:
        raise OntologyNotFoundError(
            f"oxmeta ontology not found: the {_DIST_NAME} distribution is not installed; "
            f"{_INSTALL_HINT}"
        ) from None
    path = Path(str(dist.locate_file(_DIST_FILE)))
    if not path.is_file():
        raise OntologyNotFoundError(
            f"oxmeta ontology not found: {_DIST_NAME} is installed but has no {_DIST_FILE} "
            f"(looked at {path}); reinstall it or set {ENV_VAR}"
        )
    return path


@functools.lru_cache(maxsize=8)
def _load_terms(resolved: str, mtime_ns: int, size: int) -> frozenset[str]:
    """Parse the ontology once per file version (the cache key includes mtime and size)."""
    import rdflib  # imported lazily: rdflib is slow to import and rarely needed

    graph = rdflib.Graph()
    try:
        graph.parse(resolved, format="turtle")
    except Exception as exc:  # rdflib raises many unrelated types for bad input
        raise ValueError(f"cannot parse oxmeta ontology {resolved}: {exc}") from exc
    terms: set[str] = set()
    for subject in graph.subjects(unique=True):
        text = str(subject)
        if isinstance(subject, rdflib.URIRef) and text.startswith(OXMETA_NS):
            local = text[len(OXMETA_NS):]
            if local:
                terms.add(local)
    return frozenset(terms)


def oxmeta_terms(path: Path | None = None) -> frozenset[str]:
    """All term local names defined (used as subjects) in the ontology; cached per file."""
    p = Path(path) if path is not None else ontology_path()
    if not p.is_file():
        raise OntologyNotFoundError(f"oxmeta ontology not found: {p} is not a file")
    st = p.stat()
    return _load_terms(str(p.resolve()), st.st_mtime_ns, st.st_size)


def is_oxmeta_term(term: str) -> bool:
    """Whether ``term`` (bare local name or full oxmeta URI) is defined in the ontology."""
    if term.startswith(OXMETA_NS):
        term = term[len(OXMETA_NS):]
    return term in oxmeta_terms()
