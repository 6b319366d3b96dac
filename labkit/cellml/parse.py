"""Safe loading of untrusted CellML files and extraction of their oxmeta annotations.

Models are uploaded by users, so the XML is treated as hostile: no DTDs, no
entities, no network, a size cap, and only lxml's default (bounded) tree limits.
RDF metadata is handed to rdflib rather than interpreted by hand.
"""

from __future__ import annotations

import codecs
import os
import re
from typing import Iterable, Iterator

from lxml import etree

from labkit.cellml.errors import CellMLError
from labkit.cellml.model import Annotation, CellMLModel, UnresolvedAnnotation
from labkit.cellml.ontology import OXMETA_NS

MAX_CELLML_BYTES = 20 * 1024 * 1024

CELLML_NAMESPACES: dict[str, str] = {
    "http://www.cellml.org/cellml/1.0#": "1.0",
    "http://www.cellml.org/cellml/1.1#": "1.1",
    "http://www.cellml.org/cellml/2.0#": "2.0",
}
CMETA_NS = "http://www.cellml.org/metadata/1.0#"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
BQBIOL_NS = "http://biomodels.net/biology-qualifiers/"
MATHML_NS = "http://www.w3.org/1998/Math/MathML"

# rdflib needs an absolute base to resolve ``rdf:about="#id"``; this one never
# resolves on the network and lets us map subjects back to same-document ids.
_DOC_BASE = "http://labkit.invalid/model.cellml"

_CMETA_ID = f"{{{CMETA_NS}}}id"
_RDF_TAG = f"{{{RDF_NS}}}RDF"
_BQBIOL_IS = BQBIOL_NS + "is"
_M_MATH = f"{{{MATHML_NS}}}math"
_M_APPLY = f"{{{MATHML_NS}}}apply"
_M_EQ = f"{{{MATHML_NS}}}eq"
_M_DIFF = f"{{{MATHML_NS}}}diff"
_M_BVAR = f"{{{MATHML_NS}}}bvar"
_M_CI = f"{{{MATHML_NS}}}ci"

# ---------------------------------------------------------------------------
# Byte-level checks, done before any XML parser sees the data
# ---------------------------------------------------------------------------

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_PROLOG_ITEM = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->", re.S)
_ELEMENT_START = re.compile(r"<[A-Za-z_:\u00c0-\uffff]")
_LXML_POSITION = re.compile(r",\s*line \d+,\s*column \d+\s*$")


def _decode_for_scan(data: bytes) -> str:
    """Decode enough to find markup in the prolog; exact text does not matter here."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(encoding, errors="replace")
    if data[:2] == b"<\x00":
        return data.decode("utf-16-le", errors="replace")
    if data[:2] == b"\x00<":
        return data.decode("utf-16-be", errors="replace")
    # Every ASCII-compatible encoding keeps '<!DOCTYPE' as plain bytes.
    return data.decode("latin-1")


def _reject_doctype(data: bytes) -> str:
    """Refuse any DOCTYPE before parsing (XXE, billion laughs, external DTDs).

    Returns the decoded text so that callers can reuse it for diagnostics.
    """
    text = _decode_for_scan(data)
    pos = 1 if text.startswith("\ufeff") else 0
    while True:
        m = _PROLOG_ITEM.match(text, pos)
        if m is None or m.end() == pos:
            break
        pos = m.end()
    if text[pos:pos + 9].upper() != "<!DOCTYPE":
        return text
    line = text.count("\n", 0, pos) + 1
    end = _ELEMENT_START.search(text, pos + 9)
    decl = text[pos:end.start() if end else len(text)]
    upper = decl.upper()
    if "<!ENTITY" in upper:
        raise CellMLError(
            "rejected DOCTYPE with entity declarations",
            line,
            "entity definitions are not allowed (risk of external-entity or "
            "entity-expansion attacks); CellML needs no DOCTYPE",
        )
    head = upper.split("[", 1)[0]
    if " SYSTEM" in head or " PUBLIC" in head:
        raise CellMLError(
            "rejected DOCTYPE referring to an external DTD",
            line,
            "external DTDs are never loaded; remove the DOCTYPE, CellML needs none",
        )
    raise CellMLError(
        "rejected DOCTYPE",
        line,
        "document type declarations are not allowed in CellML files",
    )


def _safe_parser() -> etree.XMLParser:
    """A fresh lxml parser with every network, DTD and entity feature off.

    lxml parsers are not shareable between threads, so one is made per call.
    """
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
        remove_blank_text=False,
        collect_ids=False,
    )


def _parse_xml(data: bytes, text: str) -> etree._Element:
    """Parse bytes to an element tree, turning every lxml failure into CellMLError."""
    if not text.strip():
        raise CellMLError("empty file", 1, "no XML content")
    first = text.lstrip("\ufeff \t\r\n")[:1]
    try:
        root = etree.fromstring(data, _safe_parser())
    except etree.XMLSyntaxError as exc:
        msg = _LXML_POSITION.sub("", exc.msg or str(exc)).strip()
        if first != "<":
            raise CellMLError("not XML", exc.lineno, f"the file does not start with '<' ({msg})") from None
        raise CellMLError("not well-formed XML", exc.lineno, msg) from None
    except ValueError as exc:  # e.g. unsupported encoding declarations
        raise CellMLError("not well-formed XML", None, str(exc)) from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        # Only reachable for encodings the byte scan cannot read; still refuse.
        raise CellMLError("rejected DOCTYPE", 1, "document type declarations are not allowed in CellML files")
    return root


# ---------------------------------------------------------------------------
# CellML structure
# ---------------------------------------------------------------------------


def _is_element(node: object) -> bool:
    """lxml yields comments and PIs among children; their tag is not a string."""
    return isinstance(getattr(node, "tag", None), str)


def _elements(node: etree._Element) -> list[etree._Element]:
    return [c for c in node if _is_element(c)]


def _check_root(root: etree._Element) -> tuple[str, str]:
    """Return (namespace, version) if the root is a CellML <model>, else raise."""
    qname = etree.QName(root)
    ns = qname.namespace or ""
    if qname.localname == "model" and ns in CELLML_NAMESPACES:
        return ns, CELLML_NAMESPACES[ns]
    found = f"<{qname.localname}>" + (f" in namespace {ns}" if ns else " with no namespace")
    raise CellMLError(
        "not a CellML model",
        root.sourceline,
        f"root element is {found}; expected <model> in a CellML 1.0, 1.1 or 2.0 namespace",
    )


def _check_structure(root: etree._Element, ns: str) -> None:
    """Minimal structural sanity so later stages can rely on names and units."""
    comp_tag, var_tag = f"{{{ns}}}component", f"{{{ns}}}variable"
    if not root.get("name"):
        raise CellMLError("invalid CellML", root.sourceline, "<model> has no name attribute")
    any_variable = False
    # Only direct children: components inside <import> refer elsewhere and carry no variables.
    for comp in root.iterchildren(comp_tag):
        cname = comp.get("name")
        if not cname:
            raise CellMLError("invalid CellML", comp.sourceline, "<component> has no name attribute")
        for var in comp.iterchildren(var_tag):
            vname = var.get("name")
            if not vname:
                raise CellMLError(
                    "invalid CellML", var.sourceline, f"a <variable> in component {cname!r} has no name attribute"
                )
            if not var.get("units"):
                raise CellMLError(
                    "invalid CellML", var.sourceline, f"variable {cname}.{vname} has no units attribute"
                )
            any_variable = True
    if not any_variable:
        raise CellMLError("invalid CellML", root.sourceline, "the model has no component containing a variable")


def _collect_ids(root: etree._Element, version: str) -> dict[str, etree._Element]:
    """Map metadata ids to elements (cmeta:id; plain ``id`` too in CellML 2.0)."""
    ids: dict[str, etree._Element] = {}
    for el in root.iter():
        if not _is_element(el):
            continue
        for key in (_CMETA_ID, "id") if version == "2.0" else (_CMETA_ID,):
            value = el.get(key)
            if value is None:
                continue
            other = ids.get(value)
            if other is not None and other is not el:
                raise CellMLError(
                    "invalid CellML", el.sourceline,
                    f"duplicate metadata id {value!r} (first used at line {other.sourceline})",
                )
            ids[value] = el
    return ids


def _state_names(component: etree._Element) -> frozenset[str]:
    """Names of variables that appear as ``d(name)/d(bvar)`` on the left of an ``eq``."""
    names: set[str] = set()
    for math in component.iterchildren(_M_MATH):
        for apply in math.iter(_M_APPLY):
            parts = _elements(apply)
            if len(parts) < 3 or parts[0].tag != _M_EQ or parts[1].tag != _M_APPLY:
                continue
            lhs = _elements(parts[1])
            if not lhs or lhs[0].tag != _M_DIFF:
                continue
            if not any(p.tag == _M_BVAR for p in lhs[1:]):
                continue
            cis = [p for p in lhs[1:] if p.tag == _M_CI]
            if cis:
                name = (cis[-1].text or "").strip()
                if name:
                    names.add(name)
    return frozenset(names)


# ---------------------------------------------------------------------------
# RDF
# ---------------------------------------------------------------------------


def _rdf_blocks(root: etree._Element) -> Iterator[etree._Element]:
    """Every outermost rdf:RDF element, wherever it sits in the model."""
    for el in root.iter(_RDF_TAG):
        if not any(a.tag == _RDF_TAG for a in el.iterancestors()):
            yield el


def _oxmeta_triples(blocks: Iterable[etree._Element]) -> list[tuple[str, str]]:
    """(subject URI, term) for each ``bqbiol:is`` oxmeta statement, in first-seen order."""
    import rdflib  # lazily: rdflib import is slow and only needed for models with RDF

    pred = rdflib.URIRef(_BQBIOL_IS)
    seen: dict[tuple[str, str], None] = {}
    for block in blocks:
        payload = etree.tostring(block, with_tail=False)
        graph = rdflib.Graph()
        try:
            graph.parse(data=payload, format="xml", publicID=_DOC_BASE)
        except Exception as exc:  # rdflib raises assorted types on bad RDF/XML
            raise CellMLError("invalid RDF metadata", block.sourceline, str(exc).strip() or type(exc).__name__) from None
        found = []
        for subject, obj in graph.subject_objects(pred):
            text = str(obj)
            if isinstance(obj, rdflib.URIRef) and text.startswith(OXMETA_NS) and len(text) > len(OXMETA_NS):
                found.append((str(subject), text[len(OXMETA_NS):]))
        for item in sorted(found):  # graph order is arbitrary; keep output deterministic
            seen.setdefault(item, None)
    return list(seen)


def _local_id(subject: str) -> str | None:
    """The fragment of a same-document reference (``#id``), else None."""
    prefix = _DOC_BASE + "#"
    if subject.startswith(prefix):
        return subject[len(prefix):] or None
    return None


# ---------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------


def parse_cellml(data: bytes, *, max_bytes: int = MAX_CELLML_BYTES) -> CellMLModel:
    """Parse untrusted CellML bytes into a :class:`CellMLModel` with its oxmeta annotations.

    Raises CellMLError for anything that is not acceptable CellML, so web and
    notebook front ends can show a single, safe message.
    """
    if isinstance(data, str):
        raise TypeError("parse_cellml needs bytes (the raw file), not str")
    data = bytes(data)
    if len(data) > max_bytes:
        raise CellMLError("file too large", None, f"{len(data)} bytes exceeds the limit of {max_bytes} bytes")
    text = _reject_doctype(data)
    root = _parse_xml(data, text)
    ns, version = _check_root(root)
    _check_structure(root, ns)
    ids = _collect_ids(root, version)

    comp_tag, var_tag = f"{{{ns}}}component", f"{{{ns}}}variable"
    order = {el: i for i, el in enumerate(root.iter(var_tag))}  # dict keeps lxml proxies alive
    states: dict[etree._Element, frozenset[str]] = {}
    annotations: list[tuple[int, Annotation]] = []
    unresolved: list[UnresolvedAnnotation] = []

    for subject, term in _oxmeta_triples(_rdf_blocks(root)):
        cmeta_id = _local_id(subject)
        if cmeta_id is None:
            unresolved.append(UnresolvedAnnotation(term, subject, "subject is not a same-document #id reference"))
            continue
        target = ids.get(cmeta_id)
        if target is None:
            unresolved.append(UnresolvedAnnotation(term, cmeta_id, "no element has this id"))
            continue
        parent = target.getparent()
        if target.tag != var_tag or parent is None or parent.tag != comp_tag or parent.getparent() is not root:
            kind = etree.QName(target).localname
            unresolved.append(UnresolvedAnnotation(term, cmeta_id, f"target is a <{kind}>, not a variable"))
            continue
        if parent not in states:
            states[parent] = _state_names(parent)
        vname = target.get("name", "")
        annotations.append((
            order[target],
            Annotation(
                term=term,
                cmeta_id=cmeta_id,
                component=parent.get("name", ""),
                variable=vname,
                units=target.get("units", ""),
                is_state=vname in states[parent],
            ),
        ))

    annotations.sort(key=lambda pair: (pair[0], pair[1].term))
    return CellMLModel(
        name=root.get("name", ""),
        cellml_version=version,
        annotations=tuple(a for _, a in annotations),
        unresolved=tuple(unresolved),
    )


def parse_cellml_file(path: str | os.PathLike, *, max_bytes: int = MAX_CELLML_BYTES) -> CellMLModel:
    """Read and parse a CellML file, refusing oversized files before reading them.

    OSError (missing file, permissions) propagates unchanged: it is not a
    problem with the CellML itself.
    """
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            raise CellMLError("file too large", None, f"{size} bytes exceeds the limit of {max_bytes} bytes")
        data = fh.read(max_bytes + 1)
    return parse_cellml(data, max_bytes=max_bytes)
