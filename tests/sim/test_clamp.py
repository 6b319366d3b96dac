"""labkit.sim.clamp: voltage-clamp sweeps (spec §1.8) and their read-outs.

Fast tests use synthetic curves and a two-state toy model with a known analytic solution;
the ``slow`` tests run the protocol notebooks on reference models (``pytest -m slow``).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import myokit
import numpy as np
import pytest
from sim_testdata import ATOL, RTOL, load_reference_1d, model_path, webdata_path

from labkit import sim
from labkit.protocols.check import check_protocol
from labkit.results.outputs import read_outputs
from labkit.sim import clamp

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks" / "protocols"
CLAMP_NOTEBOOKS = [
    "ical", "ical_iv_curve", "ina_iv_curves", "ikr_iv_curve", "iks_iv_curve", "ik1_iv_curve",
    "timecourse_voltage_clamp",
]

GATED = "membrane_rapid_delayed_rectifier_potassium_current"
LEAK = "membrane_inward_rectifier_potassium_current"
K_I = "cytosolic_potassium_concentration"
TAU_MS, G, GL, E_K = 10.0, 2.0, 0.5, -85.0


# ------------------------------------------------------------------------------ the toy model
def x_inf(v_mV: float | np.ndarray) -> float | np.ndarray:
    return 1.0 / (1.0 + np.exp(-(v_mV + 20.0) / 5.0))


def toy_model(*, seconds: bool = False, volts: bool = False, absolute: bool = False,
              singular_at: float | None = None) -> sim.CellModel:
    """V (a state before clamping), a gate x with tau = 10 ms, a drifting K_i.

    ``I_x = G x (V - E_K)`` and ``I_leak = GL (V - E_K)`` in A/F, or in pA with Cm = 100 pF when
    ``absolute``; time in s and V in volts on request. The physics is the same in every variant.
    ``singular_at`` (mV) makes the gate's equation 0/0 there, like models whose rates are
    singular at some potential.
    """
    tu, vu = ("s", "V") if seconds else ("ms", "mV")
    ts, vs = (1e-3, 1e-3) if seconds else (1.0, 1.0)  # model unit per protocol unit
    iu, isc = ("pA", 100.0) if absolute else ("A/F", 1.0)
    m = myokit.Model("toy")
    env = m.add_component("engine")
    t = env.add_variable("time")
    t.set_binding("time")
    t.set_unit(tu)
    t.set_rhs(0)
    c = m.add_component("cell")
    v = c.add_variable("V")
    v.set_unit(vu)
    vm = f"(V / {vs})"  # V in mV inside the expressions
    cm = c.add_variable("Cm")
    cm.set_unit("pF")
    cm.set_rhs(100.0)
    x = c.add_variable("x")
    x.promote(float(x_inf(-80.0)))
    k = c.add_variable("K_i")
    k.set_unit("mM")
    k.promote(140.0)
    ix = c.add_variable("I_x")
    ix.set_unit(iu)
    il = c.add_variable("I_leak")
    il.set_unit(iu)
    ix.set_rhs(f"{isc} * {G} * x * ({vm} + {-E_K})")
    il.set_rhs(f"{isc} * {GL} * ({vm} + {-E_K})")
    bad = "" if singular_at is None else f" + 0 * (1 / ({vm} - ({singular_at})))"
    x.set_rhs(f"(1 / (1 + exp(-({vm} + 20) / 5)) - x) / ({TAU_MS} * {ts}){bad}")
    k.set_rhs(f"-1e-3 * I_x / {isc} / {ts}")
    v.promote(-80.0 * vs)
    v.set_rhs(f"-(I_x + I_leak) / {isc} * {vs} / {ts}")
    terms = {
        "membrane_voltage": "cell.V",
        GATED: "cell.I_x",
        LEAK: "cell.I_leak",
        K_I: "cell.K_i",
        "membrane_capacitance": "cell.Cm",
    }
    return sim.CellModel(m, name=f"toy_{tu}_{vu}_{iu.replace('/', '')}", terms=terms)


def analytic_gated(t: np.ndarray, v_hold: float, v_test: float) -> np.ndarray:
    """I_x (µA/cm²) after a step from equilibrium at ``v_hold`` to ``v_test`` at t = 0 (t >= 0)."""
    x0, xi = x_inf(v_hold), x_inf(v_test)
    x = xi + (x0 - xi) * np.exp(-t / TAU_MS)
    return G * x * (v_test - E_K)


@pytest.fixture(scope="module")
def toy_cell() -> clamp.VoltageClampCell:
    return clamp.VoltageClampCell(toy_model(), record=[GATED, LEAK, K_I], clamp=[K_I])


# ------------------------------------------------------------------------------ schedule
def test_clamp_voltages_switch_at_samples_and_hold() -> None:
    t = np.array([-1.0, 0.0, 1.0, 50.0, 50.0000001, 60.0])
    v = clamp.clamp_voltages(t, -80, [clamp.Switch(0, 10), clamp.Switch(50, -40)])
    assert v.tolist() == [-80, 10, 10, -40, -40, -40]
    # a switch time that is not a sample never fires (the INa inactivation quirk)
    v = clamp.clamp_voltages(t, -80, [clamp.Switch(0, 10), clamp.Switch(55, -40)])
    assert v.tolist() == [-80, 10, 10, 10, 10, 10]
    # eps decides what counts as the switching sample; the first matching switch wins
    assert clamp.clamp_voltages([0.00005], -80, [clamp.Switch(0, 1)], eps=1e-4).tolist() == [1]
    assert clamp.clamp_voltages([0.00005], -80, [clamp.Switch(0, 1)]).tolist() == [-80]
    assert clamp.clamp_voltages([0.0], -80, [clamp.Switch(0, 1), clamp.Switch(0, 2)]).tolist() == [1]


def test_segments_split_only_where_the_potential_changes() -> None:
    assert clamp.segments([-80, -80, 10, 10, 10, -40]) == [(0, 2), (2, 5), (5, 6)]
    assert clamp.segments([1.0]) == [(0, 1)]
    assert clamp.segments([]) == []
    assert clamp.segments([5, 5, 5]) == [(0, 3)]


def test_step_sweeps() -> None:
    sweeps = clamp.step_sweeps([-10, 20], clamp.Switch(50, -60))
    assert sweeps == [[clamp.Switch(0, -10), clamp.Switch(50, -60)], [clamp.Switch(0, 20), clamp.Switch(50, -60)]]


# ------------------------------------------------------------------------------ read-outs
def test_tail_reductions_on_synthetic_traces() -> None:
    t = np.array([-1.0, 0.0, 1.0, 2.0, 3.0])
    y = np.array([[-9.0, -5.0, -1.0, -3.0, 2.0], [9.0, 1.0, 4.0, -4.0, 0.0]])
    assert clamp.tail_min(t, y, 0).tolist() == [-3.0, -4.0]  # strictly after t = 0
    assert clamp.tail_max(t, y, 0).tolist() == [2.0, 4.0]
    assert clamp.tail_abs_max(t, y, 0).tolist() == [5.0, 4.0]  # from t = 0 inclusive
    assert clamp.tail_signed_peak(t, y, 0).tolist() == [-5.0, 4.0]
    # the first sample of equal magnitude wins, and its sign is kept
    assert clamp.tail_signed_peak(t, [0, -2.0, 2.0, 1, 0], 0).tolist() == -2.0
    # slack for sample times that are not exactly the switch time
    assert clamp.tail_abs_max([-1.0, 1000 - 1e-9, 1001], [9.0, 3.0, 1.0], 1000, eps=1e-6).tolist() == 3.0
    with pytest.raises(ValueError):
        clamp.tail_min(t, y, 5)
    with pytest.raises(ValueError):
        clamp.tail_min(t[:4], y, 0)


def test_value_before_keeps_the_ik1_quirk() -> None:
    t = np.arange(-1.0, 501.0)  # -1 ... 500, 502 samples
    y = np.vstack([t, -t])
    assert clamp.value_before(t, y, 500).tolist() == [498.0, -498.0]


def test_normalisations() -> None:
    peaks = np.array([0.5, 2.0, -1.0])
    assert clamp.normalise_to_max(peaks).tolist() == [0.25, 1.0, -0.5]
    assert clamp.normalise_to_min(np.array([-4.0, -1.0, 2.0])).tolist() == [-1.0, -0.25, 0.5]
    # a failed sweep (NaN) stays NaN and does not spoil the others
    with_nan = clamp.normalise_to_max(np.array([0.5, np.nan, 2.0]))
    assert np.isnan(with_nan[1]) and with_nan[[0, 2]].tolist() == [0.25, 1.0]
    assert clamp.normalise_to_min(np.array([np.nan, -2.0, 1.0]))[1:].tolist() == [-1.0, 0.5]
    assert clamp.largest([1.0, np.nan, 3.0]) == 3.0 and clamp.smallest([1.0, np.nan, 3.0]) == 1.0
    assert np.isnan(clamp.largest([np.nan])) and np.isnan(clamp.normalise_to_max([np.nan, np.nan])).all()


def test_thin_keeps_ends_and_everything_when_small() -> None:
    t = np.arange(10001.0)
    y = np.vstack([t, 2 * t])
    tt, yy = clamp.thin(t, y, 101)
    assert tt.size == 101 and tt[0] == 0 and tt[-1] == 10000 and yy.shape == (2, 101)
    assert np.array_equal(yy[1], 2 * tt)
    assert clamp.thin(t, y, 0)[0].size == t.size
    assert clamp.thin(t[:50], y[:, :50], 2000)[0].size == 50


def test_load_clamp_data_and_exact_time_lookup(tmp_path: Path) -> None:
    path = tmp_path / "wave.csv"
    path.write_text("0,-84.1\n1,-84.2\n2,20.5\n")
    times, volts = clamp.load_clamp_data(path)
    assert times.tolist() == [0, 1, 2] and volts.tolist() == [-84.1, -84.2, 20.5]
    assert clamp.data_clamp_voltages([2.0, 0.0], times, volts).tolist() == [20.5, -84.1]
    with pytest.raises(ValueError):
        clamp.data_clamp_voltages([0.5], times, volts)
    (tmp_path / "bad.csv").write_text("0,1,2\n")
    with pytest.raises(ValueError):
        clamp.load_clamp_data(tmp_path / "bad.csv")
    (tmp_path / "back.csv").write_text("1,0\n0,0\n")
    with pytest.raises(ValueError):
        clamp.load_clamp_data(tmp_path / "back.csv")


def test_current_factor_follows_the_unit_rules() -> None:
    assert clamp.current_factor(toy_model(), GATED) == pytest.approx(1.0)  # A/F
    # pA with Cm = 100 pF = 1e-4 uF: I[uA/cm^2] = 1e-6 uA / 1e-4 uF per pA
    assert clamp.current_factor(toy_model(absolute=True), GATED) == pytest.approx(0.01)


# ------------------------------------------------------------------------------ simulation
def test_model_is_clamped_and_concentrations_held(toy_cell: clamp.VoltageClampCell) -> None:
    mm = toy_cell.model.myokit_model
    assert not mm.get("cell.V").is_state() and not mm.get("cell.K_i").is_state()
    assert toy_cell.clamped == [K_I]
    assert toy_cell.cell.state_names == ["cell.x"]
    toy_cell.set_voltage(-33.0)
    assert toy_cell.voltage == pytest.approx(-33.0)


def test_hold_then_step_family_matches_the_analytic_solution(toy_cell: clamp.VoltageClampCell) -> None:
    saved = toy_cell.hold(-80.0, 200.0)  # 20 time constants: equilibrium
    assert saved[0] == pytest.approx(x_inf(-80.0), rel=1e-6)
    times = np.concatenate([[-1.0, -0.5], 0.25 * np.arange(0, 200), np.arange(50, 81)])
    tests = [-40.0, 0.0, 30.0]
    fam = toy_cell.family(times, -80.0, clamp.step_sweeps(tests, clamp.Switch(50, -60.0)))
    assert fam["time"].shape == times.shape
    assert fam[GATED].shape == (3, times.size) and fam["membrane_voltage"].shape == (3, times.size)
    before = times < 0
    on_test = (times >= 0) & (times < 50)
    for i, v in enumerate(tests):
        volts = fam["membrane_voltage"][i]
        assert np.all(volts[before] == -80) and np.all(volts[on_test] == v) and np.all(volts[times >= 50] == -60)
        # the value recorded at the switching sample already uses the new potential
        assert fam[GATED][i, 2] == pytest.approx(G * x_inf(-80.0) * (v - E_K), rel=1e-6)
        expected = analytic_gated(times[on_test], -80.0, v)
        np.testing.assert_allclose(fam[GATED][i, on_test], expected, rtol=2e-4, atol=1e-6)
        # an ungated current is a constant once V is clamped: evaluated per segment
        np.testing.assert_allclose(fam[LEAK][i, on_test], GL * (v - E_K), rtol=1e-12)
        np.testing.assert_allclose(fam[LEAK][i, times >= 50], GL * (-60 - E_K), rtol=1e-12)
        assert np.all(fam[K_I][i] == 140.0)  # held
    # the tail after the return step starts from the gate reached at 50 ms
    x50 = x_inf(30.0) + (x_inf(-80.0) - x_inf(30.0)) * math.exp(-50 / TAU_MS)
    tail = times >= 50
    expected_tail = G * (x_inf(-60.0) + (x50 - x_inf(-60.0)) * np.exp(-(times[tail] - 50) / TAU_MS)) * (-60 - E_K)
    np.testing.assert_allclose(fam[GATED][2, tail], expected_tail, rtol=2e-4)
    assert toy_cell.cell.time == pytest.approx(80.0)  # ends at the last sample
    # every sweep restarts from the saved state: repeating one gives the same trace
    again = toy_cell.sweep(times, -80.0, [clamp.Switch(0, 30.0), clamp.Switch(50, -60.0)])
    np.testing.assert_allclose(again[GATED], fam[GATED][2], rtol=1e-9, atol=1e-12)


def test_units_of_the_model_do_not_change_the_results() -> None:
    times = np.concatenate([[-1.0], np.arange(0.0, 30.0, 0.5)])
    results = []
    for kwargs in ({}, {"seconds": True, "volts": True, "absolute": True}):
        cell = clamp.VoltageClampCell(toy_model(**kwargs), record=[GATED])
        cell.hold(-80.0, 200.0)
        results.append(cell.family(times, -80.0, clamp.step_sweeps([-10.0, 20.0])))
    np.testing.assert_allclose(results[1]["membrane_voltage"], results[0]["membrane_voltage"], rtol=1e-12)
    np.testing.assert_allclose(results[1][GATED], results[0][GATED], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(results[0][GATED][1, 1:], analytic_gated(times[1:], -80.0, 20.0), rtol=2e-4)


def test_data_clamp_continues_from_the_present_state(toy_cell: clamp.VoltageClampCell) -> None:
    toy_cell.hold(-80.0, 200.0, start=-200.0, save=False)
    assert toy_cell.cell.time == pytest.approx(0.0)
    times = np.arange(0.0, 40.0)
    wave = np.where(times < 20, 0.0, -80.0)
    trace = toy_cell.sweep(times, None, voltages=wave, restore=False)
    assert np.array_equal(trace["membrane_voltage"], wave)
    np.testing.assert_allclose(trace[GATED][:20], analytic_gated(times[:20], -80.0, 0.0), rtol=2e-4)
    with pytest.raises(ValueError):
        toy_cell.sweep(times, None, voltages=wave[:5], restore=False)


def test_solver_failures_give_nan_sweeps_not_a_crash() -> None:
    cell = clamp.VoltageClampCell(toy_model(singular_at=-100.0), record=[GATED])
    cell.hold(-80.0, 100.0)
    times = np.concatenate([[-1.0], np.arange(0.0, 20.0)])
    with pytest.warns(RuntimeWarning, match="solver failed"):
        fam = cell.family(times, -80.0, clamp.step_sweeps([-40.0, -100.0, 0.0]))
    assert len(cell.failures) == 1 and "-100" in cell.failures[0].what
    assert cell.failures[0].time == pytest.approx(0.0, abs=1e-3)
    assert np.isnan(fam[GATED][1, 1:]).all() and not np.isnan(fam[GATED][1, 0])  # the holding sample is fine
    assert not np.isnan(fam[GATED][[0, 2]]).any()  # the next sweep restarts from the saved state
    np.testing.assert_allclose(fam[GATED][2, 1:], analytic_gated(times[1:], -80.0, 0.0), rtol=2e-4)
    peaks = clamp.tail_max(times, fam[GATED], 0)
    assert np.isnan(peaks[1]) and clamp.normalise_to_max(peaks)[2] == 1.0
    # a pre-run that fails leaves nothing to sweep from: every sweep is NaN
    with pytest.warns(RuntimeWarning, match="pre-run at -100"):
        state = cell.hold(-100.0, 100.0)
    assert np.isnan(state).all()
    again = cell.family(times, -100.0, clamp.step_sweeps([0.0]))
    assert np.isnan(again[GATED]).all() and np.array_equal(again["time"], times)


def test_sweep_needs_a_saved_state() -> None:
    cell = clamp.VoltageClampCell(toy_model(), record=[GATED])
    with pytest.raises(RuntimeError):
        cell.sweep([0.0, 1.0], -80.0, [])


def test_missing_terms_are_named_before_compiling() -> None:
    with pytest.raises(sim.MissingTermError, match="membrane_fast_sodium_current"):
        clamp.VoltageClampCell(toy_model(), record=["membrane_fast_sodium_current"])
    cell = clamp.VoltageClampCell(toy_model(), record=[GATED], clamp_optional=["cytosolic_sodium_concentration", K_I])
    assert cell.clamped == [K_I]


@pytest.mark.parametrize("name", CLAMP_NOTEBOOKS)
def test_notebooks_pass_the_protocol_check(name: str) -> None:
    interface = check_protocol((NOTEBOOKS / f"{name}.ipynb").read_bytes())
    assert interface.outputs and interface.plots


# ------------------------------------------------------------------------------ slow: notebooks
def run_notebook(name: str, model: str, out: Path, **params: object) -> dict[str, np.ndarray]:
    """Run a protocol notebook with papermill on a reference model; its outputs by name."""
    args = [sys.executable, "-m", "papermill", str(NOTEBOOKS / f"{name}.ipynb"), str(out / "run.ipynb"),
            "-p", "model_path", str(model_path(model)), "-p", "output_dir", str(out)]
    for key, value in params.items():
        args += ["-p", key, str(value)]
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return {name: data.values for name, data in read_outputs(out).items()}


def reference(model: str, protocol: str, name: str, two_d: bool = False) -> np.ndarray:
    path = webdata_path("reference", model, protocol, f"outputs_{name}.csv")
    if two_d:  # the file holds the transpose: one row per index of the last dimension
        return np.loadtxt(path, delimiter=",", comments="#", ndmin=2).T
    return load_reference_1d(path)


CASES = [
    ("ical", "ICaL", [("min_LCC", True), ("final_membrane_voltage", False)]),
    ("ical_iv_curve", "ICaL_IV_curve", [("normalised_peak_currents", False)]),
    ("ina_iv_curves", "INa_IV_curves", [("normalised_peak_currents", False)]),
    ("ikr_iv_curve", "IKr_IV_curve", [("normalised_peak_Kr_tail", False)]),
    ("iks_iv_curve", "IKs_IV_curve", [("normalised_peak_Ks_tail", False)]),
    ("ik1_iv_curve", "IK1_IV_curve", [("normalised_low_K1", False), ("normalised_high_K1", False)]),
]


@pytest.mark.slow
@pytest.mark.parametrize(("notebook", "protocol", "outputs"), CASES, ids=[c[1] for c in CASES])
def test_notebook_reproduces_tt06_reference(notebook: str, protocol: str, outputs: list, tmp_path: Path) -> None:
    model = "ten_tusscher_model_2006_epi"
    got = run_notebook(notebook, model, tmp_path)
    for name, two_d in outputs:
        expected = reference(model, protocol, name, two_d)
        actual = got[name]
        assert actual.shape == expected.shape, name
        np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, err_msg=f"{protocol} {name}")


def independent_data_clamp(model: sim.CellModel, times: np.ndarray, wave: np.ndarray,
                           holding: float, settle: float) -> np.ndarray:
    """I_Kr under a zero-order-hold clamp built with a plain Myokit pacing protocol (V bound to pace)."""
    mm = model.myokit_model.clone()
    v = mm.get(model.qname("membrane_voltage"))
    for term in ("extracellular_potassium_concentration", "cytosolic_potassium_concentration",
                 "cytosolic_sodium_concentration"):
        var = mm.get(model.qname(term))
        if var.is_state():
            zero = {myokit.Derivative(myokit.Name(var)): myokit.Number(0)}
            for user in list(var.refs_by()):
                user.set_rhs(user.rhs().clone(subst=zero))
            value = var.initial_value(True)
            var.demote()
            var.set_rhs(value)
    zero = {myokit.Derivative(myokit.Name(v)): myokit.Number(0)}
    for user in list(v.refs_by()):
        user.set_rhs(user.rhs().clone(subst=zero))
    v.demote()
    v.set_rhs(0)
    v.set_binding("pace")
    protocol = myokit.Protocol()  # Myokit events cannot start before 0: shift by the settling time
    protocol.schedule(holding, 0, settle)
    for k, (t, value) in enumerate(zip(times, wave)):
        end = times[k + 1] if k + 1 < len(times) else t + 1
        protocol.schedule(value, settle + t, end - t)
    s = myokit.Simulation(mm, protocol)
    s.set_tolerance(abs_tol=1e-8, rel_tol=1e-6)
    s.set_max_step_size(0.5)
    ikr = model.qname("membrane_rapid_delayed_rectifier_potassium_current")
    log = s.run(settle + times[-1] + 0.5, log=[ikr], log_times=list(settle + times))
    return np.asarray(log[ikr]) * model.protocol_factor("membrane_rapid_delayed_rectifier_potassium_current")


@pytest.mark.slow
def test_timecourse_voltage_clamp_on_tt04(tmp_path: Path) -> None:
    """The repository test of §2.14 runs on TT04-epi with one paced AP as the waveform.

    The Web Lab's waveform and expected I_Kr are not part of the shared data, so the waveform
    is TT04's own first AP and the expected current comes from an independent Myokit clamp.
    """
    name = "ten_tusscher_model_2004_epi"
    model = sim.load_model(model_path(name))
    times = np.arange(0.0, 1001.0)
    wave = clamp.own_action_potential(model, times, offset=10.0)
    assert wave[:10].max() < -80 and wave[12] > 0  # upstroke at 10-12 ms, like the Web Lab's file
    expected = independent_data_clamp(model, times, wave, holding=-80.0, settle=10000.0)
    data = tmp_path / "one_pace_voltage.csv"
    data.write_text("".join(f"{t:g},{float(v)!r}\n" for t, v in zip(times, wave)))
    current = tmp_path / "one_pace_I_Kr.csv"
    current.write_text("".join(f"{float(x)!r}\n" for x in expected))
    got = run_notebook("timecourse_voltage_clamp", name, tmp_path, clamp_data_path=data,
                       expected_current_path=current, tolerance=1e-5)
    assert got["I_Kr"].shape == (1001,) and np.array_equal(got["time"], times)
    np.testing.assert_array_equal(got["voltage_traces"], wave)
    assert np.abs(got["I_Kr"] - expected).max() < 1e-5
    assert got["I_Kr"].max() > 10 * abs(got["I_Kr"][0])  # I_Kr peaks during repolarisation
