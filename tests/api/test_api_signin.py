"""Sign-in on the API's Jupyter server (labkit's identity provider and authorizer), on the test's stack:
the login form, session cookies, the public visitor, and Jupyter's own resources closed to web users."""
from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from labs import lab_state
from stacks import lab_settings

import labkit
from labkit.access import SESSION_COOKIE
from labkit.dashboards.serve import ApiServer
from labkit.demo.build import DEMO_MODELS

HH = DEMO_MODELS / "hodgkin_huxley_1952.cellml"
PASSWORD = "alice's long password"


@pytest.fixture(scope="module")
def signin_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[labkit.Lab, ApiServer]]:
    with lab_settings() as stack, labkit.Lab.open(tmp_path_factory.mktemp("signin-api") / "lab", sign_in=True,
                                                  **stack) as lab:
        for name in ("alice", "victim"):
            lab.add_user(name, password=PASSWORD)
        lab.add_user("boss", roles=["admin"], password=PASSWORD)
        lab.as_user("alice").add_model(HH, name="alice_private")
        lab.add_model(HH, name="public_model", visibility="public")
        with ApiServer(lab.settings) as server:
            yield lab, server


def root(server: ApiServer) -> str:
    return f"http://{server.host}:{server.port}"


def signed_in(server: ApiServer, user: str = "alice", password: str = PASSWORD,
              next_url: str = "/labkit/api/v1/me") -> tuple[requests.Session, requests.Response]:
    browser = requests.Session()
    form = browser.get(root(server) + "/login", timeout=30)
    assert form.status_code == 200 and 'name="_xsrf"' in form.text
    answer = browser.post(root(server) + "/login", timeout=30, allow_redirects=False,
                          data={"username": user, "password": password, "next": next_url,
                                "_xsrf": browser.cookies["_xsrf"]})
    return browser, answer


def test_signing_in_sets_a_session_cookie_the_api_recognises(signin_api: tuple[labkit.Lab, ApiServer]) -> None:
    lab, server = signin_api
    browser, answer = signed_in(server)
    assert answer.status_code == 302 and answer.headers["Location"] == "/labkit/api/v1/me"
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert browser.get(server.url + "/me", timeout=30).json()["user"] == "alice"
    names = [m["name"] for m in browser.get(server.url + "/models", timeout=30).json()["items"]]
    assert sorted(names) == ["alice_private", "public_model"]


def test_a_cookie_authenticated_change_needs_the_xsrf_token(signin_api: tuple[labkit.Lab, ApiServer]) -> None:
    lab, server = signin_api
    browser, _ = signed_in(server)
    before = lab_state(lab)
    forged = browser.put(server.url + "/models/alice_private/versions/1/visibility", json={"visibility": "public"},
                         timeout=30)
    assert forged.status_code == 403 and lab_state(lab) == before
    real = browser.put(server.url + "/models/alice_private/versions/1/visibility", json={"visibility": "private"},
                       headers={"X-XSRFToken": browser.cookies["_xsrf"]}, timeout=30)
    assert real.status_code == 200, real.text


def test_the_public_visitor_reads_public_versions_only_and_changes_nothing(
        signin_api: tuple[labkit.Lab, ApiServer]) -> None:
    lab, server = signin_api
    anonymous = requests.Session()
    names = [m["name"] for m in anonymous.get(server.url + "/models", timeout=30).json()["items"]]
    assert names == ["public_model"]
    assert anonymous.get(server.url + "/models/alice_private", timeout=30).status_code == 404
    before = lab_state(lab)
    anonymous.get(root(server) + "/login", timeout=30)  # an XSRF cookie, so that only the identity is refused
    with open(HH, "rb") as f:
        refused = anonymous.post(server.url + "/models/mine/versions", files={"file": f}, timeout=30,
                                 headers={"X-XSRFToken": anonymous.cookies["_xsrf"]})
    assert refused.status_code == 403 and "not signed in" in refused.json()["error"]
    assert lab_state(lab) == before


def test_a_token_that_does_not_authenticate_is_refused_not_read_as_a_visitor(
        signin_api: tuple[labkit.Lab, ApiServer]) -> None:
    lab, server = signin_api
    answer = requests.get(server.url + "/models", headers={"Authorization": "token lk_not-a-real-token"}, timeout=30)
    assert answer.status_code == 401
    token = lab.create_token("alice", name="script")
    mine = requests.get(server.url + "/me", headers={"Authorization": f"token {token}"}, timeout=30)
    assert mine.json()["user"] == "alice"


def test_jupyters_own_resources_are_closed_to_every_web_user(signin_api: tuple[labkit.Lab, ApiServer]) -> None:
    lab, server = signin_api
    browser, _ = signed_in(server, "boss")  # not even the lab's admin: they would run code as the lab
    for client in (browser, requests.Session()):
        for path in ("/api/contents", "/api/kernels", "/api/sessions", "/api/kernelspecs"):
            assert client.get(root(server) + path, timeout=30).status_code == 403, path
        assert client.get(root(server) + "/api/terminals", timeout=30).status_code == 404  # not even served
    started = browser.post(root(server) + "/api/kernels", json={"name": "python3"}, timeout=30,
                           headers={"X-XSRFToken": browser.cookies["_xsrf"]})
    assert started.status_code == 403


def test_signing_out_ends_the_session_on_the_server(signin_api: tuple[labkit.Lab, ApiServer]) -> None:
    lab, server = signin_api
    browser, _ = signed_in(server)
    secret = browser.cookies[SESSION_COOKIE]
    page = browser.get(root(server) + "/logout", timeout=30)
    assert page.status_code == 200 and "Sign out" in page.text  # a GET only asks
    assert lab.session_user(secret) == "alice"
    browser.post(root(server) + "/logout", data={"_xsrf": browser.cookies["_xsrf"]}, timeout=30)
    assert lab.session_user(secret) is None
    replay = requests.get(server.url + "/me", cookies={SESSION_COOKIE: secret}, timeout=30)
    assert replay.json()["user"] != "alice"  # a copied cookie is worth nothing after signing out


def test_after_signing_in_only_paths_on_this_server_are_followed(signin_api: tuple[labkit.Lab, ApiServer]) -> None:
    lab, server = signin_api
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "/\x7f/evil.example", "/é"):
        _, answer = signed_in(server, next_url=target)
        assert answer.status_code == 302 and answer.headers["Location"] == "/", target


def test_repeated_wrong_passwords_pause_that_user_name(signin_api: tuple[labkit.Lab, ApiServer]) -> None:
    lab, server = signin_api
    for _ in range(5):
        _, answer = signed_in(server, "victim", "wrong password!")
        assert answer.status_code == 403 and "wrong user name or password" in answer.text
    _, answer = signed_in(server, "victim", PASSWORD)  # right, but too late
    assert answer.status_code == 429 and re.search(r"try again in \d+ minutes", answer.text)
    _, other = signed_in(server, "alice", PASSWORD)  # other names are not affected
    assert other.status_code == 302


def test_sign_in_guesses_sent_at_once_still_count(signin_api: tuple[labkit.Lab, ApiServer]) -> None:
    from concurrent.futures import ThreadPoolExecutor
    lab, server = signin_api
    lab.add_user("target", password=PASSWORD)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: signed_in(server, "target", "a wrong guess")[1].status_code, range(8)))
    assert answers.count(403) <= 5 and answers.count(429) >= 3, answers


def test_the_sign_in_form_is_small_and_long_names_cost_nothing(signin_api: tuple[labkit.Lab, ApiServer]) -> None:
    lab, server = signin_api
    browser = requests.Session()
    browser.get(root(server) + "/login", timeout=30)
    huge = browser.post(root(server) + "/login", timeout=60, allow_redirects=False,
                        data={"username": "x" * 5_000_000, "password": "p", "_xsrf": browser.cookies["_xsrf"]})
    assert huge.status_code == 413
    long_name = browser.post(root(server) + "/login", timeout=30, allow_redirects=False,
                             data={"username": "x" * 5_000, "password": "p", "_xsrf": browser.cookies["_xsrf"]})
    assert long_name.status_code == 403 and "wrong user name or password" in long_name.text
    no_xsrf = requests.post(root(server) + "/login", data={"username": "alice", "password": PASSWORD},
                            allow_redirects=False, timeout=30)
    assert no_xsrf.status_code == 403 and SESSION_COOKIE not in no_xsrf.headers.get("Set-Cookie", "")


def test_the_api_server_runs_no_notebook_and_lists_no_file(signin_api: tuple[labkit.Lab, ApiServer]) -> None:
    lab, server = signin_api
    (lab.settings.root / "planted.ipynb").write_text("{}")  # what a run's scratch folder could hold
    for path in ("/voila/api/contents/", "/voila/render/planted.ipynb", "/voila/files/labkit.toml",
                 "/api/terminals", "/terminals/websocket/1"):
        assert requests.get(root(server) + path, timeout=30).status_code in (403, 404), path
