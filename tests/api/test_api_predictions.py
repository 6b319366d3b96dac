"""A finished run's prediction through the REST API: summary, outputs as JSON and CSV, the executed
notebook, plots, log and the whole folder as a zip."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np

import labkit

from .client import Api


def test_prediction_summary(api: Api, finished_run: labkit.RunInfo) -> None:
    summary = api.ok("GET", f"/runs/{finished_run.id}/prediction")
    outputs = {o["name"]: o for o in summary["outputs"]}
    assert outputs["peak"]["value"] == 8.0 and outputs["peak"]["units"] == "mV"
    assert outputs["time"]["shape"] == [5] and "value" not in outputs["time"]
    assert [p["name"] for p in summary["plots"]] == ["doubled_vs_time.png"]
    assert summary["status"] == "success" and isinstance(summary["provenance"], dict) and summary["provenance"]
    assert summary["zip_url"] == f"/labkit/api/v1/runs/{finished_run.id}/prediction.zip"


def test_outputs_as_json_and_as_csv(api: Api, finished_run: labkit.RunInfo) -> None:
    base = f"/runs/{finished_run.id}/outputs"
    listed = api.ok("GET", base + "?limit=2")
    assert listed["total"] == 3 and len(listed["items"]) == 2 and listed["next"]
    doubled = api.ok("GET", base + "/doubled")
    assert doubled["values"] == [0.0, 2.0, 4.0, 6.0, 8.0] and doubled["units"] == "mV"
    csv = api.get(base + "/doubled.csv")
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")
    assert "# units: mV" in csv.text
    assert csv.headers["Content-Disposition"].startswith('attachment; filename="doubled.csv"')
    np.testing.assert_array_equal(np.loadtxt(io.StringIO(csv.text), delimiter=","), [0, 2, 4, 6, 8])
    message = api.error("GET", base + "/voltage", 404)
    assert "has no output 'voltage'" in message and "'doubled'" in message
    api.error("GET", base + "/voltage.csv", 404)


def test_executed_notebook_plot_and_log(api: Api, finished_run: labkit.RunInfo) -> None:
    notebook = api.get(f"/runs/{finished_run.id}/notebook")
    assert notebook.status_code == 200 and json.loads(notebook.content)["nbformat"] == 4
    plots = api.ok("GET", f"/runs/{finished_run.id}/plots")["items"]
    png = api.get(plots[0]["url"].removeprefix("/labkit/api/v1"))
    assert png.headers["Content-Type"] == "image/png" and png.content.startswith(b"\x89PNG")
    assert "has no plot 'x.png'" in api.error("GET", f"/runs/{finished_run.id}/plots/x.png", 404)
    log = api.get(f"/runs/{finished_run.id}/log")
    assert log.status_code == 200 and log.headers["Content-Type"].startswith("text/plain")


def test_the_whole_prediction_as_a_zip(api: Api, finished_run: labkit.RunInfo) -> None:
    response = api.get(f"/runs/{finished_run.id}/prediction.zip")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    prefix = finished_run.id + "/"
    assert {prefix + "notebook.ipynb", prefix + "outputs/peak.csv", prefix + "outputs/outputs.json",
            prefix + "plots/doubled_vs_time.png", prefix + "provenance.json"} <= set(names)
