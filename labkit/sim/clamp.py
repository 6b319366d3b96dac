"""Voltage-clamp experiments the way the Web Lab ran them (spec §1.8), and their read-outs.

A clamp protocol replaces the membrane potential's ODE by a settable constant, holds some
concentrations at their initial values, runs once at a holding potential ("pre-run") and
saves the state, then gives a family of sweeps. Each sweep restores the saved state, sets the
holding potential and samples a vector of times; at listed *sample* times the potential
switches to a new value (``if |t - t_switch| < eps then new else current``). The switch acts
from that sample on, and the values recorded at the switching sample already use the new
potential, so a sweep is integrated piecewise between switching samples::

    from labkit.sim import clamp

    IKR = "membrane_rapid_delayed_rectifier_potassium_current"
    cell = clamp.VoltageClampCell(model, record=[IKR], clamp_optional=["extracellular_potassium_concentration"])
    cell.hold(-80.01, 100000)                        # pre-run, state saved
    sweeps = cell.family(times, -80.01, clamp.step_sweeps(tests, clamp.Switch(50, -60.01)))
    peaks = clamp.tail_max(sweeps["time"], sweeps[IKR], after_time=50)

Times are ms, voltages mV and currents µA/cm² (spec §1.3: A/F-like currents through the
protocols' 1 µF/cm², densities by unit conversion, absolute currents divided by
``oxmeta:membrane_capacitance``) whatever the model's own units. The read-outs (peaks,
tails, normalisations) are plain numpy functions of the recorded arrays.
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import myokit
import numpy as np
from numpy.typing import ArrayLike

from labkit.sim.model import VOLTAGE, CellModel
from labkit.sim.simulation import PacedSimulation
from labkit.sim.solver import failure_reason

#: Tolerance of the Web Lab's "is this the switching sample" test (1e-4 in the INa peak sweeps).
SWITCH_EPS = 1e-6

TIME = "time"


@dataclass(frozen=True)
class ClampFailure:
    """A run the solver could not complete (e.g. the model's equations hit 0/0 at some potential)."""

    what: str
    time: float  # ms where the solver gave up (NaN if unknown)
    message: str

    def __str__(self) -> str:
        return f"{self.what}: the solver failed at t = {self.time:g} ms ({self.message})"


@dataclass(frozen=True)
class Switch:
    """At the sample whose time is within ``eps`` of ``time`` (ms), the clamp moves to ``voltage`` (mV)."""

    time: float
    voltage: float


# ---------------------------------------------------------------------------------- schedule
def clamp_voltages(
    times: ArrayLike,
    initial: float,
    switches: Sequence[Switch],
    eps: float = SWITCH_EPS,
) -> np.ndarray:
    """The clamp potential in force at each sample (zero-order hold switching at samples).

    At every sample the first switch with ``|t - switch.time| < eps`` sets the potential (the
    protocols' nested ``if ... else if ... else current``); otherwise it keeps its value.
    ``initial`` is the potential set before the first sample.
    """
    t = np.asarray(times, dtype=float)
    v = np.empty(t.size)
    current = float(initial)
    for k, tk in enumerate(t):
        for s in switches:
            if abs(tk - s.time) < eps:
                current = float(s.voltage)
                break
        v[k] = current
    return v


def segments(voltages: ArrayLike) -> list[tuple[int, int]]:
    """Index ranges ``[start, stop)`` over which the clamp potential is constant.

    A new segment starts at sample 0 and wherever the potential differs from the previous
    sample's (setting an unchanged value does not restart the solver, as in the Web Lab).
    """
    v = np.asarray(voltages, dtype=float)
    if v.size == 0:
        return []
    starts = [0, *(np.flatnonzero(v[1:] != v[:-1]) + 1).tolist()]
    stops = [*starts[1:], v.size]
    return list(zip(starts, stops))


# ---------------------------------------------------------------------------------- units
def current_factor(model: CellModel, term: str) -> float:
    """Multiply a model value of the current ``term`` by this for µA/cm² (spec §1.3).

    A/F (pA/pF, µA/µF) counts as µA/cm² through the protocols' C = 1 µF/cm²; current densities
    convert directly; absolute currents (A, nA, pA) are divided by the cell capacitance
    (``oxmeta:membrane_capacitance``, needed only then).
    """
    return model.protocol_factor(term)


# ---------------------------------------------------------------------------------- simulation
class VoltageClampCell:
    """A model with its membrane potential clamped, run through pre-runs and sweep families.

    ``clamp`` lists concentrations (or any terms) that must exist and are held at their
    initial values; ``clamp_optional`` those held only when the model has them. ``record``
    lists the terms logged at every sample (in protocol units). The simulation keeps its
    state between calls, like the Web Lab's single model instance.

    A run the solver cannot complete does not stop the experiment: the samples it should have
    produced are NaN (a failed pre-run makes every sweep from it NaN), a warning is issued and
    the failure is listed in :attr:`failures`. The read-outs below propagate NaN per sweep and
    the normalisations ignore NaN sweeps.
    """

    def __init__(
        self,
        model: CellModel,
        *,
        record: Iterable[str] = (),
        clamp: Iterable[str] = (),
        clamp_optional: Iterable[str] = (),
        cache: bool = True,
    ) -> None:
        record = [t for t in record if t not in (VOLTAGE, TIME)]
        clamp = list(clamp)
        model.require(VOLTAGE, *clamp, *record)
        edited = model.clone()
        edited.clamp(VOLTAGE, 0.0)  # `define V = 0 mV`: V becomes a settable constant
        self.clamped = [*clamp, *[t for t in clamp_optional if edited.has(t) and t not in clamp]]
        for term in self.clamped:
            edited.clamp(term)
        self.model = edited
        self.record_terms = record
        self.cell: PacedSimulation = edited.simulation(cache=cache)
        self.saved_state: np.ndarray | None = None
        self.failures: list[ClampFailure] = []

    def __repr__(self) -> str:
        return f"<VoltageClampCell {self.model.name} clamped={self.clamped} t={self.cell.time:g} ms>"

    # -------------------------------------------------------------- settings
    @property
    def voltage(self) -> float:
        """The clamp potential now (mV)."""
        return self.cell.evaluate(VOLTAGE)

    def set_voltage(self, mV: float) -> None:
        """Move the clamp to ``mV``."""
        self.cell.set_parameter(VOLTAGE, float(mV))

    def set_parameter(self, term: str, value: float, *, units: str | None = None) -> None:
        """Change a clamped concentration or other literal (protocol units unless ``units``)."""
        self.cell.set_parameter(term, value, units=units)

    # -------------------------------------------------------------- runs
    def hold(self, holding: float, duration: float, *, start: float = 0.0, save: bool = True) -> np.ndarray:
        """The pre-run: V = ``holding``, time relabelled to ``start``, one integration of ``duration`` ms.

        Saves the final state for :meth:`sweep` (``save as holding_state``) unless ``save`` is
        false, and returns it (model units).
        """
        self.set_voltage(holding)
        self.cell.set_time(start)
        before = self.cell.state()
        try:
            self.cell.run(duration)
            state = self.cell.state()
        except myokit.SimulationError as err:
            self._failed(f"pre-run at {holding} mV", err)
            self.cell.set_state(before)
            state = np.full(before.size, np.nan)
        if save:
            self.saved_state = state
        return state

    def _failed(self, what: str, err: Exception) -> None:
        text = str(err)
        found = re.search(r"at t = *([-+0-9.eE]+)", text)
        t = float(found.group(1).rstrip(".")) * self.model.time_factor if found else float("nan")
        failure = ClampFailure(what, t, failure_reason(err))
        self.failures.append(failure)
        warnings.warn(f"{self.model.name}: {failure}; its samples are NaN", RuntimeWarning, stacklevel=3)

    def sweep(
        self,
        times: ArrayLike,
        holding: float | None,
        switches: Sequence[Switch] = (),
        *,
        voltages: ArrayLike | None = None,
        eps: float = SWITCH_EPS,
        restore: bool = True,
    ) -> dict[str, np.ndarray]:
        """One sweep: restore the saved state, V = ``holding``, then sample ``times`` with ``switches``.

        ``voltages`` instead gives the potential to set at every sample (a data clamp).
        ``holding=None`` keeps the present potential; ``restore=False`` continues from the
        present state. Returns ``time`` and ``membrane_voltage`` plus every recorded term, each
        of the length of ``times``; the simulation ends at the last sample.
        """
        t = np.asarray(times, dtype=float)
        if t.ndim != 1 or t.size == 0:
            raise ValueError("times must be a non-empty 1-d sequence")
        terms = [VOLTAGE, *self.record_terms]
        out = {term: np.full(t.size, np.nan) for term in terms}
        out[TIME] = t.copy()
        if restore:
            if self.saved_state is None:
                raise RuntimeError("no saved holding state: call hold(...) before the sweeps")
            if np.isnan(self.saved_state).any():  # the pre-run failed: nothing to sweep from
                return out
            self.cell.set_state(self.saved_state)
        if holding is not None:
            self.set_voltage(holding)
        start_v = float(holding) if holding is not None else self.voltage
        if voltages is None:
            volts = clamp_voltages(t, start_v, switches, eps)
        else:
            volts = np.asarray(voltages, dtype=float)
            if volts.shape != t.shape:
                raise ValueError(f"{volts.size} voltages for {t.size} sample times")
        for n, (i0, i1) in enumerate(segments(volts)):
            if n > 0 or volts[i0] != start_v:
                self.set_voltage(volts[i0])
            until = float(t[i1]) if i1 < t.size else float(t[-1])
            try:
                frame = self.cell.record_times(t[i0:i1], terms=terms, until=until, relabel=(n == 0))
            except myokit.SimulationError as err:
                steps = sorted({float(v) for v in volts} - {start_v}) or [start_v]
                self._failed(f"sweep from {start_v:g} mV via {', '.join(f'{v:g}' for v in steps[:3])} mV", err)
                break
            for term in terms:
                out[term][i0:i1] = frame[term].to_numpy()
        return out

    def family(
        self,
        times: ArrayLike,
        holding: float | None,
        sweeps: Sequence[Sequence[Switch]],
        *,
        eps: float = SWITCH_EPS,
    ) -> dict[str, np.ndarray]:
        """A family of sweeps over the same sample ``times``, each from the saved state.

        Returns ``time`` (n,) and, for the potential and each recorded term, an array of
        shape (number of sweeps, n): the outer loop is the first dimension (spec §1.5).
        """
        t = np.asarray(times, dtype=float)
        runs = [self.sweep(t, holding, switches, eps=eps) for switches in sweeps]
        result = {term: np.array([r[term] for r in runs]) for term in [VOLTAGE, *self.record_terms]}
        result[TIME] = t.copy()
        return result


def step_sweeps(test_potentials: ArrayLike, *later: Switch, at: float = 0.0) -> list[list[Switch]]:
    """The switch lists of a step family: to each test potential at ``at``, then the ``later`` switches."""
    return [[Switch(at, float(v)), *later] for v in np.asarray(test_potentials, dtype=float)]


# ---------------------------------------------------------------------------------- read-outs
def after(times: ArrayLike, t0: float, *, inclusive: bool = False, eps: float = 0.0) -> np.ndarray:
    """Mask of the samples after ``t0``: ``t > t0`` (or ``t >= t0 - eps`` when ``inclusive``)."""
    t = np.asarray(times, dtype=float)
    return t >= t0 - eps if inclusive else t > t0


def _tail(times: ArrayLike, traces: ArrayLike, mask: np.ndarray) -> np.ndarray:
    y = np.asarray(traces, dtype=float)
    if y.shape[-1] != mask.size:
        raise ValueError(f"traces have {y.shape[-1]} samples, times {mask.size}")
    if not mask.any():
        raise ValueError("no sample lies in the requested tail")
    return y[..., mask]


def tail_min(times: ArrayLike, traces: ArrayLike, after_time: float) -> np.ndarray:
    """Minimum of each trace over the samples with ``t > after_time`` (e.g. peak inward I_CaL)."""
    return _tail(times, traces, after(times, after_time)).min(axis=-1)


def tail_max(times: ArrayLike, traces: ArrayLike, after_time: float) -> np.ndarray:
    """Signed maximum of each trace over the samples with ``t > after_time`` (peak tail current)."""
    return _tail(times, traces, after(times, after_time)).max(axis=-1)


def tail_abs_max(times: ArrayLike, traces: ArrayLike, from_time: float, *, eps: float = 0.0) -> np.ndarray:
    """Largest magnitude of each trace over the samples with ``t >= from_time`` (``eps`` slack)."""
    return np.abs(_tail(times, traces, after(times, from_time, inclusive=True, eps=eps))).max(axis=-1)


def tail_signed_peak(times: ArrayLike, traces: ArrayLike, from_time: float, *, eps: float = 0.0) -> np.ndarray:
    """Signed value at the first sample where ``|trace|`` is largest, over ``t >= from_time``."""
    y = _tail(times, traces, after(times, from_time, inclusive=True, eps=eps))
    idx = np.abs(y).argmax(axis=-1)
    return np.take_along_axis(y, np.expand_dims(idx, -1), axis=-1)[..., 0]


def value_before(times: ArrayLike, traces: ArrayLike, t_end: float) -> np.ndarray:
    """The Web Lab's "steady" value of a step: the sample *before* the last one with ``t < t_end``.

    IK1_IV_curve keeps samples ``0 .. last-1`` where ``last`` is the last index with
    ``t < t_end`` and reports the final one, so with 1 ms samples ending at 500 ms this is the
    value at 498 ms (spec §2.10, §6.5). Kept deliberately.
    """
    t = np.asarray(times, dtype=float)
    below = np.flatnonzero(t < t_end)
    if below.size < 2:
        raise ValueError(f"need at least two samples before t={t_end}")
    return np.asarray(traces, dtype=float)[..., below[-1] - 1]


def normalise_to_max(values: ArrayLike) -> np.ndarray:
    """``values / max(values)``: the largest value maps to 1 (signed, e.g. tail current I-V curves).

    NaN entries (failed sweeps) stay NaN and do not take part in the maximum.
    """
    x = np.asarray(values, dtype=float)
    return x / _nan_reduce(np.nanmax, x)


def normalise_to_min(values: ArrayLike) -> np.ndarray:
    """``-values / min(values)``: the most negative value maps to -1, signs are kept (inward I-V curves).

    NaN entries (failed sweeps) stay NaN and do not take part in the minimum.
    """
    x = np.asarray(values, dtype=float)
    return -x / _nan_reduce(np.nanmin, x)


def largest(values: ArrayLike) -> float:
    """The largest value, ignoring NaN (failed sweeps); NaN if every value is NaN."""
    return _nan_reduce(np.nanmax, np.asarray(values, dtype=float))


def smallest(values: ArrayLike) -> float:
    """The smallest (most negative) value, ignoring NaN (failed sweeps); NaN if every value is NaN."""
    return _nan_reduce(np.nanmin, np.asarray(values, dtype=float))


def _nan_reduce(func: Callable[[np.ndarray], float], x: np.ndarray) -> float:
    """``func`` (nanmax/nanmin) of ``x``, NaN without a warning when every entry is NaN."""
    return float("nan") if x.size == 0 or np.isnan(x).all() else float(func(x))


def thin(times: ArrayLike, traces: ArrayLike, max_points: int | None = 2000) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` evenly spaced samples (first and last kept) of a family, for display.

    ``max_points`` of ``None`` or 0 keeps everything.
    """
    t = np.asarray(times, dtype=float)
    y = np.asarray(traces, dtype=float)
    if not max_points or t.size <= max_points:
        return t, y
    idx = np.unique(np.round(np.linspace(0, t.size - 1, int(max_points))).astype(int))
    return t[idx], y[..., idx]


# ---------------------------------------------------------------------------------- clamp data
def load_clamp_data(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """A voltage waveform for a data clamp: a CSV of ``time,voltage`` rows (ms, mV), no header.

    Checks what the Web Lab's loader asserted: two columns of equal length (a 2 x n array
    once transposed), with non-decreasing times.
    """
    rows = []
    with Path(path).open(newline="") as handle:
        for row in csv.reader(handle):
            cells = [c.strip() for c in row if c.strip()]
            if not cells or cells[0].startswith("#"):
                continue
            if len(cells) != 2:
                raise ValueError(f"{path}: expected rows of 'time,voltage', found {row!r}")
            rows.append([float(c) for c in cells])
    data = np.array(rows, dtype=float).T
    if data.ndim != 2 or data.shape[0] != 2 or data.shape[1] == 0:
        raise ValueError(f"{path}: no 'time,voltage' rows")
    if np.any(np.diff(data[0]) < 0):
        raise ValueError(f"{path}: times must be non-decreasing")
    return data[0], data[1]


def data_clamp_voltages(times: ArrayLike, waveform_times: ArrayLike, waveform: ArrayLike) -> np.ndarray:
    """V at each sample of a data clamp: the waveform value whose time equals the sample time exactly."""
    t = np.asarray(times, dtype=float)
    wt = np.asarray(waveform_times, dtype=float)
    wv = np.asarray(waveform, dtype=float)
    out = np.empty(t.size)
    for k, tk in enumerate(t):
        match = np.flatnonzero(wt == tk)
        if match.size == 0:
            raise ValueError(f"the clamp waveform has no value at t={tk} ms")
        out[k] = wv[match[0]]
    return out


def own_action_potential(model: CellModel, times: ArrayLike, *, offset: float = 10.0,
                         period: float = 1000.0) -> np.ndarray:
    """The model's own first action potential at ``times`` (ms from 0): a default clamp waveform.

    Paces the unclamped model from its initial state with the protocols' square stimulus
    (the model's amplitude and duration) starting at ``offset`` ms.
    """
    paced = model.clone()
    paced.replace_stimulus(period=period, offset=offset)
    cell = paced.simulation()
    t = np.asarray(times, dtype=float)
    return cell.record_times(t, terms=[VOLTAGE])[VOLTAGE].to_numpy()
