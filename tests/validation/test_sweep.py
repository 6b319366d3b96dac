"""`labkit validate --sweep`: real runs through the queue, classified by how they ended, and the report."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from labs import lab_with_workers
from notebooks import DEFAULT_INTERFACE, protocol_notebook
from shared_data import webdata

import labkit
from labkit.cli import main
from labkit.validation.sweep import INAPPLICABLE, LABKIT, PARTIAL, SOLVER, SUCCESS, classify, sweep, write_sweep_report

HH = "hodgkin_huxley_squid_axon_model_1952_modified"
ENDINGS = {  # protocol body -> the verdict its run must get
    "import myokit\nraise myokit.SimulationError('CVODE error: the solver met its limit at t=12 ms')": SOLVER,
    "raise ValueError('a bug in the analysis')": LABKIT,
}


@pytest.fixture(scope="module")
def sweep_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[labkit.Lab]:
    with lab_with_workers(tmp_path_factory.mktemp("sweep") / "lab", stale_after=6.0, heartbeat_interval=0.5) as lab:
        yield lab


def test_each_way_a_run_ends_gets_its_verdict(sweep_lab: labkit.Lab) -> None:
    lab = sweep_lab
    lab.add_model(webdata() / "models" / f"{HH}.cellml", name="hh")
    lab.add_protocol({"ok.ipynb": protocol_notebook()}, name="ok")
    runs = {SUCCESS: lab.run("hh", "ok"), PARTIAL: lab.run("hh", "ok", {"skip_doubled": True})}
    for i, (body, verdict) in enumerate(ENDINGS.items()):
        lab.add_protocol({f"ends{i}.ipynb": protocol_notebook(body=body)}, name=f"ends{i}")
        runs[verdict] = lab.run("hh", f"ends{i}")
    needs_calcium = DEFAULT_INTERFACE.replace("requires: [membrane_voltage]",
                                              "requires: [membrane_voltage, extracellular_calcium_concentration]")
    lab.add_protocol({"calcium.ipynb": protocol_notebook(interface=needs_calcium)}, name="calcium")
    runs[INAPPLICABLE] = lab.run("hh", "calcium")
    finished = {verdict: lab.status(run.id) for verdict, run in runs.items()}
    lab.wait(list(finished.values()), timeout=300)
    got = {verdict: classify(lab.status(run.id)) for verdict, run in finished.items()}
    for expected, (verdict, _) in got.items():
        assert verdict == expected, got
    assert got[SOLVER][1] == "CVODE error: the solver met its limit at t=12 ms"  # the model's own limit, named
    assert "ValueError: a bug in the analysis" in got[LABKIT][1]
    assert got[INAPPLICABLE][1] == "does not annotate extracellular_calcium_concentration"


def test_a_sweep_runs_each_pair_once_and_reports_a_table(sweep_lab: labkit.Lab, tmp_path: Path) -> None:
    models = webdata() / "models"
    results = sweep(sweep_lab, models, models=[HH], protocols=["ICaL", "SteadyStateRunner4Hz"], progress=False,
                    echo=lambda _: None)
    assert [(r.protocol, r.verdict) for r in results] == [("ICaL", INAPPLICABLE), ("SteadyStateRunner4Hz", SUCCESS)]
    assert "extracellular_calcium_concentration" in results[0].reason
    before = sweep_lab.count_runs()
    again = sweep(sweep_lab, models, models=[HH], protocols=["ICaL", "SteadyStateRunner4Hz"], progress=False,
                  echo=lambda _: None)
    assert sweep_lab.count_runs() == before and [r.run for r in again] == [r.run for r in results]  # reused
    report = write_sweep_report(results, tmp_path / "report").read_text()
    assert f"| {HH} | – | ✓ |" in report and "1 success, 1 inapplicable (2 runs)" in report
    assert (tmp_path / "report" / "sweep.csv").read_text().count("\n") == 3


def test_a_sweep_of_unknown_protocols_or_models_is_refused_and_runs_nothing(sweep_lab: labkit.Lab) -> None:
    before = sweep_lab.count_runs()
    with pytest.raises(ValueError, match="not Restitution"):
        sweep(sweep_lab, webdata() / "models", models=[HH], protocols=["Restitution"], echo=lambda _: None)
    with pytest.raises(ValueError, match="no model file no_such_model.cellml"):
        sweep(sweep_lab, webdata() / "models", models=["no_such_model"], echo=lambda _: None)
    refused = CliRunner().invoke(main, ["--lab", str(sweep_lab.settings.root), "validate", "--sweep"])
    assert refused.exit_code == 2 and "--sweep needs --models DIR" in refused.output
    assert sweep_lab.count_runs() == before
