"""Reference files are read in both layouts, and tolerances are applied as documented."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from shared_data import webdata

from labkit.validation.catalogue import PROTOCOLS
from labkit.validation.compare import compare, tolerance
from labkit.validation.reference import read_reference_csv, reference_outputs


def test_reference_layouts_are_read_with_their_shapes() -> None:
    tt06 = webdata() / "reference" / "ten_tusscher_model_2006_epi"
    _, paces = read_reference_csv(tt06 / "SteadyStateRunner" / "outputs_num_paces.csv")
    assert paces.shape == () and float(paces) == 1000
    _, voltage = read_reference_csv(tt06 / "SteadyStateRunner" / "outputs_detailed_voltage.csv")
    assert voltage.shape == (1001,) and voltage[0] == pytest.approx(-85.4166538999949)
    _, apd = read_reference_csv(tt06 / "SteadyStateRestitution" / "outputs_APD.csv")
    assert apd.shape == (2, 15)  # the file holds 15 rows of 2 columns: the transpose
    assert apd[0, 0] == pytest.approx(309.0408588969242)


def test_s1s2_files_that_declare_fewer_values_than_they_hold_keep_every_value() -> None:
    path = webdata() / "reference" / "aslanidi_Purkinje_model_2009" / "S1S2" / "outputs_APD90.csv"
    _, values = read_reference_csv(path)
    assert values.size == len(path.read_text().splitlines()) - 2


def test_every_reference_protocol_has_a_catalogue_entry_for_each_output() -> None:
    refs = reference_outputs(webdata() / "reference")
    assert len({r.model for r in refs}) == 30
    missing = {(r.protocol, r.name) for r in refs
               if r.protocol not in PROTOCOLS or r.name not in PROTOCOLS[r.protocol].outputs}
    assert missing == set()


def test_a_broken_reference_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "outputs_x.csv"
    bad.write_text("1,3\n1\n2\n3\n")
    with pytest.raises(ValueError, match="description"):
        read_reference_csv(bad)


@pytest.mark.parametrize("kind, ref, ok, bad", [
    ("apd", 300.0, 302.9, 303.1),        # 1 % of 300 ms
    ("apd", 50.0, 51.9, 52.1),           # 2 ms floor
    ("normalised", -0.5, -0.519, -0.521),
    ("voltage", -85.0, -85.49, -85.51),
    ("count", 500.0, 549.0, 551.0),
    ("slope", 1.0, 1.069, 1.071),
])
def test_tolerances(kind: str, ref: float, ok: float, bad: float) -> None:
    assert compare(np.array([ok]), np.array([ref]), kind).passed
    assert not compare(np.array([bad]), np.array([ref]), kind).passed


def test_scaled_outputs_take_their_floor_from_the_control_value() -> None:
    # 2 ms on a 300 ms control APD is 0.667 % of control
    assert tolerance("scaled_apd", np.array([50.0]), control=300.0)[0] == pytest.approx(0.6667, rel=1e-3)
    assert compare(np.array([50.6]), np.array([50.0]), "scaled_apd", control=300.0).passed
    assert not compare(np.array([50.7]), np.array([50.0]), "scaled_apd", control=300.0).passed
    assert tolerance("scaled_voltage", np.array([-100.0]), control=-85.0)[0] == pytest.approx(0.588, rel=1e-3)


def test_shape_mismatch_nan_and_transpose() -> None:
    result = compare(np.zeros(5), np.zeros(6), "apd")
    assert not result.passed and "shape" in result.note
    assert not compare(np.array([np.nan]), np.array([1.0]), "apd").passed
    assert not compare(np.array([1.0]), np.array([np.nan]), "apd").passed
    both = compare(np.array([np.nan, 2.0]), np.array([np.nan, 2.0]), "normalised")
    assert both.passed and "reference has NaN too" in both.note  # the Web Lab's harness: NaN == NaN
    assert not compare(np.array([np.nan, 2.5]), np.array([np.nan, 2.0]), "normalised").passed
    ref = np.arange(6.0).reshape(2, 3)
    assert compare(ref.T.copy(), ref, "apd").passed
    assert compare(np.zeros(4).reshape(4, 1), np.zeros(4), "apd").passed


def test_a_reference_count_at_the_harness_cap_means_no_steady_state_within_1000_paces() -> None:
    capped = compare(np.array([4252.0]), np.array([1000.0]), "count")
    assert capped.passed and "capped" in capped.note
    assert not compare(np.array([640.0]), np.array([1000.0]), "count").passed  # we settled, they did not
    assert not compare(np.array([4252.0]), np.array([2640.0]), "count").passed  # only the cap is special
    assert not compare(np.array([1200.0]), np.array([999.0]), "count").passed


def test_a_run_is_capped_where_its_reference_count_shows_the_harness_cap() -> None:
    from labkit.validation.catalogue import PROTOCOLS
    from labkit.validation.reference import ReferenceOutput
    from labkit.validation.run import run_parameters

    def count(value: float) -> ReferenceOutput:
        return ReferenceOutput("m", "SteadyStateRunner2Hz", "num_paces", "", np.array([value]), Path("x"))

    protocol = PROTOCOLS["SteadyStateRunner2Hz"]
    assert protocol.parameters["max_paces"] == 10000
    assert run_parameters(protocol, [count(1000.0)])["max_paces"] == 1000
    assert run_parameters(protocol, [count(2640.0)])["max_paces"] == 10000  # settled after the cap
    assert run_parameters(protocol, [])["max_paces"] == 10000
    assert protocol.parameters["max_paces"] == 10000  # the catalogue itself is untouched
    assert "max_paces" not in run_parameters(PROTOCOLS["S1S2"], [count(1000.0)])


def test_models_outside_the_web_lab_harness_run_with_the_protocol_defaults() -> None:
    from labkit.validation.catalogue import HARNESS_MODELS, PROTOCOLS
    from labkit.validation.reference import ReferenceOutput
    from labkit.validation.run import run_parameters

    def count(model: str, value: float) -> ReferenceOutput:
        return ReferenceOutput(model, "SteadyStateRunner", "num_paces", "", np.array([value]), Path("x"))

    steady = PROTOCOLS["SteadyStateRunner"]
    assert "noble_model_1991" not in HARNESS_MODELS and "luo_rudy_1991" in HARNESS_MODELS
    # outside the harness: the protocol's default cap, whatever the reference count says
    assert run_parameters(steady, [count("noble_model_1991", 1000.0)], "noble_model_1991")["max_paces"] == 10000
    # inside it: the harness's override, as the catalogue has it
    assert run_parameters(steady, [count("luo_rudy_1991", 1000.0)], "luo_rudy_1991")["max_paces"] == 1000
    # every pacing protocol, with the Web Lab protocol's own cap (which is 1000 for some blocks)
    outside = {name: run_parameters(PROTOCOLS[name], [], "ten_tusscher_model_2004_endo") for name in PROTOCOLS}
    inside = {name: run_parameters(PROTOCOLS[name], [], "luo_rudy_1991") for name in PROTOCOLS}
    assert outside["SteadyStateRunner4Hz"]["max_paces"] == 10000 and inside["SteadyStateRunner4Hz"]["max_paces"] == 1000
    assert outside["ExtracellularPotassiumVariation"]["max_paces"] == 10000
    assert inside["ExtracellularPotassiumVariation"]["max_paces"] == 1000
    assert outside["SteadyStateRestitution"]["max_steady_state_beats"] == 10000
    assert inside["SteadyStateRestitution"]["max_steady_state_beats"] == 1000
    assert (outside["RyR_block"]["max_paces"], inside["RyR_block"]["max_paces"]) == (10000, 1000)
    assert outside["IK1_block"]["max_paces"] == inside["IK1_block"]["max_paces"] == 1000
    assert outside["RyR_block"]["current"] == "RyR"  # the caps replace nothing else
    assert outside["ICaL"] == inside["ICaL"] == {}  # voltage clamps have no cap
    assert steady.parameters["max_paces"] == 1000
