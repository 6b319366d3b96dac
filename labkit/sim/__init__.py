"""What protocol notebooks import: a cell model by oxmeta term, pacing, clamps, steady state, APDs.

A protocol reads like the experiment::

    from labkit import sim

    model = sim.load_model("ten_tusscher_model_2006_epi.cellml")
    model.replace_stimulus(period=1000)
    run = model.simulation()
    steady = run.pace_to_steady_state(1000, max_paces=1000)
    trace = run.record(1000)                      # -10 ... 990 ms, mV
    apd90 = sim.apd(trace["membrane_voltage"], trace["time"])

Times are in ms and outputs in protocol units (mV, mM, µA/cm²) whatever the model's units;
state vectors stay in model units. Compiled simulations are cached on disk (see
:mod:`labkit.sim.cache`).
"""

from labkit.sim.analysis import (
    NoActionPotentialError,
    NoActionPotentialWarning,
    ap_start_and_end,
    apd,
    apd_and_di,
    peak,
    resting_potential,
    why_no_action_potential,
)
from labkit.sim.cache import cache_dir, cached_simulation
from labkit.sim.model import CellModel, MissingTermError, load_model
from labkit.sim.simulation import PacedSimulation, SteadyState, uniform_times

__all__ = [
    "CellModel",
    "MissingTermError",
    "NoActionPotentialError",
    "NoActionPotentialWarning",
    "PacedSimulation",
    "SteadyState",
    "ap_start_and_end",
    "apd",
    "apd_and_di",
    "cache_dir",
    "cached_simulation",
    "load_model",
    "peak",
    "resting_potential",
    "uniform_times",
    "why_no_action_potential",
]
