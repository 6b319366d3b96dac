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
from labkit.validation.sweep import (
    INAPPLICABLE,
    LABKIT,
    NO_AP,
    PARTIAL,
    PENDING,
    SOLVER,
    SUCCESS,
    classify,
    sweep,
    write_sweep_report,
)
from labkit.validation.sweep_record import SweepRecord

HH = "hodgkin_huxley_squid_axon_model_1952_modified"
SAVE_ONE = "from labkit.results import OutputWriter\nOutputWriter(output_dir).save('time', [0.0, 1.0], units='ms')\n"
ENDINGS = {  # protocol body -> the verdict its run must get
    "import myokit\nraise myokit.SimulationError('CVODE error: the solver met its limit at t=12 ms')": SOLVER,
    "raise ValueError('a bug in the analysis')": LABKIT,
    SAVE_ONE + "raise KeyError('a bug after the first output')": LABKIT,  # partial, but still our bug
    SAVE_ONE + "from labkit import sim\nraise sim.NoActionPotentialError('no AP in the recorded beat\\nmore')": NO_AP,
}


@pytest.fixture(scope="module")
def sweep_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[labkit.Lab]:
    with lab_with_workers(tmp_path_factory.mktemp("sweep") / "lab", stale_after=6.0, heartbeat_interval=0.5) as lab:
        yield lab


def test_each_way_a_run_ends_gets_its_verdict(sweep_lab: labkit.Lab) -> None:
    lab = sweep_lab
    lab.add_model(webdata() / "models" / f"{HH}.cellml", name="hh")
    lab.add_protocol({"ok.ipynb": protocol_notebook()}, name="ok")
    runs = [(SUCCESS, lab.run("hh", "ok")), (PARTIAL, lab.run("hh", "ok", {"skip_doubled": True}))]
    for i, (body, verdict) in enumerate(ENDINGS.items()):
        lab.add_protocol({f"ends{i}.ipynb": protocol_notebook(body=body)}, name=f"ends{i}")
        runs.append((verdict, lab.run("hh", f"ends{i}")))
    needs_calcium = DEFAULT_INTERFACE.replace("requires: [membrane_voltage]",
                                              "requires: [membrane_voltage, extracellular_calcium_concentration]")
    lab.add_protocol({"calcium.ipynb": protocol_notebook(interface=needs_calcium)}, name="calcium")
    runs.append((INAPPLICABLE, lab.run("hh", "calcium")))
    lab.wait([run for _, run in runs], timeout=300)
    ended = [lab.status(run.id) for _, run in runs]
    got = [classify(info) for info in ended]
    assert [verdict for verdict, _ in got] == [expected for expected, _ in runs], got
    reasons = [reason for _, reason in got]
    assert reasons[2] == "CVODE error: the solver met its limit at t=12 ms"  # the model's own limit, named
    assert "ValueError: a bug in the analysis" in reasons[3]
    assert ended[4].status == "partial" and "KeyError" in reasons[4]  # outputs kept, yet a labkit bug
    assert ended[5].status == "partial" and reasons[5] == "no AP in the recorded beat (the outputs before it are kept)"
    assert reasons[6] == "does not annotate extracellular_calcium_concentration"


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


def test_a_model_that_does_not_fire_keeps_its_pace_count_and_is_named(sweep_lab: labkit.Lab, tmp_path: Path) -> None:
    """The standard steady-pacing notebook on a model whose stimulus cannot capture (amplitude 0): the
    APD cell stops with NoActionPotentialError, and the pace count, trace and voltages saved before
    it are kept, as the Web Lab kept num_paces when its APD calculation failed."""
    original = (webdata() / "models" / f"{HH}.cellml").read_text()
    silent = original.replace('initial_value="-20" cmeta:id="membrane_stimulus_current_amplitude"',
                              'initial_value="0" cmeta:id="membrane_stimulus_current_amplitude"')
    assert silent != original
    (tmp_path / "hh_no_capture.cellml").write_text(silent)
    [result] = sweep(sweep_lab, tmp_path, protocols=["SteadyStateRunner4Hz"], progress=False, echo=lambda _: None)
    assert (result.verdict, result.reason) == (
        NO_AP, "no action potential to measure at a period of 250 ms, so no APD90 (the other outputs are saved): "
               "the voltage hardly moved during the stimulus: no capture, or the cell is refractory (2:1 block) "
               "(the outputs before it are kept)")
    run = sweep_lab.status(result.run)
    assert run.status == "partial" and "sim.NoActionPotentialError(" in run.failing_cell
    outputs = sweep_lab.prediction(run.id).outputs
    assert set(outputs) == {"num_paces", "found_steady_state", "time", "membrane_voltage", "resting_potential",
                            "peak_voltage"}
    assert 1 <= int(outputs["num_paces"].values) < 10000 and int(outputs["found_steady_state"].values) == 1
    assert float(outputs["peak_voltage"].values) - float(outputs["resting_potential"].values) < 1.0  # flat


def test_a_record_carries_verdicts_to_another_lab_until_an_input_changes(sweep_lab: labkit.Lab,
                                                                          tmp_path: Path) -> None:
    models, path = tmp_path / "models", tmp_path / "record.json"
    models.mkdir()
    original = (webdata() / "models" / f"{HH}.cellml").read_text()
    (models / f"{HH}.cellml").write_text(original)
    pairs = ["ICaL", "SteadyStateRunner4Hz"]
    first = sweep(sweep_lab, models, protocols=pairs, progress=False, record=SweepRecord.load(path),
                  echo=lambda _: None)
    assert [r.verdict for r in first] == [INAPPLICABLE, SUCCESS]
    with labkit.Lab.open(tmp_path / "elsewhere") as lab:  # no workers: nothing could run here
        again = sweep(lab, models, protocols=pairs, wait=False, record=SweepRecord.load(path), echo=lambda _: None)
        assert again == first and lab.count_runs() == 0
        (models / f"{HH}.cellml").write_text(original.replace("</model>", "<!-- edited -->\n</model>"))
        changed = sweep(lab, models, protocols=pairs, wait=False, record=SweepRecord.load(path),
                        echo=lambda _: None)
        assert [r.verdict for r in changed] == [INAPPLICABLE, PENDING]  # the new file's runs: one is queued
        assert lab.count_runs() == 2


def test_a_bad_record_is_refused_before_the_lab_opens(tmp_path: Path) -> None:
    bad = tmp_path / "record.json"
    bad.write_text('{"format": 1, "entries": []}')  # a validation ledger's header, not a sweep record
    result = CliRunner().invoke(main, ["--lab", str(tmp_path / "lab"), "validate", "--sweep", "--models",
                                       str(webdata() / "models"), "--ledger", str(bad)])
    assert result.exit_code != 0 and "is not a labkit sweep record" in result.output
    assert not (tmp_path / "lab").exists()
    assert bad.read_text() == '{"format": 1, "entries": []}'


def test_a_failed_run_is_reused_unless_retried(sweep_lab: labkit.Lab, tmp_path: Path) -> None:
    """Beeler-Reuter with zero capacitance: the solver fails. A later sweep reports that run again; with
    ``retry_failed`` (a failure that may have been the machine's) it queues a new one."""
    original = (webdata() / "models" / "beeler_reuter_model_1977.cellml").read_text()
    broken = original.replace('initial_value="0.01" cmeta:id="membrane_capacitance"',
                              'initial_value="0" cmeta:id="membrane_capacitance"')
    assert broken != original
    (tmp_path / "br_no_capacitance.cellml").write_text(broken)
    [first] = sweep(sweep_lab, tmp_path, protocols=["SteadyStateRunner4Hz"], progress=False, echo=lambda _: None)
    assert first.verdict == SOLVER and sweep_lab.status(first.run).status == "failed"
    [again] = sweep(sweep_lab, tmp_path, protocols=["SteadyStateRunner4Hz"], progress=False, echo=lambda _: None)
    assert again == first
    before = sweep_lab.count_runs()
    [retried] = sweep(sweep_lab, tmp_path, protocols=["SteadyStateRunner4Hz"], progress=False, retry_failed=True,
                      echo=lambda _: None)
    assert retried.run != first.run and retried.verdict == SOLVER and sweep_lab.count_runs() == before + 1
