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


def _crossing(x: np.ndarray, y: np.ndarray, level: float, t_peak: float, after: bool) -> float:
    """Interpolated time where ``y`` reaches ``level`` searching backwards/forwards from ``t_peak``.

    ``x`` and ``y`` are the extended arrays (one padding point at each end with y = level);
    this mirrors BasicLibrary's ``Interp`` including its exact-match lookup of the start.
    """
    at_peak = np.flatnonzero(x == t_peak)
    if at_peak.size != 1:
        raise ValueError(
            f"the AP peak at t={t_peak} lies on the first or last sample of the trace, so its "
            "APD cannot be measured; record a longer window around the action potential"
        )
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


def ap_start_and_end(
    voltage: ArrayLike,
    time: ArrayLike,
    percent: float = 90,
    dvdt_threshold: float = 10.0,
    window: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """Start and end times of every AP (CardiacLibrary ``ApStartAndEnd``): the basis of APD and DI.

    Raises ``ValueError`` when the Web Lab's computation would fail: dV/dt never above
    (or never below) the threshold, a trace without any upstroke, an upstroke with no
    peak after it, or a peak on the first or last sample.
    """
    if not 0 <= percent <= 100:
        raise ValueError(f"percent must be between 0 and 100, got {percent}")
    v, t, lead = _traces(voltage, time)
    with np.errstate(divide="ignore", invalid="ignore"):
        dvdt = np.diff(v, axis=1) / np.diff(t, axis=1)
    if not dvdt.min() < dvdt_threshold:
        raise ValueError(f"dV/dt is never below the upstroke threshold {dvdt_threshold}: no resting phase")
    if not dvdt.max() > dvdt_threshold:
        raise ValueError(
            f"no upstroke: dV/dt never exceeds {dvdt_threshold} (largest {dvdt.max():.4g}); "
            "check that the stimulus fires and that voltage is in mV and time in ms"
        )
    is_upstroke = (dvdt == _local_max(dvdt, int(window))) & (dvdt > dvdt_threshold)
    upstrokes = [np.flatnonzero(row) for row in is_upstroke]
    for i, ups in enumerate(upstrokes):
        if ups.size == 0:
            raise ValueError(f"trace {i} has no upstroke (dV/dt never exceeds {dvdt_threshold} there)")
    n_aps = max(ups.size for ups in upstrokes)
    # Traces with fewer APs are padded with the first upstroke time of trace 0, as in the Web Lab.
    t_up = np.full((v.shape[0], n_aps), t[0, upstrokes[0][0]])
    for i, ups in enumerate(upstrokes):
        t_up[i, : ups.size] = t[i, ups]

    is_local_peak = v == _local_max(v, 1)
    v_rest = v.min(axis=1)
    starts = np.empty_like(t_up)
    ends = np.empty_like(t_up)
    for i in range(v.shape[0]):
        for a in range(n_aps):
            after_up = np.flatnonzero(is_local_peak[i] & (t[i] > t_up[i, a]))
            if after_up.size == 0:
                raise ValueError(f"trace {i}: no voltage peak after the upstroke at t={t_up[i, a]}")
            p = after_up[0]
            level = v_rest[i] + (1 - percent / 100) * (v[i, p] - v_rest[i])
            x = np.concatenate(([t[i, 0]], t[i], [t[i, -1]]))
            y = np.concatenate(([level], v[i], [level]))
            starts[i, a] = _crossing(x, y, level, t[i, p], after=False)
            ends[i, a] = _crossing(x, y, level, t[i, p], after=True)
    return starts.reshape(lead + (n_aps,)), ends.reshape(lead + (n_aps,))


def apd(
    voltage: ArrayLike,
    time: ArrayLike,
    percent: float = 90,
    dvdt_threshold: float = 10.0,
    window: int = 50,
) -> np.ndarray:
    """Action potential durations at ``percent`` % repolarisation (CardiacLibrary ``Apd``)."""
    starts, ends = ap_start_and_end(voltage, time, percent, dvdt_threshold, window)
    return ends - starts


def apd_and_di(
    voltage: ArrayLike,
    time: ArrayLike,
    percent: float = 90,
    dvdt_threshold: float = 10.0,
    window: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """APDs and diastolic intervals (CardiacLibrary ``ApdAndDi``); needs at least two APs per trace.

    ``DI[a]`` is the start of AP ``a+1`` minus the end of AP ``a``; shape ``(..., A-1)``.
    """
    starts, ends = ap_start_and_end(voltage, time, percent, dvdt_threshold, window)
    if starts.shape[-1] < 2:
        raise ValueError("a diastolic interval needs at least two action potentials; only one was found")
    apds = ends - starts
    return apds, np.diff(starts, axis=-1) - apds[..., :-1]


def peak(values: ArrayLike) -> np.ndarray | float:
    """Maximum along the time (last) axis, e.g. peak voltage or peak calcium."""
    out = np.max(np.asarray(values, dtype=float), axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def resting_potential(voltage: ArrayLike) -> np.ndarray | float:
    """Minimum voltage along the time axis: the block protocols' ``RestingPotential`` (and APD baseline)."""
    out = np.min(np.asarray(voltage, dtype=float), axis=-1)
    return float(out) if np.ndim(out) == 0 else out
