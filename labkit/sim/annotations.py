"""Which Myokit variable carries which oxmeta term.

Myokit's CellML importer only reads RDF placed directly under ``<model>``; most Web Lab
models put it inside each ``<variable>``. ``labkit.cellml`` reads both, so its annotations
are merged into what Myokit found.
"""

from __future__ import annotations

import logging
import os

import myokit

log = logging.getLogger(__name__)

OXMETA_NS = "https://chaste.comlab.ox.ac.uk/cellml/ns/oxford-metadata#"


def bare_term(term: str) -> str:
    """A term without its namespace (``oxmeta:x`` and the full URI both become ``x``)."""
    if "#" in term:
        return term.rsplit("#", 1)[1]
    return term[len("oxmeta:"):] if term.startswith("oxmeta:") else term


def term_map(model: myokit.Model, path: str | os.PathLike | None = None) -> dict[str, str]:
    """Map oxmeta term -> Myokit qname, from Myokit's meta plus ``labkit.cellml`` when available.

    Annotations on a connected (``public_interface="in"``) copy of a variable, which
    Myokit drops, are followed to the variable that defines the value. Terms found are
    also written to ``var.meta['oxmeta']`` when it is empty, so the model is
    self-describing when saved as ``.mmt``.
    """
    terms: dict[str, str] = {}
    for var in model.variables(deep=True):
        term = var.meta.get("oxmeta")
        if term:
            terms.setdefault(bare_term(term), var.qname())
    if path is None:
        return terms
    try:
        from labkit.cellml import parse_cellml_file
    except ImportError:  # labkit.cellml not installed: Myokit's view is all we have
        return terms
    try:
        annotations = parse_cellml_file(path).annotations
    except Exception as exc:  # a parser problem must not hide what Myokit already found
        log.warning("labkit.cellml could not read annotations of %s: %s", path, exc)
        return terms
    sources = None
    for a in annotations:
        term = bare_term(a.term)
        if term in terms:
            continue
        qname = f"{a.component}.{a.variable}"
        if not model.has_variable(qname):
            if sources is None:
                sources = _value_sources(path)
            qname = sources.get(qname, "")
        if model.has_variable(qname):
            terms[term] = qname
            var = model.get(qname)
            var.meta.setdefault("oxmeta", term)
        else:
            log.info("annotation %s on %s.%s has no Myokit variable", term, a.component, a.variable)
    return terms


def _value_sources(path: str | os.PathLike) -> dict[str, str]:
    """``component.variable`` -> qname of the variable that defines its value (CellML 1.x only)."""
    try:
        from myokit.formats.cellml import v1

        doc = v1.parse_file(str(path))
    except Exception:  # CellML 2 or unreadable: nothing to follow
        return {}
    out: dict[str, str] = {}
    for comp in doc.components():
        for var in comp.variables():
            src = var.value_source()
            if src is not None and src is not var:
                out[f"{comp.name()}.{var.name()}"] = f"{src.component().name()}.{src.name()}"
    return out
