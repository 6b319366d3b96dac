"""Compatibility of protocols with models (by oxmeta terms) and the experiments a new version implies."""
from __future__ import annotations

from pathlib import Path

import pytest
from proto_helpers import HH, OHARA, TT06, notebook

import labkit
from labkit.protocols import Interface, compatibility

LACKING = ["membrane_persistent_sodium_current", "membrane_background_potassium_current"]
CA = "cytosolic_calcium_concentration"


@pytest.fixture
def models(lab: labkit.Lab, models_dir: Path) -> labkit.Lab:
    lab.add_model(models_dir / TT06, name="tt06")
    lab.add_model(models_dir / HH, name="hh")
    lab.add_model(models_dir / OHARA, name="ohara")
    return lab


def test_compatibility_lists_exactly_the_missing_required_terms(models: labkit.Lab) -> None:
    lab = models
    tt06 = lab.annotations("tt06")
    assert all(t not in tt06 for t in LACKING) and "membrane_voltage" in tt06 and CA in tt06
    assert all(t in lab.annotations("ohara") for t in LACKING)
    requires = ["membrane_voltage", LACKING[0], CA, LACKING[1]]
    lab.add_protocol({"needs.ipynb": notebook(requires)}, name="needs")

    result = lab.compatibility("tt06", "needs")
    assert result.missing_required == tuple(t for t in requires if t not in tt06) == tuple(LACKING)
    assert result.missing_optional == () and not result.compatible
    assert result.explain() == "incompatible: the model does not annotate " + ", ".join(LACKING)

    assert lab.compatibility("ohara", "needs").compatible
    hh = lab.compatibility("hh", "needs")
    assert hh.missing_required == tuple(t for t in requires if t not in lab.annotations("hh"))
    assert hh.missing_required == (LACKING[0], CA, LACKING[1])


def test_missing_optional_terms_do_not_make_a_model_incompatible(models: labkit.Lab) -> None:
    lab = models
    lab.add_protocol({"opt.ipynb": notebook(["membrane_voltage"], [LACKING[0], CA])}, name="opt")
    tt06 = lab.compatibility("tt06", "opt")
    assert tt06.compatible and tt06.missing_required == () and tt06.missing_optional == (LACKING[0],)
    assert tt06.explain() == f"compatible (optional terms not annotated: {LACKING[0]})"
    hh = lab.compatibility("hh", "opt")
    assert hh.compatible and hh.missing_optional == (LACKING[0], CA)
    ohara = lab.compatibility("ohara", "opt")
    assert ohara.compatible and ohara.missing_optional == () and ohara.explain() == "compatible"


def test_compatibility_follows_the_versions_asked_for(models: labkit.Lab, models_dir: Path) -> None:
    lab = models
    lab.add_protocol({"ca.ipynb": notebook([CA])}, name="ca")
    lab.add_protocol({"ca.ipynb": notebook(["membrane_voltage"])}, name="ca")  # v2 relaxes it
    lab.add_model({TT06: (models_dir / HH).read_bytes()}, name="tt06")  # tt06 v2: no calcium
    assert lab.compatibility("tt06", "ca", model_version=1, protocol_version=1).compatible
    assert lab.compatibility("tt06", "ca", model_version=2, protocol_version=1).missing_required == (CA,)
    assert lab.compatibility("tt06", "ca").compatible  # latest protocol needs only the voltage


def test_state_variable_is_implicit_in_every_model() -> None:
    iface = Interface("t", "", ("state_variable", "membrane_voltage"), (), (), ())
    assert compatibility(iface, {"membrane_voltage"}).compatible
    assert compatibility(iface, set()).missing_required == ("membrane_voltage",)


# -- planning -------------------------------------------------------------------------------------------
def pairs(saved: labkit.SaveResult) -> set[tuple[str, int, str, int]]:
    return {(p.model.entity, p.model.number, p.protocol.entity, p.protocol.number) for p in saved.planned}


def test_a_new_protocol_plans_one_experiment_per_compatible_model_at_its_latest_version(
        models: labkit.Lab, models_dir: Path) -> None:
    lab = models
    lab.add_model({TT06: (models_dir / TT06).read_bytes() + b"\n"}, name="tt06")  # tt06 is now at v2
    saved = lab.add_protocol({"ca.ipynb": notebook(["membrane_voltage", CA])}, name="ca")
    assert pairs(saved) == {("tt06", 2, "ca", 1), ("ohara", 1, "ca", 1)}  # hh has no calcium
    assert len(saved.planned) == 2
    assert all(p.protocol == saved.version for p in saved.planned)
    assert {p.model.commit for p in saved.planned} == {lab.version("model", "tt06").commit,
                                                      lab.version("model", "ohara").commit}

    assert pairs(lab.add_protocol({"v.ipynb": notebook(["membrane_voltage"])}, name="v")) == \
        {("tt06", 2, "v", 1), ("hh", 1, "v", 1), ("ohara", 1, "v", 1)}
    assert lab.add_protocol({"none.ipynb": notebook(["membrane_voltage", *LACKING, CA, "membrane_potassium_current"])},
                            name="none").planned == []


def test_a_new_model_version_plans_against_compatible_protocols(lab: labkit.Lab, models_dir: Path) -> None:
    assert lab.add_model(models_dir / HH, name="hh").planned == []  # no protocols yet
    lab.add_protocol({"v.ipynb": notebook(["membrane_voltage"])}, name="v")
    lab.add_protocol({"v.ipynb": notebook(["membrane_voltage", "time"])}, name="v")  # v is now at v2
    lab.add_protocol({"ca.ipynb": notebook([CA])}, name="ca")
    lab.add_protocol({"nap.ipynb": notebook(LACKING[:1])}, name="nap")

    saved = lab.add_model(models_dir / TT06, name="tt06")
    assert pairs(saved) == {("tt06", 1, "v", 2), ("tt06", 1, "ca", 1)}
    assert all(p.model == saved.version for p in saved.planned)
    saved = lab.add_model({TT06: (models_dir / OHARA).read_bytes()}, name="tt06")  # v2 gains INaL
    assert pairs(saved) == {("tt06", 2, "v", 2), ("tt06", 2, "ca", 1), ("tt06", 2, "nap", 1)}
    assert pairs(lab.add_model({HH: (models_dir / HH).read_bytes() + b"\n"}, name="hh")) == {("hh", 2, "v", 2)}


def test_planning_runs_nothing(lab: labkit.Lab, models_dir: Path) -> None:
    lab.add_model(models_dir / TT06, name="tt06")
    saved = lab.add_protocol({"v.ipynb": notebook(["membrane_voltage"])}, name="v")
    assert len(saved.planned) == 1
    assert lab.runs() == []
