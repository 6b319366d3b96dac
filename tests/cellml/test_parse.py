"""Loading the published Web Lab models and small hand-written CellML documents."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from lxml import etree

from labkit.cellml import (
    OXMETA_NS,
    Annotation,
    CellMLError,
    CellMLModel,
    oxmeta_terms,
    parse_cellml,
    parse_cellml_file,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
WEBDATA = REPO_ROOT / ".." / "shared" / "webdata"
MODELS = WEBDATA / "models"

# Annotation counts measured once with labkit.cellml and cross-checked against
# an independent lxml count of bqbiol:is elements and against Myokit below.
EXPECTED_COUNTS: dict[str, int] = {
    "Shannon2004": 38,
    "aslanidi_Purkinje_model_2009": 60,
    "aslanidi_atrial_model_2009": 36,
    "beeler_reuter_model_1977": 25,
    "bondarenko_model_2004_apex": 6,
    "carro_2011_epi": 53,
    "courtemanche_ramirez_nattel_model_1998": 7,
    "decker_2009": 48,
    "demir_model_1994": 20,
    "difrancesco_noble_model_1985": 43,
    "dokos_model_1996": 20,
    "earm_noble_model_1990": 41,
    "earm_noble_model_1990_modified": 7,
    "espinosa_model_1998_normal": 46,
    "fink_noble_giles_model_2008": 57,
    "grandi2010ss": 10,
    "grandi_pasqualini_bers_2010_ss_endo": 59,
    "hilgemann_noble_model_1987": 37,
    "hodgkin_huxley_model_using_volts": 3,
    "hodgkin_huxley_squid_axon_model_1952_modified": 14,
    "hund_rudy_2004_a": 10,
    "iribe_model_2006_without_otherwise_section": 24,
    "iyer_model_2004": 2,
    "jafri_rice_winslow_model_1998": 42,
    "kurata_model_2002": 18,
    "livshitz_rudy_2007": 41,
    "luo_rudy_1991": 32,
    "luo_rudy_1994": 39,
    "mahajan_2008": 10,
    "mahajan_shiferaw_2008": 50,
    "noble_SAN_model_1989": 22,
    "noble_model_1991": 58,
    "noble_model_1998": 65,
    "noble_noble_SAN_model_1984": 22,
    "nygren_atrial_model_1998": 49,
    "ohara_rudy_2011_epi": 58,
    "paci_hyttinen_aaltosetala_severi_atrialVersion": 45,
    "paci_hyttinen_aaltosetala_severi_ventricularVersion": 46,
    "pandit_model_2001_epi": 6,
    "priebe_beuckelmann_model_1998": 10,
    "sakmann_model_2000_epi": 24,
    "shannon_wang_puglisi_weber_bers_2004": 63,
    "stewart_zhang_model_2008_ss": 44,
    "ten_tusscher_model_2004_endo": 60,
    "ten_tusscher_model_2004_epi": 60,
    "ten_tusscher_model_2006_epi": 66,
    "viswanathan_model_1999_epi": 22,
    "zhang_SAN_model_2000_0D_capable": 18,
    "zhang_SAN_model_2000_all": 1,
}

# Published models whose oxmeta RDF sits (at least partly) inside components or
# variables rather than directly under <model>. Myokit 1.39 reads only the
# latter, so it sees none of these annotations.
RDF_OUTSIDE_MODEL: frozenset[str] = frozenset({
    "Shannon2004",
    "bondarenko_model_2004_apex",
    "courtemanche_ramirez_nattel_model_1998",
    "demir_model_1994",
    "dokos_model_1996",
    "earm_noble_model_1990_modified",
    "espinosa_model_1998_normal",
    "grandi2010ss",
    "hilgemann_noble_model_1987",
    "hodgkin_huxley_model_using_volts",
    "hodgkin_huxley_squid_axon_model_1952_modified",
    "hund_rudy_2004_a",
    "iribe_model_2006_without_otherwise_section",
    "iyer_model_2004",
    "jafri_rice_winslow_model_1998",
    "kurata_model_2002",
    "livshitz_rudy_2007",
    "luo_rudy_1991",
    "mahajan_2008",
    "noble_SAN_model_1989",
    "noble_noble_SAN_model_1984",
    "nygren_atrial_model_1998",
    "paci_hyttinen_aaltosetala_severi_atrialVersion",
    "paci_hyttinen_aaltosetala_severi_ventricularVersion",
    "pandit_model_2001_epi",
    "priebe_beuckelmann_model_1998",
    "sakmann_model_2000_epi",
    "stewart_zhang_model_2008_ss",
    "viswanathan_model_1999_epi",
    "zhang_SAN_model_2000_0D_capable",
    "zhang_SAN_model_2000_all",
})

# Terms used by published models that the oxmeta ontology does not define
# (it has extracellular_bath_potassium_concentration instead).
NON_ONTOLOGY_TERMS: dict[str, frozenset[str]] = {
    "difrancesco_noble_model_1985": frozenset({"bath_potassium_concentration"}),
    "espinosa_model_1998_normal": frozenset({"bath_potassium_concentration"}),
    "nygren_atrial_model_1998": frozenset({"bath_potassium_concentration"}),
}

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_BQBIOL = "http://biomodels.net/biology-qualifiers/"


def models_dir() -> Path:
    """The shared models folder; a missing one is a broken checkout, not a skip."""
    if not MODELS.is_dir():
        pytest.fail(
            f"shared test data not found at {MODELS.resolve()}: the Web Lab models must be in "
            f"../shared/webdata/models next to the repository"
        )
    return MODELS


def model_path(name: str) -> Path:
    return models_dir() / f"{name}.cellml"


_cache: dict[str, CellMLModel] = {}


def load(name: str) -> CellMLModel:
    if name not in _cache:
        _cache[name] = parse_cellml_file(model_path(name))
    return _cache[name]


# ---------------------------------------------------------------------------
# Published models
# ---------------------------------------------------------------------------


def test_shared_model_set_is_the_expected_one() -> None:
    names = sorted(p.stem for p in models_dir().glob("*.cellml"))
    assert names == sorted(EXPECTED_COUNTS), "the shared models changed; re-measure EXPECTED_COUNTS"
    assert len(names) == 49


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_published_model_parses_with_expected_annotations(name: str) -> None:
    model = load(name)
    assert model.cellml_version == "1.0"
    assert model.name
    assert len(model.annotations) == EXPECTED_COUNTS[name]
    assert model.unresolved == ()
    for a in model.annotations:
        assert a.component and a.variable and a.units and a.cmeta_id
        assert model.annotation(a.term) is not None
    # 'time' is the independent variable, never a state; every model here has it.
    time_ann = model.annotation("time")
    if time_ann is not None:
        assert not time_ann.is_state


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_published_model_terms_are_in_the_ontology(name: str) -> None:
    known = oxmeta_terms()
    outside = {a.term for a in load(name).annotations if a.term not in known}
    assert outside == set(NON_ONTOLOGY_TERMS.get(name, frozenset())), (
        f"{name} uses terms not in the oxmeta ontology: {sorted(outside)}"
    )


def _independent_counts(path: Path) -> tuple[int, bool]:
    """Count bqbiol:is → oxmeta elements with plain lxml, noting RDF not under <model>."""
    tree = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
    count, outside = 0, False
    for el in tree.iter(f"{{{_BQBIOL}}}is"):
        if el.get(f"{{{_RDF}}}resource", "").startswith(OXMETA_NS):
            count += 1
            block = next(el.iterancestors(f"{{{_RDF}}}RDF"))
            if etree.QName(block.getparent()).localname != "model":
                outside = True
    return count, outside


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_counts_agree_with_independent_lxml_count(name: str) -> None:
    count, outside = _independent_counts(model_path(name))
    assert count == EXPECTED_COUNTS[name]
    assert outside == (name in RDF_OUTSIDE_MODEL)


def _myokit_annotations(path: Path) -> dict[str, tuple[str, bool]]:
    import myokit.formats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = myokit.formats.importer("cellml").model(str(path))
    return {
        v.meta["oxmeta"]: (v.qname(), v.is_state())
        for v in model.variables(deep=True)
        if "oxmeta" in v.meta
    }


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_cross_check_against_myokit(name: str) -> None:
    """Myokit only reads RDF directly under <model>: a lower bound, exact where that is all."""
    theirs = _myokit_annotations(model_path(name))
    ours = {a.term: (a.qualified_name, a.is_state) for a in load(name).annotations}
    for term, value in theirs.items():
        assert ours.get(term) == value, f"{name}: {term} is {ours.get(term)} for us, {value} for Myokit"
    if name in RDF_OUTSIDE_MODEL:
        assert len(theirs) <= len(ours)
    else:
        assert len(theirs) == len(ours)


def test_ten_tusscher_2006_key_annotations() -> None:
    model = load("ten_tusscher_model_2006_epi")
    assert model.name == "tentusscher_model_2006_epi"
    v = model.annotation("membrane_voltage")
    assert v is not None
    assert (v.component, v.variable) == ("membrane", "V")
    assert v.qualified_name == "membrane.V"
    assert v.cmeta_id == "membrane_voltage"
    assert v.is_state
    assert v.units in {"millivolt", "mV"}
    amp = model.annotation("membrane_stimulus_current_amplitude")
    assert amp is not None and not amp.is_state
    assert model.annotation(OXMETA_NS + "membrane_voltage") == v
    assert model.annotation("no_such_term") is None
    assert {"membrane_voltage", "time", "membrane_fast_sodium_current"} <= model.terms()
    assert isinstance(model.terms(), frozenset)
    gate = model.annotation("membrane_fast_sodium_current_m_gate")
    assert gate is not None and gate.is_state


# ---------------------------------------------------------------------------
# Hand-written documents
# ---------------------------------------------------------------------------

NESTED_RDF = b"""<?xml version="1.0" encoding="UTF-8"?>
<model xmlns="http://www.cellml.org/cellml/1.0#"
       xmlns:cmeta="http://www.cellml.org/metadata/1.0#"
       xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
       xmlns:bqbiol="http://biomodels.net/biology-qualifiers/"
       name="nested" cmeta:id="nested_model">
  <component name="env">
    <variable name="t" units="ms" public_interface="out" cmeta:id="t_id">
      <rdf:RDF>
        <rdf:Description rdf:about="#t_id">
          <bqbiol:is rdf:resource="https://chaste.comlab.ox.ac.uk/cellml/ns/oxford-metadata#time"/>
        </rdf:Description>
      </rdf:RDF>
    </variable>
  </component>
  <component name="cell" cmeta:id="cell_component">
    <rdf:RDF>
      <rdf:Description rdf:about="#v_id">
        <bqbiol:is rdf:resource="https://chaste.comlab.ox.ac.uk/cellml/ns/oxford-metadata#membrane_voltage"/>
      </rdf:Description>
    </rdf:RDF>
    <variable name="t" units="ms" public_interface="in"/>
    <variable name="V" units="mV" initial_value="-80" cmeta:id="v_id"/>
    <variable name="amp" units="mV" initial_value="2" cmeta:id="amp_id">
      <rdf:RDF>
        <rdf:Description rdf:about="#amp_id">
          <bqbiol:is rdf:resource="https://chaste.comlab.ox.ac.uk/cellml/ns/oxford-metadata#membrane_stimulus_current_amplitude"/>
          <bqbiol:isVersionOf rdf:resource="https://chaste.comlab.ox.ac.uk/cellml/ns/oxford-metadata#ignored_predicate"/>
        </rdf:Description>
      </rdf:RDF>
    </variable>
    <math xmlns="http://www.w3.org/1998/Math/MathML">
      <apply><eq/>
        <apply><diff/><bvar><ci>  t  </ci></bvar><ci>
            V
        </ci></apply>
        <ci> amp </ci>
      </apply>
    </math>
  </component>
  <rdf:RDF>
    <rdf:Description rdf:about="#cell_component">
      <bqbiol:is rdf:resource="https://chaste.comlab.ox.ac.uk/cellml/ns/oxford-metadata#cytosolic_calcium_concentration"/>
    </rdf:Description>
    <rdf:Description rdf:about="#no_such_id">
      <bqbiol:is rdf:resource="https://chaste.comlab.ox.ac.uk/cellml/ns/oxford-metadata#membrane_capacitance"/>
    </rdf:Description>
    <rdf:Description rdf:about="#amp_id">
      <bqbiol:is rdf:resource="https://chaste.comlab.ox.ac.uk/cellml/ns/oxford-metadata#membrane_stimulus_current_amplitude"/>
    </rdf:Description>
  </rdf:RDF>
</model>
"""


def test_rdf_inside_components_and_variables_is_found() -> None:
    model = parse_cellml(NESTED_RDF)
    assert model.name == "nested"
    assert model.terms() == {"time", "membrane_voltage", "membrane_stimulus_current_amplitude"}
    assert len(model.annotations) == 3  # the duplicate amplitude statement counts once
    v = model.annotation("membrane_voltage")
    assert v == Annotation("membrane_voltage", "v_id", "cell", "V", "mV", True)
    t = model.annotation("time")
    assert t == Annotation("time", "t_id", "env", "t", "ms", False)
    amp = model.annotation("membrane_stimulus_current_amplitude")
    assert amp is not None and not amp.is_state
    # Annotations on non-variables or on missing ids are kept aside, not dropped silently.
    unresolved = {(u.term, u.target) for u in model.unresolved}
    assert unresolved == {
        ("cytosolic_calcium_concentration", "cell_component"),
        ("membrane_capacitance", "no_such_id"),
    }


def _minimal(ns: str, extra_attrs: str = "") -> bytes:
    return f"""<model xmlns="{ns}" name="m" {extra_attrs}>
  <component name="c"><variable name="x" units="dimensionless"/></component>
</model>""".encode()


@pytest.mark.parametrize(
    "ns, version",
    [
        ("http://www.cellml.org/cellml/1.0#", "1.0"),
        ("http://www.cellml.org/cellml/1.1#", "1.1"),
        ("http://www.cellml.org/cellml/2.0#", "2.0"),
    ],
)
def test_cellml_namespaces_accepted(ns: str, version: str) -> None:
    model = parse_cellml(_minimal(ns))
    assert model.cellml_version == version
    assert model.name == "m"
    assert model.annotations == ()
    assert model.terms() == frozenset()


def test_cellml_2_plain_id_annotation() -> None:
    doc = b"""<model xmlns="http://www.cellml.org/cellml/2.0#" name="m2">
  <component name="c"><variable name="V" units="mV" id="vv"/></component>
  <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
           xmlns:bqbiol="http://biomodels.net/biology-qualifiers/">
    <rdf:Description rdf:about="#vv">
      <bqbiol:is rdf:resource="https://chaste.comlab.ox.ac.uk/cellml/ns/oxford-metadata#membrane_voltage"/>
    </rdf:Description>
  </rdf:RDF>
</model>"""
    model = parse_cellml(doc)
    assert model.annotation("membrane_voltage") == Annotation("membrane_voltage", "vv", "c", "V", "mV", False)


@pytest.mark.parametrize(
    "doc, needle",
    [
        (b'<model xmlns="http://www.cellml.org/cellml/1.0#" name="m"/>', "no component containing a variable"),
        (
            b'<model xmlns="http://www.cellml.org/cellml/1.0#" name="m"><component name="c"/></model>',
            "no component containing a variable",
        ),
        (
            b'<model xmlns="http://www.cellml.org/cellml/1.0#" name="m">\n<component name="c">\n'
            b'<variable name="x"/></component></model>',
            "has no units",
        ),
        (
            b'<model xmlns="http://www.cellml.org/cellml/1.1#" name="m"><component name="c">'
            b'<variable units="mV"/></component></model>',
            "has no name",
        ),
        (
            b'<model xmlns="http://www.cellml.org/cellml/1.0#"><component name="c">'
            b'<variable name="x" units="mV"/></component></model>',
            "<model> has no name",
        ),
    ],
)
def test_structural_problems_are_rejected(doc: bytes, needle: str) -> None:
    with pytest.raises(CellMLError) as info:
        parse_cellml(doc)
    assert needle in str(info.value)
    assert str(info.value).startswith("invalid CellML")


def test_missing_units_reports_line() -> None:
    doc = (
        b'<model xmlns="http://www.cellml.org/cellml/1.0#" name="m">\n<component name="c">\n'
        b'<variable name="x"/></component></model>'
    )
    with pytest.raises(CellMLError) as info:
        parse_cellml(doc)
    assert info.value.line == 3
    assert "at line 3" in str(info.value)


def test_parse_cellml_file_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "nested.cellml"
    path.write_bytes(NESTED_RDF)
    assert parse_cellml_file(path) == parse_cellml(NESTED_RDF)
    assert parse_cellml_file(str(path)).name == "nested"


def test_whole_suite_of_models_is_quick() -> None:
    """All 49 models in well under the test budget (they are parsed at upload time)."""
    import time

    start = time.perf_counter()
    for name in EXPECTED_COUNTS:
        parse_cellml_file(model_path(name))
    assert time.perf_counter() - start < 20
