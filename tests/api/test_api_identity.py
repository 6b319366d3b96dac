"""Who a request acts for, and what happens without credentials, with a wrong token, on an unknown
endpoint or method, and on a server started without a lab."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import requests

import labkit
from labkit.dashboards.serve import API_PATH, ApiServer, api_command, free_port

from .client import Api


def test_the_jupyter_token_acts_as_the_lab_owner(api: Api, api_lab: labkit.Lab) -> None:
    assert api.ok("GET", "/me") == {"user": api_lab.settings.user, "authenticated_by": "jupyter"}
    in_query = api.as_token(None).ok("GET", f"/me?token={api.token}")  # Jupyter's ?token= works too
    assert in_query["user"] == api_lab.settings.user


def test_requests_without_credentials_are_refused_with_how_to_authenticate(api: Api) -> None:
    anonymous = api.as_token(None)
    response = anonymous.get("/models")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("token")
    assert "Authorization: token" in response.json()["error"]
    anonymous.error("POST", "/runs", 401, json={"model": "hh", "protocol": "test"})


def test_an_unknown_token_is_refused(api: Api) -> None:
    for token in ("not-the-jupyter-token", "lk_unknown"):
        message = api.as_token(token).error("GET", "/models", 401)
        assert "token" in message, message


def test_the_openapi_document_needs_no_credentials(api: Api) -> None:
    anonymous = api.as_token(None)
    assert anonymous.ok("GET", "/openapi.json")["openapi"].startswith("3.")
    yaml_text = anonymous.get("/openapi.yaml")
    assert yaml_text.status_code == 200 and yaml_text.headers["Content-Type"] == "application/yaml"
    assert "openapi:" in yaml_text.text


def test_unknown_endpoints_and_methods_answer_json(api: Api) -> None:
    assert "OpenAPI document" in api.error("GET", "/nothing/here", 404)
    assert api.error("DELETE", "/models", 405)
    assert api.error("PUT", "/runs", 405)


def test_a_server_without_a_lab_says_how_to_configure_one(tmp_path: Path) -> None:
    port, token = free_port(), "secret"
    command = [part for part in api_command(port, tmp_path) if not part.startswith("--LabkitAPI.lab_dir")]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}, "JUPYTER_TOKEN": token}
    with open(tmp_path / "server.log", "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}{API_PATH}/models"
        deadline = time.monotonic() + 60
        while True:
            try:
                response = requests.get(url, headers={"Authorization": f"token {token}"}, timeout=5)
                break
            except requests.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                time.sleep(0.3)
        assert response.status_code == 503 and "LABKIT_LAB" in response.json()["error"]
        assert not (tmp_path / "labkit.toml").exists()  # no lab was created where the server started
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_api_servers_token_is_not_on_its_command_line(tmp_path: Path) -> None:
    import psutil

    from labkit.config import load_settings
    with ApiServer(load_settings(tmp_path / "lab")) as server:
        cmdline = " ".join(psutil.Process(server.process.pid).cmdline())
        assert server.token not in cmdline  # every local user can read a command line
        answer = requests.get(server.url + "/models", headers={"Authorization": f"token {server.token}"}, timeout=10)
        assert answer.status_code == 200  # the token still opens the API
        assert requests.get(server.url + "/models", headers={"Authorization": "token wrong"}, timeout=10).status_code == 401


def test_an_authorization_header_that_is_no_token_does_not_skip_the_xsrf_check(api_server: ApiServer) -> None:
    """A browser signed in with a cookie: a POST without the XSRF token is refused even when it
    carries an Authorization header that authenticates nothing (before, any such header skipped it)."""
    browser = requests.Session()
    base = api_server.url.removesuffix(API_PATH)
    browser.get(f"{base}/login", timeout=10)
    xsrf = browser.cookies.get("_xsrf")
    signed_in = browser.post(f"{base}/login", data={"password": api_server.token, "_xsrf": xsrf}, timeout=10,
                             allow_redirects=False)
    assert signed_in.status_code == 302  # the login cookie is set
    forged = browser.post(api_server.url + "/runs", json={}, headers={"Authorization": "Basic Zm9vOmJhcg=="},
                          timeout=10)
    assert forged.status_code == 403 and "xsrf" in forged.text.lower()
    genuine = browser.post(api_server.url + "/runs", json={}, headers={"X-XSRFToken": xsrf}, timeout=10)
    assert genuine.status_code == 400  # past the XSRF check: the body is what is wrong
