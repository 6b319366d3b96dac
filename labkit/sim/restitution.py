"""Restitution experiments: steady-state (dynamic) restitution and S1-S2 restitution.

These are the Web Lab's ``SteadyStateRestitution`` (with its nested
``SteadyStateRunnerForRestitution``) and ``S1S2`` protocols (spec §2.2-2.4), built on
:class:`~labkit.sim.PacedSimulation` and the §1.10 APD/DI algorithm of
:mod:`labkit.sim.analysis`. Simulation loops and post-processing are separate, so the
post-processing (filters, slopes) can be checked on synthetic numbers.

Quirks kept on purpose (spec §6):

* the first beat recorded by :func:`pace_for_restitution` follows a shortened interval of
  ``P - 10`` ms, because the detail run relabels time to 0 right after the pacing loop
  stopped at local time ``2P - 10`` (§2.2, §6.2);
* :func:`steady_state_restitution` never resets between cycle lengths (§6.3);
* where the solver cannot complete a cycle length, :func:`steady_state_restitution` keeps the
  cycle lengths completed before it, as the Web Lab's results of a failed run did (its
  Earm-Noble 1990 reference has the 6 cycle lengths before its solver failed at 800 ms);
* S1-S2 traces with a single detected upstroke get a fake second AP from the APD
  algorithm's padding; the strict ``DI > 19 ms`` filter removes them (§6.6).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import myokit
import numpy as np
from numpy.typing import ArrayLike

from labkit.sim.analysis import apd_and_di
from labkit.sim.model import STIM_END, STIM_OFFSET, STIM_PERIOD, CellModel
from labkit.sim.simulation import PacedSimulation, uniform_times
from labkit.sim.solver import failure_reason

#: SteadyStateRestitution's cycle lengths (ms), in the order they are applied.
STEADY_STATE_PACING_INTERVALS: tuple[float, ...] = (
    2000, 1750, 1500, 1250, 1000, 900, 800, 700, 600, 550, 500, 450, 400, 350, 300,
)

#: S1S2's S2 intervals (ms): 2000..1000 by 50, 975..700 by 25, 680..500 by 20, 490..20 by 10.
S2_INTERVALS: tuple[float, ...] = tuple(
    [float(x) for x in range(2000, 999, -50)]
    + [float(x) for x in range(975, 699, -25)]
    + [float(x) for x in range(680, 499, -20)]
    + [float(x) for x in range(490, 19, -10)]
)

#: The S1S2 stimulus train's end time before any sweep sets it (ms): effectively never.
NO_END = 1e11
#: S1S2's stimulus offset (ms): the first pulse of every run comes 10 ms after t = 0.
S1S2_OFFSET = 10.0


# ---------------------------------------------------------------------------------------------
# post-processing (pure functions)
# ---------------------------------------------------------------------------------------------
def after(values: ArrayLike, index: ArrayLike, threshold: float) -> np.ndarray:
    """The entries of ``values`` where ``index > threshold`` (strictly): BasicLibrary ``After``."""
    v = np.asarray(values, dtype=float)
    idx = np.asarray(index, dtype=float)
    if idx.ndim != 1 or v.shape[-1] != idx.size:
        raise ValueError(f"index must be 1-d with one entry per value, got {idx.shape} for {v.shape}")
    return v[..., idx > threshold]


def restitution_slope(apd: ArrayLike, di: ArrayLike) -> np.ndarray:
    """Slope of APD against DI between consecutive points, ``Diff(APD)/Diff(DI)``, in the given order."""
    a = np.asarray(apd, dtype=float)
    d = np.asarray(di, dtype=float)
    if a.shape != d.shape or a.ndim != 1:
        raise ValueError(f"APD and DI must be 1-d arrays of the same length, got {a.shape} and {d.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.diff(a) / np.diff(d)


def max_slope(slope: ArrayLike) -> np.ndarray:
    """The largest slope as a length-1 array (``Max`` keeps the reduced dimension); NaN if there is none."""
    s = np.asarray(slope, dtype=float)
    return np.array([s.max() if s.size else np.nan])


@dataclass
class RestitutionCurve:
    """SteadyStateRestitution's outputs (§2.3 f): the cycle lengths whose DI exceeds ``min_DI``.

    ``APD`` has shape ``(2, n_kept)``: row 0 the first recorded AP at each cycle length,
    row 1 the second.
    """

    APD: np.ndarray
    DI: np.ndarray
    output_pacing_intervals: np.ndarray
    restitution_slope: np.ndarray
    max_restitution_slope: np.ndarray


def steady_state_restitution_curve(
    apds: ArrayLike, dis: ArrayLike, pacing_intervals: ArrayLike, min_di: float = 1.0
) -> RestitutionCurve:
    """Post-process the per-cycle-length APDs ``(n, A>=2)`` and first DIs ``(n,)`` (§2.3 e).

    Keeps the cycle lengths with ``DI > min_di`` (strict) and the first two APDs of each;
    the slope is of the *first* APD against DI.
    """
    a = np.asarray(apds, dtype=float)
    d = np.asarray(dis, dtype=float)
    p = np.asarray(pacing_intervals, dtype=float)
    if a.ndim != 2 or a.shape[1] < 2 or a.shape[0] != d.size or d.shape != p.shape:
        raise ValueError(f"need APDs (n, >=2), DIs (n,) and intervals (n,); got {a.shape}, {d.shape}, {p.shape}")
    apd1 = after(a[:, 0], d, min_di)
    apd2 = after(a[:, 1], d, min_di)
    kept_di = after(d, d, min_di)
    slope = restitution_slope(apd1, kept_di)
    return RestitutionCurve(
        APD=np.vstack([apd1, apd2]),
        DI=kept_di,
        output_pacing_intervals=after(p, d, min_di),
        restitution_slope=slope,
        max_restitution_slope=max_slope(slope),
    )


@dataclass
class S1S2Curve:
    """S1S2's post-processed outputs (§2.4 e-f)."""

    raw_APD90: np.ndarray  # (n_sweeps, A)
    raw_DI: np.ndarray  # (n_sweeps, A-1)
    PCLs: np.ndarray  # the S2 intervals kept
    APD90: np.ndarray  # the APD of the second AP (the S2 response), kept sweeps
    DI: np.ndarray  # the first DI (end of the S1 AP to the start of the S2 AP), kept sweeps
    S1S2_slope: np.ndarray
    max_S1S2_slope: np.ndarray


def s1s2_curve(
    voltage: ArrayLike,
    time: ArrayLike,
    s2_intervals: ArrayLike,
    min_di: float = 19.0,
    percent: float = 90,
) -> S1S2Curve:
    """Measure S1-S2 restitution from the sweep traces ``voltage`` ``(n_sweeps, T)`` and ``time`` ``(T,)``.

    One APD/DI analysis over all traces together (so traces with fewer APs are padded as in
    the Web Lab); then the first DI and the second APD of each sweep, kept where
    ``DI > min_di`` (strict), and the slope of APD against DI.
    """
    v = np.asarray(voltage, dtype=float)
    t = np.broadcast_to(np.asarray(time, dtype=float), v.shape)
    s2 = np.asarray(s2_intervals, dtype=float)
    if v.ndim != 2 or s2.shape != (v.shape[0],):
        raise ValueError(f"need voltage (n_sweeps, T) and one S2 interval per sweep; got {v.shape}, {s2.shape}")
    raw_apd, raw_di = apd_and_di(v, t, percent)
    first_di = raw_di[:, 0]
    apd90 = after(raw_apd[:, 1], first_di, min_di)
    di = after(first_di, first_di, min_di)
    slope = restitution_slope(apd90, di)
    return S1S2Curve(
        raw_APD90=raw_apd,
        raw_DI=raw_di,
        PCLs=after(s2, first_di, min_di),
        APD90=apd90,
        DI=di,
        S1S2_slope=slope,
        max_S1S2_slope=max_slope(slope),
    )


# ---------------------------------------------------------------------------------------------
# simulations
# ---------------------------------------------------------------------------------------------
@dataclass
class RestitutionBeat:
    """SteadyStateRunnerForRestitution's outputs (§2.2 f) for one pacing period."""

    pacing_period: float
    num_paces: int
    found_steady_state: bool
    norm_of_differences: np.ndarray  # (runs,) one per pair of paces
    pace_final_state_variables: np.ndarray  # (n_states, runs), model units
    steady_state_variables: np.ndarray  # (n_states,)
    time: np.ndarray  # (20P+1,) ms, 0 ... 2P
    voltage: np.ndarray  # (20P+1,) mV
    APD: np.ndarray  # (A,) ms, normally A = 2
    DI: float  # start of AP 2 minus end of AP 1, ms


def pace_for_restitution(
    cell: PacedSimulation,
    pacing_period: float,
    *,
    max_paces: int = 10000,
    norm_threshold: float = 1e-6,
    apd_percentage: float = 90,
    progress: Callable[[int, float], object] | None = None,
) -> RestitutionBeat:
    """SteadyStateRunnerForRestitution (§2.2): pace in pairs to steady state, then record two beats.

    Pacing checks the L1 state change over each pair of paces (at most ``ceil(max_paces/2)``
    pairs). Then time is relabelled to 0, without a reset, and ``0:0.1:2P`` ms is recorded:
    stimuli at 0 and P, the first one only ``P - 10`` ms after the last paced one (kept on
    purpose). APDs and the DI come from the §1.10 algorithm (window 50 samples = 5 ms).
    """
    steady = cell.pace_to_steady_state(
        pacing_period,
        max_paces=int(max_paces),
        norm_threshold=norm_threshold,
        num_inner_paces=2,
        progress=progress,
    )
    trace = cell.record(2 * pacing_period, start=0.0, step=0.1)
    time = trace["time"].to_numpy()
    voltage = trace["membrane_voltage"].to_numpy()
    apds, dis = apd_and_di(voltage, time, apd_percentage)
    return RestitutionBeat(
        pacing_period=float(pacing_period),
        num_paces=steady.num_paces,
        found_steady_state=steady.found,
        norm_of_differences=steady.norms,
        pace_final_state_variables=steady.final_states.T,
        steady_state_variables=steady.state,
        time=time,
        voltage=voltage,
        APD=apds,
        DI=float(dis[0]),
    )


def steady_state_restitution(
    cell: PacedSimulation,
    pacing_intervals: Sequence[float] = STEADY_STATE_PACING_INTERVALS,
    *,
    max_steady_state_beats: int = 10000,
    norm_threshold: float = 1e-6,
    apd_percentage: float = 90,
    on_interval: Callable[[RestitutionBeat], object] | None = None,
    stop_at_solver_failure: bool = True,
) -> list[RestitutionBeat]:
    """SteadyStateRestitution's simulations (§2.3 d): :func:`pace_for_restitution` at each interval in turn.

    There is no reset between intervals: each starts from the state the previous one left.
    ``on_interval`` is called with each result as it comes (for progress reports). Where the
    solver fails, the intervals completed before it are returned with a ``RuntimeWarning`` that
    names the failure (``stop_at_solver_failure=False``, or a failure at the first interval,
    raises ``myokit.SimulationError`` instead).
    """
    beats: list[RestitutionBeat] = []
    for period in pacing_intervals:
        try:
            beat = pace_for_restitution(
                cell,
                float(period),
                max_paces=max_steady_state_beats,
                norm_threshold=norm_threshold,
                apd_percentage=apd_percentage,
            )
        except myokit.SimulationError as err:
            if not (stop_at_solver_failure and beats):
                raise
            reason = failure_reason(err)
            warnings.warn(f"{cell.model.name}: the solver failed at the cycle length of {float(period):g} ms "
                          f"({reason}); keeping the {len(beats)} cycle lengths completed before it",
                          RuntimeWarning, stacklevel=2)
            break
        beats.append(beat)
        if on_interval is not None:
            on_interval(beat)
    return beats


def stack_apds(beats: Sequence[RestitutionBeat]) -> np.ndarray:
    """The APDs of every interval as an ``(n_intervals, A)`` array.

    The Web Lab stacks the nested protocol's ``APD`` outputs, which only works when every
    interval found the same number of APs; otherwise this fails too, naming the intervals.
    """
    counts = {b.pacing_period: b.APD.size for b in beats}
    if len(set(counts.values())) > 1:
        raise ValueError(
            "the recorded pair of beats gave different numbers of action potentials at different "
            f"cycle lengths ({counts}), so the APDs cannot be stacked into one array"
        )
    return np.vstack([b.APD for b in beats])


def prepare_s1s2_stimulus(model: CellModel, s1_interval: float = 1000.0) -> None:
    """Replace ``model``'s stimulus by S1S2's train (§1.6 with the end term, §2.4 c).

    Offset 10 ms, period ``s1_interval``, end 1e11 ms; amplitude and duration are the model's.
    """
    model.replace_stimulus(period=s1_interval, offset=S1S2_OFFSET, end=NO_END)


def s1_steady_state(cell: PacedSimulation, s1_interval: float = 1000.0, steady_state_beats: int = 1000) -> np.ndarray:
    """S1S2's pre-run (§2.4 d1): from t = 0, one integration over ``steady_state_beats`` S1 periods.

    Stimuli fall at 10, 10 + S1, ... ms. There is no convergence test. Returns the final state.
    """
    cell.set_parameter(STIM_PERIOD, s1_interval)
    cell.set_parameter(STIM_OFFSET, S1S2_OFFSET)
    cell.set_time(0.0)
    cell.run(s1_interval * steady_state_beats)
    return cell.state()


def s1s2_sweeps(
    cell: PacedSimulation,
    initial_state: Sequence[float],
    s2_intervals: Sequence[float] = S2_INTERVALS,
    timecourse_duration: float = 3000.0,
) -> tuple[np.ndarray, np.ndarray]:
    """S1S2's sweeps (§2.4 d2): for each S2, restore ``initial_state`` and record ``0:1:duration`` ms.

    Each sweep sets the period to S2 and the stimulus end to 1.5 x S2, so an S1 pulse falls at
    10 ms and one S2 pulse at 10 + S2 ms (none when S2 <= 20 ms; the third is cut off).
    Returns ``time`` ``(T,)`` and ``membrane_voltage`` ``(n_sweeps, T)``.
    """
    times = uniform_times(0.0, timecourse_duration, 1.0)
    voltage = np.empty((len(s2_intervals), times.size))
    for i, s2 in enumerate(s2_intervals):
        cell.set_state(initial_state)
        cell.set_parameter(STIM_PERIOD, float(s2))
        cell.set_parameter(STIM_END, 1.5 * float(s2))
        trace = cell.record_times(times)
        voltage[i] = trace["membrane_voltage"].to_numpy()
    return times, voltage
