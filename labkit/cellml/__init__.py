"""Safe CellML loading and Oxford-metadata (oxmeta) annotation extraction.

Other labkit modules rely on this API to map protocol terms to model variables.
"""

from labkit.cellml.errors import CellMLError
from labkit.cellml.model import Annotation, CellMLModel, UnresolvedAnnotation
from labkit.cellml.ontology import (
    OXMETA_NS,
    OntologyNotFoundError,
    is_oxmeta_term,
    ontology_path,
    oxmeta_terms,
)
from labkit.cellml.parse import (
    CELLML_NAMESPACES,
    MAX_CELLML_BYTES,
    parse_cellml,
    parse_cellml_file,
)

__all__ = [
    "Annotation",
    "CELLML_NAMESPACES",
    "CellMLError",
    "CellMLModel",
    "MAX_CELLML_BYTES",
    "OXMETA_NS",
    "OntologyNotFoundError",
    "UnresolvedAnnotation",
    "is_oxmeta_term",
    "ontology_path",
    "oxmeta_terms",
    "parse_cellml",
    "parse_cellml_file",
]
