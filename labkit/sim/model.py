"""A cardiac cell model addressed by oxmeta term, and the edits protocols make to it.

Protocols never name ``membrane.V`` or ``environment.time``: they name terms such as
``membrane_voltage``, and they speak ms/mV/µA/cm² whatever units the model uses.
:class:`CellModel` is where that translation happens, before a simulation is compiled.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import myokit

from labkit.sim import units as _units
from labkit.sim.annotations import bare_term as _bare_term
from labkit.sim.annotations import term_map

if TYPE_CHECKING:
    from labkit.sim.simulation import PacedSimulation

log = logging.getLogger(__name__)

STIMULUS = "membrane_stimulus_current"
STIM_OFFSET = "membrane_stimulus_current_offset"
STIM_PERIOD = "membrane_stimulus_current_period"
STIM_DURATION = "membrane_stimulus_current_duration"
STIM_AMPLITUDE = "membrane_stimulus_current_amplitude"
STIM_END = "membrane_stimulus_current_end"
VOLTAGE = "membrane_voltage"
CAPACITANCE = "membrane_capacitance"


class MissingTermError(KeyError):
    """A protocol needs oxmeta terms the model does not annotate.

    Subclasses ``KeyError`` so ``except KeyError`` still works, but its message is a
    sentence naming the terms and the model, because it is shown to curators.
    """

    def __init__(self, terms: Iterable[str], model_name: str) -> None:
        self.terms = list(terms)
        self.model_name = model_name
        super().__init__(self.terms[0] if len(self.terms) == 1 else tuple(self.terms))

    def __str__(self) -> str:
        names = ", ".join(f"oxmeta:{t}" for t in self.terms)
        word = "term" if len(self.terms) == 1 else "terms"
        return f"model {self.model_name!r} has no variable annotated with {word} {names}"


def load_model(path: str | os.PathLike) -> CellModel:
    """Import a CellML file with Myokit and index its variables by oxmeta term."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no CellML file at {path}")
    model = myokit.formats.importer("cellml").model(str(path))
    return CellModel(model, name=path.stem, terms=term_map(model, path))


class CellModel:
    """A Myokit model plus its oxmeta index, edited by protocols before simulating.

    Values passed in or out are in protocol units (ms, mV, mM, µA/cm²) for quantities
    of those kinds and in model units otherwise; state vectors are always in model units.
    """

    def __init__(
        self,
        myokit_model: myokit.Model,
        *,
        name: str | None = None,
        terms: dict[str, str] | None = None,
    ) -> None:
        self.myokit_model = myokit_model
        self.name = name or myokit_model.name() or "model"
        self._terms = dict(terms) if terms is not None else term_map(myokit_model)
        self.stimulus_replaced = False

    def __repr__(self) -> str:
        return f"<CellModel {self.name}: {len(self._terms)} terms, {self.myokit_model.count_states()} states>"

    def clone(self) -> CellModel:
        """An independent copy, so one loaded model can be prepared several ways."""
        twin = CellModel(self.myokit_model.clone(), name=self.name, terms=self._terms)
        twin.stimulus_replaced = self.stimulus_replaced
        return twin

    # ------------------------------------------------------------------ lookup
    @property
    def terms(self) -> dict[str, str]:
        """Every annotated term and the qname of its variable (a copy)."""
        return dict(self._terms)

    def has(self, term: str) -> bool:
        """Whether the model annotates ``term`` (optional protocol inputs/outputs)."""
        return _bare_term(term) in self._terms

    def missing(self, terms: Iterable[str]) -> list[str]:
        """The terms of ``terms`` the model lacks, in the order given (for compatibility checks)."""
        return [t for t in terms if _bare_term(t) not in self._terms]

    def require(self, *terms: str) -> None:
        """Fail early, naming every missing term at once, before any simulation runs."""
        absent = self.missing(terms)
        if absent:
            raise MissingTermError(absent, self.name)

    def qname(self, term: str) -> str:
        """The Myokit ``component.variable`` name of ``term`` (a qname is accepted as is)."""
        term = _bare_term(term)
        if term in self._terms:
            return self._terms[term]
        if "." in term and self.myokit_model.has_variable(term):
            return term
        raise MissingTermError([term], self.name)

    def var(self, term: str) -> myokit.Variable:
        """The variable annotated with ``term``; :class:`MissingTermError` if there is none."""
        return self.myokit_model.get(self.qname(term))

    def states(self) -> list[str]:
        """Qnames of the ODE states: the ``oxmeta:state_variable`` vector, in its order."""
        return [v.qname() for v in self.myokit_model.states()]

    # ------------------------------------------------------------------ units
    def _kind(self, var: myokit.Variable) -> str | None:
        if var is self.myokit_model.time():
            return "time"
        if self._terms.get(VOLTAGE) == var.qname():
            return "voltage"
        return None

    def _capacitance_uF(self) -> float | None:
        if CAPACITANCE not in self._terms:
            return None
        cm = self.var(CAPACITANCE)
        try:
            return _units.capacitance_in_uF(float(cm.eval()), cm.unit())
        except Exception:  # not a constant: cannot be used as a fixed factor
            return None

    def _factor_and_unit(self, term: str) -> tuple[float, str]:
        var = self.var(term)
        kind = self._kind(var) or _units.quantity_kind(var.unit())
        cap = self._capacitance_uF() if kind == "current" else None
        return _units.to_protocol_factor(var.unit(), capacitance_uF=cap, kind=kind)

    def protocol_factor(self, term: str) -> float:
        """Multiply a model value of ``term`` by this to get protocol units (1000 for V -> mV)."""
        return self._factor_and_unit(term)[0]

    def protocol_unit(self, term: str) -> str:
        """The unit :meth:`protocol_factor` converts ``term`` to, e.g. ``'mV'``."""
        return self._factor_and_unit(term)[1]

    @property
    def time_factor(self) -> float:
        """Model time unit in ms (1000 for a model in seconds)."""
        return self.protocol_factor(self.myokit_model.time().qname())

    @property
    def voltage_factor(self) -> float:
        """Model voltage unit in mV (1000 for a model in volts)."""
        return self.protocol_factor(VOLTAGE)

    def to_model(self, term: str, value: float, units: str | None = None) -> float:
        """Convert ``value`` (protocol units, or ``units`` if given) into the model's unit for ``term``."""
        if units is None:
            return value / self.protocol_factor(term)
        factor = _units.conversion_factor(myokit.parse_unit(units), self.var(term).unit())
        if factor is None:
            raise ValueError(f"cannot convert {units} to the unit of {term} ({self.var(term).unit()})")
        return value * factor

    def to_model_time(self, ms: float) -> float:
        """A protocol time or duration (ms) in model time units."""
        return ms / self.time_factor

    # ------------------------------------------------------------------ edits
    def _time_literal(self, term: str, ms: float, fallback_name: str) -> myokit.Variable:
        """Set (or create next to the stimulus) the literal constant ``term`` to ``ms``."""
        if term in self._terms:
            var = self.var(term)
            if var.is_state():
                raise ValueError(f"{term} ({var.qname()}) is a state and cannot be a stimulus setting")
            unit = var.unit()
            factor = _units.conversion_factor(unit, _units.MS) if unit is not None else self.time_factor
            if factor is None:
                raise ValueError(f"{term} ({var.qname()}) is in {unit}, not a time unit")
            var.set_rhs(myokit.Number(ms / factor, unit))
            return var
        stim = self.var(STIMULUS)
        component = stim.parent(myokit.Component)
        var = component.add_variable_allow_renaming(fallback_name)
        unit = self.myokit_model.time().unit()
        var.set_unit(unit)
        var.set_rhs(myokit.Number(self.to_model_time(ms), unit))
        var.meta["oxmeta"] = term
        self._terms[term] = var.qname()
        return var

    def _in_unit_of(self, var: myokit.Variable, unit: myokit.Unit | None) -> myokit.Expression:
        """``var`` as an expression in ``unit`` (a scaled name if the units differ)."""
        expr = myokit.Name(var)
        factor = _units.conversion_factor(var.unit(), unit) if unit is not None else None
        if factor is not None and factor != 1.0:
            expr = myokit.Multiply(expr, myokit.Number(factor))
        return expr

    def replace_stimulus(
        self,
        *,
        period: float,
        offset: float = 0.0,
        duration: float | None = None,
        amplitude: float | None = None,
        end: float | None = None,
    ) -> None:
        """Replace the model's stimulus by the protocols' square pulse train (spec §1.6).

        ``I = A`` when ``t >= offset`` and ``(t-offset) mod period <= D`` (and ``t <= end``
        if ``end`` is given), else 0. Offset, period and end become settable literal
        constants (created if the model lacks them). ``duration`` (ms) and ``amplitude``
        (µA/cm²) default to the model's own annotated values, sign included.
        """
        self.require(
            STIMULUS,
            *([STIM_DURATION] if duration is None else []),
            *([STIM_AMPLITUDE] if amplitude is None else []),
        )
        stim = self.var(STIMULUS)
        time = self.myokit_model.time()
        tunit = time.unit()
        off = self._time_literal(STIM_OFFSET, offset, "stim_offset")
        per = self._time_literal(STIM_PERIOD, period, "stim_period")
        dur = (
            self.var(STIM_DURATION)
            if duration is None
            else self._time_literal(STIM_DURATION, duration, "stim_duration")
        )
        if amplitude is None:
            amp = self.var(STIM_AMPLITUDE)
        else:
            value = amplitude / self.protocol_factor(STIMULUS)
            if self.has(STIM_AMPLITUDE):
                amp = self.var(STIM_AMPLITUDE)
                value *= _units.conversion_factor(stim.unit(), amp.unit()) or 1.0
                amp.set_rhs(myokit.Number(value, amp.unit()))
            else:
                component = stim.parent(myokit.Component)
                amp = component.add_variable_allow_renaming("stim_amplitude")
                amp.set_unit(stim.unit())
                amp.set_rhs(myokit.Number(value, stim.unit()))
                amp.meta["oxmeta"] = STIM_AMPLITUDE
                self._terms[STIM_AMPLITUDE] = amp.qname()

        t = myokit.Name(time)
        t_off = self._in_unit_of(off, tunit)
        t_per = self._in_unit_of(per, tunit)
        since = myokit.Minus(t, t_off)
        phase = myokit.Minus(since, myokit.Multiply(t_per, myokit.Floor(myokit.Divide(since, t_per))))
        on = myokit.And(
            myokit.MoreEqual(t, t_off),
            myokit.LessEqual(phase, self._in_unit_of(dur, tunit)),
        )
        if end is not None:
            t_end = self._time_literal(STIM_END, end, "stim_end")
            on = myokit.And(on, myokit.LessEqual(t, self._in_unit_of(t_end, tunit)))
        stim.set_rhs(myokit.If(on, self._in_unit_of(amp, stim.unit()), myokit.Number(0, stim.unit())))
        self.stimulus_replaced = True

    def clamp(self, term: str, value: float | None = None) -> None:
        """Hold ``term`` constant (spec §1.2 ``clamp``/``define``): at ``value`` (protocol units) if given.

        A state is demoted and fixed at its initial value, a computed quantity is frozen
        at its current value. Either way it becomes a literal constant, so a running
        simulation can change it with ``set_parameter`` (the voltage-clamp idiom).
        """
        var = self.var(term)
        new = None if value is None else self.to_model(term, value)
        if var.is_state():
            if new is None:
                new = var.initial_value(True)
            # dot(x) of a clamped x is zero wherever the model uses it.
            zero = {myokit.Derivative(myokit.Name(var)): myokit.Number(0)}
            for user in list(var.refs_by()):
                user.set_rhs(user.rhs().clone(subst=zero))
            var.demote()
        elif new is None:
            new = var.eval()
        var.set_rhs(myokit.Number(float(new), var.unit()))

    def set_parameter(self, term: str, value: float, *, units: str | None = None) -> None:
        """Set a constant before compiling (freezing it if it was computed).

        ``value`` is in protocol units for times, voltages, concentrations and currents
        and in model units otherwise, unless ``units`` names the unit it is given in.
        """
        var = self.var(term)
        if var.is_state():
            raise ValueError(
                f"{term} ({var.qname()}) is a state variable of {self.name}; "
                "use clamp(term, value) to hold it at a value"
            )
        var.set_rhs(myokit.Number(self.to_model(term, value, units), var.unit()))

    def value(self, term: str) -> float:
        """Current value of a constant, or initial value of a state, in protocol units."""
        var = self.var(term)
        raw = var.initial_value(True) if var.is_state() else var.eval()
        return float(raw) * self.protocol_factor(term)

    # ------------------------------------------------------------------ simulate
    def simulation(self, *, cache: bool = True) -> PacedSimulation:
        """Compile (or load from the cache) a simulation of the model as edited so far.

        Later edits to this ``CellModel`` do not affect the returned simulation.
        """
        from labkit.sim.simulation import PacedSimulation

        return PacedSimulation(self.clone(), cache=cache)
