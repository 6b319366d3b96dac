"""Immutable results of loading a CellML file: the model and its oxmeta annotations."""

from __future__ import annotations

from dataclasses import dataclass, field

from labkit.cellml.ontology import OXMETA_NS


@dataclass(frozen=True)
class Annotation:
    """One oxmeta term attached to one model variable.

    Protocols refer to model quantities by oxmeta term, so this is the bridge
    from a term to the concrete ``component.variable`` a simulator must use.
    """

    term: str
    cmeta_id: str
    component: str
    variable: str
    units: str
    is_state: bool

    @property
    def qualified_name(self) -> str:
        """``component.variable``, the name Myokit and most tools use."""
        return f"{self.component}.{self.variable}"


@dataclass(frozen=True)
class UnresolvedAnnotation:
    """An oxmeta annotation whose subject is not a variable of the model.

    Kept so that a curator can see why a term they expected is missing.
    """

    term: str
    target: str  # the cmeta:id (or full URI when not a same-document reference)
    reason: str


@dataclass(frozen=True)
class CellMLModel:
    """What labkit needs to know about a CellML model before simulating it."""

    name: str
    cellml_version: str
    annotations: tuple[Annotation, ...]
    unresolved: tuple[UnresolvedAnnotation, ...] = field(default=(), compare=False)

    def terms(self) -> frozenset[str]:
        """All oxmeta terms the model is annotated with (for protocol compatibility checks)."""
        return frozenset(a.term for a in self.annotations)

    def annotation(self, term: str) -> Annotation | None:
        """The annotation for ``term`` (bare name or full oxmeta URI), or ``None``.

        If a term is (unusually) attached to several variables, the first in
        document order is returned; use :meth:`annotations_for` to see all.
        """
        for a in self.annotations_for(term):
            return a
        return None

    def annotations_for(self, term: str) -> tuple[Annotation, ...]:
        """Every annotation carrying ``term``, in document order."""
        if term.startswith(OXMETA_NS):
            term = term[len(OXMETA_NS):]
        elif term.startswith("oxmeta:"):
            term = term[len("oxmeta:"):]
        return tuple(a for a in self.annotations if a.term == term)
