"""Which labkit protocol notebook, with which parameters, reproduces each Web Lab protocol, and how
each of its reference outputs is compared. One place to read and change the mapping."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OutputRule:
    ours: str                   # our output's name
    kind: str                   # a comparison kind of labkit.validation.compare
    control: str | None = None  # for scaled kinds: our output holding the control value
    control_index: str | None = None  # our output naming the control's index (default: the last element)
    x: str | None = None        # our output to plot against (default: the element index)


@dataclass(frozen=True)
class ReferenceProtocol:
    name: str                              # the Web Lab's protocol name (reference folder name)
    notebook: str                          # our notebook in notebooks/protocols
    parameters: dict[str, Any]             # as the Web Lab's reproducibility harness ran it
    outputs: dict[str, OutputRule]         # reference output name -> how to compare it
    requires: tuple[str, ...] = field(default=())  # terms needed beyond the notebook's interface
    cost: int = 1  # rough relative cost; cheap protocols are queued first so results arrive early
    #: the Web Lab protocol's own pacing caps, which made the references of models outside the harness
    defaults: dict[str, Any] = field(default_factory=dict)


def _steady(name: str, period: float, max_paces: int, detail: bool = False) -> ReferenceProtocol:
    outputs = {"num_paces": OutputRule("num_paces", "count")}
    if detail:
        outputs["detailed_voltage"] = OutputRule("membrane_voltage", "voltage", x="time")
    return ReferenceProtocol(name, "steady_pacing.ipynb", {"pacing_period": period, "max_paces": max_paces},
                             outputs, cost=2, defaults={"max_paces": 10000})


#: The models the Web Lab's reproducibility harness re-runs, overriding ``max_paces`` (and
#: ``max_steady_state_beats``) with 1000 (weblab-fc ``test/test_python_reproducibility.py``). The catalogue's
#: ``parameters`` reproduce the harness; the references of the other models were made with the Web Lab
#: protocols' own caps (``ReferenceProtocol.defaults``, protocols-spec §2). Measured, not assumed: after
#: 10,000 paces the SteadyStateRunner traces of noble_model_1991, earm_noble_model_1990, noble_model_1998
#: and ten_tusscher_model_2004_endo match to 0.001-0.09 mV and after 1000 they do not; the K_o scan and
#: the RyR block of ten_tusscher_model_2004_endo miss by 2.35 % and 0.046 % with 1000 paces and by
#: 0.0015 % with the defaults (docs/validation.md).
HARNESS_MODELS = frozenset({
    "aslanidi_atrial_model_2009", "aslanidi_Purkinje_model_2009", "beeler_reuter_model_1977", "carro_2011_epi",
    "decker_2009", "difrancesco_noble_model_1985", "fink_noble_giles_model_2008", "grandi_pasqualini_bers_2010_ss",
    "li_mouse_2010", "luo_rudy_1991", "mahajan_shiferaw_2008", "ohara_rudy_2011_epi",
    "shannon_wang_puglisi_weber_bers_2004", "ten_tusscher_model_2006_epi"})

_BLOCKS = {  # Web Lab protocol: (current parameter, scaled term, harness's max_paces, the protocol's own
    #            max_paces (protocols-spec §2.11), resting potential output)
    "ICaL_block": ("ICaL", "membrane_L_type_calcium_current_conductance", 10000, 10000, False),
    "INa_block": ("INa", "membrane_fast_sodium_current_conductance", 1000, 10000, False),
    "IKr_block": ("IKr", "membrane_rapid_delayed_rectifier_potassium_current_conductance", 1000, 10000, False),
    "IKs_block": ("IKs", "membrane_slow_delayed_rectifier_potassium_current_conductance", 10000, 10000, False),
    "IK1_block": ("IK1", "membrane_inward_rectifier_potassium_current_conductance", 1000, 1000, True),
    "Ito_block": ("Ito", "membrane_transient_outward_current_conductance", 1000, 1000, True),
    "NCX_block": ("NCX", "membrane_sodium_calcium_exchanger_current_conductance", 1000, 1000, True),
    "RyR_block": ("RyR", "SR_release_current_max", 1000, 10000, False),
}


def _block(name: str) -> ReferenceProtocol:
    current, term, max_paces, default_max_paces, resting = _BLOCKS[name]
    outputs = {"scaled_APD90": OutputRule("scaled_APD90", "scaled_apd", control="APD90", x="block_levels")}
    if resting:
        outputs["scaled_resting_potential"] = OutputRule(
            "scaled_resting_potential", "scaled_voltage", control="RestingPotential", x="block_levels")
    return ReferenceProtocol(name, "ion_current_block.ipynb", {"current": current, "max_paces": max_paces},
                             outputs, requires=(term,), cost=4, defaults={"max_paces": default_max_paces})


PROTOCOLS: dict[str, ReferenceProtocol] = {p.name: p for p in [
    _steady("SteadyStateRunner", 1000, 1000, detail=True),
    _steady("SteadyStateRunner0_5Hz", 2000, 10000),
    _steady("SteadyStateRunner2Hz", 500, 10000),
    _steady("SteadyStateRunner3Hz", 333, 10000),
    _steady("SteadyStateRunner4Hz", 250, 1000),
    ReferenceProtocol("SteadyStateRestitution", "steady_state_restitution.ipynb", {"max_steady_state_beats": 1000}, {
        "APD": OutputRule("APD", "apd"),
        "restitution_slope": OutputRule("restitution_slope", "slope"),
    }, cost=5, defaults={"max_steady_state_beats": 10000}),
    ReferenceProtocol("S1S2", "s1s2.ipynb", {}, {
        "APD90": OutputRule("APD90", "apd", x="DI"),
        "DI": OutputRule("DI", "apd"),
        "S1S2_slope": OutputRule("S1S2_slope", "slope"),
    }, cost=3),
    ReferenceProtocol("ICaL", "ical.ipynb", {}, {
        "min_LCC": OutputRule("min_LCC", "current"),
        "final_membrane_voltage": OutputRule("final_membrane_voltage", "voltage"),
    }),
    ReferenceProtocol("ICaL_IV_curve", "ical_iv_curve.ipynb", {}, {
        "normalised_peak_currents": OutputRule("normalised_peak_currents", "normalised", x="test_potentials")}),
    ReferenceProtocol("INa_IV_curves", "ina_iv_curves.ipynb", {}, {
        "normalised_peak_currents": OutputRule("normalised_peak_currents", "normalised",
                                                 x="peak_test_potentials")}),
    ReferenceProtocol("IKr_IV_curve", "ikr_iv_curve.ipynb", {}, {
        "normalised_peak_Kr_tail": OutputRule("normalised_peak_Kr_tail", "normalised", x="test_potentials")}),
    ReferenceProtocol("IKs_IV_curve", "iks_iv_curve.ipynb", {}, {
        "normalised_peak_Ks_tail": OutputRule("normalised_peak_Ks_tail", "normalised", x="test_potentials")}),
    ReferenceProtocol("IK1_IV_curve", "ik1_iv_curve.ipynb", {}, {
        "normalised_low_K1": OutputRule("normalised_low_K1", "normalised", x="test_potentials"),
        "normalised_high_K1": OutputRule("normalised_high_K1", "normalised", x="test_potentials"),
    }),
    *[_block(name) for name in _BLOCKS],
    ReferenceProtocol("ExtracellularPotassiumVariation", "extracellular_potassium_variation.ipynb",
                      {"max_paces": 1000}, {
        "scaled_APD90": OutputRule("scaled_APD90", "scaled_apd", control="APD90", control_index="control_index",
                                   x="potassium_test_concentrations"),
        "scaled_resting_potential": OutputRule("scaled_resting_potential", "scaled_voltage",
                                               control="RestingPotential", control_index="control_index",
                                               x="potassium_test_concentrations"),
    }, cost=4, defaults={"max_paces": 10000}),
]}
