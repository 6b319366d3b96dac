"""Running a prepared model the way the Web Lab protocols do: pacing, steady state, recording.

All times at this API are ms and all outputs are in protocol units; the conversion to
the model's own units happens here. State vectors stay in model units (spec §1.1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import myokit
import numpy as np
import pandas as pd

from labkit.sim.cache import cached_simulation
from labkit.sim.model import STIM_OFFSET, STIM_PERIOD, CellModel
from labkit.sim.solver import Simulation

#: Solver settings that generated the reference data (spec §1.4).
ABS_TOL = 1e-8
REL_TOL = 1e-6
MAX_STEP_MS = 0.5

#: Magic term: every ODE state of the (modified) model, in model units (spec §1.1).
STATE_VARIABLE = "state_variable"


@dataclass
class SteadyState:
    """Result of :meth:`PacedSimulation.pace_to_steady_state` (the SteadyStateRunner outputs).

    ``norms[k]`` is the L1 change in state over check ``k``; ``final_states[k]`` the state
    after it (model units); ``state`` the last of those.
    """

    num_paces: int
    found: bool
    norms: np.ndarray
    state: np.ndarray
    final_states: np.ndarray


def uniform_times(start: float, stop: float, step: float = 1.0) -> np.ndarray:
    """The sample times of a protocol ``uniform start:step:stop`` range, end included (§1.5)."""
    n = int(round(stop - start) / step) + 1
    return start + step * np.arange(n)


class PacedSimulation:
    """A compiled simulation of a :class:`CellModel`, driven in ms and reporting protocol units.

    Build it with :meth:`CellModel.simulation`. It keeps one state that carries over
    between calls, like the single shared model instance of the Web Lab (§1.5).
    """

    def __init__(self, model: CellModel, *, cache: bool = True) -> None:
        self.model = model  # a private snapshot: kept in step with set_parameter
        mm = model.myokit_model
        if cache:
            self._sim, self.from_cache = cached_simulation(mm)
        else:
            self._sim, self.from_cache = Simulation(mm), False
        self._tf = model.time_factor  # ms per model time unit
        self._sim.set_tolerance(abs_tol=ABS_TOL, rel_tol=REL_TOL)
        self._sim.set_max_step_size(MAX_STEP_MS / self._tf)
        self._state_names = model.states()

    def __repr__(self) -> str:
        return f"<PacedSimulation {self.model.name} t={self.time:g} ms>"

    @property
    def myokit_simulation(self) -> myokit.Simulation:
        """The wrapped Myokit simulation (model time units), for anything not covered here."""
        return self._sim

    # ------------------------------------------------------------------ state and time
    @property
    def time(self) -> float:
        """Current simulation time in ms."""
        return self._sim.time() * self._tf

    def set_time(self, ms: float) -> None:
        """Relabel the time axis without touching the state (spec §1.5)."""
        self._sim.set_time(ms / self._tf)

    @property
    def state_names(self) -> list[str]:
        """Qnames of the states, in the order of :meth:`state`."""
        return list(self._state_names)

    def state(self) -> np.ndarray:
        """Current state vector, model units."""
        return np.array(self._sim.state(), dtype=float)

    def set_state(self, state: Sequence[float]) -> None:
        """Restore a state saved with :meth:`state` (``reset to NAME``)."""
        self._sim.set_state([float(x) for x in state])

    def default_state(self) -> np.ndarray:
        """The model's initial state after the protocol's modifications."""
        return np.array(self._sim.default_state(), dtype=float)

    def reset(self) -> None:
        """Back to the initial state; time and parameters are kept (the protocol ``reset``)."""
        self._sim.set_state(self._sim.default_state())

    # ------------------------------------------------------------------ parameters
    def set_parameter(self, term: str, value: float, *, units: str | None = None) -> None:
        """Change a literal constant between runs (protocol units unless ``units`` is given)."""
        var = self.model.var(term)
        raw = self.model.to_model(term, value, units)
        if not var.is_literal():
            what = "a state variable" if var.is_state() else "computed from other variables"
            raise ValueError(
                f"{term} ({var.qname()}) is {what} in {self.model.name}; make it settable before "
                "building the simulation with model.clamp(term) or model.set_parameter(term, value)"
            )
        self._set_raw(var.qname(), raw)

    def _set_raw(self, qname: str, raw: float) -> None:
        """Set a literal in model units, in the compiled simulation and in our snapshot."""
        self._sim.set_constant(qname, raw)
        var = self.model.myokit_model.get(qname)
        rhs = var.rhs()
        if not (isinstance(rhs, myokit.Number) and rhs.eval() == raw):
            var.set_rhs(myokit.Number(raw, var.unit()))

    def evaluate(self, term: str) -> float:
        """Value of ``term`` now, in protocol units.

        Works for constants too, which Myokit cannot log (e.g. I_K1 once V is clamped, §1.8).
        """
        var = self.model.var(term)
        if var.is_constant():
            return float(var.eval()) * self.model.protocol_factor(term)
        return float(self._log_now([var.qname()])[var.qname()]) * self.model.protocol_factor(term)

    # ------------------------------------------------------------------ running
    def run(self, duration: float) -> None:
        """Integrate for ``duration`` ms without recording."""
        if duration > 0:
            self._sim.run(duration / self._tf, log=myokit.LOG_NONE)

    def _stimulus_names(self) -> tuple[str, str]:
        if not self.model.stimulus_replaced:
            raise RuntimeError(
                f"call model.replace_stimulus(...) before model.simulation(): pacing {self.model.name} "
                "needs the protocol's stimulus with a settable period and offset"
            )
        return self.model.qname(STIM_PERIOD), self.model.qname(STIM_OFFSET)

    def single_pace(self, period: float, num_paces: int = 1) -> float:
        """The SinglePace protocol (§1.7): pace ``num_paces`` beats from t=-10 ms; L1 state change.

        Sets period and offset (0), relabels time to -10 ms and integrates in one call to
        ``period*num_paces - 10`` ms, so exactly ``num_paces`` stimuli are applied.
        """
        per, off = self._stimulus_names()
        self._set_raw(per, period / self._tf)
        self._set_raw(off, 0.0)
        self._sim.set_time(-10.0 / self._tf)
        x0 = self._sim.state()
        self._sim.run(period * num_paces / self._tf, log=myokit.LOG_NONE)
        x1 = self._sim.state()
        return math.fsum(abs(b - a) for a, b in zip(x0, x1))

    def pace_to_steady_state(
        self,
        period: float,
        *,
        max_paces: int = 10000,
        norm_threshold: float = 1e-6,
        num_inner_paces: int = 1,
        progress: Callable[[int, float], object] | None = None,
    ) -> SteadyState:
        """Pace until the state stops changing: the SteadyStateRunner loop of §1.7, exactly.

        Repeats :meth:`single_pace` while ``norm > norm_threshold`` and fewer than
        ``ceil(max_paces / num_inner_paces)`` runs were made. ``found`` is
        ``num_paces < max_paces`` (strict, as in the Web Lab). ``progress(num_paces, norm)``
        is called after every run.
        """
        if num_inner_paces < 1 or max_paces < 1:
            raise ValueError("max_paces and num_inner_paces must be at least 1")
        self._stimulus_names()
        max_runs = math.ceil(max_paces / num_inner_paces)
        norms: list[float] = []
        finals: list[list[float]] = []
        runs = 0
        while True:
            norm = self.single_pace(period, num_inner_paces)
            runs += 1
            norms.append(norm)
            finals.append(self._sim.state())
            if progress is not None:
                progress(runs * num_inner_paces, norm)
            if not (norm > norm_threshold and runs < max_runs):
                break
        num_paces = runs * num_inner_paces
        final_states = np.array(finals, dtype=float)
        return SteadyState(
            num_paces=num_paces,
            found=num_paces < max_paces,
            norms=np.array(norms, dtype=float),
            state=final_states[-1].copy(),
            final_states=final_states,
        )

    # ------------------------------------------------------------------ recording
    def record(
        self,
        duration: float,
        *,
        start: float = -10.0,
        step: float = 1.0,
        terms: Iterable[str] = ("membrane_voltage",),
    ) -> pd.DataFrame:
        """Record a uniform time course ``start:step:start+duration`` (end included), from the current state.

        The detail run of SteadyStateRunner (§2.1 d3): time is relabelled to ``start``
        and the simulation ends exactly at the last sample, so pacing can continue.
        """
        return self.record_times(uniform_times(start, start + duration, step), terms=terms)

    def record_times(
        self,
        times: Sequence[float],
        *,
        terms: Iterable[str] = ("membrane_voltage",),
        until: float | None = None,
        relabel: bool = True,
    ) -> pd.DataFrame:
        """Record ``terms`` at the given sample times (ms, non-decreasing); a §1.5 timecourse.

        With ``relabel`` the time is first set to ``times[0]``; otherwise integration
        continues from the current time. The simulation stops at ``until`` (default: the
        last sample), so piecewise runs (voltage-clamp segments) can follow each other.
        Columns: ``time`` plus one per term in protocol units; the magic term
        ``state_variable`` adds one column per state, named by qname, in model units.
        """
        times_ms = np.asarray(times, dtype=float)
        if times_ms.ndim != 1 or times_ms.size == 0:
            raise ValueError("times must be a non-empty 1-d sequence")
        if np.any(np.diff(times_ms) < 0):
            raise ValueError("times must be non-decreasing")
        if relabel:
            self.set_time(float(times_ms[0]))
        tf = self._tf
        t_now = self._sim.time()
        t_model = times_ms / tf
        if t_model[0] < t_now:
            raise ValueError(f"first sample {times_ms[0]} ms lies before the current time {self.time} ms")
        end = float(t_model[-1]) if until is None else until / tf
        if end < t_model[-1]:
            raise ValueError("until must not come before the last sample time")

        columns, logged, constant = self._plan_columns(terms)
        tmax = t_now + (end - t_now)  # the value Myokit will use as its end time
        inside = t_model < tmax
        n_in = int(inside.sum())
        data: dict[str, np.ndarray] = {q: np.empty(times_ms.size) for q in logged}
        x0 = self._sim.state()
        if end > t_now:
            log = self._sim.run(end - t_now, log=list(logged), log_times=list(t_model[inside]))
            for q in logged:
                values = np.asarray(log[q], dtype=float)
                if values.size != n_in:
                    raise RuntimeError(f"Myokit logged {values.size} samples of {q}, expected {n_in}")
                data[q][:n_in] = values
        if n_in < times_ms.size:  # samples at the very end: the state there is exact
            now = self._log_now(list(logged))
            for q in logged:
                data[q][n_in:] = now[q]
        # States at the start and end are known exactly; use them rather than interpolants.
        x1 = self._sim.state()
        for i, q in enumerate(self._state_names):
            if q in data:
                data[q][t_model == t_now] = x0[i]
                data[q][~inside] = x1[i]

        frame = {"time": times_ms}
        for label, (qname, factor) in columns.items():
            if qname in constant:
                frame[label] = np.full(times_ms.size, constant[qname] * factor)
            else:
                frame[label] = data[qname] * factor
        return pd.DataFrame(frame)

    def _plan_columns(
        self, terms: Iterable[str]
    ) -> tuple[dict[str, tuple[str, float]], list[str], dict[str, float]]:
        """Column label -> (qname, factor); which qnames Myokit logs; constant values."""
        if isinstance(terms, str):
            terms = [terms]
        columns: dict[str, tuple[str, float]] = {}
        for term in terms:
            if term == STATE_VARIABLE:
                for q in self._state_names:
                    columns[q] = (q, 1.0)
            else:
                columns[term] = (self.model.qname(term), self.model.protocol_factor(term))
        logged: list[str] = []
        constant: dict[str, float] = {}
        for qname, _ in columns.values():
            var = self.model.myokit_model.get(qname)
            if var.is_constant():
                constant[qname] = float(var.eval())
            elif qname not in logged:
                logged.append(qname)
        return columns, logged, constant

    def _log_now(self, qnames: list[str]) -> dict[str, float]:
        """Values of logged variables at the current time and state, leaving both unchanged.

        Myokit logs half-open intervals, so a sample at the very end of a run is taken
        by a negligible extra run started there, after which time and state are restored.
        """
        if not qnames:
            return {}
        t0 = self._sim.time()
        x0 = self._sim.state()
        tiny = 1e-6 / self._tf
        try:
            log = self._sim.run(tiny, log=list(qnames), log_times=[t0])
        finally:
            self._sim.set_time(t0)
            self._sim.set_state(x0)
        values = {}
        for q in qnames:
            if len(log[q]) != 1:
                raise RuntimeError(f"could not evaluate {q} at t={t0 * self._tf} ms")
            values[q] = float(log[q][0])
        return values
