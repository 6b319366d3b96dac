"""labkit.sim.scans: steady-state scans over block levels and K_o, and their post-processing.

Fast tests use synthetic traces and stand-in simulations; the reference checks use the two
fastest reference models (Luo-Rudy 1991 and Beeler-Reuter 1977 settle in 4 paces), and the
notebook runs on TT06 are marked slow.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import myokit
import nbformat
import numpy as np
import pytest

from labkit import sim
from labkit.protocols.check import check_protocol
from labkit.sim import scans
from labkit.sim.model import CellModel

from sim_testdata import load_reference_1d, model_path, webdata_path

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks" / "protocols"

#: The product's validation tolerances for these outputs.
APD_TOLERANCE_PERCENT = 1.0      # scaled APD90 is an APD ratio: 1 % of the value
RP_TOLERANCE_MV = 0.5            # resting potentials within 0.5 mV


# ---------------------------------------------------------------------- level lists
def test_block_levels_are_the_protocol_comprehension() -> None:
    levels = scans.block_levels(range(11))
    assert len(levels) == 11 and levels[0] == 0.0 and levels[-1] == 1.0
    assert levels[3] == 3 * 0.1 == 0.30000000000000004  # a plain product, not 0.3
    assert scans.BLOCKS["RyR"].block_levels == [0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]


def test_block_specs_follow_the_spec_table() -> None:
    assert list(scans.BLOCKS) == ["ICaL", "INa", "IKr", "IKs", "IK1", "Ito", "NCX", "RyR"]
    caps = {name: spec.max_paces for name, spec in scans.BLOCKS.items()}
    assert caps == {"ICaL": 10000, "INa": 10000, "IKr": 10000, "IKs": 10000,
                    "IK1": 1000, "Ito": 1000, "NCX": 1000, "RyR": 10000}
    assert {n for n, s in scans.BLOCKS.items() if s.resting_potential} == {"IK1", "Ito", "NCX"}
    assert scans.block_spec("IKr").term == "membrane_rapid_delayed_rectifier_potassium_current_conductance"
    assert scans.block_spec("RyR").term == "SR_release_current_max"
    with pytest.raises(ValueError, match="unknown current 'IKur'.*ICaL, INa"):
        scans.block_spec("IKur")


def test_degree_of_block() -> None:
    np.testing.assert_allclose(scans.degree_of_block([0.0, 0.25, 1.0]), [100.0, 75.0, 0.0])


def test_potassium_levels_add_the_default_and_sort() -> None:
    levels = scans.potassium_test_concentrations(5.4)
    np.testing.assert_array_equal(levels, [2, 3, 4, 5, 5.4, 6, 7, 8, 9, 10])
    assert scans.control_index(levels, 5.4) == 4


def test_potassium_default_among_the_tests_appears_twice() -> None:
    """Spec §6.12: a default of 4 mM gives [2, 3, 4, 4, 5, ...]; the control is the first 4."""
    levels = scans.potassium_test_concentrations(4.0)
    np.testing.assert_array_equal(levels, [2, 3, 4, 4, 5, 6, 7, 8, 9, 10])
    assert scans.control_index(levels, 4.0) == 2
    assert scans.control_index(scans.potassium_test_concentrations(5), 5) == 3
    assert len(scans.potassium_test_concentrations(12.0, [2, 3])) == 3


def test_control_index_must_exist() -> None:
    with pytest.raises(ValueError, match="not among the levels"):
        scans.control_index([1.0, 2.0], 3.0)


# ---------------------------------------------------------------------- scaling
def test_scaled_to_control_is_percent_of_the_control_entry() -> None:
    apds = np.array([150.0, 300.0, 200.0])
    np.testing.assert_allclose(scans.scaled_to_control(apds, 2), [75.0, 150.0, 100.0])
    np.testing.assert_allclose(scans.scaled_to_control(apds, -1), [75.0, 150.0, 100.0])


def test_scaled_resting_potential_keeps_the_protocols_sign() -> None:
    """-100*RP/RP_control: two negative potentials give about -100 (spec §2.11e)."""
    rp = np.array([-80.0, -85.0, -85.0 * 1.1])
    np.testing.assert_allclose(scans.scaled_resting_potential(rp, 1), [-100 * 80 / 85, -100.0, -110.0])


def _trapezoid_ap(plateau_end: float, t: np.ndarray) -> np.ndarray:
    """Rest -80 mV, upstroke -80 -> -50 -> 20 mV over t = 0..2 ms, flat to plateau_end, linear fall to -80 over 100 ms."""
    v = np.full(t.shape, -80.0)
    v[t == 1] = -50.0
    v[(t >= 2) & (t <= plateau_end)] = 20.0
    fall = (t > plateau_end) & (t <= plateau_end + 100)
    v[fall] = 20.0 - (t[fall] - plateau_end)
    return v


def test_first_apd90_of_synthetic_traces() -> None:
    """Level -70 mV: crossed at 1/3 ms on the upstroke and 90 ms into the fall."""
    t = np.arange(-10.0, 991.0)
    plateaus = [100.0, 200.0, 300.0]
    voltage = np.vstack([_trapezoid_ap(p, t) for p in plateaus])
    expected = [p + 90 - 1 / 3 for p in plateaus]
    np.testing.assert_allclose(scans.first_apd90(voltage, t), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(scans.first_apd90(voltage, np.broadcast_to(t, voltage.shape)), expected, atol=1e-9)
    np.testing.assert_array_equal(scans.resting_potentials(voltage), [-80.0, -80.0, -80.0])


def test_first_apd90_takes_the_first_of_several_aps() -> None:
    t = np.arange(-10.0, 991.0)
    two = _trapezoid_ap(100.0, t) + _trapezoid_ap(150.0, t - 500) + 80.0  # second AP at 500 ms
    one = _trapezoid_ap(200.0, t)
    apds = scans.first_apd90(np.vstack([two, one]), t)
    np.testing.assert_allclose(apds, [100 + 90 - 1 / 3, 200 + 90 - 1 / 3], atol=1e-9)


def test_first_apd90_is_nan_only_where_a_trace_has_no_upstroke() -> None:
    """One flat trace (e.g. full I_Na block) made the Web Lab's whole measurement fail; labkit keeps the
    other levels' APDs, and the scaled APD of the flat level is NaN too."""
    t = np.arange(-10.0, 991.0)
    with pytest.warns(sim.NoActionPotentialWarning, match="trace 1"):
        apds = scans.first_apd90(np.vstack([_trapezoid_ap(100.0, t), np.full(t.shape, -80.0)]), t)
    assert apds[0] == pytest.approx(100 + 90 - 1 / 3) and np.isnan(apds[1])
    scaled = scans.scaled_to_control(apds, 0)
    assert scaled[0] == pytest.approx(100.0) and np.isnan(scaled[1])


# ---------------------------------------------------------------------- the scan loop
class FakeCell:
    """Stands in for a PacedSimulation: logs calls, records a beat whose level encodes the parameter."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.parameter = math.nan

    def reset(self) -> None:
        self.calls.append(("reset",))

    def pace_to_steady_state(self, period, *, max_paces, norm_threshold, num_inner_paces):
        self.calls.append(("pace", period, max_paces, norm_threshold, num_inner_paces))
        paces = 3 if self.parameter > 0.5 else max_paces
        return SimpleNamespace(num_paces=paces, found=paces < max_paces)

    def record(self, duration):
        self.calls.append(("record", duration))
        import pandas as pd

        t = np.arange(-10.0, duration - 10 + 1)
        return pd.DataFrame({"time": t, "membrane_voltage": np.full(t.shape, -80.0 + self.parameter)})


def test_steady_state_scan_resets_sets_paces_and_records_each_level() -> None:
    cell = FakeCell()
    seen = []

    def set_value(v: float) -> None:
        cell.calls.append(("set", v))
        cell.parameter = v

    result = scans.steady_state_scan(
        cell, set_value, [0.0, 1.0], pacing_period=500.0, max_paces=7, norm_threshold=1e-5,
        num_inner_paces=1, detail_duration=100.0, progress=lambda *a: seen.append(a),
    )
    per_level = [("reset",), ("set", None), ("pace", 500.0, 7, 1e-5, 1), ("record", 100.0)]
    assert [c[0] for c in cell.calls] == [c[0] for c in per_level] * 2
    assert [c[1] for c in cell.calls if c[0] == "set"] == [0.0, 1.0]
    assert result.voltage.shape == (2, 101) and result.time.shape == (101,)
    assert result.time[0] == -10.0 and result.time[-1] == 90.0
    np.testing.assert_array_equal(result.voltage[:, 0], [-80.0, -79.0])
    np.testing.assert_array_equal(result.num_paces, [7, 3])
    np.testing.assert_array_equal(result.found, [False, True])
    assert result.detailed_time.shape == (2, 101)
    assert [s[:4] for s in seen] == [(0, 0.0, 7, False), (1, 1.0, 3, True)]


def test_steady_state_scan_without_reset_carries_state_over() -> None:
    cell = FakeCell()
    scans.steady_state_scan(cell, lambda v: None, [1.0, 2.0], reset=False, max_paces=2, detail_duration=10.0)
    assert ("reset",) not in cell.calls


def test_steady_state_scan_needs_levels() -> None:
    with pytest.raises(ValueError, match="at least one level"):
        scans.steady_state_scan(FakeCell(), lambda v: None, [])


# ---------------------------------------------------------------------- inputs
def _toy_model() -> CellModel:
    m = myokit.Model("toy")
    c = m.add_component("c")
    t = c.add_variable("time")
    t.set_binding("time")
    t.set_rhs(0)
    a = c.add_variable("a")
    a.set_rhs(3.0)
    g = c.add_variable("g")
    g.set_rhs("2 * a")
    x = c.add_variable("x")
    x.promote(1.0)
    x.set_rhs("-g * x")
    y = c.add_variable("y")
    y.set_rhs("x * a")
    terms = {"a_term": "c.a", "g_term": "c.g", "x_term": "c.x", "y_term": "c.y"}
    return CellModel(m, name="toy", terms=terms)


def test_make_input_freezes_a_computed_constant() -> None:
    model = _toy_model()
    assert scans.make_input(model, "g_term") == 6.0
    g = model.var("g_term")
    assert g.is_literal() and g.eval() == 6.0
    assert scans.make_input(model, "a_term") == 3.0  # a literal is left as it is


def test_make_input_refuses_states_time_dependent_and_missing_terms() -> None:
    model = _toy_model()
    with pytest.raises(ValueError, match="state variable"):
        scans.make_input(model, "x_term")
    with pytest.raises(ValueError, match="changes with time"):
        scans.make_input(model, "y_term")
    with pytest.raises(sim.MissingTermError, match="oxmeta:membrane_fast_sodium_current_conductance"):
        scans.make_input(model, "membrane_fast_sodium_current_conductance")


def test_set_raw_parameter_changes_the_compiled_constant_and_the_snapshot() -> None:
    model = _toy_model()
    scans.make_input(model, "g_term")
    set_calls = []
    cell = SimpleNamespace(model=model, myokit_simulation=SimpleNamespace(
        set_constant=lambda q, v: set_calls.append((q, v))))
    scans.set_raw_parameter(cell, "g_term", 0.5 * 6.0)
    assert set_calls == [("c.g", 3.0)]
    assert model.var("g_term").eval() == 3.0
    with pytest.raises(ValueError, match="not a literal"):
        scans.set_raw_parameter(cell, "y_term", 1.0)


# ---------------------------------------------------------------------- reference models (fast ones)
def _check_against_reference(model: str, protocol: str, name: str, ours: np.ndarray) -> None:
    expected = load_reference_1d(webdata_path("reference", model, protocol, f"outputs_{name}.csv"))
    assert ours.shape == expected.shape
    if "resting" in name:
        # 0.5 mV on a resting potential near -85 mV, expressed in % of the control
        tolerance = 100 * RP_TOLERANCE_MV / 85.0
        np.testing.assert_allclose(ours, expected, rtol=0, atol=tolerance)
    else:
        np.testing.assert_allclose(ours, expected, rtol=APD_TOLERANCE_PERCENT / 100, atol=0)


def _block_scan(model_name: str, current: str) -> tuple[np.ndarray, np.ndarray]:
    block = scans.block_spec(current)
    model = sim.load_model(model_path(model_name))
    control_value = scans.make_input(model, block.term)
    model.replace_stimulus(period=1000)
    cell = model.simulation()
    levels = block.block_levels
    scan = scans.steady_state_scan(
        cell, lambda f: scans.set_raw_parameter(cell, block.term, control_value * f), levels, max_paces=1000
    )
    apd90 = scans.first_apd90(scan.voltage, scan.time)
    rp = scans.resting_potentials(scan.voltage)
    return scans.scaled_to_control(apd90, -1), scans.scaled_resting_potential(rp, len(levels) - 1)


@pytest.mark.parametrize("model_name", ["luo_rudy_1991", "beeler_reuter_model_1977"])
def test_ik1_block_reproduces_the_reference(model_name: str) -> None:
    scaled_apd, scaled_rp = _block_scan(model_name, "IK1")
    _check_against_reference(model_name, "IK1_block", "scaled_APD90", scaled_apd)
    _check_against_reference(model_name, "IK1_block", "scaled_resting_potential", scaled_rp)


def test_potassium_variation_reproduces_the_reference_on_luo_rudy_1991() -> None:
    model = sim.load_model(model_path("luo_rudy_1991"))
    model.clamp(scans.POTASSIUM)
    default = model.value(scans.POTASSIUM)
    levels = scans.potassium_test_concentrations(default)
    control = scans.control_index(levels, default)
    model.replace_stimulus(period=1000)
    cell = model.simulation()
    scan = scans.steady_state_scan(
        cell, lambda k: cell.set_parameter(scans.POTASSIUM, k), levels, max_paces=1000
    )
    apd90 = scans.first_apd90(scan.voltage, scan.time)
    rp = scans.resting_potentials(scan.voltage)
    protocol = "ExtracellularPotassiumVariation"
    _check_against_reference("luo_rudy_1991", protocol, "scaled_APD90", scans.scaled_to_control(apd90, control))
    _check_against_reference(
        "luo_rudy_1991", protocol, "scaled_resting_potential", scans.scaled_resting_potential(rp, control)
    )


# ---------------------------------------------------------------------- the notebooks
@pytest.mark.parametrize(
    "notebook", ["ion_current_block.ipynb", "extracellular_potassium_variation.ipynb", "graph_state.ipynb"]
)
def test_notebooks_pass_the_protocol_check(notebook: str) -> None:
    interface = check_protocol((NOTEBOOKS / notebook).read_bytes())
    assert interface.plots


def test_block_notebook_declares_every_conductance_optional() -> None:
    interface = check_protocol((NOTEBOOKS / "ion_current_block.ipynb").read_bytes())
    assert set(interface.optional) == {spec.term for spec in scans.BLOCKS.values()}
    assert interface.parameters["current"] == "IKr"
    assert interface.parameters["max_paces"] is None and interface.parameters["block_levels"] is None
    names = {o.name for o in interface.outputs}
    assert {"scaled_APD90", "scaled_resting_potential", "detailed_voltage"} <= names


def _run_notebook(notebook: str, out: Path, model_name: str, **params: object) -> Path:
    args = [sys.executable, "-m", "papermill", "-k", "python3", str(NOTEBOOKS / notebook), str(out / "run.ipynb"),
            "-p", "model_path", str(model_path(model_name)), "-p", "output_dir", str(out / "outputs")]
    for key, value in params.items():
        args += ["-p", key, str(value)]
    subprocess.run(args, check=True, capture_output=True, env=dict(os.environ))
    return out / "outputs"


def _saved(outputs: Path, name: str) -> np.ndarray:
    return np.atleast_1d(np.loadtxt(outputs / f"{name}.csv", delimiter=","))


@pytest.mark.slow
def test_block_notebook_fails_clearly_without_the_term(tmp_path: Path) -> None:
    """Beeler-Reuter has no I_Kr: the run fails with a MissingTermError naming the term."""
    with pytest.raises(subprocess.CalledProcessError) as failure:
        _run_notebook("ion_current_block.ipynb", tmp_path, "beeler_reuter_model_1977", current="IKr")
    assert "MissingTermError" in failure.value.stderr.decode()
    run = nbformat.read(tmp_path / "run.ipynb", as_version=4)
    text = "".join(o.get("evalue", "") for c in run.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "oxmeta:membrane_rapid_delayed_rectifier_potassium_current_conductance" in text


@pytest.mark.slow
def test_block_notebook_on_luo_rudy_1991(tmp_path: Path) -> None:
    outputs = _run_notebook("ion_current_block.ipynb", tmp_path, "luo_rudy_1991", current="IK1", max_paces=1000)
    for name in ("scaled_APD90", "scaled_resting_potential"):
        _check_against_reference("luo_rudy_1991", "IK1_block", name, _saved(outputs, name))
    assert np.loadtxt(outputs / "detailed_voltage.csv", delimiter=",").shape == (11, 1001)


@pytest.mark.slow
def test_potassium_notebook_on_tt06(tmp_path: Path) -> None:
    """About 3 minutes: 10 levels of up to 1000 TT06 paces."""
    outputs = _run_notebook("extracellular_potassium_variation.ipynb", tmp_path, "ten_tusscher_model_2006_epi",
                            max_paces=1000)
    for name in ("scaled_APD90", "scaled_resting_potential"):
        _check_against_reference("ten_tusscher_model_2006_epi", "ExtracellularPotassiumVariation", name,
                                 _saved(outputs, name))


@pytest.mark.slow
def test_graph_state_notebook_on_tt06(tmp_path: Path) -> None:
    """The first rows of the TT06 reference (spec §2.13 g): the initial state, then t = 1 ms."""
    outputs = _run_notebook("graph_state.ipynb", tmp_path, "ten_tusscher_model_2006_epi")
    state = np.loadtxt(outputs / "state.csv", delimiter=",")
    assert state.shape == (19, 1001)
    initial = [-85.23, 0.00621, 0.4712, 0.0095, 0.00172, 0.7444, 0.7045, 3.373e-05, 0.7888, 0.9755, 0.9953,
               0.999998, 2.42e-08, 0.000126, 3.64, 0.00036, 0.9073, 8.604, 136.89]
    np.testing.assert_allclose(state[:, 0], initial, rtol=1e-12)
    np.testing.assert_allclose(state[[0, 1, 14, 18], 1],
                               [-85.23133953897161, 0.006083952509706479, 3.63998276863664, 136.8900160512927],
                               rtol=0.005, atol=2.5e-4)
    voltage = _saved(outputs, "voltage")
    assert voltage[:100].max() < -85 and voltage.max() > 30  # the model's own stimulus, at 100 ms
