"""Runs through the real queue: Celery workers on the SQLite broker, papermill, real kernels."""
from __future__ import annotations

import json
import platform
import time
from importlib import metadata

import nbformat
import psutil
import pytest
from notebooks import DEFAULT_INTERFACE, protocol_notebook

import labkit
from labkit.queue.tasks import send_run
from labkit.store import orm

pytestmark = pytest.mark.timeout(300)


def wait_for_status(lab: labkit.Lab, run_id: str, status: str, timeout: float = 60) -> labkit.RunInfo:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = lab.status(run_id)
        if info.status == status:
            return info
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} is {lab.status(run_id).status}, not {status}, after {timeout} s")


def test_a_run_produces_an_executed_notebook_outputs_with_units_and_a_plot(running_lab: labkit.Lab) -> None:
    info = running_lab.wait([running_lab.run("tt06", "test")], timeout=120)[0]
    assert info.status == "success", info.error
    prediction = running_lab.prediction(info.id)
    executed = nbformat.read(prediction.notebook, as_version=4)
    assert any(c.get("metadata", {}).get("papermill", {}).get("duration") is not None for c in executed.cells)
    outputs = prediction.outputs
    assert outputs["doubled"].units == "mV" and outputs["doubled"].values.tolist() == [0, 2, 4, 6, 8]
    assert outputs["peak"].scalar == 8.0 and outputs["time"].units == "ms"
    assert [p.name for p in prediction.plots] == ["doubled_vs_time.png"]
    assert prediction.plots[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    provenance = prediction.provenance
    assert provenance["model"]["commit"] == running_lab.version("model", "tt06").commit
    assert provenance["protocol"]["commit"] == running_lab.version("protocol", "test").commit
    assert "myokit" in provenance["software"] and "papermill" in provenance["software"]
    environment = provenance["environment"]  # the whole environment, to rebuild it elsewhere
    for name in ("labkit", "myokit", "numpy", "papermill", "celery", "SQLAlchemy"):
        assert environment["distributions"][name] == metadata.version(name), name
    assert len(environment["distributions"]) > 50
    assert environment["python"] == platform.python_version() and environment["sundials"].count(".") == 2
    assert prediction.timings["execute_s"] > 0
    assert [h[0] for h in info.history] == ["queued", "running", "success"]


def test_outputs_are_read_directly_by_numpy_and_pandas(running_lab: labkit.Lab) -> None:
    import numpy as np
    import pandas as pd
    info = running_lab.wait([running_lab.run("tt06", "test")], timeout=120)[0]
    folder = running_lab.prediction(info.id).folder / "outputs"
    assert np.loadtxt(folder / "doubled.csv", delimiter=",").tolist() == [0, 2, 4, 6, 8]
    assert pd.read_csv(folder / "doubled.csv", comment="#", header=None)[0].tolist() == [0, 2, 4, 6, 8]
    manifest = json.loads((folder / "outputs.json").read_text())
    assert manifest["doubled"] == {"units": "mV", "shape": [5], "description": "", "file": "doubled.csv"}


def test_missing_declared_output_makes_the_run_partial(running_lab: labkit.Lab) -> None:
    info = running_lab.wait([running_lab.run("tt06", "test", {"skip_doubled": True})], timeout=120)[0]
    assert info.status == "partial"
    assert "doubled" in info.error
    assert "doubled" not in running_lab.prediction(info.id).outputs


def test_a_failing_protocol_reports_its_error_and_cell(running_lab: labkit.Lab) -> None:
    info = running_lab.wait([running_lab.run("tt06", "test", {"fail": True})], timeout=120)[0]
    assert info.status == "failed"
    assert "RuntimeError" in info.error and "on purpose" in info.error
    assert 'raise RuntimeError("the protocol failed on purpose")' in info.failing_cell
    assert running_lab.prediction(info.id).notebook.exists()
    assert running_lab.prediction(info.id).outputs == {}  # it failed before saving anything


def test_a_protocol_failing_after_saving_outputs_is_partial_and_keeps_them(running_lab: labkit.Lab) -> None:
    """Outputs are kept as they are computed: a late failure loses only what came after it."""
    info = running_lab.wait([running_lab.run("tt06", "test", {"fail_late": True})], timeout=120)[0]
    assert info.status == "partial"
    assert info.error_line == "RuntimeError: the protocol failed on purpose after saving two outputs"
    assert "raise RuntimeError(" in info.failing_cell
    outputs = running_lab.prediction(info.id).outputs
    assert set(outputs) == {"time", "doubled"}
    assert list(outputs["doubled"].values) == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_unknown_parameters_are_refused_before_queueing(running_lab: labkit.Lab) -> None:
    before = len(running_lab.runs())
    with pytest.raises(labkit.InvalidInput, match="no parameters \\['pacing'\\]"):
        running_lab.run("tt06", "test", {"pacing": 3})
    assert len(running_lab.runs()) == before


def test_an_incompatible_pair_is_inapplicable_without_starting_a_kernel(running_lab: labkit.Lab) -> None:
    needs_ical = DEFAULT_INTERFACE.replace("requires: [membrane_voltage]",
                                           "requires: [membrane_voltage, membrane_L_type_calcium_current]")
    running_lab.add_protocol({"ical.ipynb": protocol_notebook(interface=needs_ical)}, name="needs_ical")
    info = running_lab.run("hh", "needs_ical")
    assert info.status == "inapplicable"
    assert info.missing_terms == ("membrane_L_type_calcium_current",)
    assert info.results_path is None
    time.sleep(1.5)  # a worker that (wrongly) took it would have recorded a 'running' event by now
    assert [h[0] for h in running_lab.status(info.id).history] == ["inapplicable"]
    assert running_lab.compatibility("tt06", "needs_ical").compatible


def test_cancel_stops_a_running_experiment_and_its_kernel(running_lab: labkit.Lab) -> None:
    info = running_lab.run("tt06", "test", {"sleep": 120.0})
    wait_for_status(running_lab, info.id, "running")
    with running_lab.db.session() as s:
        worker_pid = s.get(orm.Run, info.id).worker_pid
    deadline = time.monotonic() + 60  # papermill starts the kernel a few seconds after the claim
    kernels_before: list[psutil.Process] = []
    while not kernels_before and time.monotonic() < deadline:
        time.sleep(0.5)
        kernels_before = [p for p in psutil.Process(worker_pid).children(recursive=True)
                          if "ipykernel" in " ".join(p.cmdline())]
    assert kernels_before, "the run should have a kernel process"
    running_lab.cancel(info.id)
    cancelled = wait_for_status(running_lab, info.id, "cancelled", timeout=15)
    assert "cancelled" in cancelled.error
    time.sleep(1)
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in kernels_before)


def test_time_limit_stops_the_kernel_and_fails_the_run(running_lab: labkit.Lab) -> None:
    limited = DEFAULT_INTERFACE + "time_limit: 4\n"
    running_lab.add_protocol({"slow.ipynb": protocol_notebook(interface=limited)}, name="limited")
    info = running_lab.wait([running_lab.run("tt06", "limited", {"sleep": 60.0})], timeout=90)[0]
    assert info.status == "failed"
    assert "time limit of 4 s" in info.error


def test_a_message_delivered_twice_executes_once(running_lab: labkit.Lab) -> None:
    info = running_lab.run("tt06", "test", {"sleep": 2.0})
    send_run(running_lab.celery, running_lab.settings, info.id)  # a duplicate delivery
    time.sleep(1.0)
    send_run(running_lab.celery, running_lab.settings, info.id)
    done = running_lab.wait([info], timeout=120)[0]
    time.sleep(2.0)  # give the duplicates time to be picked up and ignored
    done = running_lab.status(info.id)
    assert done.status == "success" and done.attempt == 1
    assert [h[0] for h in done.history] == ["queued", "running", "success"]
    with running_lab.db.session() as s:
        assert s.query(orm.Output).filter(orm.Output.run_id == info.id).count() == 3


def test_a_rerun_is_a_new_run_and_earlier_runs_are_kept(running_lab: labkit.Lab) -> None:
    first = running_lab.wait([running_lab.run("tt06", "test")], timeout=120)[0]
    second = running_lab.wait([running_lab.run("tt06", "test")], timeout=120)[0]
    assert first.id != second.id
    assert running_lab.prediction(first.id).folder.exists() and running_lab.prediction(second.id).folder.exists()
    assert {first.id, second.id} <= {r.id for r in running_lab.runs(model="tt06", protocol="test")}


def test_cancelling_a_queued_run_means_it_never_starts(lab: labkit.Lab, models_dir) -> None:
    lab.add_model(models_dir / "ten_tusscher_model_2006_epi.cellml", name="tt06")
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
    info = lab.run("tt06", "test")  # no workers yet: it stays queued
    assert info.status == "queued"
    assert lab.cancel(info.id).status == "cancelled"
    with pytest.raises(labkit.InvalidInput, match="already ended"):
        lab.cancel(info.id)
    lab.start_workers(1)
    try:
        later = lab.wait([lab.run("tt06", "test")], timeout=120)[0]  # proves the worker is consuming
        assert later.status == "success"
        assert [h[0] for h in lab.status(info.id).history] == ["queued", "cancelled"]
    finally:
        lab.stop_workers()
