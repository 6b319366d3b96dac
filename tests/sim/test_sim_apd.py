"""The §1.10 APD algorithm on traces whose answers can be worked out by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sim_testdata import load_reference_1d, webdata_path

from labkit import sim

T = np.arange(0.0, 1001.0)  # 0 ... 1000 ms, 1 ms apart


def synthetic_ap(t: np.ndarray, onset: float = 100.0, decline: float = 0.5) -> np.ndarray:
    """Rest -80 mV; -80 -> -20 -> +20 mV over the two ms after ``onset``; then linear repolarisation.

    The steepest interval is [onset, onset+1] (60 mV/ms), so the upstroke time is ``onset``.
    The peak is +20 mV at onset+2; repolarisation runs at ``decline`` mV/ms back to -80 mV.
    """
    v = np.full(t.shape, -80.0)
    v[t == onset + 1] = -20.0
    after = t >= onset + 2
    v[after] = np.maximum(20.0 - decline * (t[after] - onset - 2), -80.0)
    return v


def hand_apd(percent: float, onset: float = 100.0, decline: float = 0.5) -> float:
    """The same trace's APD by hand: level L = -80 + (1-p/100)*100 mV."""
    level = -80.0 + (1 - percent / 100) * 100.0
    if level <= -20.0:  # crossing inside the 60 mV/ms interval ...
        start = onset + (level + 80.0) / 60.0
    else:  # ... or inside the following 40 mV/ms one
        start = onset + 1 + (level + 20.0) / 40.0
    end = onset + 2 + (20.0 - level) / decline
    return end - start


@pytest.mark.parametrize("percent", [90, 50, 30])
def test_single_ap_matches_hand_calculation(percent: float) -> None:
    v = synthetic_ap(T)
    result = sim.apd(v, T, percent=percent)
    assert result.shape == (1,)
    assert result[0] == pytest.approx(hand_apd(percent), abs=1e-9)
    # APD90 worked through explicitly: L = -70; start 100 + 10/60; end 102 + 90/0.5 = 282.
    if percent == 90:
        assert result[0] == pytest.approx(282.0 - (100.0 + 10.0 / 60.0), abs=1e-9)


def test_two_aps_give_apds_and_diastolic_interval() -> None:
    v = np.where(T < 590, synthetic_ap(T, onset=100.0), synthetic_ap(T, onset=600.0))
    apds, dis = sim.apd_and_di(v, T)
    assert apds == pytest.approx([hand_apd(90)] * 2)
    # DI = start of AP 2 - start of AP 1 - APD of AP 1.
    assert dis == pytest.approx([500.0 - hand_apd(90)])


def test_trace_with_fewer_aps_is_padded_with_first_upstroke_of_trace_zero() -> None:
    two = np.where(T < 590, synthetic_ap(T, onset=100.0), synthetic_ap(T, onset=600.0))
    one = synthetic_ap(T, onset=100.0, decline=0.25)  # a single, longer AP
    result = sim.apd(np.stack([two, one]), np.stack([T, T]))
    assert result.shape == (2, 2)
    assert result[0] == pytest.approx([hand_apd(90)] * 2)
    # The fake second upstroke of trace 1 is trace 0's first upstroke (100 ms): its AP is measured again.
    assert result[1] == pytest.approx([hand_apd(90, decline=0.25)] * 2)


def test_leading_dimensions_are_kept() -> None:
    v = np.broadcast_to(synthetic_ap(T), (2, 3, T.size))
    t = np.broadcast_to(T, v.shape)
    assert sim.apd(v, t).shape == (2, 3, 1)


def test_never_repolarising_ap_ends_at_last_sample() -> None:
    v = synthetic_ap(T, decline=0.05)  # needs 1800 ms to get back to L
    starts, ends = sim.ap_start_and_end(v, T)
    assert ends[0] == T[-1]
    assert starts[0] == pytest.approx(100.0 + 10.0 / 60.0)


def test_flat_trace_gives_nan_and_says_why() -> None:
    """The Web Lab's ApStartAndEnd fails here; labkit returns NaN and leaves the verdict to the notebook."""
    with pytest.warns(sim.NoActionPotentialWarning, match="dV/dt never exceeds the upstroke threshold 10"):
        result = sim.apd(np.full(T.shape, -80.0), T)
    assert result.shape == (1,) and np.isnan(result[0])


def test_a_trace_that_only_rises_has_no_resting_phase() -> None:
    with pytest.warns(sim.NoActionPotentialWarning, match="never below"):
        assert np.isnan(sim.apd(20.0 * T, T)).all()


def test_one_trace_without_upstroke_is_nan_and_the_others_are_measured() -> None:
    """A scan level where the model stops firing loses its own APD only (the Web Lab lost them all)."""
    v = np.stack([synthetic_ap(T), np.full(T.shape, -80.0), synthetic_ap(T, decline=0.25)])
    with pytest.warns(sim.NoActionPotentialWarning, match="no action potential in trace 1"):
        result = sim.apd(v, np.stack([T, T, T]))
    assert result.shape == (3, 1)
    assert result[0, 0] == pytest.approx(hand_apd(90)) and result[2, 0] == pytest.approx(hand_apd(90, decline=0.25))
    assert np.isnan(result[1, 0])


def test_the_first_firing_trace_pads_when_trace_zero_is_silent() -> None:
    two = np.where(T < 590, synthetic_ap(T, onset=100.0), synthetic_ap(T, onset=600.0))
    one = synthetic_ap(T, onset=100.0, decline=0.25)
    with pytest.warns(sim.NoActionPotentialWarning):
        result = sim.apd(np.stack([np.full(T.shape, -80.0), two, one]), np.stack([T, T, T]))
    assert np.isnan(result[0]).all()
    assert result[1] == pytest.approx([hand_apd(90)] * 2)
    assert result[2] == pytest.approx([hand_apd(90, decline=0.25)] * 2)  # padded with trace 1's upstroke


def test_peak_on_last_sample_is_nan() -> None:
    v = np.full(T.shape, -80.0)
    v[T >= 990] = -80.0 + 20.0 * (T[T >= 990] - 989)  # still rising when the recording stops
    with pytest.warns(sim.NoActionPotentialWarning, match="first or last sample"):
        assert np.isnan(sim.apd(v, T)).all()


def test_di_without_a_second_ap_is_nan() -> None:
    with pytest.warns(sim.NoActionPotentialWarning, match="only 1 action potential"):
        apds, dis = sim.apd_and_di(synthetic_ap(T), T)
    assert apds.shape == (2,) and apds[0] == pytest.approx(hand_apd(90)) and np.isnan(apds[1])
    assert dis.shape == (1,) and np.isnan(dis[0])


def test_every_trace_with_an_ap_gives_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sim.apd(np.stack([synthetic_ap(T), synthetic_ap(T, onset=200.0)]), np.stack([T, T]))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="percent"):
        sim.apd(synthetic_ap(T), T, percent=120)
    with pytest.raises(ValueError, match="same shape"):
        sim.apd(synthetic_ap(T), T[:-1])


def test_reference_steady_state_trace_gives_reference_apd90() -> None:
    """The Web Lab's own TT06 1 Hz trace: the spec's sanity value 301.8846 ms (§2.1)."""
    v = load_reference_1d(
        webdata_path("reference", "ten_tusscher_model_2006_epi", "SteadyStateRunner", "outputs_detailed_voltage.csv")
    )
    t = sim.uniform_times(-10, 990)
    assert sim.apd(v, t)[0] == pytest.approx(301.88457, abs=1e-4)
    assert sim.resting_potential(v) == pytest.approx(-85.4176, abs=1e-4)
    assert sim.peak(v) == pytest.approx(32.478, abs=1e-3)


def test_uniform_times_follow_the_range_rule() -> None:
    assert sim.uniform_times(-10, 990).size == 1001
    assert sim.uniform_times(0, 2000, 0.1).size == 20001
    assert sim.uniform_times(-10, 323).size == 334


def test_why_no_action_potential_names_a_stimulus_of_the_wrong_sign() -> None:
    t = np.arange(-10.0, 990.0)
    down = np.where((t >= 0) & (t <= 5), -80.0 - 3.0 * np.clip(t, 0, 5), -80.0)  # an outward "stimulus"
    assert "pulled the voltage down (-80.0 to -83.0 mV" in sim.why_no_action_potential(down, t)
    assert "hardly moved" in sim.why_no_action_potential(np.full(t.shape, -80.0), t)
    up = np.where((t >= 0) & (t <= 5), -80.0 + 4.0 * np.clip(t, 0, 5), -80.0)
    assert "did not trigger an upstroke" in sim.why_no_action_potential(up, t)


def test_a_trace_with_nan_samples_is_nan_and_the_others_are_measured() -> None:
    broken = synthetic_ap(T)
    broken[500] = np.nan
    with pytest.warns(sim.NoActionPotentialWarning, match="trace 0 holds NaN"):
        result = sim.apd(np.stack([broken, synthetic_ap(T)]), np.stack([T, T]))
    assert np.isnan(result[0, 0]) and result[1, 0] == pytest.approx(hand_apd(90))
