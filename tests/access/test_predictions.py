"""A real prediction (two Celery workers, one module-scoped lab): a private model's prediction is
private. An outsider cannot list it, read its status, its outputs or its files, download it, or
find it on a dashboard; the collaborator and the owner can."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from access_helpers import World, build_world, error_of
from labs import lab_with_workers

import labkit
from labkit.dashboards import ComparisonPage, PredictionView, queries

MISSING = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def computed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str, str]]:
    """The world with one finished run of secret x test (private) and one of open v1 x test (public)."""
    holder: dict[str, World] = {}
    with lab_with_workers(tmp_path_factory.mktemp("predictions") / "lab",
                          seed=lambda lab: holder.setdefault("world", build_world(lab))) as lab:
        world = holder["world"]
        private_run, public_run = lab.run("secret", "test").id, lab.run("open", "test", model_version=1).id
        finished = lab.wait([private_run, public_run], timeout=300)
        assert [r.status for r in finished] == ["success", "success"], [r.error for r in finished]
        yield world, private_run, public_run


def test_an_outsider_cannot_find_or_read_a_private_prediction(computed) -> None:
    world, private_run, public_run = computed
    outsider = world.outsider
    assert [r.id for r in outsider.runs()] == [public_run]
    assert outsider.runs(status="success", model="secret") == []
    for call in (outsider.status, outsider.prediction, outsider.cancel):
        assert error_of(lambda: call(private_run)) == error_of(lambda: call(MISSING)).replace(MISSING, private_run)
    assert [r.run_id for r in queries.predictions_for(outsider, "test")] == [public_run]
    view = PredictionView(outsider, private_run, live=False)
    assert view.info is None and "there is no run" in view.message.text
    with pytest.raises(labkit.NotFound):
        view.prepare_archive()  # the download link
    assert view.archive_link.value == ""
    compare = ComparisonPage(outsider, protocol="test", runs=f"{private_run},{public_run}")
    assert compare.run_pick.value == (public_run,)
    assert [s.run_id for s in compare.series] == [public_run]


@pytest.mark.parametrize("role", ["collaborator", "owner"])
def test_the_collaborator_and_the_owner_read_it(computed, role: str) -> None:
    world, private_run, public_run = computed
    lab = world.as_(role)
    assert {r.id for r in lab.runs()} == {private_run, public_run}
    info = lab.status(private_run)
    assert (info.status, info.visibility, info.model) == ("success", "private", "secret")
    prediction = lab.prediction(private_run)
    assert list(prediction.output("doubled").values) == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert Path(prediction.notebook).is_file()
    view = PredictionView(lab, private_run, live=False)
    assert view.prepare_archive()[:2] == b"PK"  # a zip
    assert {r.run_id for r in queries.predictions_for(lab, "test")} == {private_run, public_run}


def test_publishing_the_model_makes_its_prediction_public_and_hiding_it_hides_it_again(computed) -> None:
    world, private_run, _ = computed
    world.owner.set_visibility("model", "secret", 1, "public")
    try:
        assert world.outsider.status(private_run).visibility == "public"
        assert world.outsider.prediction(private_run).output("peak").scalar == 8.0
    finally:
        world.owner.set_visibility("model", "secret", 1, "private")
    assert error_of(lambda: world.outsider.prediction(private_run)).startswith("there is no run")
