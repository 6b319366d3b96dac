"""``labkit.connect``: the same reading, running and comparing methods as ``Lab``, through the REST API
and as the token's user, against a real API server and real workers."""
from __future__ import annotations

from pathlib import Path

import pytest

import labkit
from labkit.dashboards.serve import ApiServer


def test_a_remote_lab_answers_as_the_lab_does(api_lab: labkit.Lab, api_server: ApiServer,
                                              finished_run: labkit.RunInfo, tmp_path: Path) -> None:
    remote = labkit.connect(api_server.url.removesuffix("/labkit/api/v1"), api_server.token, cache=tmp_path)
    assert remote.user == api_lab.user
    for kind in ("model", "protocol", "dataset"):
        assert remote.names(kind) == api_lab.names(kind)
    here, there = api_lab.version("model", "hh"), remote.version("model", "hh")
    assert (there.number, there.commit, there.tags, there.main_file) == (here.number, here.commit, here.tags,
                                                                       here.main_file)
    assert remote.read_file("model", "hh") == api_lab.read_file("model", "hh")
    assert remote.annotations("hh") == api_lab.annotations("hh") and len(remote.annotations("hh")) > 3
    assert remote.models_with_term("membrane_voltage") == api_lab.models_with_term("membrane_voltage")
    assert remote.interface("test") == api_lab.interface("test")
    assert remote.compatibility("hh", "calcium") == api_lab.compatibility("hh", "calcium")

    info = remote.wait([remote.run("hh", "test", {"sleep": 0.1})], timeout=180)[0]
    assert info.status == "success" and info.parameters == {"sleep": 0.1}
    assert api_lab.status(info.id).status == "success"  # the same run, seen from the lab
    prediction = remote.prediction(info.id)
    assert prediction.folder.is_relative_to(tmp_path)
    assert {n: o.values.tolist() for n, o in prediction.outputs.items()} == \
        {n: o.values.tolist() for n, o in api_lab.prediction(info.id).outputs.items()}
    assert "<b>Prediction</b>" in prediction._repr_html_()
    assert info.id in {r.id for r in remote.runs(model="hh", protocol="test")}

    again = remote.wait([remote.rerun(info.id)], timeout=180)[0]
    assert again.rerun_of == info.id
    report = remote.reproduction(again.id)
    assert report.reproduced and report.counts()["identical"] == 3


def test_a_remote_lab_refuses_as_the_api_does(api_lab: labkit.Lab, api_server: ApiServer,
                                              finished_run: labkit.RunInfo, tmp_path: Path) -> None:
    remote = labkit.connect(api_server.url, api_server.token, cache=tmp_path)
    before = api_lab.count_runs()
    with pytest.raises(labkit.InvalidInput, match=r"has no parameters \['speed'\]"):
        remote.run("hh", "test", {"speed": 2})
    with pytest.raises(labkit.NotFound, match="there is no run"):
        remote.status("no-such-run")
    with pytest.raises(labkit.NotFound):
        remote.version("model", "no-such-model")
    assert api_lab.count_runs() == before
    with pytest.raises(labkit.Forbidden, match="refused the token"):
        labkit.connect(api_server.url, "lk_not-a-token", cache=tmp_path)
    with pytest.raises(labkit.LabkitError, match="cannot be reached"):
        labkit.connect("http://127.0.0.1:9", "lk_x", cache=tmp_path, timeout=5)


def test_a_remote_lab_acts_as_its_tokens_user(api_lab: labkit.Lab, api_server: ApiServer,
                                             finished_run: labkit.RunInfo, tmp_path: Path) -> None:
    api_lab.add_user("remote-reader")
    reader = labkit.connect(api_server.url, api_lab.create_token("remote-reader"), cache=tmp_path)
    assert reader.user == "remote-reader"
    assert "hh" not in reader.names("model")  # the operator's private versions do not exist for them
    with pytest.raises(labkit.NotFound):
        reader.status(finished_run.id)
    with pytest.raises(labkit.NotFound):
        reader.run("hh", "test")
