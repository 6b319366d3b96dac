"""Every shipped protocol runs in a lab seeded like the demo: on the demo's own models, through the
real queue, with short parameter values (fewer paces and sweeps) so the whole library runs in a few
minutes. The numbers themselves are checked against the Web Lab in tests/sim and tests/validation."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from labs import lab_with_workers

import labkit
from labkit.demo.build import DEMO_MODELS, STANDARD_PROTOCOLS

FEW = [-10.01, 0.01, 10.01]
QUICK: dict[str, dict] = {  # short runs of each protocol: same code path, less simulated time
    "steady_pacing": {"max_paces": 20},
    "calcium_transient": {"max_paces": 20},
    "steady_state_restitution": {"pacing_intervals": [1000, 600], "max_steady_state_beats": 10},
    "s1s2": {"steady_state_beats": 5, "s2_intervals": [1000, 500, 350]},
    "ical": {"steady_state_time": 1000.0, "test_potentials": FEW},
    "ical_iv_curve": {"steady_state_time": 1000.0, "test_potentials": FEW},
    "ina_iv_curves": {"steady_state_time": 1000.0, "peak_test_potentials": [-40.01, -20.01, 0.01],
                      "inactivation_test_potentials": [-120.01, -80.01, -60.01],
                      "activation_test_potentials": [-40.01, 0.01]},
    "ikr_iv_curve": {"steady_state_time": 1000.0, "test_potentials": FEW},
    "iks_iv_curve": {"steady_state_time": 1000.0, "test_potentials": FEW},
    "ik1_iv_curve": {"steady_state_time": 1000.0, "test_potentials": [-100.01, -60.01, 0.01]},
    "ion_current_block": {"current": "INa", "block_levels": [0.5, 1.0], "max_paces": 10},
    "extracellular_potassium_variation": {"extra_potassium_test_concentrations": [4, 8], "max_paces": 10},
    "graph_state": {"duration": 500.0},
    "timecourse_voltage_clamp": {"steady_state_time": 1000.0},
}
PROTOCOLS = sorted(p.stem for p in STANDARD_PROTOCOLS.glob("*.ipynb"))


def test_every_shipped_protocol_has_a_quick_run_here() -> None:
    assert set(PROTOCOLS) == set(QUICK)


@pytest.fixture(scope="module")
def library_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[labkit.Lab]:
    def seed(lab: labkit.Lab) -> None:
        for model in sorted(DEMO_MODELS.glob("*.cellml")):
            lab.add_model(model)
        for name in PROTOCOLS:  # each one passes the protocol check, or add_protocol refuses it
            lab.add_protocol(STANDARD_PROTOCOLS / f"{name}.ipynb")

    with lab_with_workers(tmp_path_factory.mktemp("library") / "lab", seed=seed) as lab:
        yield lab


def _first_compatible_model(lab: labkit.Lab, protocol: str) -> str:
    """Prefer the demo's simplest (fastest) model; a protocol no demo model can run fails the demo."""
    models = sorted(lab.names("model"), key=lambda m: len(lab.annotations(m)))
    for model in models:
        if lab.compatibility(model, protocol).compatible:
            return model
    missing = {m: lab.compatibility(m, protocol).missing_required for m in models}
    pytest.fail(f"no demo model can run {protocol}: missing terms {missing}")


def test_each_protocol_succeeds_on_a_demo_model_with_its_plots(library_lab: labkit.Lab) -> None:
    runs = {p: library_lab.run(_first_compatible_model(library_lab, p), p, QUICK[p]) for p in PROTOCOLS}
    library_lab.wait(list(runs.values()), timeout=1200)
    problems = []
    for protocol, info in runs.items():
        info = library_lab.status(info.id)
        if info.status != "success":
            problems.append(f"{protocol} on {info.model}: {info.status} {info.error or ''}")
            continue
        prediction = library_lab.prediction(info.id)
        declared = {o.name for o in library_lab.interface(protocol).outputs}
        assert declared <= set(prediction.outputs), protocol
        assert prediction.plots and all(p.stat().st_size > 1000 for p in prediction.plots), protocol
    assert not problems, "\n".join(problems)
