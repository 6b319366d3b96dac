"""The solver's error-test limit: 15, as the Web Lab's, where Myokit keeps SUNDIALS' 7.

Mahajan 2008 with IK1 fully blocked, paced at 1 Hz from its initial state, reaches a beat whose
upstroke needs more than 7 error-test failures in one step (pace 467). Both solvers are started
from the state our solver reached at pace 460: Myokit's default abandons a pace before pace 470,
ours completes every pace. Where the default succeeds, the two must agree bit for bit.
"""
from __future__ import annotations

from pathlib import Path

import myokit
import numpy as np
import pytest

from labkit import sim
from labkit.sim import scans, solver
from labkit.sim.simulation import ABS_TOL, MAX_STEP_MS, REL_TOL

WEBDATA_MODELS = Path(__file__).resolve().parents[3] / "shared" / "webdata" / "models"


def _paced(model: sim.CellModel, simulation_class: type[myokit.Simulation]) -> myokit.Simulation:
    s = simulation_class(model.myokit_model)
    s.set_tolerance(abs_tol=ABS_TOL, rel_tol=REL_TOL)
    s.set_max_step_size(MAX_STEP_MS)
    return s


def _pace(s: myokit.Simulation, beats: int) -> None:
    """Beats at 1 Hz, each from 10 ms before its stimulus, as PacedSimulation.single_pace does."""
    for _ in range(beats):
        s.set_time(-10.0)
        s.run(1000.0, log=myokit.LOG_NONE)


@pytest.fixture(scope="module")
def ik1_blocked_mahajan() -> sim.CellModel:
    model = sim.load_model(WEBDATA_MODELS / "mahajan_shiferaw_2008.cellml")
    term = scans.block_spec("IK1").term
    scans.make_input(model, term)
    model.set_parameter(term, 0.0)
    model.replace_stimulus(period=1000.0)
    assert model.time_factor == 1.0  # the step cap and pace length above are in model time
    return model


def test_a_step_that_needs_more_than_seven_error_test_failures_completes(ik1_blocked_mahajan: sim.CellModel) -> None:
    ours = _paced(ik1_blocked_mahajan, solver.Simulation)
    _pace(ours, 460)
    state_460 = ours.state()

    default = _paced(ik1_blocked_mahajan, myokit.Simulation)
    default.set_state(state_460)
    with pytest.raises(myokit.SimulationError) as failure:
        _pace(default, 10)
    reason = failure.value.__cause__ or failure.value.__context__
    assert "CV_ERR_FAILURE" in str(reason) and "Error test failures" in str(reason)

    ours.set_state(state_460)
    _pace(ours, 10)
    assert np.all(np.isfinite(ours.state()))


def test_where_the_default_succeeds_both_solvers_agree_exactly() -> None:
    model = sim.load_model(WEBDATA_MODELS / "beeler_reuter_model_1977.cellml")
    model.replace_stimulus(period=1000.0)
    ours, default = _paced(model, solver.Simulation), _paced(model, myokit.Simulation)
    _pace(ours, 5)
    _pace(default, 5)
    assert ours.state() == default.state()


def test_a_myokit_template_without_the_anchor_line_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    (tmp_path / "cvodessim.c").write_text("/* a template of another Myokit */\n")
    monkeypatch.setattr(myokit, "DIR_CFUNC", str(tmp_path))
    solver.web_lab_template.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="needs updating"):
            solver.web_lab_template()
    finally:
        solver.web_lab_template.cache_clear()


def test_failure_reason_names_the_solver_flag_not_myokits_opening_line() -> None:
    model = myokit.parse_model(
        "[[model]]\nc.v = -80\n[engine]\ntime = 0 [ms] bind time\npace = 0 bind pace\n"
        "[c]\ndot(v) = -(v + 80) / 10 + 100 * engine.pace\n")
    simulation = solver.Simulation(model, myokit.pacing.blocktrain(1000, 2))
    simulation.set_state([float("nan")])
    with pytest.raises(myokit.SimulationError) as failure:
        simulation.run(100)
    assert str(failure.value).startswith("A numerical error occurred")
    reason = solver.failure_reason(failure.value)
    assert reason.startswith("Function CVode() failed with flag")


def test_failure_reason_falls_back_to_the_first_line_or_the_error_type() -> None:
    assert solver.failure_reason(RuntimeError("\n  first line \nsecond line\n")) == "first line"
    assert solver.failure_reason(myokit.SimulationError("")) == "SimulationError"
    assert solver.failure_reason("") == "no message"


def test_failure_reason_is_not_fooled_by_a_state_named_flag() -> None:
    text = ("A numerical error occurred during simulation at t = 4.3.\nLast reached state:\n"
            "  membrane.flag = 1.0\n  membrane.V = 49.6\nMaximum number of zero-length steps taken.")
    assert solver.failure_reason(text) == "Maximum number of zero-length steps taken."
