"""Compatibility of a protocol with a model: which required ontology terms the model lacks."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .interface import Interface

#: Terms that stand for something every model has rather than a variable it annotates.
IMPLICIT_TERMS = frozenset({"state_variable"})


@dataclass(frozen=True)
class Compatibility:
    missing_required: tuple[str, ...]
    missing_optional: tuple[str, ...]

    @property
    def compatible(self) -> bool:
        return not self.missing_required

    def explain(self) -> str:
        if self.compatible:
            extra = f" (optional terms not annotated: {', '.join(self.missing_optional)})" \
                if self.missing_optional else ""
            return "compatible" + extra
        return "incompatible: the model does not annotate " + ", ".join(self.missing_required)


def compatibility(interface: Interface, model_terms: Iterable[str]) -> Compatibility:
    have = set(model_terms) | IMPLICIT_TERMS
    return Compatibility(tuple(t for t in interface.requires if t not in have),
                         tuple(t for t in interface.optional if t not in have))
