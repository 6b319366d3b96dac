"""The dashboards' queries and pages as an outsider, a collaborator and the owner: a private entity,
version or run never appears, not even in a count."""
from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import datetime, timezone

import ipywidgets as w
import pytest
from access_helpers import HH_ONLY_TERM, NOBLE, World, build_world, lab_state
from stacks import lab_settings

import labkit
from labkit.dashboards import (BrowserPage, ComparisonPage, EntityView, HomePage, MatrixPage, PredictionPage, UploadForm,
                               queries)

HIDDEN_WORDS = ("secret", "hidden_protocol", "draft")  # what an outsider must never read on a page


@pytest.fixture(scope="module")
def runs_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str, str]]:
    """The world, plus two queued runs (no workers): secret x test (private) and open v1 x test (public)."""
    with lab_settings() as stack, labkit.Lab.open(tmp_path_factory.mktemp("dash") / "lab", **stack) as lab:
        world = build_world(lab)
        private_run = lab.run("secret", "test").id
        public_run = lab.run("open", "test", model_version=1).id
        yield world, private_run, public_run


def page_text(widget: w.Widget) -> str:
    """Everything a visitor can read on a page: HTML, button labels, dropdown options, tooltips."""
    parts: list[str] = []

    def walk(x: w.Widget) -> None:
        for attr in ("value", "description", "tooltip", "placeholder"):
            value = getattr(x, attr, None)
            if isinstance(value, str):
                parts.append(html.unescape(re.sub(r"<[^>]+>", " ", value)))
        for option in getattr(x, "options", ()) or ():
            parts.append(str(option))
        for child in getattr(x, "children", ()) or ():
            walk(child)

    walk(widget)
    return " ".join(" ".join(parts).split())


def test_counts(runs_world) -> None:
    world, _, _ = runs_world
    seen = {role: queries.counts(world.as_(role)) for role in ("outsider", "collaborator", "owner")}
    assert [(c["models"], c["protocols"], c["datasets"], c["queued"]) for c in seen.values()] == [
        (1, 1, 1, 1), (2, 1, 2, 2), (2, 2, 2, 2)]


def test_latest_versions_and_version_ids(runs_world) -> None:
    world, _, _ = runs_world
    latest = {role: [(v.name, v.number) for v in queries.latest_versions(world.as_(role), "model", view="all")]
              for role in ("outsider", "collaborator", "owner")}
    assert latest == {"outsider": [("open", 1)], "collaborator": [("open", 1), ("secret", 1)],
                      "owner": [("open", 2), ("secret", 1)]}
    pins = {"open": 2, "secret": 1}
    assert queries.version_ids(world.outsider, "model", pins) == {}
    assert set(queries.version_ids(world.collaborator, "model", pins)) == {"secret"}
    assert set(queries.version_ids(world.owner, "model", pins)) == {"open", "secret"}
    assert queries.latest_versions(world.outsider, "protocol") == queries.latest_versions(world.collaborator, "protocol")
    with pytest.raises(ValueError, match="view is one of"):
        queries.latest_versions(world.owner, "model", view="everything")


def test_the_matrix_default_view_is_moderated_and_your_own(fresh: World) -> None:
    assert queries.latest_versions(fresh.outsider, "model", view="moderated") == []
    assert [v.name for v in queries.latest_versions(fresh.owner, "model", view="moderated")] == ["open", "secret"]
    assert [v.name for v in queries.latest_versions(fresh.collaborator, "model", view="moderated")] == ["secret"]
    fresh.moderator.set_visibility("model", "open", 1, "moderated")
    assert [(v.name, v.number) for v in queries.latest_versions(fresh.outsider, "model", view="moderated")] == [("open", 1)]
    fresh.moderator.set_visibility("protocol", "test", 1, "moderated")
    matrix = MatrixPage(fresh.outsider, live=False)
    assert matrix.view_pick.value == "moderated"
    assert [(c.model, c.protocol) for c in matrix.visible_cells()] == [("open", "test")]


def test_grid_statuses_show_only_readable_pairs(runs_world) -> None:
    world, private_run, public_run = runs_world
    ids = {(m, p): (world.owner.version("model", m, v).id, world.owner.version("protocol", p).id)
           for m, v, p in (("secret", 1, "test"), ("open", 1, "test"))}
    models, protocols = [i[0] for i in ids.values()], [i[1] for i in ids.values()]
    assert {c.run_id for c in queries.grid_statuses(world.outsider, models, protocols).values()} == {public_run}
    assert {c.run_id for c in queries.grid_statuses(world.collaborator, models, protocols).values()} == {
        public_run, private_run}
    matrix = MatrixPage(world.outsider, live=False, view="all")
    assert [(c.model, c.protocol, c.status) for c in matrix.visible_cells()] == [("open", "test", "queued")]
    assert not any(word in page_text(matrix.widget) for word in HIDDEN_WORDS)
    owner_matrix = MatrixPage(world.owner, live=False)
    assert {(c.model, c.protocol) for c in owner_matrix.visible_cells()} == {
        ("open", "test"), ("open", "hidden_protocol"), ("secret", "test"), ("secret", "hidden_protocol")}


def test_recent_activity(runs_world) -> None:
    world, private_run, public_run = runs_world
    outsider = " ".join(a.text + str(a.params) for a in queries.recent_activity(world.outsider, limit=50))
    assert "open v1" in outsider and public_run in outsider
    assert not any(word in outsider for word in HIDDEN_WORDS) and "open v2" not in outsider
    assert private_run not in outsider
    collaborator = " ".join(a.text + str(a.params) for a in queries.recent_activity(world.collaborator, limit=50))
    assert "secret" in collaborator and private_run in collaborator and "hidden_protocol" not in collaborator
    owner = " ".join(a.text for a in queries.recent_activity(world.owner, limit=50))
    assert "saved protocol hidden_protocol v1" in owner and "saved model open v2: draft change" in owner


def test_search_by_name_term_and_tag(runs_world) -> None:
    world, _, _ = runs_world
    assert queries.search(world.outsider, "") == [("dataset", "open_data"), ("model", "open"), ("protocol", "test")]
    assert queries.search(world.outsider, "secret") == [] == queries.search(world.outsider, "hidden")
    assert queries.search(world.collaborator, "secret") == [("dataset", "secret_data"), ("model", "secret")]
    assert queries.search(world.outsider, HH_ONLY_TERM, by="term") == []
    assert queries.search(world.collaborator, HH_ONLY_TERM, by="term") == [("model", "secret")]
    assert queries.search(world.outsider, "draft", by="tag") == [] == queries.search(world.collaborator, "draft", by="tag")
    assert queries.search(world.owner, "draft", by="tag") == [("model", "open")]


def test_datasets_for_a_protocol(runs_world) -> None:
    world, _, _ = runs_world
    assert queries.datasets_for(world.outsider, "test") == []
    assert queries.datasets_for(world.collaborator, "test") == ["secret_data"] == queries.datasets_for(world.owner, "test")
    assert queries.datasets_for(world.outsider, "hidden_protocol") == []  # open_data is public; its protocol is not
    assert queries.datasets_for(world.owner, "hidden_protocol") == ["open_data"]


def test_home_and_browser_pages_as_an_outsider(runs_world) -> None:
    world, _, _ = runs_world
    home = HomePage(world.outsider)
    assert home.counts["models"] == 1 and not any(word in page_text(home.widget) for word in HIDDEN_WORDS)
    browser = BrowserPage(world.outsider)
    assert [b.description for b in browser.results_box.children] == [
        "dataset · open_data", "model · open", "protocol · test"]
    hidden = BrowserPage(world.outsider, kind="model", name="secret")
    missing = BrowserPage(world.outsider, kind="model", name="no_such_model")
    assert hidden.message.text == missing.message.text.replace("no_such_model", "secret")
    assert "there is no model called 'secret'" in hidden.message.text and hidden.view is None
    dataset = BrowserPage(world.outsider, kind="dataset", name="open_data")
    assert "a protocol you may not read" in page_text(dataset.widget)
    assert not any(word in page_text(dataset.widget) for word in HIDDEN_WORDS)
    opened = BrowserPage(world.outsider, kind="model", name="open")
    assert "v1" in page_text(opened.widget) and "draft" not in page_text(opened.widget)


def test_the_new_version_button_is_for_the_owner_and_collaborators(runs_world) -> None:
    world, _, _ = runs_world
    def button(lab: labkit.Lab, name: str) -> bool:
        return hasattr(EntityView(lab, "model", name, on_new_version=lambda *a: None), "new_version_button")
    assert (button(world.outsider, "open"), button(world.collaborator, "open"), button(world.owner, "open")) == (
        False, False, True)
    assert (button(world.collaborator, "secret"), button(world.owner, "secret")) == (True, True)
    assert "owner " + world.owner.user in page_text(EntityView(world.outsider, "model", "open").widget)


def test_prediction_and_comparison_pages_as_an_outsider(runs_world) -> None:
    world, private_run, public_run = runs_world
    page = PredictionPage(world.outsider, run=private_run)
    missing = PredictionPage(world.outsider, run="00000000-0000-0000-0000-000000000000")
    assert page.view is not None and page.view.info is None
    assert page.view.message.text.replace(private_run, "ID") == missing.view.message.text.replace(
        "00000000-0000-0000-0000-000000000000", "ID")
    assert not any(word in page_text(page.widget) for word in HIDDEN_WORDS)
    assert PredictionPage(world.collaborator, run=private_run).view.info.model == "secret"
    assert PredictionPage(world.outsider, run=public_run).view.info.model == "open"
    compare = ComparisonPage(world.outsider, protocol="hidden_protocol", runs=private_run)
    assert list(compare.protocol_pick.options) == ["test"] and compare.run_pick.value == ()
    assert not any(word in page_text(compare.widget) for word in HIDDEN_WORDS)


def _picked(name: str, content: bytes) -> tuple[dict, ...]:
    """What a FileUpload holds after a visitor picked one file."""
    return ({"name": name, "type": "", "size": len(content), "content": memoryview(content),
             "last_modified": datetime.now(timezone.utc)},)


def test_the_upload_form_refuses_an_outsiders_version_and_saves_their_own_entity(fresh: World) -> None:
    before = lab_state(fresh.owner)
    form = UploadForm(fresh.outsider)
    form.prepare_new_version("model", "open", fresh.outsider.version("model", "open").commit)
    form.upload.value = _picked("noble_1962.cellml", NOBLE.read_bytes())
    form.save_button.click()
    assert form.message.kind == "error" and "may not change model 'open'" in form.message.text
    assert lab_state(fresh.owner) == before
    form = UploadForm(fresh.outsider)
    assert form.visibility.value == "private"
    form.visibility.value = "public"
    form.name.value = "theirs"
    form.upload.value = _picked("noble_1962.cellml", NOBLE.read_bytes())
    form.save_button.click()
    assert form.message.kind == "ok", form.message.text
    assert fresh.collaborator.version("model", "theirs").visibility == "public"
