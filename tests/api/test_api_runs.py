"""Runs through the REST API on real workers: submit, status, list with filters, cancel, re-run,
the matrix, and refused submissions that queue nothing."""
from __future__ import annotations

import time
from typing import Any

import labkit

from .client import Api


def wait_for(api: Api, run_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """Poll the run's status through the API until it has ended."""
    deadline = time.monotonic() + timeout
    while True:
        run = api.ok("GET", f"/runs/{run_id}")
        if run["done"] or time.monotonic() > deadline:
            return run
        time.sleep(0.3)


def test_submit_a_run_and_follow_it_to_success(api: Api) -> None:
    run = api.ok("POST", "/runs", 201, json={"model": "hh", "protocol": "test", "parameters": {"sleep": 0.1},
                                              "model_version": 1, "protocol_version": "latest"})
    assert run["status"] == "queued" and run["parameters"] == {"sleep": 0.1}
    assert run["url"] == f"/labkit/api/v1/runs/{run['id']}"
    assert (run["model"], run["model_version"], run["protocol"]) == ("hh", 1, "test")
    done = wait_for(api, run["id"])
    assert done["status"] == "success" and done["has_prediction"], done
    assert [h["status"] for h in done["history"]][:1] == ["queued"] and done["history"][-1]["status"] == "success"
    assert done["finished_at"] >= done["started_at"] >= done["created_at"]


def test_refused_submissions_say_why_and_queue_nothing(api: Api, api_lab: labkit.Lab) -> None:
    before = len(api_lab.runs())
    message = api.error("POST", "/runs", 400, json={"model": "hh", "protocol": "test", "parameters": {"speed": 2}})
    assert "has no parameters ['speed']" in message and "'sleep'" in message
    assert "'model' is required" in api.error("POST", "/runs", 400, json={"protocol": "test"})
    assert "must be an object of protocol parameter values" in api.error(
        "POST", "/runs", 400, json={"model": "hh", "protocol": "test", "parameters": [1]})
    assert "unknown fields ['colour']" in api.error("POST", "/runs", 400,
                                                    json={"model": "hh", "protocol": "test", "colour": 1})
    assert "must be a JSON object" in api.error("POST", "/runs", 400, json=["hh", "test"])
    assert "send a JSON object" in api.error("POST", "/runs", 400)
    api.error("POST", "/runs", 404, json={"model": "nope", "protocol": "test"})
    api.error("POST", "/runs", 404, json={"model": "hh", "protocol": "test", "model_version": "v9"})
    assert len(api_lab.runs()) == before


def test_an_incompatible_run_is_recorded_inapplicable(api: Api) -> None:
    run = api.ok("POST", "/runs", 201, json={"model": "hh", "protocol": "calcium"})
    assert run["status"] == "inapplicable" and run["done"]
    assert run["missing_terms"] == ["cytosolic_calcium_concentration"] and "does not annotate" in run["error"]
    assert "has no prediction yet (status inapplicable)" in api.error("GET", f"/runs/{run['id']}/prediction", 404)


def test_list_runs_with_filters_and_pages(api: Api, finished_run: labkit.RunInfo) -> None:
    successes = api.ok("GET", "/runs?status=success&model=hh&limit=500")
    assert finished_run.id in [r["id"] for r in successes["items"]]
    assert all(r["status"] == "success" and r["model"] == "hh" for r in successes["items"])
    assert api.ok("GET", "/runs?protocol=nope")["total"] == 0
    first = api.ok("GET", "/runs?model=hh&limit=1")
    if first["total"] > 1:
        assert "model=hh" in first["next"] and "offset=1" in first["next"]
        second = api.ok("GET", first["next"].removeprefix("/labkit/api/v1"))
        assert second["items"][0]["id"] != first["items"][0]["id"]


def test_cancel_a_run_then_cancelling_again_is_refused(api: Api) -> None:
    run = api.ok("POST", "/runs", 201, json={"model": "hh", "protocol": "test", "parameters": {"sleep": 60}})
    after = api.ok("POST", f"/runs/{run['id']}/cancel")
    assert after["status"] in ("cancelled", "running", "queued")
    ended = wait_for(api, run["id"], timeout=60)
    assert ended["status"] == "cancelled", ended
    assert "has already ended (cancelled)" in api.error("POST", f"/runs/{run['id']}/cancel", 400)


def test_rerun_repeats_the_same_versions_and_parameters(api: Api, finished_run: labkit.RunInfo) -> None:
    again = api.ok("POST", f"/runs/{finished_run.id}/rerun", 201)
    assert again["id"] != finished_run.id
    fields = ("model", "model_version", "protocol", "protocol_version", "parameters")
    assert [again[f] for f in fields] == [getattr(finished_run, f) for f in fields]
    assert again["rerun_of"] == finished_run.id
    assert wait_for(api, again["id"])["status"] == "success"
    report = api.ok("GET", f"/runs/{again['id']}/reproduction")
    assert report["original"] == finished_run.id and report["rerun"] == again["id"] and report["reproduced"]
    assert {o["name"]: o["verdict"] for o in report["outputs"]} == {"time": "identical", "doubled": "identical",
                                                                      "peak": "identical"}
    assert "is not a re-run" in api.error("GET", f"/runs/{finished_run.id}/reproduction", 400)
    api.error("GET", "/runs/no-such-run/reproduction", 404)


def test_the_matrix_records_incompatible_pairs_only_when_asked(api: Api) -> None:
    none = api.ok("POST", "/matrix", 201, json={"models": ["hh"], "protocols": ["calcium"]})
    assert none == {"items": [], "total": 0}
    runs = api.ok("POST", "/matrix", 201, json={"models": ["hh"], "protocols": ["calcium"], "only_compatible": False})
    assert runs["total"] == 1 and runs["items"][0]["status"] == "inapplicable"
    assert "must list names as strings" in api.error("POST", "/matrix", 400, json={"models": [1]})
    assert "must be true or false" in api.error("POST", "/matrix", 400, json={"only_compatible": "yes"})
    assert "must be true or false" in api.error("POST", "/matrix", 400, json={"rerun": 1})


def test_the_matrix_shows_a_pair_already_run_unless_asked_to_rerun(api: Api) -> None:
    pair = {"models": ["hh"], "protocols": ["test"]}
    first = api.ok("POST", "/matrix", 201, json=pair)["items"]
    again = api.ok("POST", "/matrix", 201, json=pair)["items"]
    assert [r["id"] for r in again] == [r["id"] for r in first]
    forced = api.ok("POST", "/matrix", 201, json={**pair, "rerun": True})["items"]
    assert len(forced) == 1 and forced[0]["id"] != first[0]["id"]


def test_unknown_runs_are_404_for_every_action(api: Api) -> None:
    for method, path in [("GET", "/runs/no-such-run"), ("POST", "/runs/no-such-run/cancel"),
                         ("POST", "/runs/no-such-run/rerun"), ("GET", "/runs/no-such-run/prediction")]:
        assert "there is no run 'no-such-run'" in api.error(method, path, 404), path
