"""Model loading, terms, units, clamps and the compiled-simulation cache."""

from __future__ import annotations

import numpy as np
import pytest
from sim_testdata import model_path

from labkit import sim

TT06 = "ten_tusscher_model_2006_epi"


@pytest.fixture(scope="module")
def tt06() -> sim.CellModel:
    return sim.load_model(model_path(TT06))


# ---------------------------------------------------------------------- terms
def test_terms_resolve_to_myokit_variables(tt06: sim.CellModel) -> None:
    assert tt06.var("membrane_voltage").qname() == "membrane.V"
    assert tt06.has("membrane_rapid_delayed_rectifier_potassium_current")
    assert tt06.missing(["membrane_voltage", "no_such_term", "time"]) == ["no_such_term"]
    assert len(tt06.states()) == 19 and tt06.states()[0] == "membrane.V"


def test_missing_term_error_names_term_and_model(tt06: sim.CellModel) -> None:
    with pytest.raises(sim.MissingTermError) as info:
        tt06.var("membrane_funny_current")
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "membrane_funny_current" in message and TT06 in message
    assert info.value.terms == ["membrane_funny_current"]


def test_annotations_myokit_misses_come_from_labkit_cellml() -> None:
    # Shannon 2004 keeps its RDF inside <variable> elements (Myokit reads none of it), and
    # annotates Na_i on a connected copy of the variable that Myokit drops.
    model = sim.load_model(model_path("Shannon2004"))
    assert model.var("membrane_voltage").qname() == "cell.V"
    assert model.var("cytosolic_sodium_concentration").qname() == "Na_buffer.Nai"


def test_replace_stimulus_needs_amplitude_and_duration() -> None:
    model = sim.load_model(model_path("hodgkin_huxley_model_using_volts"))  # annotates only the current
    with pytest.raises(sim.MissingTermError) as info:
        model.replace_stimulus(period=1000)
    assert info.value.terms == ["membrane_stimulus_current_duration", "membrane_stimulus_current_amplitude"]
    model.replace_stimulus(period=1000, duration=0.5, amplitude=-20)  # given explicitly: fine
    assert model.value("membrane_stimulus_current_duration") == pytest.approx(0.5)
    assert model.value("membrane_stimulus_current_amplitude") == pytest.approx(-20)


def test_pacing_requires_the_protocol_stimulus() -> None:
    model = sim.load_model(model_path("hodgkin_huxley_squid_axon_model_1952_modified"))
    with pytest.raises(RuntimeError, match="replace_stimulus"):
        model.simulation().pace_to_steady_state(1000, max_paces=2)


# ---------------------------------------------------------------------- units
def test_model_in_seconds_is_driven_and_reported_in_ms() -> None:
    model = sim.load_model(model_path("earm_noble_model_1990"))
    assert str(model.myokit_model.time().unit()) == "[s]"
    assert model.time_factor == 1000.0
    model.replace_stimulus(period=1000)
    assert float(model.var("membrane_stimulus_current_period").eval()) == 1.0  # 1000 ms in model seconds
    run = model.simulation()
    steady = run.pace_to_steady_state(1000, max_paces=3)
    assert steady.num_paces == 3
    trace = run.record(1000)
    assert trace["time"].iloc[0] == -10 and trace["time"].iloc[-1] == 990
    assert run.time == pytest.approx(990)
    starts, ends = sim.ap_start_and_end(trace["membrane_voltage"], trace["time"])
    assert 0 <= starts[0] < 5  # stimulus at 0 ms, as the protocol asked
    assert 50 < ends[0] - starts[0] < 500  # a plausible APD in ms, not in s
    assert trace["membrane_voltage"].max() > 0 > trace["membrane_voltage"].min()


def test_model_in_volts_is_reported_in_mv() -> None:
    model = sim.load_model(model_path("hodgkin_huxley_model_using_volts"))
    assert str(model.var("membrane_voltage").unit()) == "[V]"
    assert model.voltage_factor == 1000.0
    assert model.protocol_unit("membrane_voltage") == "[mV]"
    assert model.value("membrane_voltage") == pytest.approx(-75.0)  # initial value -0.075 V
    trace = model.simulation().record(5, start=0)
    assert trace["membrane_voltage"].iloc[0] == pytest.approx(-75.0)

    model.clamp("membrane_voltage", -60.0)  # protocol value in mV
    assert float(model.var("membrane_voltage").eval()) == pytest.approx(-0.060)  # stored in volts
    run = model.simulation()
    assert run.record(3, start=0)["membrane_voltage"].tolist() == pytest.approx([-60.0] * 4)
    run.set_parameter("membrane_voltage", -40.0)
    assert run.evaluate("membrane_voltage") == pytest.approx(-40.0)


def test_paced_model_in_seconds_and_volts_gives_ms_and_mv() -> None:
    # Paci 2013 (iPSC-CM) uses s and V throughout; it also beats on its own.
    model = sim.load_model(model_path("paci_hyttinen_aaltosetala_severi_ventricularVersion"))
    assert (model.time_factor, model.voltage_factor) == (1000.0, 1000.0)
    assert model.value("membrane_stimulus_current_duration") == pytest.approx(5.0)  # 0.005 s
    model.replace_stimulus(period=1000)
    run = model.simulation()
    run.pace_to_steady_state(1000, max_paces=3)
    trace = run.record(1000)
    v = trace["membrane_voltage"]
    assert -80 < v.min() < -60 and 0 < v.max() < 60  # mV, not V
    assert sim.apd(v, trace["time"])[0] > 50  # ms


def test_current_units_follow_the_protocol_rules() -> None:
    tt06 = sim.load_model(model_path(TT06))  # A/F: numerically unchanged
    assert tt06.protocol_factor("membrane_L_type_calcium_current") == 1.0
    earm = sim.load_model(model_path("earm_noble_model_1990"))  # nA with Cm in uF: divided by Cm
    cm = earm.var("membrane_capacitance")
    cm_uF = sim.units.capacitance_in_uF(float(cm.eval()), cm.unit())
    assert earm.protocol_factor("membrane_stimulus_current") == pytest.approx(1e-3 / cm_uF)


# ---------------------------------------------------------------------- clamps and parameters
def test_voltage_clamp_with_unloggable_constant_current() -> None:
    model = sim.load_model(model_path(TT06))
    model.clamp("membrane_voltage", -80.0)
    for term in ("cytosolic_potassium_concentration", "extracellular_potassium_concentration"):
        model.clamp(term)
    assert "membrane.V" not in model.states() and "potassium_dynamics.K_i" not in model.states()
    run = model.simulation()
    ik1 = "membrane_inward_rectifier_potassium_current"  # no gating: a constant once V is clamped
    at_80 = run.evaluate(ik1)
    first = run.record_times([0, 1, 2], terms=("membrane_voltage", ik1), until=3)
    run.set_parameter("membrane_voltage", -40.0)  # switches at the 3 ms sample (§1.5)
    second = run.record_times([3, 4, 5], terms=("membrane_voltage", ik1), relabel=False)
    assert first["membrane_voltage"].tolist() == [-80.0] * 3
    assert second["membrane_voltage"].tolist() == [-40.0] * 3
    assert first[ik1].tolist() == pytest.approx([at_80] * 3)
    assert second[ik1].iloc[0] == pytest.approx(run.evaluate(ik1)) and second[ik1].iloc[0] != at_80
    assert run.time == pytest.approx(5.0)


def test_parameters_scale_before_and_during_simulation(tt06: sim.CellModel) -> None:
    model = tt06.clone()
    g = "membrane_rapid_delayed_rectifier_potassium_current_conductance"
    default = model.value(g)
    model.set_parameter(g, default * 0.5)
    assert model.value(g) == pytest.approx(default * 0.5)
    assert tt06.value(g) == default  # the clone is independent
    run = model.simulation()
    run.set_parameter(g, default * 0.25)
    with pytest.raises(ValueError, match="computed from other variables"):
        run.set_parameter("sodium_reversal_potential", 50.0)
    with pytest.raises(ValueError, match="state variable"):
        model.set_parameter("membrane_voltage", -80.0)


# ---------------------------------------------------------------------- cache
def _beat(run: sim.PacedSimulation) -> np.ndarray:
    run.pace_to_steady_state(500, max_paces=2)
    return run.record(300, terms=("membrane_voltage", "membrane_L_type_calcium_current")).to_numpy()


def test_compiled_simulations_are_cached_and_reused(tmp_path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("LABKIT_SIM_CACHE", str(cache))

    first_model = sim.load_model(model_path(TT06))
    first_model.replace_stimulus(period=500)
    first = first_model.simulation()
    assert not first.from_cache
    assert len(list(cache.glob("*.zip"))) == 1
    assert not [p for p in cache.iterdir() if not p.name.endswith(".zip")]  # no temporary leftovers

    second_model = sim.load_model(model_path(TT06))
    second_model.replace_stimulus(period=500)
    second = second_model.simulation()
    assert second.from_cache
    assert np.array_equal(_beat(first), _beat(second))


def test_cached_binary_serves_models_that_differ_only_in_values(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LABKIT_SIM_CACHE", str(tmp_path / "cache"))
    base = sim.load_model(model_path(TT06))
    base.replace_stimulus(period=1000)
    base.simulation()  # fills the cache

    variant = sim.load_model(model_path(TT06))
    variant.replace_stimulus(period=500, offset=5)
    variant.set_parameter("membrane_rapid_delayed_rectifier_potassium_current_conductance", 0.05)
    variant.var("cytosolic_sodium_concentration").set_initial_value(9.5)
    cached = variant.simulation()
    assert cached.from_cache
    fresh = variant.simulation(cache=False)
    assert np.array_equal(cached.default_state(), fresh.default_state())
    assert np.array_equal(_beat(cached), _beat(fresh))


def test_cache_can_be_switched_off(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LABKIT_SIM_CACHE", "off")
    model = sim.load_model(model_path("hodgkin_huxley_squid_axon_model_1952_modified"))
    assert sim.cache_dir() is None
    assert not model.simulation().from_cache
