"""Steady-state scans over a parameter: the Web Lab's block and K_o protocols (spec §2.11, §2.12).

Each level of a scan is a complete, independent SteadyStateRunner (§2.1): reset the states to
the model's initial values, set the parameter, pace to steady state, record the next beat.
One compiled simulation serves every level; only a constant changes between levels, so the
cost of a scan is the pacing itself (levels x paces x cost of one beat).

The post-processing is the protocols' own: the first-AP APD90 of each trace (the APD
algorithm applied to all traces at once, §1.10), then APD90 and resting potential relative
to a control level (``100*x/control`` and ``-100*x/control``).
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import myokit
import numpy as np

from labkit.sim.analysis import apd, resting_potential
from labkit.sim.model import CellModel, MissingTermError
from labkit.sim.simulation import PacedSimulation

#: The oxmeta term of extracellular potassium (ExtracellularPotassiumVariation).
POTASSIUM = "extracellular_potassium_concentration"

#: The K_o test concentrations (mM) to which the model's own default is added (§2.12).
POTASSIUM_TEST_CONCENTRATIONS = tuple(float(k) for k in range(2, 11))

#: The SteadyStateRunner detail window the nested runs record (ms). The Web Lab keeps 1000 ms
#: even when a nesting protocol changes pacing_period (§6.1), so it is a separate setting.
DETAIL_DURATION = 1000.0


@dataclass(frozen=True)
class BlockSpec:
    """One of the Web Lab's drug-block protocols (§2.11)."""

    name: str
    term: str  #: oxmeta term of the maximal conductance (or flux) that is scaled
    level_indices: tuple[int, ...]  #: block levels are ``i*0.1`` for these ``i``
    max_paces: int  #: the protocol's default cap on paces per level
    resting_potential: bool  #: whether the protocol also reports (scaled) resting potentials
    label: str = ""

    @property
    def block_levels(self) -> list[float]:
        """The remaining fractions of the conductance, control (1.0) last."""
        return block_levels(self.level_indices)


_ELEVEN = tuple(range(11))

#: The eight block protocols by current name, as the notebook's ``current`` parameter names them.
BLOCKS: dict[str, BlockSpec] = {
    spec.name: spec
    for spec in (
        BlockSpec("ICaL", "membrane_L_type_calcium_current_conductance", _ELEVEN, 10000, False,
                  "L-type calcium current"),
        BlockSpec("INa", "membrane_fast_sodium_current_conductance", _ELEVEN, 10000, False,
                  "fast sodium current"),
        BlockSpec("IKr", "membrane_rapid_delayed_rectifier_potassium_current_conductance", _ELEVEN,
                  10000, False, "rapid delayed rectifier potassium current"),
        BlockSpec("IKs", "membrane_slow_delayed_rectifier_potassium_current_conductance", _ELEVEN,
                  10000, False, "slow delayed rectifier potassium current"),
        BlockSpec("IK1", "membrane_inward_rectifier_potassium_current_conductance", _ELEVEN, 1000,
                  True, "inward rectifier potassium current"),
        BlockSpec("Ito", "membrane_transient_outward_current_conductance", _ELEVEN, 1000, True,
                  "transient outward current"),
        BlockSpec("NCX", "membrane_sodium_calcium_exchanger_current_conductance", _ELEVEN, 1000, True,
                  "sodium-calcium exchanger current"),
        BlockSpec("RyR", "SR_release_current_max", tuple(range(0, 11, 2)), 10000, False,
                  "SR calcium release (ryanodine receptor) flux"),
    )
}


def block_spec(current: str) -> BlockSpec:
    """The block protocol for ``current`` (``"IKr"``, ...); a clear ``ValueError`` for unknown names."""
    try:
        return BLOCKS[current]
    except KeyError:
        raise ValueError(f"unknown current {current!r}: choose one of {', '.join(BLOCKS)}") from None


def block_levels(indices: Iterable[int], step: float = 0.1) -> list[float]:
    """``[i*step for i in indices]``, the protocols' comprehension (so 3*0.1 = 0.30000000000000004)."""
    return [i * step for i in indices]


def degree_of_block(levels: Sequence[float]) -> np.ndarray:
    """Percentage of the conductance blocked: ``100*(1-f)`` for each remaining fraction ``f``."""
    return np.array([100 * (1 - f) for f in levels], dtype=float)


# ---------------------------------------------------------------------- making inputs settable
def make_input(model: CellModel, term: str) -> float:
    """Turn ``term`` into a settable literal (the protocol verb ``input``) and return its value.

    A computed constant is frozen at its current value; a state or a time-dependent variable
    cannot be an input and raises ``ValueError``. A missing term raises
    :class:`~labkit.sim.MissingTermError`. The value is in **model units** (block protocols
    scale it by a unitless factor, so no conversion is involved).
    """
    model.require(term)
    var = model.var(term)
    if var.is_state():
        raise ValueError(f"{term} ({var.qname()}) is a state variable of {model.name}; it cannot be scaled as a parameter")
    if not var.is_constant():
        raise ValueError(
            f"{term} ({var.qname()}) of {model.name} changes with time (it depends on states), "
            "so it cannot be set as a protocol input"
        )
    value = float(var.eval())
    if not var.is_literal():
        var.set_rhs(myokit.Number(value, var.unit()))
    return value


def set_raw_parameter(cell: PacedSimulation, term: str, value: float) -> None:
    """Set the literal ``term`` of a compiled simulation to ``value`` in **model units**.

    The compiled simulation is changed (no recompilation) and so is its model snapshot, so
    :meth:`PacedSimulation.evaluate` stays consistent.
    """
    var = cell.model.var(term)
    if not var.is_literal():
        raise ValueError(f"{term} ({var.qname()}) is not a literal constant of {cell.model.name}; call make_input first")
    cell.myokit_simulation.set_constant(var.qname(), float(value))
    var.set_rhs(myokit.Number(float(value), var.unit()))


# ---------------------------------------------------------------------- the scan
@dataclass
class ScanResult:
    """Everything a steady-state scan produced, one entry (or row) per level, in the order run."""

    values: np.ndarray  #: the parameter value set at each level
    num_paces: np.ndarray  #: paces given at each level (SteadyStateRunner's num_paces)
    found: np.ndarray  #: whether each level settled before max_paces (strict <)
    time: np.ndarray  #: (T,) detail sample times, ms (stimulus at 0)
    voltage: np.ndarray  #: (n_levels, T) the recorded beat of each level, mV
    seconds: np.ndarray = field(default_factory=lambda: np.zeros(0))  #: wall time of each level

    @property
    def detailed_time(self) -> np.ndarray:
        """The time axis repeated per level, (n_levels, T), as the Web Lab's ``detailed_time``."""
        return np.broadcast_to(self.time, self.voltage.shape).copy()


def steady_state_scan(
    cell: PacedSimulation,
    set_value: Callable[[float], object],
    values: Sequence[float],
    *,
    pacing_period: float = 1000.0,
    max_paces: int = 10000,
    norm_threshold: float = 1e-6,
    num_inner_paces: int = 1,
    detail_duration: float = DETAIL_DURATION,
    reset: bool = True,
    progress: Callable[[int, float, int, bool, float], object] | None = None,
) -> ScanResult:
    """Run a complete SteadyStateRunner at each of ``values`` on one compiled simulation.

    For each value, in order: reset the states to the initial values (unless ``reset`` is
    false), call ``set_value(value)``, pace to steady state (§1.7) and record the following
    ``detail_duration`` ms at 1 ms from t = -10 ms (§2.1 d3). ``progress(index, value,
    num_paces, found, seconds)`` is called after each level.
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("a scan needs at least one level")
    num_paces, found, seconds, traces = [], [], [], []
    time_axis: np.ndarray | None = None
    for index, value in enumerate(values):
        started = _time.perf_counter()
        if reset:
            cell.reset()
        set_value(value)
        steady = cell.pace_to_steady_state(
            pacing_period, max_paces=max_paces, norm_threshold=norm_threshold, num_inner_paces=num_inner_paces
        )
        beat = cell.record(detail_duration)
        time_axis = beat["time"].to_numpy()
        traces.append(beat["membrane_voltage"].to_numpy())
        num_paces.append(steady.num_paces)
        found.append(steady.found)
        seconds.append(_time.perf_counter() - started)
        if progress is not None:
            progress(index, value, steady.num_paces, steady.found, seconds[-1])
    assert time_axis is not None
    return ScanResult(
        values=np.array(values),
        num_paces=np.array(num_paces, dtype=int),
        found=np.array(found, dtype=bool),
        time=time_axis,
        voltage=np.vstack(traces),
        seconds=np.array(seconds),
    )


def print_progress(index: int, value: float, num_paces: int, found: bool, seconds: float) -> None:
    """A ``progress`` callback for notebooks: one line per level."""
    state = "steady" if found else "not steady"
    print(f"level {index}: value {value:.6g}, {num_paces} paces ({state}), {seconds:.1f} s", flush=True)


# ---------------------------------------------------------------------- post-processing
def first_apd90(voltage: np.ndarray, time: np.ndarray, percent: float = 90) -> np.ndarray:
    """APD of the first AP of each trace, with the APD algorithm run on all traces together.

    ``voltage`` is (n_levels, T); ``time`` is (T,) or (n_levels, T). Running the traces
    together is what the protocols do (``Apd(detailed_voltage, detailed_time)[1$0]``): a trace
    with fewer APs than another is padded as in §1.10, and a trace with no upstroke fails.
    """
    v = np.asarray(voltage, dtype=float)
    t = np.broadcast_to(np.asarray(time, dtype=float), v.shape)
    return np.asarray(apd(v, t, percent=percent))[..., 0]


def resting_potentials(voltage: np.ndarray) -> np.ndarray:
    """Minimum voltage of each trace: the protocols' ``RestingPotential``."""
    return np.atleast_1d(resting_potential(voltage))


def scaled_to_control(values: Sequence[float], control_index: int) -> np.ndarray:
    """``100*x/control`` for each x: APD90 relative to the control level, in %."""
    x = np.asarray(values, dtype=float)
    control = x[control_index]
    return np.array([100 * v / control for v in x])


def scaled_resting_potential(values: Sequence[float], control_index: int) -> np.ndarray:
    """``-100*x/control`` for each x: resting potential relative to control (about -100 %, §2.11e)."""
    x = np.asarray(values, dtype=float)
    control = x[control_index]
    return np.array([-100 * v / control for v in x])


def potassium_test_concentrations(
    default: float, tests: Iterable[float] = POTASSIUM_TEST_CONCENTRATIONS
) -> np.ndarray:
    """``sort([default] + tests)``: the K_o levels of §2.12.

    A default equal to one of the tests appears twice (§6.12), so there are always
    ``len(tests) + 1`` levels.
    """
    return np.sort(np.array([float(default), *(float(k) for k in tests)]), kind="stable")


def control_index(levels: Sequence[float], control: float) -> int:
    """The first index where ``levels`` equals ``control`` exactly (the K_o control level)."""
    matches = np.flatnonzero(np.asarray(levels, dtype=float) == float(control))
    if matches.size == 0:
        raise ValueError(f"the control value {control!r} is not among the levels {list(levels)}")
    return int(matches[0])


__all__ = [
    "BLOCKS",
    "DETAIL_DURATION",
    "POTASSIUM",
    "POTASSIUM_TEST_CONCENTRATIONS",
    "BlockSpec",
    "MissingTermError",
    "ScanResult",
    "block_levels",
    "block_spec",
    "control_index",
    "degree_of_block",
    "first_apd90",
    "make_input",
    "potassium_test_concentrations",
    "print_progress",
    "resting_potentials",
    "scaled_resting_potential",
    "scaled_to_control",
    "set_raw_parameter",
    "steady_state_scan",
]
