"""Sign-in in a real browser: Voilà serves a lab with sign-in on (labkit's identity provider, preheated
kernels), Debian's Chromium signs in and out through the login page as people do. Accounts, models and
protocols are made with the library's own calls on the test's stack."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from browser_helpers import PAGE_TIMEOUT, open_page
from notebooks import protocol_notebook
from stacks import lab_settings

import labkit
from labkit.dashboards.serve import DashboardServer, page_settings
from labkit.demo.build import DEMO_MODELS

PASSWORDS = {"alice": "alice-secret-pass", "bob": "bob-secret-passw"}
XSS_MARKDOWN = '# Method\n\n<img src=x onerror="window.__xss = 1"><script>window.__xss = 2</script>'
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def signin_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[labkit.Lab]:
    """alice (protocol author) owns a private model; the operator published another; a public protocol
    carries a script in its documentation; bob is a plain user."""
    with lab_settings() as stack, labkit.Lab.open(tmp_path_factory.mktemp("signin") / "lab", sign_in=True,
                                                  **stack) as lab:
        lab.add_user("alice", roles=["protocol-author"], password=PASSWORDS["alice"])
        lab.add_user("bob", password=PASSWORDS["bob"])
        lab.as_user("alice").add_model(DEMO_MODELS / "hodgkin_huxley_1952.cellml", name="alice_private")
        lab.add_model(DEMO_MODELS / "noble_1962.cellml", name="open_model", visibility="public")
        nb = nbformat.reads(protocol_notebook().decode(), as_version=4)
        nb.cells.append(nbformat.v4.new_markdown_cell(XSS_MARKDOWN))
        lab.as_user("alice").add_protocol({"xss.ipynb": nbformat.writes(nb).encode()}, name="xss",
                                          visibility="public")
        yield lab


@pytest.fixture(scope="module")
def server(signin_lab: labkit.Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    dashboards = DashboardServer(page_settings(signin_lab.settings), log=log, pool_size=1)
    dashboards.start(timeout=120)
    try:
        yield dashboards
    finally:
        dashboards.stop()


def site(server: DashboardServer, path: str) -> str:
    return f"http://{server.host}:{server.port}/{path}"


def sign_in(page: object, server: DashboardServer, user: str, then: str) -> None:
    page.goto(site(server, f"login?next=/voila/render/{then}"))
    page.fill("#username", user)
    page.fill("#password", PASSWORDS[user])
    page.click("#sign-in")
    page.wait_for_selector(".lk-nav", timeout=PAGE_TIMEOUT)


def model_names_shown(page: object) -> str:
    return page.locator(".lk-page").first.inner_text()


def test_sign_in_shows_ones_private_model_and_sign_out_hides_it(page: object, server: DashboardServer) -> None:
    sign_in(page, server, "alice", "browse.ipynb?kind=model")
    assert page.locator(".lk-user").inner_text() == "alice"
    assert "alice_private" in model_names_shown(page)
    page.click("#lk-sign-out")
    page.click("#sign-out")  # the sign-out page asks first (a GET never signs anyone out)
    page.wait_for_selector("#lk-sign-in", timeout=PAGE_TIMEOUT)  # back on the page, as a visitor
    shown = model_names_shown(page)
    assert "open_model" in shown and "alice_private" not in shown
    assert not [c for c in page.context.cookies() if c["name"] == "labkit-session"]


def test_a_wrong_password_is_refused_on_the_login_page(page: object, server: DashboardServer) -> None:
    page.goto(site(server, "login"))
    page.fill("#username", "alice")
    page.fill("#password", "not-her-password")
    page.click("#sign-in")
    assert "wrong user name or password" in page.locator(".error").inner_text()
    assert not [c for c in page.context.cookies() if c["name"] == "labkit-session"]


def test_an_anonymous_visitor_reads_public_versions_and_cannot_upload_run_or_cancel(
        page: object, server: DashboardServer) -> None:
    open_page(page, server, "browse.ipynb?kind=model")
    shown = model_names_shown(page)
    assert "open_model" in shown and "alice_private" not in shown
    assert page.locator("#lk-sign-in").count() == 1
    assert page.get_by_text("Upload a new entity or version").count() == 0
    open_page(page, server, "matrix.ipynb?view=all")
    page.wait_for_selector('.lk-cell[title^="open_model v1 × xss v1"]')
    assert page.locator('.lk-cell[title^="alice_private"]').count() == 0
    assert not page.locator("button.lk-run").is_visible() and not page.locator("button.lk-cancel").is_visible()


def test_a_protocol_author_may_upload_a_protocol_and_a_plain_user_may_not(
        page: object, server: DashboardServer, signin_lab: labkit.Lab, tmp_path: Path) -> None:
    sign_in(page, server, "bob", "browse.ipynb")
    page.get_by_text("Upload a new entity or version").click()
    kinds = page.locator(".lk-upload-kind select").inner_text()
    assert "model" in kinds and "protocol" not in kinds
    page.click("#lk-sign-out")
    page.click("#sign-out")
    page.wait_for_selector("#lk-sign-in")

    sign_in(page, server, "alice", "browse.ipynb")
    page.get_by_text("Upload a new entity or version").click()
    page.locator(".lk-upload-kind select").select_option(label="protocol (.ipynb)")
    notebook = tmp_path / "alice_protocol.ipynb"
    notebook.write_bytes(protocol_notebook())
    with page.expect_file_chooser() as chooser:
        page.locator(".widget-upload").click()
    chooser.value.set_files(str(notebook))
    page.locator("button.lk-save").click()
    page.wait_for_selector(".lk-ok")
    assert "saved protocol alice_protocol v1" in page.locator(".lk-ok").inner_text()
    assert signin_lab.as_user("alice").collaborators("protocol", "alice_protocol")[0] == "alice"  # she owns it


def test_a_script_in_a_protocols_documentation_stays_text(page: object, server: DashboardServer) -> None:
    open_page(page, server, "browse.ipynb?kind=protocol&name=xss")
    page.wait_for_selector("text=Method")
    assert page.get_by_text('<img src=x onerror="window.__xss = 1">').count() >= 1  # shown as text
    assert page.evaluate("() => window.__xss === undefined")
    assert page.locator("img[src='x']").count() == 0
