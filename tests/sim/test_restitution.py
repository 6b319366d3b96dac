"""Restitution post-processing on hand-made numbers and traces, plus small real simulations (§2.2-2.4)."""

from __future__ import annotations

import math
from pathlib import Path

import myokit
import numpy as np
import pytest
from sim_testdata import ATOL, RTOL, load_reference_1d, model_path, webdata_path

from labkit import sim
from labkit.protocols.check import check_protocol
from labkit.sim import restitution as r

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks" / "protocols"

T = np.arange(0.0, 3001.0)  # the S1S2 sweep samples, 1 ms apart


def synthetic_trace(onsets: list[float], declines: list[float], t: np.ndarray = T) -> np.ndarray:
    """Rest -80 mV; each AP jumps -80 -> -20 -> +20 mV over 2 ms after its onset, then falls linearly.

    The steepest interval is [onset, onset+1] (60 mV/ms). With a 90 % level of -70 mV the
    AP starts at onset + 1/6 ms and ends at onset + 2 + 90/decline ms.
    """
    v = np.full(t.shape, -80.0)
    for onset, decline in zip(onsets, declines):
        ap = np.full(t.shape, -80.0)
        ap[t == onset + 1] = -20.0
        later = t >= onset + 2
        ap[later] = np.maximum(20.0 - decline * (t[later] - onset - 2), -80.0)
        v = np.maximum(v, ap)
    return v


def hand_apd90(decline: float) -> float:
    return 2 + 90 / decline - 1 / 6


# ------------------------------------------------------------------ pure post-processing
def test_after_keeps_strictly_greater_entries() -> None:
    index = np.array([5.0, 1.0, 0.5, 1.0000001, -3.0])
    assert r.after(np.arange(5.0), index, 1.0).tolist() == [0.0, 3.0]
    assert r.after(index, index, 1.0).tolist() == [5.0, 1.0000001]
    with pytest.raises(ValueError):
        r.after(np.arange(4.0), index, 1.0)


def test_restitution_slope_is_diff_over_diff_in_the_given_order() -> None:
    di = np.array([300.0, 200.0, 100.0, 50.0])
    apd = 200.0 + 0.1 * di + 0.001 * di**2
    slope = r.restitution_slope(apd, di)
    expected = [(apd[i + 1] - apd[i]) / (di[i + 1] - di[i]) for i in range(3)]
    assert slope == pytest.approx(expected)
    assert slope[0] == pytest.approx(0.1 + 0.001 * 500)  # the secant of a parabola
    assert r.max_slope(slope).shape == (1,)
    assert r.max_slope(slope)[0] == pytest.approx(max(expected))
    assert np.isnan(r.max_slope([])[0])


def test_steady_state_curve_filters_small_dis_and_keeps_two_apds() -> None:
    intervals = np.array([1000.0, 800.0, 600.0, 400.0, 300.0])
    apds = np.array([[300, 301, 999], [290, 292, 999], [270, 275, 999], [240, 250, 999], [230, 160, 999]], float)
    dis = np.array([700.0, 510.0, 330.0, 1.0, -30.0])  # DI = 1 is not > 1
    curve = r.steady_state_restitution_curve(apds, dis, intervals)
    assert curve.APD.shape == (2, 3)
    assert curve.APD.tolist() == [[300, 290, 270], [301, 292, 275]]
    assert curve.DI.tolist() == [700, 510, 330]
    assert curve.output_pacing_intervals.tolist() == [1000, 800, 600]
    assert curve.restitution_slope == pytest.approx([10 / 190, 20 / 180])  # of the FIRST APD
    assert curve.max_restitution_slope == pytest.approx([20 / 180])
    with pytest.raises(ValueError):
        r.steady_state_restitution_curve(apds[:, :1], dis, intervals)


def test_s1s2_curve_on_synthetic_sweeps() -> None:
    s2_intervals = [1200.0, 900.0, 600.0, 400.0, 1500.0]
    s2_declines = [0.50, 0.55, 0.60, 0.70]
    traces = [synthetic_trace([10.0, 10.0 + s2], [0.5, d]) for s2, d in zip(s2_intervals, s2_declines)]
    traces.append(synthetic_trace([10.0], [0.5]))  # no S2 response: padded with a fake AP, DI < 0
    curve = r.s1s2_curve(np.array(traces), T, s2_intervals)

    assert curve.raw_APD90.shape == (5, 2) and curve.raw_DI.shape == (5, 1)
    s1_apd = hand_apd90(0.5)
    assert curve.raw_APD90[:, 0] == pytest.approx([s1_apd] * 5)
    assert curve.raw_DI[-1, 0] == pytest.approx(-s1_apd)  # the fake AP copies AP 1
    expected_di = [s2 - s1_apd for s2 in s2_intervals[:4]]  # both start 1/6 ms after onset
    assert curve.DI == pytest.approx(expected_di)
    assert curve.APD90 == pytest.approx([hand_apd90(d) for d in s2_declines])
    assert curve.PCLs.tolist() == s2_intervals[:4]
    assert curve.S1S2_slope == pytest.approx(np.diff(curve.APD90) / np.diff(expected_di))
    assert curve.max_S1S2_slope.shape == (1,)


def test_s1s2_drops_sweeps_with_a_di_of_19_ms_or_less() -> None:
    s1_apd = hand_apd90(1.0)  # 91.83 ms; back at rest 102 ms after the onset
    s2_intervals = [1000.0, 105.0, 125.0]  # DIs 908.17, 13.17 and 33.17 ms
    traces = np.array([synthetic_trace([10.0, 10.0 + s2], [1.0, 1.2]) for s2 in s2_intervals])
    curve = r.s1s2_curve(traces, T, s2_intervals)
    expected_di = [s2 - s1_apd for s2 in s2_intervals]
    assert curve.raw_DI[:, 0] == pytest.approx(expected_di)
    assert curve.PCLs.tolist() == [1000.0, 125.0]
    assert curve.DI == pytest.approx([expected_di[0], expected_di[2]])
    assert curve.S1S2_slope.shape == (1,)


def test_s2_intervals_are_the_protocols() -> None:
    s2 = np.array(r.S2_INTERVALS)
    assert s2.size == 91 and s2[0] == 2000 and s2[-1] == 20
    assert np.all(np.diff(s2) < 0)
    assert set(np.diff(s2).tolist()) == {-50.0, -25.0, -20.0, -10.0}
    assert 1000 in s2 and 700 in s2 and 500 in s2 and 490 in s2 and 975 in s2 and 680 in s2
    assert len(r.STEADY_STATE_PACING_INTERVALS) == 15


@pytest.mark.parametrize(
    ("notebook", "reference_outputs", "defaults"),
    [
        ("steady_state_restitution.ipynb", {"APD", "restitution_slope"}, {"max_steady_state_beats": 10000}),
        ("s1s2.ipynb", {"APD90", "DI", "S1S2_slope"}, {"steady_state_beats": 1000, "s1_interval": 1000}),
    ],
)
def test_notebooks_pass_the_check_and_declare_the_reference_outputs(notebook, reference_outputs, defaults) -> None:
    interface = check_protocol((NOTEBOOKS / notebook).read_bytes())
    assert reference_outputs <= {o.name for o in interface.outputs}
    assert {k: interface.parameters[k] for k in defaults} == defaults
    if notebook == "s1s2.ipynb":
        assert tuple(float(x) for x in interface.parameters["s2_intervals"]) == r.S2_INTERVALS
    else:
        assert tuple(interface.parameters["pacing_intervals"]) == r.STEADY_STATE_PACING_INTERVALS


# ------------------------------------------------------------------ small real simulations
@pytest.fixture(scope="module")
def beeler_reuter() -> sim.CellModel:
    return sim.load_model(model_path("beeler_reuter_model_1977"))


def test_pace_for_restitution_records_two_beats_at_0_1_ms(beeler_reuter: sim.CellModel) -> None:
    model = beeler_reuter.clone()
    model.replace_stimulus(period=1000)
    cell = model.simulation()
    beat = r.pace_for_restitution(cell, 400.0, max_paces=3)  # ceil(3/2) = 2 pairs
    assert beat.num_paces == 4 and not beat.found_steady_state
    assert beat.norm_of_differences.shape == (2,)
    assert beat.pace_final_state_variables.shape == (len(cell.state_names), 2)
    assert beat.time.shape == (8001,) and beat.time[0] == 0 and beat.time[-1] == pytest.approx(800)
    assert cell.time == pytest.approx(800)
    assert beat.APD.shape == (2,)
    starts, ends = sim.ap_start_and_end(beat.voltage, beat.time)
    assert starts[0] < 1.0 and 400 < starts[1] < 401  # stimuli at 0 and P
    assert beat.DI == pytest.approx(starts[1] - ends[0])


def test_steady_state_restitution_does_not_reset_between_intervals(beeler_reuter: sim.CellModel) -> None:
    model = beeler_reuter.clone()
    model.replace_stimulus(period=1000)
    cell = model.simulation()
    seen = []
    beats = r.steady_state_restitution(cell, [600.0, 500.0], max_steady_state_beats=2, on_interval=seen.append)
    assert [b.pacing_period for b in beats] == [600.0, 500.0] and seen == beats
    # The second interval's first checked pair starts where the first interval's detail run ended.
    fresh = model.simulation()
    fresh.set_state(beats[0].pace_final_state_variables[:, -1])
    fresh.set_parameter("membrane_stimulus_current_period", 600.0)
    fresh.record(1200.0, start=0.0, step=0.1)  # the first interval's detail run, again
    assert fresh.single_pace(500.0, 2) == pytest.approx(beats[1].norm_of_differences[0], rel=1e-6)
    assert r.stack_apds(beats).shape == (2, 2)


def _spoil_the_state(cell: sim.PacedSimulation) -> None:
    """Make the next integration fail in the solver itself: a NaN membrane voltage."""
    state = cell.state()
    state[cell.state_names.index(cell.model.qname("membrane_voltage"))] = math.nan
    cell.set_state(state)


def test_a_solver_failure_keeps_the_cycle_lengths_completed_before_it(beeler_reuter: sim.CellModel) -> None:
    model = beeler_reuter.clone()
    model.replace_stimulus(period=1000)
    cell = model.simulation()
    with pytest.warns(RuntimeWarning, match=r"failed at the cycle length of 500 ms \(.*CV_.*\); keeping the 1 cycle"):
        beats = r.steady_state_restitution(cell, [600.0, 500.0, 400.0], max_steady_state_beats=2,
                                           on_interval=lambda beat: _spoil_the_state(cell))
    assert [b.pacing_period for b in beats] == [600.0]
    curve = r.steady_state_restitution_curve(r.stack_apds(beats), [b.DI for b in beats], [600.0])
    assert curve.APD.shape == (2, 1) and curve.restitution_slope.size == 0


def test_a_solver_failure_raises_when_asked_or_when_nothing_was_completed(beeler_reuter: sim.CellModel) -> None:
    model = beeler_reuter.clone()
    model.replace_stimulus(period=1000)
    cell = model.simulation()
    with pytest.raises(myokit.SimulationError):
        r.steady_state_restitution(cell, [600.0, 500.0], max_steady_state_beats=2, stop_at_solver_failure=False,
                                   on_interval=lambda beat: _spoil_the_state(cell))
    _spoil_the_state(cell)
    with pytest.raises(myokit.SimulationError):
        r.steady_state_restitution(cell, [600.0, 500.0], max_steady_state_beats=2)


def test_s1s2_sweeps_apply_one_s1_and_at_most_one_s2(beeler_reuter: sim.CellModel) -> None:
    model = beeler_reuter.clone()
    r.prepare_s1s2_stimulus(model)
    cell = model.simulation()
    initial = r.s1_steady_state(cell, 1000.0, steady_state_beats=3)
    assert cell.time == pytest.approx(3000.0)
    time, voltage = r.s1s2_sweeps(cell, initial, [600.0, 20.0], timecourse_duration=3000.0)
    assert time.shape == (3001,) and voltage.shape == (2, 3001)
    starts, _ = sim.ap_start_and_end(voltage[0], time)
    assert starts.size == 2  # S1 at 10 ms, S2 at 610 ms, no third pulse at 1210 ms
    assert 10 <= starts[0] < 12 and 610 <= starts[1] < 612
    starts, _ = sim.ap_start_and_end(voltage[1], time)
    assert starts.size == 1  # at S2 = 20 ms the S2 pulse shrinks to an instant
    assert voltage[0, 1200:1300].max() < -60  # the would-be third pulse is cut off by the end time


# ------------------------------------------------------------------ TT06 against the reference (slow)
def _tt06() -> sim.CellModel:
    return sim.load_model(model_path("ten_tusscher_model_2006_epi"))


@pytest.mark.slow
def test_s1s2_reproduces_tt06_reference() -> None:
    model = _tt06()
    r.prepare_s1s2_stimulus(model)
    cell = model.simulation()
    time, voltage = r.s1s2_sweeps(cell, r.s1_steady_state(cell))
    curve = r.s1s2_curve(voltage, time, r.S2_INTERVALS)
    ref = ("reference", "ten_tusscher_model_2006_epi", "S1S2")
    for name in ("APD90", "DI", "S1S2_slope"):
        expected = load_reference_1d(webdata_path(*ref, f"outputs_{name}.csv"))
        actual = getattr(curve, name)
        assert actual.shape == expected.shape, name
        assert np.all(np.abs(actual - expected) <= ATOL + RTOL * np.abs(expected)), name


@pytest.mark.slow
def test_steady_state_restitution_reproduces_tt06_reference() -> None:
    model = _tt06()
    model.replace_stimulus(period=1000)
    cell = model.simulation()
    beats = r.steady_state_restitution(cell, max_steady_state_beats=1000)
    curve = r.steady_state_restitution_curve(
        r.stack_apds(beats), [b.DI for b in beats], r.STEADY_STATE_PACING_INTERVALS
    )
    ref = ("reference", "ten_tusscher_model_2006_epi", "SteadyStateRestitution")
    expected_apd = np.loadtxt(webdata_path(*ref, "outputs_APD.csv"), delimiter=",", ndmin=2, unpack=True)
    assert curve.APD.shape == expected_apd.shape == (2, 15)
    assert np.all(np.abs(curve.APD - expected_apd) <= ATOL + RTOL * np.abs(expected_apd))
    expected_slope = load_reference_1d(webdata_path(*ref, "outputs_restitution_slope.csv"))
    assert np.all(np.abs(curve.restitution_slope - expected_slope) <= ATOL + RTOL * np.abs(expected_slope))
