"""Every shipped protocol runs in a lab seeded like the demo: on the demo's own models, through the
real queue, with short parameter values (fewer paces and sweeps) so the whole library runs in a few
minutes. The numbers themselves are checked against the Web Lab in tests/sim and tests/validation."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from labs import lab_with_workers

import labkit
from labkit.demo.build import DEMO_MODELS, QUICK_PARAMETERS, STANDARD_PROTOCOLS

QUICK = QUICK_PARAMETERS
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
