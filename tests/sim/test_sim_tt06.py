"""TT06 at 1 Hz against the Web Lab's SteadyStateRunner reference (spec §2.1)."""

from __future__ import annotations

import numpy as np
import pytest
from sim_testdata import ATOL, RTOL, load_reference_1d, model_path, webdata_path

from labkit import sim

REFERENCE_APD90 = 301.88  # the spec's sanity value from the reference trace (§2.1)
HAND_CHECK_APD90 = 301.4  # Myokit hand check, offset 10 ms, 999 paces (protocols.md)


@pytest.fixture(scope="module")
def steady_tt06() -> tuple[sim.PacedSimulation, sim.SteadyState]:
    model = sim.load_model(model_path("ten_tusscher_model_2006_epi"))
    model.replace_stimulus(period=1000)
    run = model.simulation()
    return run, run.pace_to_steady_state(1000, max_paces=1000)


def test_steady_state_runner_reproduces_reference(steady_tt06) -> None:
    run, steady = steady_tt06
    assert steady.num_paces == 1000  # the reference outputs_num_paces.csv
    assert not steady.found  # strict comparison: hitting the cap is not "found"
    assert steady.norms.shape == (1000,)
    assert steady.final_states.shape == (1000, 19)
    assert np.array_equal(steady.state, run.state())

    trace = run.record(1000)  # the detail run: -10 ... 990 ms at 1 ms
    assert list(trace.columns) == ["time", "membrane_voltage"]
    assert trace["time"].iloc[0] == -10 and trace["time"].iloc[-1] == 990 and len(trace) == 1001
    assert run.time == pytest.approx(990)  # ends exactly at the last sample

    apd90 = sim.apd(trace["membrane_voltage"], trace["time"])
    assert apd90.shape == (1,)
    assert apd90[0] == pytest.approx(REFERENCE_APD90, rel=0.01)
    print(f"TT06 APD90 {apd90[0]:.4f} ms (reference trace 301.8846, hand check {HAND_CHECK_APD90})")

    expected = load_reference_1d(
        webdata_path("reference", "ten_tusscher_model_2006_epi", "SteadyStateRunner", "outputs_detailed_voltage.csv")
    )
    actual = trace["membrane_voltage"].to_numpy()
    bad = np.abs(actual - expected) > ATOL + RTOL * np.abs(expected)
    worst = np.abs(actual - expected).max()
    assert not bad.any(), (
        f"{bad.sum()} of {expected.size} detailed_voltage samples outside the harness tolerance "
        f"(first at t={trace['time'][bad].tolist()[:5]} ms; max |error| {worst:.3g} mV)"
    )
