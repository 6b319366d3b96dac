"""Dashboards against a lab with two real Celery workers: a matrix cell launched from the page turns
to success through the page's own polling thread; the prediction view and the comparison read
real predictions."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from dash_helpers import dataset_csv, eventually, text

import labkit
from labkit.dashboards import ComparisonPage, MatrixPage, PredictionView

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def dataset(running_lab: labkit.Lab) -> str:
    running_lab.add_dataset({"doubled.csv": dataset_csv()}, protocol="test", name="doubled_data")
    return "doubled_data"


def test_a_cell_run_from_the_matrix_turns_to_success_live(running_lab: labkit.Lab) -> None:
    matrix = MatrixPage(running_lab, poll_seconds=0.3)
    try:
        cell = matrix.cell("tt06", "test")
        cell.button.click()
        matrix.run_button.click()
        assert matrix.message.kind == "ok", matrix.message.text
        assert cell.status in ("queued", "running")
        polls = matrix.polls
        eventually(lambda: cell.status == "success", what="the cell turning to success")
        assert matrix.polls > polls  # the polling thread repainted it, nobody else did
        assert "lk-status-success" in cell.button._dom_classes and cell.button.description == "✓"
        assert "1 success" in text(matrix.status_line.value)
        matrix.mode.value = "open"
        cell.button.click()
        view = matrix.detail.children[0]
        assert "success" in text(view.children[0].value)
        plots = [c for c in view.children[2].children if "lk-plot" in getattr(c, "_dom_classes", ())]
        assert not plots  # plots sit inside an HBox: look one level down
        images = [g for c in view.children[2].children for g in getattr(c, "children", ())
                  if "lk-plot" in getattr(g, "_dom_classes", ())]
        assert len(images) == 1 and images[0].value[:4] == b"\x89PNG"
    finally:
        matrix.stop()


def test_prediction_view_of_a_success_and_of_a_failure(running_lab: labkit.Lab) -> None:
    ok = running_lab.run("hh", "test")
    failed = running_lab.run("hh", "test", {"fail": True})
    running_lab.wait([ok, failed], timeout=300)

    view = PredictionView(running_lab, ok.id, live=False)
    summary = text(view.summary.value)
    assert "success" in summary and "hh v1" in summary and "test v1" in summary
    body = " ".join(text(c.value) for c in view.body.children if hasattr(c, "value") and isinstance(c.value, str))
    for expected in ("Outputs", "peak", "mV", "8", "Provenance", "software: myokit", "Timings", "Status history"):
        assert expected in body, expected
    assert 'download="peak.csv"' in "".join(c.value for c in view.body.children if isinstance(getattr(c, "value", None), str))
    archive = zipfile.ZipFile(io.BytesIO(view.prepare_archive()))
    assert {"notebook.ipynb", "provenance.json", "outputs/peak.csv"} <= set(archive.namelist())
    assert 'download="prediction-' in view.archive_link.value

    bad = PredictionView(running_lab, failed.id, live=False)
    assert "failed" in text(bad.summary.value)
    failure = text(bad.body.children[0].value)
    assert "RuntimeError: the protocol failed on purpose" in failure
    assert 'raise RuntimeError("the protocol failed on purpose")' in failure  # the failing cell


def test_a_run_that_failed_after_saving_outputs_shows_its_failure_and_its_outputs(running_lab: labkit.Lab) -> None:
    [late] = running_lab.wait([running_lab.run("hh", "test", {"fail_late": True})], timeout=300)
    view = PredictionView(running_lab, late.id, live=False)
    assert "partial" in text(view.summary.value)
    shown = " ".join(text(c.value) for c in view.body.children if isinstance(getattr(c, "value", None), str))
    assert "RuntimeError: the protocol failed on purpose after saving two outputs" in shown  # the failure ...
    assert "doubled" in shown and "Outputs" in shown  # ... and the outputs saved before it


def test_a_running_prediction_fills_in_when_it_ends(running_lab: labkit.Lab) -> None:
    info = running_lab.run("hh", "test", {"sleep": 2.0})
    view = PredictionView(running_lab, info.id, poll_seconds=0.3)
    assert not view.info.done
    eventually(lambda: view.info.status == "success", what="the view seeing the run end")
    assert "Outputs" in " ".join(text(c.value) for c in view.body.children if isinstance(getattr(c, "value", None), str))


def test_compare_two_models_with_a_data_set_overlaid(running_lab: labkit.Lab, dataset: str) -> None:
    runs = running_lab.wait([running_lab.run("tt06", "test"), running_lab.run("hh", "test")], timeout=300)
    assert all(r.status == "success" for r in runs)
    page = ComparisonPage(running_lab, protocol="test", runs=",".join(r.id for r in runs))
    assert list(page.run_pick.value) == [r.id for r in runs]
    assert page.dataset_pick.value == dataset
    assert page.figure.value[:4] == b"\x89PNG" and page.svg.lstrip().startswith(b"<?xml")
    title, labels = page.drawn[0]
    assert title == "Doubled against time"
    assert labels == [f"tt06 v1 ({runs[0].id[:6]})", f"hh v1 ({runs[1].id[:6]})", f"data: {dataset}"]
    table = text(page.table.value)
    assert "peak" in table and "8" in table and "data (mean)" in table and "8.5" in table
    csv_text = page.csv.decode()
    assert runs[0].id in csv_text and runs[1].id in csv_text
    assert "doubled,mV,4,8.0" in csv_text
    exports = page.exports.value
    for name in ("compare-test.png", "compare-test.svg", "compare-test.csv"):
        assert f'download="{name}"' in exports
    page.choose([runs[1].id], dataset="")
    assert page.drawn[0][1] == [f"hh v1 ({runs[1].id[:6]})"]
    assert np.isclose(float(page.series[0].outputs["peak"].scalar), 8.0)


def test_the_prediction_page_reruns_a_run_and_the_rerun_shows_the_comparison(running_lab: labkit.Lab) -> None:
    [first] = running_lab.wait([running_lab.run("hh", "test")], timeout=300)
    view = PredictionView(running_lab, first.id, live=False)
    [button] = [c.children[0] for c in view.body.children if "lk-rerun" in getattr(
        getattr(c, "children", [None])[0], "_dom_classes", ())]
    before = running_lab.count_runs()
    button.click()
    assert view.message.kind == "ok", view.message.text
    assert running_lab.count_runs() == before + 1
    again = next(r for r in reversed(running_lab.runs()) if r.rerun_of == first.id)
    assert again.id[:8] in view.message.text and f"run={again.id}" in view.message.value
    running_lab.wait([again], timeout=300)
    shown = PredictionView(running_lab, again.id, live=False)
    assert f"re-run of {first.id}" in text(shown.summary.value)
    html = " ".join(c.value for c in shown.body.children if isinstance(getattr(c, "value", None), str))
    assert 'data-reproduced="true"' in html and "3 identical" in text(html)
