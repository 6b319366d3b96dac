"""Action-potential measurements exactly as the Web Lab's CardiacLibrary defines them (spec §1.10).

Reference results depend on the quirks of that definition (resting level = global
minimum, upstroke = left end of the steepest interval, padding with fake upstrokes,
extended arrays for interpolation), so they are reproduced deliberately rather than
replaced by a "better" APD.

Inputs are voltage and time arrays of identical shape ``(..., T)``: time runs along the
last axis and every leading index is a separate trace. Results have shape ``(..., A)``
with ``A`` the largest number of APs found in any trace (``(A,)`` for a 1-d input).
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike


def _traces(voltage: ArrayLike, time: ArrayLike) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Both inputs as 2-d (traces x samples) float arrays, plus the leading shape."""
    v = np.asarray(voltage, dtype=float)
    t = np.asarray(time, dtype=float)
    if v.shape != t.shape:
        raise ValueError(f"voltage and time must have the same shape, got {v.shape} and {t.shape}")
    if v.ndim == 0 or v.shape[-1] < 2:
        raise ValueError("need at least two samples along the time axis to measure an APD")
    lead = v.shape[:-1]
    return v.reshape(-1, v.shape[-1]), t.reshape(-1, t.shape[-1]), lead


def _local_max(a: np.ndarray, half_width: int) -> np.ndarray:
    """Running maximum over +-half_width samples along the last axis, edges clamped (Localise(Max))."""
    padded = np.pad(a, ((0, 0), (half_width, half_width)), mode="edge")
    return sliding_window_view(padded, 2 * half_width + 1, axis=1).max(axis=2)


class NoActionPotentialWarning(UserWarning):
    """An APD or DI is NaN because its trace holds no measurable action potential.

    The Web Lab's ``ApStartAndEnd`` fails the whole computation in these cases (every trace of a
    scan then loses its APD); labkit measures what it can and leaves the rest to the notebook.
    """


class NoActionPotentialError(RuntimeError):
    """A protocol needed an action potential that the model did not produce at that point (the stimulus
    did not capture, or the cell is in 2:1 block): the model's own behaviour, not a fault in labkit.
    Notebooks raise it after saving every output they could compute, so the run ends ``partial``."""


class _Unmeasurable(Exception):
    """Internal: this action potential cannot be measured (the reason is the message)."""


def _crossing(x: np.ndarray, y: np.ndarray, level: float, t_peak: float, after: bool) -> float:
    """Interpolated time where ``y`` reaches ``level`` searching backwards/forwards from ``t_peak``.

    ``x`` and ``y`` are the extended arrays (one padding point at each end with y = level);
    this mirrors BasicLibrary's ``Interp`` including its exact-match lookup of the start.
    """
    at_peak = np.flatnonzero(x == t_peak)
    if at_peak.size != 1:
        raise _Unmeasurable(f"its voltage peak at t={t_peak} lies on the first or last sample of the trace "
                            "(record a longer window around the action potential)")
    rising = y[at_peak[0]] < level
    on_side = y >= level if rising else y <= level
    with np.errstate(divide="ignore", invalid="ignore"):
        if after:
            j = np.flatnonzero(on_side & (x >= t_peak))[0]
            if j == 0:
                return float(x[0] + (level - y[0]) * 0.0)
            return float(x[j - 1] + (level - y[j - 1]) * ((x[j] - x[j - 1]) / (y[j] - y[j - 1])))
        j = np.flatnonzero(on_side & (x <= t_peak))[-1]
        if j == x.size - 1:
            return float(x[j] + (level - y[j]) * 0.0)
        return float(x[j] + (level - y[j]) * ((x[j + 1] - x[j]) / (y[j + 1] - y[j])))


def _warn(message: str) -> None:
    warnings.warn(message, NoActionPotentialWarning, stacklevel=3)


def _where(i: int, n_traces: int) -> str:
    return f"trace {i}" if n_traces > 1 else "the trace"


def ap_start_and_end(
    voltage: ArrayLike,
    time: ArrayLike,
    percent: float = 90,
    dvdt_threshold: float = 10.0,
    window: int = 50,
    *,
    min_aps: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Start and end times of every AP (CardiacLibrary ``ApStartAndEnd``): the basis of APD and DI.

    Where every trace has an action potential the result is the Web Lab's, padding included. Where
    the Web Lab's computation would fail (dV/dt never above or never below the threshold, a trace
    without an upstroke, an upstroke with no peak after it, a peak on the first or last sample) the
    affected entries are NaN and a :class:`NoActionPotentialWarning` says why: a model that stops
    firing at one scan level keeps the APDs of the others, and the notebook decides what is fatal.
    At least ``min_aps`` columns are returned (NaN where no such AP exists). Bad arguments raise
    ``ValueError``.
    """
    if not 0 <= percent <= 100:
        raise ValueError(f"percent must be between 0 and 100, got {percent}")
    v, t, lead = _traces(voltage, time)
    with np.errstate(divide="ignore", invalid="ignore"):
        dvdt = np.diff(v, axis=1) / np.diff(t, axis=1)
    upstrokes: list[np.ndarray] = [np.array([], dtype=int)] * v.shape[0]
    if not np.nanmin(dvdt, initial=np.inf) < dvdt_threshold:
        _warn(f"no action potential: dV/dt is never below the upstroke threshold {dvdt_threshold}, so there is "
              "no resting phase; APDs are NaN")
    elif not np.nanmax(dvdt, initial=-np.inf) > dvdt_threshold:
        _warn(f"no action potential: dV/dt never exceeds the upstroke threshold {dvdt_threshold} (largest "
              f"{np.nanmax(dvdt, initial=-np.inf):.4g}); APDs are NaN. Did the stimulus fire, and are voltage "
              "in mV and time in ms?")
    else:
        with np.errstate(invalid="ignore"):
            is_upstroke = (dvdt == _local_max(dvdt, int(window))) & (dvdt > dvdt_threshold)
        broken = ~(np.isfinite(v).all(axis=1) & np.isfinite(t).all(axis=1))
        if broken.any():
            _warn(f"{', '.join(_where(i, v.shape[0]) for i in np.flatnonzero(broken))} holds NaN or infinite "
                  "samples; its APDs are NaN")
        upstrokes = [np.array([], dtype=int) if broken[i] else np.flatnonzero(row) for i, row in enumerate(is_upstroke)]
        silent = [i for i, ups in enumerate(upstrokes) if ups.size == 0 and not broken[i]]
        if silent:
            _warn(f"no action potential in {', '.join(_where(i, v.shape[0]) for i in silent)}: dV/dt never "
                  f"exceeds {dvdt_threshold} there; its APDs are NaN")
    n_aps = max([min_aps] + [ups.size for ups in upstrokes])
    starts = np.full((v.shape[0], n_aps), np.nan)
    ends = np.full((v.shape[0], n_aps), np.nan)
    firing = [i for i, ups in enumerate(upstrokes) if ups.size]
    if not firing:
        return starts.reshape(lead + (n_aps,)), ends.reshape(lead + (n_aps,))
    # Traces with fewer APs are padded with the first upstroke time of the first trace (the Web Lab's
    # trace 0, whenever its computation succeeds); columns beyond every trace's count stay NaN.
    n_real = max(upstrokes[i].size for i in firing)
    if n_real < min_aps:
        _warn(f"only {n_real} action potential(s) found where {min_aps} are needed; the rest are NaN")
    t_up = np.full((v.shape[0], n_real), t[firing[0], upstrokes[firing[0]][0]])
    for i in firing:
        t_up[i, : upstrokes[i].size] = t[i, upstrokes[i]]

    is_local_peak = v == _local_max(v, 1)
    v_rest = v.min(axis=1)
    for i in firing:
        for a in range(n_real):
            try:
                after_up = np.flatnonzero(is_local_peak[i] & (t[i] > t_up[i, a]))
                if after_up.size == 0:
                    raise _Unmeasurable(f"no voltage peak follows its upstroke at t={t_up[i, a]}")
                p = after_up[0]
                level = v_rest[i] + (1 - percent / 100) * (v[i, p] - v_rest[i])
                x = np.concatenate(([t[i, 0]], t[i], [t[i, -1]]))
                y = np.concatenate(([level], v[i], [level]))
                starts[i, a] = _crossing(x, y, level, t[i, p], after=False)
                ends[i, a] = _crossing(x, y, level, t[i, p], after=True)
            except _Unmeasurable as why:
                _warn(f"action potential {a} of {_where(i, v.shape[0])} cannot be measured: {why}; its APD is NaN")
    return starts.reshape(lead + (n_aps,)), ends.reshape(lead + (n_aps,))


def apd(
    voltage: ArrayLike,
    time: ArrayLike,
    percent: float = 90,
    dvdt_threshold: float = 10.0,
    window: int = 50,
) -> np.ndarray:
    """Action potential durations at ``percent`` % repolarisation (CardiacLibrary ``Apd``).

    NaN, with a :class:`NoActionPotentialWarning`, where there is no action potential to measure.
    """
    starts, ends = ap_start_and_end(voltage, time, percent, dvdt_threshold, window)
    return ends - starts


def apd_and_di(
    voltage: ArrayLike,
    time: ArrayLike,
    percent: float = 90,
    dvdt_threshold: float = 10.0,
    window: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """APDs and diastolic intervals (CardiacLibrary ``ApdAndDi``).

    ``DI[a]`` is the start of AP ``a+1`` minus the end of AP ``a``; shape ``(..., A-1)`` with
    ``A >= 2``: where no trace has a second action potential the second APD and the DI are NaN
    (the Web Lab's computation fails there).
    """
    starts, ends = ap_start_and_end(voltage, time, percent, dvdt_threshold, window, min_aps=2)
    apds = ends - starts
    return apds, np.diff(starts, axis=-1) - apds[..., :-1]


def why_no_action_potential(voltage: ArrayLike, time: ArrayLike, stimulus_at: float = 0.0) -> str:
    """Why a recorded beat (1-d, stimulus at ``stimulus_at`` ms) has no action potential, for an error
    message: a stimulus that pulls the voltage down means the model annotates its stimulus amplitude
    with the sign of an outward current, which the Web Lab's protocols use unchanged (spec §1.6)."""
    v = np.asarray(voltage, dtype=float)
    t = np.asarray(time, dtype=float)
    during = np.flatnonzero((t >= stimulus_at) & (t <= stimulus_at + 1.0))
    if during.size < 2:
        return "no action potential in the recorded beat"
    change = v[during[-1]] - v[during[0]]
    if change < -1.0:
        return (f"the stimulus pulled the voltage down ({v[during[0]]:.1f} to {v[during[-1]]:.1f} mV in its first "
                "ms): the model's annotated stimulus amplitude has the sign of an outward current, and the "
                "Web Lab's protocols apply it unchanged")
    if abs(change) <= 1.0:
        return "the voltage hardly moved during the stimulus: no capture, or the cell is refractory (2:1 block)"
    return "the stimulus depolarised the cell but did not trigger an upstroke: no capture at this rate"


def peak(values: ArrayLike) -> np.ndarray | float:
    """Maximum along the time (last) axis, e.g. peak voltage or peak calcium."""
    out = np.max(np.asarray(values, dtype=float), axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def resting_potential(voltage: ArrayLike) -> np.ndarray | float:
    """Minimum voltage along the time axis: the block protocols' ``RestingPotential`` (and APD baseline)."""
    out = np.min(np.asarray(voltage, dtype=float), axis=-1)
    return float(out) if np.ndim(out) == 0 else out
