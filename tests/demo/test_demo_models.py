"""The demo lab's own CellML 1.0 models (``labkit/demo/models``).

Four models, encoded from their published equations:

* ``hodgkin_huxley_1952.cellml`` - Hodgkin & Huxley (1952) J Physiol 117:500,
  modern sign convention, rest at -75 mV, 6.3 degrees C.
* ``noble_1962.cellml`` - Noble (1962) J Physiol 160:317, spontaneously
  active Purkinje fibre; its stimulus exists but has zero default amplitude.
* ``beeler_reuter_1977.cellml`` - Beeler & Reuter (1977) J Physiol 268:177,
  ventricular myocyte paced by its own stimulus (-30 uA/cm2, 2 ms, 1 Hz).
* ``ten_tusscher_2006_epi.cellml`` - ten Tusscher & Panfilov (2006) Am J
  Physiol Heart Circ Physiol 291:H1088, human ventricular epicardial cell
  (currents in pA/pF, stimulus -52 pA/pF, 1 ms, 1 Hz), checked against the
  shared Web Lab encoding of the same model (``ten_tusscher_model_2006_epi``).

Each file is checked for: Myokit import and validation, CellML 1.0 layout
(one ``rdf:RDF`` block directly under ``<model>``, every annotation resolving
to a ``cmeta:id``), oxmeta terms that exist in the ontology, consistent units,
and action potentials with plausible published features when simulated for
3 s (CVODES, abs tol 1e-8, rel tol 1e-6, max step 0.5 ms).
"""
from __future__ import annotations

import functools
import importlib.resources
import math
from pathlib import Path

import myokit
import numpy as np
import pytest
from lxml import etree

NS_CELLML_10 = "http://www.cellml.org/cellml/1.0#"
NS_CMETA = "http://www.cellml.org/metadata/1.0#"
NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS_BQBIOL = "http://biomodels.net/biology-qualifiers/"
OXMETA = "https://chaste.comlab.ox.ac.uk/cellml/ns/oxford-metadata#"

HH = "hodgkin_huxley_1952.cellml"
NOBLE = "noble_1962.cellml"
BR = "beeler_reuter_1977.cellml"
TT06 = "ten_tusscher_2006_epi.cellml"
ALL = (HH, NOBLE, BR, TT06)

STIMULUS_TERMS = (
    "membrane_stimulus_current",
    "membrane_stimulus_current_amplitude",
    "membrane_stimulus_current_duration",
    "membrane_stimulus_current_period",
    "membrane_stimulus_current_offset",
)
COMMON_TERMS = ("time", "membrane_voltage", "membrane_capacitance") + STIMULUS_TERMS

# Terms each model must carry on top of COMMON_TERMS (currents + conductances).
MODEL_TERMS = {
    HH: (
        "membrane_fast_sodium_current",
        "membrane_fast_sodium_current_conductance",
        "membrane_potassium_current",
        "membrane_potassium_current_conductance",
        "membrane_leakage_current",
        "membrane_leakage_current_conductance",
        "sodium_reversal_potential",
        "potassium_reversal_potential",
        "membrane_fast_sodium_current_m_gate",
        "membrane_fast_sodium_current_h_gate",
        "potassium_channel_n_gate",
        "temperature",
    ),
    NOBLE: (
        "membrane_fast_sodium_current",
        "membrane_fast_sodium_current_conductance",
        "membrane_background_sodium_current",
        "membrane_background_sodium_current_conductance",
        "membrane_inward_rectifier_potassium_current",
        "membrane_inward_rectifier_potassium_current_conductance",
        "membrane_delayed_rectifier_potassium_current",
        "membrane_delayed_rectifier_potassium_current_conductance",
        "membrane_leakage_current",
        "membrane_leakage_current_conductance",
        "sodium_reversal_potential",
        "potassium_reversal_potential",
        "membrane_fast_sodium_current_m_gate",
        "membrane_fast_sodium_current_h_gate",
        "potassium_channel_n_gate",
    ),
    BR: (
        "membrane_fast_sodium_current",
        "membrane_fast_sodium_current_conductance",
        "membrane_background_sodium_current",
        "membrane_background_sodium_current_conductance",
        "membrane_L_type_calcium_current",
        "membrane_L_type_calcium_current_conductance",
        "membrane_delayed_rectifier_potassium_current",
        "membrane_delayed_rectifier_potassium_current_conductance",
        "membrane_inward_rectifier_potassium_current",
        "membrane_inward_rectifier_potassium_current_conductance",
        "cytosolic_calcium_concentration",
        "sodium_reversal_potential",
        "calcium_reversal_potential",
        "membrane_fast_sodium_current_m_gate",
        "membrane_fast_sodium_current_h_gate",
        "membrane_fast_sodium_current_j_gate",
        "membrane_L_type_calcium_current_d_gate",
        "membrane_L_type_calcium_current_f_gate",
    ),
    TT06: (
        "membrane_fast_sodium_current",
        "membrane_fast_sodium_current_conductance",
        "membrane_L_type_calcium_current",
        "membrane_L_type_calcium_current_conductance",
        "membrane_transient_outward_current",
        "membrane_transient_outward_current_conductance",
        "membrane_rapid_delayed_rectifier_potassium_current",
        "membrane_rapid_delayed_rectifier_potassium_current_conductance",
        "membrane_slow_delayed_rectifier_potassium_current",
        "membrane_slow_delayed_rectifier_potassium_current_conductance",
        "membrane_inward_rectifier_potassium_current",
        "membrane_inward_rectifier_potassium_current_conductance",
        "membrane_sodium_calcium_exchanger_current",
        "membrane_sodium_calcium_exchanger_current_conductance",
        "membrane_sodium_potassium_pump_current",
        "membrane_background_sodium_current",
        "membrane_background_sodium_current_conductance",
        "membrane_background_calcium_current",
        "membrane_background_calcium_current_conductance",
        "membrane_calcium_pump_current",
        "membrane_potassium_pump_current",
        "membrane_potassium_pump_current_conductance",
        "SR_release_current",
        "SR_release_current_max",
        "SR_uptake_current",
        "SR_leak_current",
        "cytosolic_calcium_concentration",
        "SR_calcium_concentration",
        "dyadic_space_calcium_concentration",
        "extracellular_calcium_concentration",
        "extracellular_potassium_concentration",
        "cytosolic_potassium_concentration",
        "extracellular_sodium_concentration",
        "cytosolic_sodium_concentration",
        "sodium_reversal_potential",
        "potassium_reversal_potential",
        "calcium_reversal_potential",
        "slow_delayed_rectifier_potassium_reversal_potential",
        "membrane_fast_sodium_current_m_gate",
        "membrane_fast_sodium_current_h_gate",
        "membrane_fast_sodium_current_j_gate",
        "membrane_L_type_calcium_current_d_gate",
        "membrane_L_type_calcium_current_f_gate",
        "membrane_L_type_calcium_current_f2_gate",
        "membrane_L_type_calcium_current_fCass_gate",
        "membrane_transient_outward_current_r_gate",
        "membrane_transient_outward_current_s_gate",
        "rapid_time_dependent_potassium_current_Xr1_gate",
        "rapid_time_dependent_potassium_current_Xr2_gate",
        "slow_time_dependent_potassium_current_Xs_gate",
        "temperature",
    ),
}

# Words the model-level documentation must contain (citation).
CITATIONS = {
    HH: ("Hodgkin", "Huxley", "1952", "J Physiol"),
    NOBLE: ("Noble", "1962", "J Physiol"),
    BR: ("Beeler", "Reuter", "1977", "J Physiol"),
    TT06: ("ten Tusscher", "Panfilov", "2006", "Am J Physiol", "291"),
}

# Removable singularities guarded in the files: (term of the state that is
# clamped, voltage in mV at which a naive 0/0 would occur).
SINGULAR_VOLTAGES = {
    HH: (-50.0, -65.0),         # alpha_m at V_rel = 25, alpha_n at V_rel = 10
    NOBLE: (-48.0, -8.0, -50.0),  # alpha_m, beta_m, alpha_n
    BR: (-47.0, -23.0),         # alpha_m, i_K1 second term
    TT06: (15.0,),              # GHK driving force of i_CaL at V = 15 mV
}


def model_path(name: str) -> Path:
    """Path of a demo model file, found as package data of ``labkit.demo``."""
    res = importlib.resources.files("labkit.demo") / "models" / name
    path = Path(str(res))
    assert path.is_file(), f"demo model missing: {path}"
    return path


@functools.lru_cache(maxsize=None)
def _load(name: str) -> myokit.Model:
    return myokit.formats.importer("cellml").model(str(model_path(name)))


def load(name: str) -> myokit.Model:
    """A fresh copy of the imported model (the cached one is never mutated)."""
    return _load(name).clone()


def by_term(model: myokit.Model, term: str) -> myokit.Variable:
    found = [v for v in model.variables(deep=True) if v.meta.get("oxmeta") == term]
    assert len(found) == 1, f"{term}: expected one annotated variable, found {len(found)}"
    return found[0]


def simulate(model: myokit.Model, duration: float, constants: dict | None = None,
             log_interval: float = 0.02, extra: tuple[str, ...] = ()):
    """Run the model's own equations (and its own stimulus) with CVODES.

    Returns time and membrane voltage arrays, plus arrays for any ``extra``
    oxmeta terms (as a third item) when asked for.
    """
    sim = myokit.Simulation(model)
    sim.set_tolerance(1e-8, 1e-6)
    sim.set_max_step_size(0.5)
    for term, value in (constants or {}).items():
        sim.set_constant(by_term(model, term).qname(), value)
    time = model.time().qname()
    v = by_term(model, "membrane_voltage").qname()
    others = {term: by_term(model, term).qname() for term in extra}
    log = sim.run(duration, log=[time, v, *others.values()], log_interval=log_interval)
    t, vm = np.asarray(log[time]), np.asarray(log[v])
    if extra:
        return t, vm, {term: np.asarray(log[q]) for term, q in others.items()}
    return t, vm


def action_potentials(t: np.ndarray, v: np.ndarray, threshold: float = -30.0) -> list[dict]:
    """Split a trace into APs at upward threshold crossings; measure each.

    ``t_act`` is the time of maximum dV/dt, ``v_before`` the minimum potential
    in the preceding interval (resting or maximum diastolic potential), and
    ``apd90`` the time from ``t_act`` until V falls back by 90 % of
    (peak - v_before).
    """
    ups = np.flatnonzero((v[:-1] < threshold) & (v[1:] >= threshold))
    dvdt = np.diff(v) / np.diff(t)
    aps = []
    for k, i in enumerate(ups):
        start = ups[k - 1] if k else 0
        end = ups[k + 1] if k + 1 < len(ups) else len(v)
        lo = max(i - 500, start)
        i_act = lo + int(np.argmax(dvdt[lo:i + 500]))
        i_peak = i + int(np.argmax(v[i:end]))
        v_before = float(v[start:i + 1].min())
        v90 = v[i_peak] - 0.9 * (v[i_peak] - v_before)
        below = np.flatnonzero(v[i_peak:end] < v90)
        aps.append(dict(
            t_act=float(t[i_act]),
            peak=float(v[i_peak]),
            v_before=v_before,
            dvdt_max=float(dvdt[i_act]),
            apd90=float(t[i_peak + below[0]] - t[i_act]) if len(below) else math.nan,
        ))
    return aps


# --------------------------------------------------------------------------
# File format and annotations
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
def test_imports_and_validates(name):
    model = load(name)
    model.validate()
    assert model.time() is not None
    assert model.count_states() >= 4


@pytest.mark.parametrize("name", ALL)
def test_cellml_10_layout_and_rdf(name):
    """CellML 1.0 namespace; ONE rdf:RDF block directly under <model>; every
    annotation is a bqbiol:is to an oxmeta term about an existing cmeta:id on
    a variable."""
    root = etree.parse(str(model_path(name))).getroot()
    assert root.tag == f"{{{NS_CELLML_10}}}model"
    assert root.nsmap.get("cmeta") == NS_CMETA

    all_rdf = root.findall(f".//{{{NS_RDF}}}RDF")
    top_rdf = root.findall(f"{{{NS_RDF}}}RDF")
    assert len(all_rdf) == 1 and len(top_rdf) == 1

    cmeta_ids = {
        el.get(f"{{{NS_CMETA}}}id"): el
        for el in root.iter() if el.get(f"{{{NS_CMETA}}}id")
    }
    descriptions = top_rdf[0].findall(f"{{{NS_RDF}}}Description")
    assert descriptions
    for d in descriptions:
        about = d.get(f"{{{NS_RDF}}}about")
        assert about.startswith("#")
        target = cmeta_ids[about[1:]]
        assert target.tag == f"{{{NS_CELLML_10}}}variable"
        (is_,) = d.findall(f"{{{NS_BQBIOL}}}is")
        assert is_.get(f"{{{NS_RDF}}}resource").startswith(OXMETA)


@pytest.mark.parametrize("name", ALL)
def test_required_oxmeta_terms(name):
    model = load(name)
    terms = {v.meta["oxmeta"] for v in model.variables(deep=True) if "oxmeta" in v.meta}
    missing = set(COMMON_TERMS + MODEL_TERMS[name]) - terms
    assert not missing, f"{name} lacks {sorted(missing)}"
    # State variables that are annotated really are states
    assert by_term(model, "membrane_voltage").is_state()
    assert by_term(model, "time") is model.time()
    if name in (BR, TT06):
        assert by_term(model, "cytosolic_calcium_concentration").is_state()
    if name == TT06:
        for term in ("cytosolic_sodium_concentration", "cytosolic_potassium_concentration",
                     "SR_calcium_concentration", "dyadic_space_calcium_concentration"):
            assert by_term(model, term).is_state(), term


@pytest.mark.parametrize("name", ALL)
def test_terms_exist_in_ontology(name):
    """Every annotation uses a term defined in oxford-metadata.ttl."""
    from labkit.cellml import oxmeta_terms

    known = oxmeta_terms()
    model = load(name)
    used = {v.meta["oxmeta"] for v in model.variables(deep=True) if "oxmeta" in v.meta}
    assert used <= known, sorted(used - known)


@pytest.mark.parametrize("name", ALL)
def test_parameters_are_constants(name):
    """Stimulus amplitude/duration/period/offset, capacitance and maximal
    conductances are literal constants (settable by protocols), not states
    or derived quantities."""
    model = load(name)
    params = [t for t in STIMULUS_TERMS if t != "membrane_stimulus_current"]
    params += ["membrane_capacitance"]
    params += [t for t in MODEL_TERMS[name] if t.endswith("_conductance")]
    params += [t for t in MODEL_TERMS[name] if t.startswith("extracellular_") or t.endswith("_max")]
    for term in params:
        var = by_term(model, term)
        assert not var.is_state(), term
        assert var.is_literal(), term
        assert var.is_constant(), term
    assert not by_term(model, "membrane_stimulus_current").is_state()


def test_labkit_parses_and_resolves_every_annotation():
    """labkit's own (safe) CellML reader sees every model's annotations, none unresolved."""
    from labkit.cellml import parse_cellml_file

    for name in ALL:
        parsed = parse_cellml_file(model_path(name))
        assert parsed.cellml_version == "1.0"
        assert not parsed.unresolved, (name, parsed.unresolved)
        missing = set(COMMON_TERMS + MODEL_TERMS[name]) - parsed.terms()
        assert not missing, (name, sorted(missing))


def test_default_stimulus_settings():
    """HH and BR are paced by default (depolarising = negative amplitude);
    Noble 1962 is spontaneously active so its amplitude defaults to zero."""
    expected = {
        # name: (amplitude uA/cm2, duration ms, period ms, offset ms)
        HH: (-20.0, 1.0, 1000.0, 10.0),
        NOBLE: (0.0, 2.0, 1000.0, 10.0),
        BR: (-30.0, 2.0, 1000.0, 10.0),
    }
    for name, values in expected.items():
        model = load(name)
        got = tuple(by_term(model, f"membrane_stimulus_current_{k}").eval()
                    for k in ("amplitude", "duration", "period", "offset"))
        assert got == pytest.approx(values), name
        assert by_term(model, "membrane_stimulus_current_amplitude").unit() == myokit.parse_unit("uA/cm^2")


@pytest.mark.parametrize("name", ALL)
def test_documentation_cites_paper(name):
    doc = " ".join(load(name).meta.get("documentation", "").split())
    for word in CITATIONS[name]:
        assert word in doc, f"{name}: documentation lacks {word!r}"
    assert "Simplifications" in doc


@pytest.mark.parametrize("name", ALL)
def test_units_consistent(name):
    """All equations are dimensionally consistent (strict mode). Myokit's
    CellML importer drops the units of literal constants, so they are put back
    from each variable's declared units first."""
    model = load(name)
    for var in model.variables(deep=True):
        if not var.is_state() and var.is_literal():
            var.set_rhs(myokit.Number(var.rhs().eval(), var.unit()))
    model.check_units(myokit.UNIT_STRICT)


@pytest.mark.parametrize("name", ALL)
def test_rates_finite_at_removable_singularities(name):
    """Voltage-clamp protocols often step to round voltages such as -50 mV;
    the guarded rate expressions must not give 0/0 there."""
    model = load(name)
    state = model.initial_values(as_floats=True)
    iv = by_term(model, "membrane_voltage").index()
    for v in SINGULAR_VOLTAGES[name]:
        for dv in (0.0, 1e-9, 1e-3):
            state[iv] = v + dv
            derivs = model.evaluate_derivatives(state)
            assert all(math.isfinite(x) for x in derivs), (name, v + dv)


# --------------------------------------------------------------------------
# Simulations (3 s each)
# --------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _trace(name: str):
    extra = ("cytosolic_calcium_concentration",) if name == BR else ()
    return simulate(load(name), 3000.0, extra=extra)


def test_hodgkin_huxley_action_potentials():
    """HH 1952 with its own stimulus (-20 uA/cm2, 1 ms, every 1000 ms from
    10 ms). Measured: three APs, peak +30.5 mV, max dV/dt 311 mV/ms, APD90
    2.3 ms, rest -75.0 mV (-74.996) with an after-hyperpolarisation to -86.2
    mV, back to rest before the next stimulus."""
    t, v = _trace(HH)
    aps = action_potentials(t, v)
    assert len(aps) == 3
    assert [ap["t_act"] for ap in aps] == pytest.approx([11.3, 1011.3, 2011.3], abs=0.5)
    rest = v[0]
    assert rest == pytest.approx(-75.0, abs=0.1)
    for ap in aps:
        assert ap["peak"] > 20.0
        assert ap["peak"] < 45.0                       # below E_Na = +40 mV (+ margin)
        assert 1.0 < ap["apd90"] < 5.0                 # "a few ms"
    # Recovery: back to rest within 0.1 mV before each new stimulus
    for t_stim in (1000.0, 2000.0, 3000.0):
        i = np.searchsorted(t, t_stim) - 1
        assert v[i] == pytest.approx(rest, abs=0.1)
    assert v.min() > -90.0                             # undershoot only to ~ -86 mV


def test_noble_1962_spontaneous_activity():
    """Noble 1962 without stimulus (default amplitude 0). Measured (g_an =
    0.075 mS/cm2): regular spontaneous firing with period 564.2 ms (about 106
    beats/min), peak +23.4 mV, maximum diastolic potential -81.6 mV, APD90
    288 ms (from the maximum upstroke). The period depends strongly on the
    anion conductance: with g_an = 0 it is 839.5 ms."""
    model = load(NOBLE)
    assert by_term(model, "membrane_stimulus_current_amplitude").eval() == 0.0
    t, v = _trace(NOBLE)
    aps = action_potentials(t, v)
    assert len(aps) == 5
    periods = np.diff([ap["t_act"] for ap in aps])
    assert periods.mean() == pytest.approx(564.2, abs=5.0)
    assert 500.0 < periods.min() and periods.max() < 650.0
    assert periods.std() < 1.0                        # a stable limit cycle
    for ap in aps:
        assert ap["peak"] > 0.0
        assert ap["v_before"] == pytest.approx(-81.6, abs=1.0)  # maximum diastolic potential
        if not math.isnan(ap["apd90"]):
            assert 250.0 < ap["apd90"] < 330.0


def test_noble_1962_can_be_paced_by_its_stimulus():
    """With the annotated amplitude set to -200 uA/cm2 (2 ms pulses) and the
    period to 400 ms the model is overdriven 1:1. Measured: 8 APs (first
    stimulus at 10 ms), intervals 400.0 +- 0.3 ms, APD90 settling to about
    242 ms (vs 288 ms at the intrinsic 564 ms cycle length)."""
    t, v = simulate(load(NOBLE), 3000.0, {
        "membrane_stimulus_current_amplitude": -200.0,
        "membrane_stimulus_current_period": 400.0,
    }, log_interval=0.05)
    aps = action_potentials(t, v)
    assert len(aps) == 8
    intervals = np.diff([ap["t_act"] for ap in aps])
    assert intervals == pytest.approx(np.full(7, 400.0), abs=2.0)


def test_beeler_reuter_action_potentials():
    """BR 1977 paced by its own stimulus (-30 uA/cm2, 2 ms, 1 Hz from 10 ms;
    threshold is about -13 uA/cm2 for 2 ms). Measured at 1 Hz steady state:
    peak +37.5 mV (the upstroke overlaps the pulse, so the peak depends a
    little on the stimulus), max dV/dt 176 mV/ms, APD90 282 ms, resting
    potential -84.4 mV, [Ca]i 1.8e-4 mM at rest and 6.2e-3 mM (6.2e-6 M) at
    its peak."""
    t, v, other = _trace(BR)
    aps = action_potentials(t, v)
    assert len(aps) == 3
    assert [ap["t_act"] for ap in aps] == pytest.approx([11.7, 1011.7, 2011.7], abs=1.0)
    for ap in aps:
        assert ap["peak"] > 0.0
        assert 250.0 < ap["apd90"] < 350.0             # BR77: ~ 280-300 ms
        assert ap["v_before"] == pytest.approx(-84.4, abs=0.5)
    for t_stim in (1000.0, 2000.0, 3000.0):
        i = np.searchsorted(t, t_stim) - 1
        assert v[i] == pytest.approx(-84.4, abs=0.5)   # recovered to rest
    # Steady state: beats are identical
    assert aps[0]["apd90"] == pytest.approx(aps[-1]["apd90"], abs=1.0)
    # Calcium transient (mM): ~1.8e-4 at rest, ~6.2e-3 at its peak
    cai = other["cytosolic_calcium_concentration"]
    assert cai[0] == pytest.approx(1.8e-4, rel=0.05)
    assert 3e-3 < cai.max() < 1e-2


# --------------------------------------------------------------------------
# ten Tusscher & Panfilov 2006 (epicardial), against the shared reference
# --------------------------------------------------------------------------

def shared_tt06() -> Path:
    """The Web Lab's encoding of the same model (numerical reference only)."""
    from shared_data import webdata

    return webdata() / "models" / "ten_tusscher_model_2006_epi.cellml"


def test_tt06_default_stimulus_and_constants():
    """-52 pA/pF (A/F) for 1 ms every 1000 ms from 10 ms; paper constants."""
    model = load(TT06)
    got = tuple(by_term(model, f"membrane_stimulus_current_{k}").eval()
                for k in ("amplitude", "duration", "period", "offset"))
    assert got == pytest.approx((-52.0, 1.0, 1000.0, 10.0))
    assert by_term(model, "membrane_stimulus_current_amplitude").unit() == myokit.parse_unit("A/F")
    expected = {
        "extracellular_potassium_concentration": 5.4,
        "extracellular_sodium_concentration": 140.0,
        "extracellular_calcium_concentration": 2.0,
        "membrane_fast_sodium_current_conductance": 14.838,
        "membrane_L_type_calcium_current_conductance": 3.98e-5,
        "membrane_transient_outward_current_conductance": 0.294,       # epicardium
        "membrane_slow_delayed_rectifier_potassium_current_conductance": 0.392,  # epicardium
        "membrane_rapid_delayed_rectifier_potassium_current_conductance": 0.153,
        "membrane_inward_rectifier_potassium_current_conductance": 5.405,
        "membrane_sodium_calcium_exchanger_current_conductance": 1000.0,
        "SR_release_current_max": 0.102,
    }
    for term, value in expected.items():
        assert by_term(model, term).eval() == pytest.approx(value), term
    # R T / F = 26.71 mV and the cell capacitance is 185 pF
    rtf = (by_term(model, "gas_constant").eval() * by_term(model, "temperature").eval()
           / by_term(model, "faraday_constant").eval())
    assert rtf == pytest.approx(26.7138, abs=1e-3)
    cm = by_term(model, "membrane_capacitance")
    assert cm.eval() * myokit.Unit.conversion_factor(cm.unit(), "pF").value() == pytest.approx(185.0)


def test_tt06_extracellular_potassium_reaches_the_potassium_currents():
    """K_o enters E_K, E_Ks, I_K1 and I_Kr (sqrt(K_o/5.4)), I_Ks (via E_Ks) and I_NaK."""
    currents = (
        "potassium_reversal_potential",
        "slow_delayed_rectifier_potassium_reversal_potential",
        "membrane_inward_rectifier_potassium_current",
        "membrane_rapid_delayed_rectifier_potassium_current",
        "membrane_slow_delayed_rectifier_potassium_current",
        "membrane_sodium_potassium_pump_current",
    )

    def values(k_o: float) -> dict[str, float]:
        model = load(TT06)
        by_term(model, "membrane_voltage").set_initial_value(-20.0)  # currents not ~0
        by_term(model, "extracellular_potassium_concentration").set_rhs(myokit.Number(k_o))
        return {c: by_term(model, c).eval() for c in currents}

    normal, high = values(5.4), values(8.0)
    for c in currents:
        assert high[c] != pytest.approx(normal[c], rel=1e-3), c
    # E_K shifts by RT/F ln(8/5.4) = 10.5 mV
    shift = high["potassium_reversal_potential"] - normal["potassium_reversal_potential"]
    assert shift == pytest.approx(26.7138 * math.log(8.0 / 5.4), abs=1e-3)


def _state_order(ours: myokit.Model, theirs: myokit.Model) -> list[int]:
    """Index in ``ours`` of each state of ``theirs``, matched by (lower-case) name."""
    index = {s.name().lower(): s.index() for s in ours.states()}
    return [index[s.name().lower()] for s in theirs.states()]


def test_tt06_equations_match_the_shared_encoding():
    """Same published initial state, and identical derivatives (to rounding) at
    that state and at perturbed states on both sides of the -40 mV switch of
    the INa gates; they differ only within micro-volts of the guarded 15 mV."""
    ours = load(TT06)
    theirs = myokit.formats.importer("cellml").model(str(shared_tt06()))
    order = _state_order(ours, theirs)
    x_theirs = np.array(theirs.initial_values(as_floats=True))
    x_ours = np.array(ours.initial_values(as_floats=True))
    assert x_ours[order] == pytest.approx(x_theirs, rel=1e-12)

    rng = np.random.default_rng(2006)
    gates = [s.index() for s in theirs.states()
             if s.unit() in (None, myokit.units.dimensionless) and s.name() != "R_prime"]
    for v in (-85.23, -60.0, -40.0, -39.9, 0.0, 14.0, 30.0):
        x = x_theirs.copy()
        x[theirs.get("membrane.V").index()] = v
        x[gates] = np.clip(x[gates] * rng.uniform(0.5, 1.5, len(gates)), 0.0, 1.0)
        mine = np.empty_like(x)
        mine[order] = x
        d_theirs = np.array(theirs.evaluate_derivatives(list(x)))
        d_ours = np.array(ours.evaluate_derivatives(list(mine)))[order]
        assert d_ours == pytest.approx(d_theirs, rel=1e-9, abs=1e-300), v


@functools.lru_cache(maxsize=None)
def _tt06_beat_20(path: str) -> tuple[float, float, float]:
    """APD90, resting (minimum) and peak potential of the 20th beat at 1 Hz,
    paced from the model's initial state with the protocols' stimulus."""
    from labkit import sim

    model = sim.load_model(path)
    model.replace_stimulus(period=1000)
    run = model.simulation()
    run.single_pace(1000, 19)
    trace = run.record(1000, step=0.1)
    v, t = trace["membrane_voltage"].to_numpy(), trace["time"].to_numpy()
    return float(sim.apd(v, t)[0]), float(v.min()), float(v.max())


def test_tt06_paced_like_the_shared_model():
    """20 beats at 1 Hz from the initial state, through labkit.sim. Measured:
    both give APD90 305.92 ms, rest -85.51 mV and peak +38.57 mV."""
    apd90, rest, peak = _tt06_beat_20(str(model_path(TT06)))
    ref_apd90, ref_rest, ref_peak = _tt06_beat_20(str(shared_tt06()))
    print(f"TT06 beat 20: ours APD90 {apd90:.3f} ms, rest {rest:.3f} mV, peak {peak:.3f} mV; "
          f"shared {ref_apd90:.3f} / {ref_rest:.3f} / {ref_peak:.3f}")
    assert apd90 == pytest.approx(ref_apd90, rel=0.01)
    assert rest == pytest.approx(ref_rest, abs=1.0)
    assert peak == pytest.approx(ref_peak, abs=1.0)
    # and plausible for a human epicardial cell
    assert 280.0 < apd90 < 330.0
    assert -87.0 < rest < -84.0
    assert 25.0 < peak < 45.0


@pytest.mark.slow
def test_tt06_steady_state_apd90():
    """1000 paces at 1 Hz (the steady_pacing protocol): APD90 within 1 % of the
    Web Lab value 301.4 ms for the shared encoding (~1 min)."""
    from labkit import sim

    model = sim.load_model(model_path(TT06))
    model.replace_stimulus(period=1000)
    run = model.simulation()
    steady = run.pace_to_steady_state(1000, max_paces=1000)
    trace = run.record(1000)
    v, t = trace["membrane_voltage"].to_numpy(), trace["time"].to_numpy()
    apd90 = float(sim.apd(v, t)[0])
    print(f"TT06 steady state ({steady.num_paces} paces): APD90 {apd90:.3f} ms, "
          f"rest {v.min():.3f} mV, peak {v.max():.3f} mV")
    assert apd90 == pytest.approx(301.4, rel=0.01)
