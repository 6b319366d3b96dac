"""Dashboard widget logic without a browser and without workers: a real lab (SQLite, git), the page
classes the Voilà notebooks show, clicks simulated with ``button.click()``."""
from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from dash_helpers import dataset_csv, text, uploaded
from notebooks import protocol_notebook
from sqlalchemy import event

import labkit
from labkit import dashboards
from labkit.dashboards import BrowserPage, ComparisonPage, HomePage, MatrixPage, PredictionPage
from labkit.dashboards.common import query_params
from labkit.demo.build import DEMO_MODELS

HH = DEMO_MODELS / "hodgkin_huxley_1952.cellml"
NOBLE = DEMO_MODELS / "noble_1962.cellml"
BR = DEMO_MODELS / "beeler_reuter_1977.cellml"


@pytest.fixture
def small_lab(lab: labkit.Lab) -> labkit.Lab:
    """Two models (hh with two versions and a tag), the tests' protocol and a data set for it."""
    lab.add_model(HH, name="hh", message="first")
    changed = HH.read_bytes().replace(b"<model ", b"<!-- second version -->\n<model ", 1)
    lab.add_model({"hodgkin_huxley_1952.cellml": changed}, name="hh", message="a comment", tag="published")
    lab.add_model(NOBLE, name="noble")
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
    lab.add_dataset({"doubled.csv": dataset_csv()}, protocol="test", name="doubled_data")
    return lab


def test_query_string_of_the_page_url_reaches_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUERY_STRING", "kind=model&name=hh&version=2&unknown=1")
    monkeypatch.delenv("VOILA_PREHEAT", raising=False)
    assert query_params() == {"kind": "model", "name": "hh", "version": "2", "unknown": "1"}


def test_home_counts_what_the_lab_holds_and_its_recent_activity(small_lab: labkit.Lab) -> None:
    home = dashboards.page("home", {"ignored": "x"}, small_lab)
    assert isinstance(home, HomePage)
    assert home.counts["models"] == 2 and home.counts["protocols"] == 1 and home.counts["datasets"] == 1
    assert home.counts["queued"] == 0 and home.counts["running"] == 0 and home.counts["predictions"] == 0
    activity = text(home.activity.value)
    assert "saved model hh v2: a comment" in activity and "saved dataset doubled_data v1" in activity
    assert 'href="browse.ipynb?kind=model&amp;name=hh&amp;version=2"' in home.activity.value
    small_lab.add_model(BR, name="br")
    home.refresh_button.click()
    assert home.counts["models"] == 3 and "saved model br v1" in text(home.activity.value)


def test_search_by_name_annotation_term_and_tag(small_lab: labkit.Lab) -> None:
    page = BrowserPage(small_lab)
    assert [d.description for d in page.results_box.children] == [
        "dataset · doubled_data", "model · hh", "model · noble", "protocol · test"]
    page.search_text.value = "NOB"
    assert [d.description for d in page.results_box.children] == ["model · noble"]
    page.search_text.value = "background_sodium"  # only Noble 1962 annotates a background sodium current
    page.by_pick.value = "term"
    assert [d.description for d in page.results_box.children] == ["model · noble"]
    page.search_text.value = "publ"
    page.by_pick.value = "tag"
    assert [d.description for d in page.results_box.children] == ["model · hh"]
    page.by_pick.value = "name"
    page.search_text.value = ""
    page.kind_pick.value = "protocol"
    assert [d.description for d in page.results_box.children] == ["protocol · test"]


def test_entity_page_versions_files_download_and_diff(small_lab: labkit.Lab) -> None:
    page = BrowserPage(small_lab)
    next(b for b in page.results_box.children if b.description == "model · hh").click()
    view = page.view
    assert view is not None and "model hh" in text(view.title.value) and "tags: published" in text(view.title.value)
    versions = small_lab.versions("model", "hh")
    table = text(view.versions_table.value)
    assert all(v.commit[:10] in table for v in versions) and "a comment" in table and "published" in table
    assert view.file_pick.value == "hodgkin_huxley_1952.cellml"
    assert "&lt;!-- second version --&gt;" in view.content.value
    link = re.search(r'href="data:application/xml;base64,([^"]+)"', view.download.value)
    assert link and base64.b64decode(link[1]) == small_lab.read_file("model", "hh", 2)
    view.compare_pick.value = 1  # diff v2 against v1
    assert 'class="lk-diff-add">+&lt;!-- second version --&gt;' in view.content.value
    view.version_pick.value = 1
    view.compare_pick.value = 0
    assert "second version" not in view.content.value
    assert "membrane_fast_sodium_current" in text(view.details.value)  # the annotations tab


def test_protocol_and_dataset_pages_show_their_metadata(small_lab: labkit.Lab) -> None:
    page = BrowserPage(small_lab, kind="protocol", name="test")
    details = text(page.view.details.value)
    for expected in ("Test protocol", "Requires: membrane_voltage", "doubled", "mV", "sleep", "Doubled against time"):
        assert expected in details
    page.open("dataset", "doubled_data")
    details = text(page.view.details.value)
    assert "Measures the outputs of protocol test" in details and "5 rows" in details
    assert "doubled" in details and "mV" in details
    assert 'href="browse.ipynb?kind=protocol&amp;name=test"' in page.view.details.value


def test_upload_a_model_then_a_new_version_and_see_the_library_errors(small_lab: labkit.Lab) -> None:
    page = BrowserPage(small_lab)
    form = page.upload
    form.upload.value = uploaded("beeler_reuter_1977.cellml", BR.read_bytes())
    form.save_button.click()
    assert form.message.kind == "ok", form.message.text
    assert small_lab.names("model") == ["beeler_reuter_1977", "hh", "noble"]
    assert page.view.name == "beeler_reuter_1977"  # the saved entity opens
    assert "model · beeler_reuter_1977" in [b.description for b in page.results_box.children]

    form.upload.value = uploaded("broken.cellml", b"<model><unclosed></model>")
    form.save_button.click()
    assert form.message.kind == "error" and "not a usable CellML model" in form.message.text
    assert "broken" not in small_lab.names("model")

    form.kind.value = "dataset"
    form.protocol.value = "test"
    form.upload.value = uploaded("bad.csv", b"time,voltage\n1,2\n")
    form.save_button.click()
    assert "must give its units" in form.message.text

    # a new version from the entity page carries the parent commit: a stale one is refused
    page.open("model", "noble")
    stale_parent = small_lab.version("model", "noble").commit
    page.view.new_version_button.click()
    assert form.kind.value == "model" and form.name.value == "noble" and form.parent.value == stale_parent
    small_lab.add_model({"noble_1962.cellml": NOBLE.read_bytes() + b"\n"}, name="noble")  # someone else saves
    form.upload.value = uploaded("noble_1962.cellml", NOBLE.read_bytes() + b"\n\n")
    form.save_button.click()
    assert form.message.kind == "error" and "was changed since version" in form.message.text
    assert len(small_lab.versions("model", "noble")) == 2

    form.save_button.click()  # the file was kept; without a file the form says so
    form.upload.value = ()
    form.save_button.click()
    assert form.message.text == "choose a file to upload first"


def test_matrix_pages_rows_and_reads_a_page_of_statuses_in_one_query(small_lab: labkit.Lab) -> None:
    small_lab.add_model(BR, name="br")
    small_lab.add_protocol({"other.ipynb": protocol_notebook()}, name="other")
    matrix = MatrixPage(small_lab, rows_per_page=2, columns_per_page=1, live=False)
    assert [c.model for c in matrix.visible_cells()] == ["br", "hh"]
    assert [c.protocol for c in matrix.visible_cells()] == ["other", "other"]
    assert "models 1–2 of 3" in text(matrix.page_info.value)
    assert matrix.prev_rows.disabled and not matrix.next_rows.disabled
    matrix.next_rows.click()
    assert [c.model for c in matrix.visible_cells()] == ["noble"]
    assert len(matrix.grid.children) == 1 + 1 + 1 * 2  # corner, one column head, one row with one cell
    matrix.next_columns.click()
    assert [c.protocol for c in matrix.visible_cells()] == ["test"]

    statements: list[str] = []
    event.listen(small_lab.db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    matrix.refresh_statuses()
    assert len(statements) == 1, statements

    matrix.filter_text.value = "h"
    assert [c.model for c in matrix.visible_cells()] == ["hh"]
    assert all(c.status == "not run" for c in matrix.visible_cells())


def test_matrix_selects_runs_and_cancels_without_workers(small_lab: labkit.Lab) -> None:
    matrix = MatrixPage(small_lab, live=False)
    cell = matrix.cell("hh", "test")
    assert cell.model_version == 2 and "lk-status-not-run" in cell.button._dom_classes
    matrix.toggle_row(matrix.page_models.index(next(m for m in matrix.page_models if m[0] == "hh")))
    assert ("hh", "test") in matrix.selected and "lk-selected" in cell.button._dom_classes
    matrix.run_button.click()
    assert matrix.message.kind == "ok", matrix.message.text
    assert cell.status == "queued" and "lk-status-queued" in cell.button._dom_classes
    assert not matrix.selected and "lk-selected" not in cell.button._dom_classes
    cell.button.click()  # select it again
    matrix.run_button.click()  # Run only runs cells that never ran
    assert matrix.message.kind == "error" and "Re-run" in matrix.message.text
    assert ("hh", "test") in matrix.selected  # a refused action keeps the selection
    matrix.cancel_button.click()
    assert cell.status == "cancelled" and small_lab.status(cell.run_id).status == "cancelled"
    matrix.mode.value = "open"
    cell.button.click()
    view = matrix.detail.children[0]
    assert "cancelled" in text(view.children[0].value)
    # pin version 1 of hh: the row shows v1 and its own (empty) status
    matrix.pin("model", "hh", 1)
    cell = matrix.cell("hh", "test")
    assert cell.model_version == 1 and cell.status == "not run"
    assert "hh v1" in [h.description for h in matrix.row_heads]
    matrix.version_reset.click()
    assert matrix.cell("hh", "test").status == "cancelled"


def test_read_only_mode_hides_upload_run_and_cancel(small_lab: labkit.Lab) -> None:
    with labkit.Lab.open(small_lab.settings.root, read_only=True) as public:
        page = BrowserPage(public, kind="model", name="hh")
        assert page.upload is None and not hasattr(page.view, "new_version_button")
        matrix = MatrixPage(public, live=False)
        actions = next(c for c in matrix.widget.children if matrix.run_button in getattr(c, "children", ()))
        assert actions.layout.display == "none" and matrix.mode.value == "open"
        matrix.select_page()
        matrix.run_button.click()
        assert "read-only" in matrix.message.text and not public.runs()
        assert "read-only" in text(dashboards.page("home", {}, public).widget.children[0].value)


def test_prediction_and_comparison_pages_without_predictions(small_lab: labkit.Lab) -> None:
    empty = PredictionPage(small_lab)
    assert "No run chosen" in text(empty.widget.children[1].value)
    missing = PredictionPage(small_lab, run="no-such-run")
    assert "there is no run" in missing.view.message.text
    compare = ComparisonPage(small_lab, protocol="test")
    assert compare.dataset_pick.value == "doubled_data"
    assert "no predictions yet" in compare.message.text
    assert compare.figure.value == b""


def test_every_dashboard_notebook_only_lays_out_a_library_page() -> None:
    import nbformat
    folder = Path(__file__).resolve().parents[2] / "notebooks" / "dashboards"
    for name in dashboards.PAGES:
        nb = nbformat.read(folder / f"{name}.ipynb", as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert f'dashboards.page("{name}", params, lab).widget' in code
        assert len([line for line in code.splitlines() if line and not line.startswith("#")]) <= 4
