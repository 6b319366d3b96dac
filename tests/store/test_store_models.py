"""Models: hostile or broken CellML is refused with nothing stored; annotations are indexed and
queryable, and agree with the CellML parser."""
from __future__ import annotations

from pathlib import Path

import pytest
from store_helpers import BR, HH, LR91, OHARA, TT06, git, lab_state

import labkit
from labkit.cellml import parse_cellml_file
from labkit.errors import InvalidInput

IKR = "membrane_rapid_delayed_rectifier_potassium_current"

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE model [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<model xmlns="http://www.cellml.org/cellml/1.0#" name="m">
  <component name="c"><variable name="v" units="mV" initial_value="&secret;"/></component>
</model>
"""
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<model xmlns="http://www.cellml.org/cellml/1.0#" name="m">
  <component name="c"><variable name="v" units="&lol9;"/></component>
</model>
"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE model SYSTEM "http://attacker.invalid/evil.dtd">
<model xmlns="http://www.cellml.org/cellml/1.0#" name="m">
  <component name="c"><variable name="v" units="mV"/></component>
</model>
"""
BROKEN = {
    "not XML": (b"this is not a model at all\n", "not XML"),
    "binary": (bytes(range(256)) * 4, "not XML"),
    "empty": (b"", "empty file"),
    "truncated": (b'<model xmlns="http://www.cellml.org/cellml/1.0#" name="m"><component name="c">',
                  "not well-formed XML"),
    "XXE": (XXE, "DOCTYPE"),
    "billion laughs": (BILLION_LAUGHS, "DOCTYPE"),
    "external DTD": (EXTERNAL_DTD, "external DTD"),
    "HTML": (b"<html><body>hello</body></html>", "not a CellML model"),
    "no variables": (b'<model xmlns="http://www.cellml.org/cellml/1.1#" name="m"><component name="c"/></model>',
                     "no component containing a variable"),
}


def test_broken_or_hostile_cellml_is_refused_and_nothing_is_stored(lab: labkit.Lab, tmp_path: Path) -> None:
    before = lab_state(lab)
    for case, (data, reason) in BROKEN.items():
        with pytest.raises(InvalidInput) as err:
            lab.add_model({"bad.cellml": data}, name="bad")
        assert str(err.value).startswith("not a usable CellML model: ") and reason in str(err.value), case
        assert "root:" not in str(err.value)  # the XXE never read /etc/passwd
        path = tmp_path / "bad.cellml"
        path.write_bytes(data)
        with pytest.raises(InvalidInput, match=reason):
            lab.add_model(path)  # from a file, named after it
        assert lab_state(lab) == before, case
    assert lab.names("model") == []
    assert not (lab.settings.repositories / "models" / "bad.git").exists()


def test_a_broken_new_version_leaves_the_model_as_it_was(lab: labkit.Lab, models_dir: Path) -> None:
    v1 = lab.add_model(models_dir / TT06, name="tt06").version
    before = lab_state(lab)
    for case, (data, reason) in BROKEN.items():
        with pytest.raises(InvalidInput, match=reason):
            lab.add_model({TT06: data}, name="tt06")
        with pytest.raises(InvalidInput, match=reason):
            lab.add_model({TT06: data}, name="tt06", parent=v1.commit)
    assert lab_state(lab) == before
    assert [v.number for v in lab.versions("model", "tt06")] == [1]
    assert git(lab.settings.repositories / "models" / "tt06.git", "rev-parse", "main") == v1.commit
    assert lab.read_file("model", "tt06") == (models_dir / TT06).read_bytes()


def test_models_with_term_finds_exactly_the_models_that_annotate_it(lab: labkit.Lab, models_dir: Path) -> None:
    files = {"tt06": TT06, "hh": HH, "ohara": OHARA, "br": BR, "lr91": LR91}
    expected = sorted(name for name, f in files.items()
                      if IKR in {a.term for a in parse_cellml_file(models_dir / f).annotations})
    assert expected == ["ohara", "tt06"]  # the reference data has not changed under us
    for name, f in files.items():
        lab.add_model(models_dir / f, name=name)
    assert lab.models_with_term(IKR) == expected
    assert lab.models_with_term("membrane_voltage") == sorted(files)
    assert lab.models_with_term("membrane_persistent_sodium_current") == ["ohara"]
    assert lab.models_with_term("no_such_term") == []


def test_models_with_term_looks_at_latest_versions_only(lab: labkit.Lab, models_dir: Path) -> None:
    lab.add_model(models_dir / TT06, name="switch")
    assert lab.models_with_term(IKR) == ["switch"]
    lab.add_model({TT06: (models_dir / HH).read_bytes()}, name="switch")  # v2 is a different model
    assert lab.models_with_term(IKR) == []
    assert IKR in lab.annotations("switch", 1) and IKR not in lab.annotations("switch")


def test_annotations_map_each_term_to_its_component_and_variable(lab: labkit.Lab, models_dir: Path) -> None:
    for file in (TT06, HH, OHARA):
        name = Path(file).stem
        lab.add_model(models_dir / file, name=name)
        parsed = parse_cellml_file(models_dir / file)
        assert lab.annotations(name) == {a.term: f"{a.component}.{a.variable}" for a in parsed.annotations}
        assert len(lab.annotations(name)) == len(parsed.annotations) > 0
        rows = lab.store.annotations(name, user=lab.user)
        assert {(r.term, r.cmeta_id, r.units, r.is_state) for r in rows} == \
            {(a.term, a.cmeta_id, a.units, a.is_state) for a in parsed.annotations}


def test_tt06_annotations_known_values(lab: labkit.Lab, models_dir: Path) -> None:
    lab.add_model(models_dir / TT06, name="tt06")
    annotations = lab.annotations("tt06")
    assert annotations["membrane_voltage"].endswith(".V")
    assert annotations[IKR].endswith(".i_Kr")
    assert "membrane_persistent_sodium_current" not in annotations
    states = {r.term for r in lab.store.annotations("tt06", user=lab.user) if r.is_state}
    assert "membrane_voltage" in states and "membrane_capacitance" not in states


# the published models that annotate I_Kr, as labkit.cellml.parse_cellml_file reads them
WITH_IKR = ["Shannon2004", "aslanidi_Purkinje_model_2009", "aslanidi_atrial_model_2009", "carro_2011_epi",
            "decker_2009", "fink_noble_giles_model_2008", "grandi_pasqualini_bers_2010_ss_endo", "kurata_model_2002",
            "livshitz_rudy_2007", "mahajan_shiferaw_2008", "noble_model_1998", "nygren_atrial_model_1998",
            "ohara_rudy_2011_epi", "paci_hyttinen_aaltosetala_severi_atrialVersion",
            "paci_hyttinen_aaltosetala_severi_ventricularVersion", "sakmann_model_2000_epi",
            "shannon_wang_puglisi_weber_bers_2004", "stewart_zhang_model_2008_ss", "ten_tusscher_model_2004_endo",
            "ten_tusscher_model_2004_epi", "ten_tusscher_model_2006_epi", "viswanathan_model_1999_epi",
            "zhang_SAN_model_2000_0D_capable"]


def test_all_published_models_are_accepted_and_indexed(lab: labkit.Lab, models_dir: Path) -> None:
    files = sorted(models_dir.glob("*.cellml"))
    assert len(files) == 49
    for f in files:
        assert lab.add_model(f).version.number == 1
    assert lab.names("model") == sorted(f.stem for f in files)
    assert lab.models_with_term(IKR) == WITH_IKR
    assert lab.models_with_term("membrane_voltage") == sorted(f.stem for f in files)  # every one has V
