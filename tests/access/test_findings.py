"""Regression tests for the holes found by trying labkit as a new user would (issue: a lab many
people share). Each test fails on the code before its fix."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from notebooks import protocol_notebook
from sqlalchemy import update

import labkit
from labkit.dashboards import BrowserPage
from labkit.dashboards.queries import search
from labkit.runner import claims
from labkit.store import orm

XSS = '<img src=x onerror="alert(document.cookie)"><script>alert(1)</script>[click](javascript:alert(2))'


def test_markdown_in_a_protocol_renders_inert(lab: labkit.Lab) -> None:
    nb = nbformat.reads(protocol_notebook().decode(), as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell(f"# Method\n\n{XSS}"))
    lab.add_protocol({"xss.ipynb": nbformat.writes(nb).encode()}, name="xss", visibility="public")
    html = BrowserPage(lab, kind="protocol", name="xss").view.details.value
    assert "Method" in html  # the documentation is shown
    assert "<img" not in html and "<script" not in html and "javascript:" not in html
    assert "&lt;img" in html  # as text


def test_an_absolute_results_path_outside_the_lab_is_not_served(lab: labkit.Lab, models_dir: Path,
                                                                  tmp_path: Path) -> None:
    from labkit.results.store import LAST_FILE
    lab.add_model(models_dir / "ten_tusscher_model_2006_epi.cellml", name="tt06")
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
    run = lab.run("tt06", "test")
    host = tmp_path / "host-folder"
    host.mkdir()
    (host / LAST_FILE).write_text("secret of the host")
    with lab.db.session() as s:  # what a row written by anything but a worker could say
        s.execute(update(orm.Run).where(orm.Run.id == run.id).values(status="success", results_path=str(host)))
    with pytest.raises(labkit.NotFound):
        lab.prediction(run.id)


@pytest.mark.parametrize("name", ["a\x00b", "tab\there", "bell\x07", "del\x7f", "c1\x85", "new\nline"])
def test_user_names_with_control_characters_are_refused(lab: labkit.Lab, name: str) -> None:
    before = lab.users()
    with pytest.raises(labkit.InvalidInput, match="control characters"):
        lab.add_user(name)
    assert lab.users() == before


def test_search_treats_percent_and_underscore_as_characters(lab: labkit.Lab, models_dir: Path) -> None:
    model = models_dir / "ten_tusscher_model_2006_epi.cellml"
    lab.add_model(model, name="tt06_epi")
    lab.add_model(model, name="tt06xepi")
    assert search(lab, "tt06_") == [("model", "tt06_epi")]
    assert search(lab, "%") == []
    assert search(lab, "epi") == [("model", "tt06_epi"), ("model", "tt06xepi")]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", ""])
def test_a_dataset_with_non_finite_values_is_refused(lab: labkit.Lab, value: str) -> None:
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
    csv = f"time (ms),doubled (mV)\n0,0\n1,{value}\n".encode()
    with pytest.raises(labkit.InvalidInput, match="NaN or infinite"):
        lab.add_dataset({"data.csv": csv}, protocol="test", name="bad")
    assert "bad" not in lab.names("dataset")


def test_a_protocol_without_a_kernelspec_is_refused(lab: labkit.Lab) -> None:
    nb = json.loads(protocol_notebook())
    del nb["metadata"]["kernelspec"]
    with pytest.raises(labkit.InvalidInput, match="names no Python kernel"):
        lab.add_protocol({"nokernel.ipynb": json.dumps(nb).encode()}, name="nokernel")
    assert "nokernel" not in lab.names("protocol")


@pytest.mark.parametrize("parameters, problem", [
    ({"sleep": "1"}, "expected a number like its default 0.0, got text"),
    ({"fail": 1}, "expected true or false"),
    ({"sleep": float("inf")}, "not a finite number"),
    ({"sleep": {"a": 1}}, "dict is not a parameter value"),
    ({"skip_doubled": None}, "expected true or false"),
])
def test_run_parameters_must_match_the_kind_of_their_defaults(lab: labkit.Lab, models_dir: Path,
                                                               parameters: dict, problem: str) -> None:
    lab.add_model(models_dir / "ten_tusscher_model_2006_epi.cellml", name="tt06")
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
    with pytest.raises(labkit.InvalidInput, match=problem):
        lab.run("tt06", "test", parameters)
    assert lab.runs() == []
    assert lab.run("tt06", "test", {"sleep": 1}).status == "queued"  # a whole number is a number


def test_a_run_that_keeps_losing_its_worker_fails_after_the_last_attempt(lab: labkit.Lab, models_dir: Path) -> None:
    lab.add_model(models_dir / "ten_tusscher_model_2006_epi.cellml", name="tt06")
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
    run = lab.run("tt06", "test")
    for attempt in range(1, claims.MAX_ATTEMPTS + 1):
        claim = claims.claim(lab.db, run.id, stale_after=15)
        assert claim is not None and claim.attempt == attempt
        requeued = claims.requeue(lab.db, run.id, "its worker was lost")
        assert requeued == (attempt < claims.MAX_ATTEMPTS)
    info = lab.status(run.id)
    assert info.status == "failed" and "not queued again" in info.error
    assert claims.claim(lab.db, run.id, stale_after=15) is None  # nothing left to take


@pytest.mark.parametrize("queue", ["labkit.control", "nobody-serves-this", "long"])
def test_a_run_goes_only_to_a_queue_the_operator_named(lab: labkit.Lab, models_dir: Path, queue: str) -> None:
    lab.add_model(models_dir / "ten_tusscher_model_2006_epi.cellml", name="tt06")
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
    control = f"{lab.settings.default_queue}.control"
    queue = control if queue == "labkit.control" else queue
    with pytest.raises(labkit.InvalidInput, match="is not one of this lab's run queues"):
        lab.run("tt06", "test", queue=queue)
    assert lab.runs() == []


def test_the_operator_names_more_run_queues(tmp_path: Path, models_dir: Path) -> None:
    with labkit.Lab.open(tmp_path / "lab", run_queues="long, gpu") as lab:
        assert lab.settings.queues == (lab.settings.default_queue, "long", "gpu")
        lab.add_model(models_dir / "ten_tusscher_model_2006_epi.cellml", name="tt06")
        lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
        assert lab.run("tt06", "test", queue="long").status == "queued"
    with pytest.raises(labkit.LabkitError, match="reaper"):
        labkit.Lab.open(tmp_path / "other", run_queues="x.control")


def test_a_private_model_is_planned_only_against_trusted_protocols(lab: labkit.Lab, models_dir: Path) -> None:
    lab.add_user("stranger", roles=["protocol-author"])
    lab.add_user("mod", moderator=True)
    stranger = lab.as_user("stranger")
    stranger.add_protocol({"theirs.ipynb": protocol_notebook()}, name="theirs", visibility="public")
    stranger.add_protocol({"vetted.ipynb": protocol_notebook()}, name="vetted", visibility="public")
    lab.as_user("mod").set_visibility("protocol", "vetted", 1, "moderated")
    lab.add_protocol({"mine.ipynb": protocol_notebook()}, name="mine")
    model = models_dir / "ten_tusscher_model_2006_epi.cellml"
    private = lab.add_model(model, name="private_tt06")
    assert sorted(p.protocol.entity for p in private.planned) == ["mine", "vetted"]
    public = lab.add_model(model, name="public_tt06", visibility="public")  # its file is anyone's
    assert sorted(p.protocol.entity for p in public.planned) == ["mine", "theirs", "vetted"]
    run = lab.run("private_tt06", "theirs")  # asked for explicitly, it runs
    assert run.status == "queued"


def test_a_save_cut_between_git_and_the_database_does_not_wedge_the_entity(lab: labkit.Lab, models_dir: Path) -> None:
    model = models_dir / "ten_tusscher_model_2006_epi.cellml"
    first = lab.add_model(model, name="tt06").version
    repo = lab.store.repository("model", "tt06")
    # what a process killed after its git commit and before its database commit leaves behind
    repo.commit({"tt06.cellml": model.read_bytes() + b"\n"}, message="interrupted", author="scientist",
                email="scientist@labkit.local", base=first.commit)
    assert repo.head() != first.commit
    second = lab.add_model({"ten_tusscher_model_2006_epi.cellml": model.read_bytes() + b"<!-- v2 -->"},
                           name="tt06").version
    assert second.number == 2 and repo.head() == second.commit
    assert [v.number for v in lab.versions("model", "tt06")] == [1, 2]
    # the same for a new entity whose first save was cut: the name is free again
    fresh = lab.store.repository("model", "cut")
    type(fresh).create(fresh.path)
    fresh.commit({"cut.cellml": model.read_bytes()}, message="interrupted", author="scientist",
                 email="scientist@labkit.local", base=None)
    assert lab.add_model(model, name="cut").version.number == 1
    assert "cut" in lab.names("model")
