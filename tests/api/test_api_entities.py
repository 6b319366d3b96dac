"""Entities through the REST API: listing with pages, versions by every kind of reference, uploads
(and refused uploads that change nothing), tags, files, annotations, interfaces, data sets, the
protocol check and compatibility."""
from __future__ import annotations

import json
from pathlib import Path

from notebooks import protocol_notebook

import labkit

from .client import Api


def test_list_models_shows_each_with_its_latest_version(api: Api) -> None:
    page = api.ok("GET", "/models")
    hh = next(item for item in page["items"] if item["name"] == "hh")
    assert hh["kind"] == "model" and hh["versions"] >= 1
    assert hh["latest"]["tags"] == ["published"] and hh["latest"]["number"] == hh["versions"]
    assert hh["url"] == "/labkit/api/v1/models/hh"


def test_listings_are_paged_with_a_next_link(api: Api) -> None:
    first = api.ok("GET", "/protocols?limit=1")
    assert first["total"] >= 2 and len(first["items"]) == 1 and first["limit"] == 1 and first["offset"] == 0
    seen = [first["items"][0]["name"]]
    page = first
    while page["next"]:
        assert page["next"].startswith("/labkit/api/v1/protocols?")
        page = api.ok("GET", page["next"].removeprefix("/labkit/api/v1"))
        seen += [item["name"] for item in page["items"]]
    assert len(seen) == first["total"] and {"calcium", "test"} <= set(seen)
    assert seen == sorted(seen)  # by name, no item twice


def test_bad_page_parameters_are_refused_with_the_allowed_range(api: Api) -> None:
    assert "limit must be from 1 to 500" in api.error("GET", "/models?limit=0", 400)
    assert "limit must be a whole number" in api.error("GET", "/models?limit=ten", 400)
    assert "offset must be at least 0" in api.error("GET", "/runs?offset=-1", 400)
    message = api.error("GET", "/runs?stauts=success", 400)
    assert "unknown query parameters ['stauts']" in message and "'status'" in message


def test_an_entity_and_a_missing_one(api: Api) -> None:
    assert api.ok("GET", "/protocols/test")["latest"]["main_file"] == "test.ipynb"
    assert "there is no model called 'nope'" in api.error("GET", "/models/nope", 404)
    assert "no endpoint" in api.error("GET", "/widgets", 404)  # not a kind: no such endpoint


def test_a_version_by_number_tag_commit_and_latest(api: Api) -> None:
    versions = api.ok("GET", "/models/hh/versions")["items"]
    first = versions[0]
    for ref in ("1", "v1", "published", first["commit"][:8]):
        assert api.ok("GET", f"/models/hh/versions/{ref}")["commit"] == first["commit"], ref
    assert api.ok("GET", "/models/hh/versions/latest")["number"] == versions[-1]["number"]
    message = api.error("GET", "/models/hh/versions/v99", 404)
    assert "has no version 'v99'" in message and "published" in message


def test_upload_a_model_then_a_new_version_based_on_the_latest(api: Api, model_file: Path) -> None:
    with open(model_file, "rb") as f:
        saved = api.ok("POST", "/models/hh-upload/versions", 201, files={"file": f}, data={"message": "first"})
    assert saved["version"]["number"] == 1 and saved["version"]["message"] == "first"
    assert saved["version"]["main_file"] == model_file.name and saved["runs"] == []
    assert any(p["protocol"]["entity"] == "test" for p in saved["planned"])  # compatible: implied
    assert not any(p["protocol"]["entity"] == "calcium" for p in saved["planned"])

    parent = saved["version"]["commit"]
    changed = model_file.read_bytes().replace(b"</model>", b"<!-- v2 --></model>")
    second = api.ok("POST", "/models/hh-upload/versions", 201, data={"parent": parent[:10], "tag": "v2-tag"},
                    files={"file": (model_file.name, changed)})
    assert second["version"]["number"] == 2 and second["version"]["tags"] == ["v2-tag"]

    # a save based on the first version is now stale: refused, and nothing changes
    message = api.error("POST", "/models/hh-upload/versions", 400, data={"parent": parent[:10]},
                        files={"file": (model_file.name, changed + b" ")})
    assert "was changed since" in message and "Re-open the latest version" in message
    assert api.ok("GET", "/models/hh-upload")["versions"] == 2
    assert api.get(f"/models/hh-upload/versions/2/files/{model_file.name}").content == changed


def test_upload_with_run_queues_the_implied_experiments(api: Api, model_file: Path) -> None:
    with open(model_file, "rb") as f:
        saved = api.ok("POST", "/models/hh-run/versions", 201, files={"file": f}, data={"run": "true"})
    runs = saved["runs"]
    implied = [("hh-run", p["protocol"]["entity"]) for p in saved["planned"]]
    assert [(r["model"], r["protocol"]) for r in runs] == implied
    assert runs and all(r["status"] in ("queued", "running", "success") for r in runs)
    refused = api.error("POST", "/models/hh-run/versions", 400, data={"run": "maybe"},
                        files={"file": (model_file.name, model_file.read_bytes())})
    assert "must be true or false" in refused and api.ok("GET", "/models/hh-run")["versions"] == 1


def test_a_refused_model_upload_creates_nothing(api: Api) -> None:
    message = api.error("POST", "/models/broken/versions", 400, files={"file": ("broken.cellml", b"<model")})
    assert "broken" in message or "CellML" in message or "XML" in message
    api.error("GET", "/models/broken", 404)


def test_uploads_must_be_multipart_with_files(api: Api) -> None:
    assert "multipart/form-data" in api.error("POST", "/models/x/versions", 400, json={"file": "abc"})
    assert "no file was sent" in api.error("POST", "/models/x/versions", 400, files={"message": (None, "m")})
    assert "name every file part 'file'" in api.error("POST", "/models/x/versions", 400,
                                                      files={"model": ("x.cellml", b"<model/>")})
    assert "unknown form fields ['colour']" in api.error(
        "POST", "/models/x/versions", 400, files={"file": ("x.cellml", b"<model/>")}, data={"colour": "red"})
    api.error("GET", "/models/x", 404)


def test_a_protocol_that_fails_its_check_lists_every_problem(api: Api) -> None:
    notebook = protocol_notebook(tag_parameters=False)
    response = api.post("/protocols/unchecked/versions", files={"file": ("unchecked.ipynb", notebook)})
    assert response.status_code == 400
    body = response.json()
    assert "failed its check" in body["error"]
    assert any("tagged 'parameters'" in p for p in body["problems"])
    api.error("GET", "/protocols/unchecked", 404)


def test_datasets_need_their_protocol_and_describe_their_columns(api: Api) -> None:
    csv = b"time (ms),doubled (mV)\n0,0\n1,2\n"
    assert "needs the 'protocol' field" in api.error("POST", "/datasets/d2/versions", 400,
                                                     files={"file": ("d2.csv", csv)})
    assert "there is no protocol called 'nope'" in api.error(
        "POST", "/datasets/d2/versions", 404, files={"file": ("d2.csv", csv)}, data={"protocol": "nope"})
    assert "for data sets" in api.error("POST", "/models/d2/versions", 400,
                                        files={"file": ("d2.cellml", b"<model/>")}, data={"protocol": "test"})
    api.ok("POST", "/datasets/d2/versions", 201, files={"file": ("d2.csv", csv)}, data={"protocol": "test"})
    columns = api.ok("GET", "/datasets/d2/versions/latest/columns")
    assert columns == {"protocol": "test", "rows": 2,
                       "columns": [{"name": "time", "units": "ms"}, {"name": "doubled", "units": "mV"}]}
    assert api.ok("GET", "/datasets/test-data/versions/1/columns")["rows"] == 3
    api.error("GET", "/datasets/none/versions/1/columns", 404)


def test_tag_a_version_and_refuse_a_tag_in_use_or_malformed(api: Api, model_file: Path) -> None:
    api.ok("POST", "/models/hh-tags/versions", 201, files={"file": (model_file.name, model_file.read_bytes())})
    tagged = api.ok("POST", "/models/hh-tags/versions/1/tags", 201, json={"tag": "reviewed"})
    assert tagged["tags"] == ["reviewed"]
    assert "already has a tag 'reviewed'" in api.error("POST", "/models/hh-tags/versions/1/tags", 400,
                                                       json={"tag": "reviewed"})
    assert "not a valid tag name" in api.error("POST", "/models/hh-tags/versions/1/tags", 400, json={"tag": "a b"})
    assert "the field 'tag' is required" in api.error("POST", "/models/hh-tags/versions/1/tags", 400, json={})
    assert "not valid JSON" in api.error("POST", "/models/hh-tags/versions/1/tags", 400, data="{tag",
                                         headers={"Content-Type": "application/json"})
    assert "must be the tag's name" in api.error("POST", "/models/hh-tags/versions/1/tags", 400, json={"tag": 3})
    api.error("POST", "/models/hh-tags/versions/9/tags", 404, json={"tag": "later"})
    assert api.ok("GET", "/models/hh-tags/versions/1")["tags"] == ["reviewed"]


def test_files_of_a_version_listed_and_downloaded(api: Api, model_file: Path) -> None:
    files = api.ok("GET", "/models/hh/versions/1/files")["items"]
    assert files == [{"name": model_file.name, "main": True,
                      "url": f"/labkit/api/v1/models/hh/versions/1/files/{model_file.name}"}]
    response = api.get(files[0]["url"].removeprefix("/labkit/api/v1"))
    assert response.status_code == 200 and response.content == model_file.read_bytes()
    assert response.headers["Content-Type"] == "application/cellml+xml"
    assert "attachment" in response.headers["Content-Disposition"]
    notebook = api.get("/protocols/test/versions/latest/files/test.ipynb")
    assert json.loads(notebook.content)["nbformat"] == 4
    assert "has no file 'other.cellml'" in api.error("GET", "/models/hh/versions/1/files/other.cellml", 404)


def test_annotations_and_the_models_annotating_a_term(api: Api) -> None:
    page = api.ok("GET", "/models/hh/versions/published/annotations?limit=500")
    terms = {a["term"]: a["variable"] for a in page["items"]}
    assert terms["membrane_voltage"] == "membrane.V" and page["total"] == len(terms)
    assert "hh" in [m["name"] for m in api.ok("GET", "/models?term=membrane_voltage")["items"]]
    assert api.ok("GET", "/models?term=no_such_term")["items"] == []
    api.error("GET", "/models/nope/versions/1/annotations", 404)


def test_protocol_interface(api: Api) -> None:
    interface = api.ok("GET", "/protocols/test/versions/latest/interface")
    assert interface["requires"] == ["membrane_voltage"]
    assert [o["name"] for o in interface["outputs"]] == ["time", "doubled", "peak"]
    assert interface["parameters"] == {"sleep": 0.0, "fail": False, "skip_doubled": False, "fail_late": False}
    api.error("GET", "/protocols/nope/versions/latest/interface", 404)


def test_the_protocol_check_without_storing(api: Api, api_lab: labkit.Lab) -> None:
    good = api.ok("POST", "/protocol-check", files={"file": ("p.ipynb", protocol_notebook())})
    assert good["valid"] and good["problems"] == [] and good["interface"]["title"] == "Test protocol"
    bad = api.ok("POST", "/protocol-check", files={"file": ("p.ipynb", b"{not a notebook")})
    assert not bad["valid"] and "not a valid Jupyter notebook" in bad["problems"][0] and bad["interface"] is None
    assert "no file was sent" in api.error("POST", "/protocol-check", 400, files={"message": (None, "m")})
    assert "unknown form fields ['name']" in api.error("POST", "/protocol-check", 400,
                                                       files={"file": ("p.ipynb", b"{}"), "name": (None, "p")})
    assert "exactly one notebook" in api.error("POST", "/protocol-check", 400,
                                               files=[("file", ("a.ipynb", b"{}")), ("file", ("b.ipynb", b"{}"))])
    assert "p" not in api_lab.names("protocol")


def test_compatibility_of_a_model_with_protocols(api: Api) -> None:
    assert api.ok("GET", "/compatibility?model=hh&protocol=test")["compatible"] is True
    verdict = api.ok("GET", "/compatibility?model=hh&protocol=calcium&model_version=published")
    assert verdict["compatible"] is False and verdict["missing_required"] == ["cytosolic_calcium_concentration"]
    assert "does not annotate cytosolic_calcium_concentration" in verdict["explanation"]
    assert "'protocol' is required" in api.error("GET", "/compatibility?model=hh", 400)
    api.error("GET", "/compatibility?model=hh&protocol=nope", 404)
