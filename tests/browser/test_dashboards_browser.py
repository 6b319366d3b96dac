"""The dashboards in a real browser: Voilà serves them on a lab with two real workers (a subprocess,
preheated kernels), Debian's Chromium loads each page through Playwright. A screenshot of each
page is saved under the test's temporary folder (the path is printed)."""
from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import open_page

import labkit
from labkit.dashboards.serve import DashboardServer
from labkit.demo.build import DEMO_MODELS

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def server(running_lab: labkit.Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    dashboards = DashboardServer(running_lab.settings, log=log, pool_size=1)
    dashboards.start(timeout=120)
    try:
        yield dashboards
    finally:
        dashboards.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots in {folder}")
    return folder


def choose_file(page: object, path: Path) -> None:
    """Pick a file in the upload widget (its <input type=file> is not in the document: use the
    file chooser the button opens, as a person would)."""
    with page.expect_file_chooser() as chooser:
        page.locator(".widget-upload").click()
    chooser.value.set_files(str(path))


def test_home_page_counts_the_lab(page: object, server: DashboardServer, shots: Path) -> None:
    open_page(page, server, "home.ipynb")
    assert page.locator('[data-count="models"] .lk-count').inner_text() == "2"
    assert page.locator('[data-count="protocols"] .lk-count').inner_text() == "1"
    page.screenshot(path=shots / "home.png", full_page=True)
    page.get_by_role("link", name="Experiment matrix").first.click()
    page.wait_for_selector(".lk-cell")
    assert "matrix.ipynb" in page.url


def test_upload_a_model_and_see_an_upload_error(page: object, server: DashboardServer, shots: Path,
                                                running_lab: labkit.Lab, tmp_path: Path) -> None:
    open_page(page, server, "browse.ipynb")
    page.get_by_text("Upload a new entity or version").click()
    model = tmp_path / "beeler_reuter_1977.cellml"
    shutil.copy(DEMO_MODELS / "beeler_reuter_1977.cellml", model)
    choose_file(page, model)
    page.locator("button.lk-save").click()
    page.wait_for_selector(".lk-ok")
    assert "saved model beeler_reuter_1977 v1" in page.locator(".lk-ok").inner_text()
    page.wait_for_selector("text=oxmeta annotations of v1")  # the new entity opened
    assert "beeler_reuter_1977" in running_lab.names("model")

    broken = tmp_path / "broken.cellml"
    broken.write_text("<model><unclosed></model>")
    choose_file(page, broken)
    page.locator("button.lk-save").click()
    page.wait_for_selector(".lk-error")
    assert "not a usable CellML model" in page.locator(".lk-error").inner_text()
    page.screenshot(path=shots / "browse.png", full_page=True)


def test_run_a_matrix_cell_and_watch_it_turn_to_success(page: object, server: DashboardServer,
                                                         shots: Path, running_lab: labkit.Lab) -> None:
    open_page(page, server, "matrix.ipynb")
    cell = page.locator('.lk-cell[title^="hh v1 × test v1:"]')
    assert "not run" in cell.get_attribute("title")
    cell.click()
    page.wait_for_selector('.lk-cell.lk-selected[title^="hh v1 × test v1:"]')
    page.locator("button.lk-run").click()
    page.wait_for_selector('.lk-cell.lk-status-success[title^="hh v1 × test v1:"]', timeout=180_000)
    assert running_lab.runs(model="hh", protocol="test")[-1].status == "success"
    page.screenshot(path=shots / "matrix.png", full_page=True)

    page.get_by_text("click opens prediction").click()
    page.locator('.lk-cell[title^="hh v1 × test v1:"]').click()
    page.wait_for_selector(".lk-panel img.lk-plot")
    permalink = page.locator(".lk-panel .lk-summary a", has_text="permalink")
    run_id = re.search(r"run=([0-9a-f-]+)", permalink.get_attribute("href"))[1]
    assert run_id == running_lab.runs(model="hh", protocol="test")[-1].id


def test_prediction_page_shows_its_plot_and_downloads(page: object, server: DashboardServer, shots: Path,
                                                       running_lab: labkit.Lab) -> None:
    info = running_lab.wait([running_lab.run("tt06", "test")], timeout=300)[0]
    open_page(page, server, f"prediction.ipynb?run={info.id}")
    page.wait_for_selector("img.lk-plot")
    assert page.locator(".lk-summary").get_attribute("data-status") == "success"
    with page.expect_download() as download:
        page.locator('a.lk-download[download="peak.csv"]').click()
    assert Path(download.value.path()).read_text().strip().endswith("8")
    page.screenshot(path=shots / "prediction.png", full_page=True)


def test_compare_two_predictions(page: object, server: DashboardServer, shots: Path,
                                 running_lab: labkit.Lab) -> None:
    runs = running_lab.wait([running_lab.run("tt06", "test"), running_lab.run("hh", "test")], timeout=300)
    open_page(page, server, f"compare.ipynb?protocol=test&runs={runs[0].id},{runs[1].id}")
    page.wait_for_selector("img.lk-compare-figure[src^='blob:'], img.lk-compare-figure[src^='data:']")
    table = page.locator("table.lk-table").last.inner_text()
    assert f"tt06 v1 ({runs[0].id[:6]})" in table and f"hh v1 ({runs[1].id[:6]})" in table
    with page.expect_download() as download:
        page.locator('a.lk-download[download="compare-test.csv"]').click()
    assert runs[1].id in Path(download.value.path()).read_text()
    page.screenshot(path=shots / "compare.png", full_page=True)
