"""The lab as a JupyterHub managed service (`labkit hub-service`, docs/jupyterhub.md), with a real hub:
JupyterHub and configurable-http-proxy on loopback ports in a temporary folder, users who sign in with
a password (DummyAuthenticator), every user granted access to the service by the hub's `user` role.
Requests go through the hub's proxy, as users' own servers and browsers reach it: scripts with hub API
tokens, dashboard pages rendered by Voilà and their widgets read over the page kernel's websocket, as
the browser reads them. The lab is on the test's stack; the service gets its settings from the hub's
service definition, as an operator would give them."""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from jupyter_server.services.kernels.connection.base import deserialize_binary_message
from stacks import lab_settings

import labkit
from labkit.dashboards.serve import free_port
from labkit.demo.build import DEMO_MODELS
from labkit.hub import ACCESS_SCOPE, SERVICE_NAME
from labkit.queue.embedded import settings_environment

pytestmark = pytest.mark.timeout(300)

HOST = "127.0.0.1"
PREFIX = f"/services/{SERVICE_NAME}"
PASSWORD = "the hub's shared test password"

# What an operator writes (docs/jupyterhub.md), on loopback ports, plus a test-only admin service that
# issues the users' API tokens.
HUB_CONFIG = """\
c = get_config()  # noqa
c.JupyterHub.ip = {host!r}
c.JupyterHub.port = {proxy_port}
c.JupyterHub.hub_ip = {host!r}
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://{host}:{proxy_api_port}"
c.ConfigurableHTTPProxy.pid_file = {proxy_pid!r}
c.JupyterHub.db_url = {db_url!r}
c.JupyterHub.cookie_secret_file = {cookie_secret!r}
c.JupyterHub.pid_file = {hub_pid!r}
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allow_all = True
c.JupyterHub.services = [
    {{
        "name": "labkit",
        "url": "http://{host}:{service_port}",
        "command": {command!r},
        "environment": {environment!r},
        "oauth_no_confirm": True,
        "timeout": 180,
    }},
    {{"name": "tester", "api_token": {tester_token!r}, "admin": True}},
]
# Users' own servers: a stand-in that only records $JUPYTERHUB_API_TOKEN (what a notebook there sees) and
# answers HTTP. alice's server token is granted access to the service, bob's keeps the hub's default.
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {homes!r}
c.Spawner.cmd = [{python!r}, {user_server!r}]
c.Spawner.server_token_scopes = lambda spawner: (
    ["users:activity!user", "access:servers!server"]
    + (["access:services!service=labkit"] if spawner.user.name == "alice" else []))
c.JupyterHub.load_roles = [
    {{"name": "user", "scopes": ["self", "access:services!service=labkit"]}},
]
"""


@dataclass
class Hub:
    lab: labkit.Lab
    url: str  # the proxy, where users reach the hub and its services
    tester_token: str
    folder: Path
    process: subprocess.Popen[bytes]

    @property
    def service(self) -> str:
        return self.url + PREFIX

    @property
    def api(self) -> str:
        return self.service + "/labkit/api/v1"

    def hub_api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.url}/hub/api{path}", timeout=30,
                                headers={"Authorization": f"token {self.tester_token}"}, **kwargs)

    def token(self, user: str, scopes: list[str]) -> str:
        """A hub API token of ``user`` with ``scopes``, as the user would make one on the hub's token page."""
        answer = self.hub_api("POST", f"/users/{user}/tokens", json={"scopes": scopes, "note": "test"})
        assert answer.status_code == 201, answer.text
        return answer.json()["token"]

    def log(self) -> str:
        """The ends of the hub's and the service's logs, for a failure's message."""
        parts = []
        for path in (self.folder / "hub.log", self.lab.settings.logs / "hub-service.log"):
            if path.exists():
                parts.append(f"--- {path}\n" + path.read_text(errors="replace")[-6000:])
        return "\n".join(parts)


# The user servers' stand-in: writes the server's hub token into its home folder, answers every GET.
USER_SERVER = """\
import http.server, os, urllib.parse
home = os.environ["HOME"]
os.makedirs(home, exist_ok=True)
with open(os.path.join(home, "token"), "w", opener=lambda path, flags: os.open(path, flags, 0o600)) as f:
    f.write(os.environ["JUPYTERHUB_API_TOKEN"])
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
url = urllib.parse.urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
http.server.HTTPServer((url.hostname, url.port), Answer).serve_forever()
"""


def _wait_for(what: str, check: Any, hub_process: subprocess.Popen[bytes], folder: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f"Service {SERVICE_NAME} exited" in (folder / "hub.log").read_text(errors="replace"):
            raise RuntimeError(f"`labkit hub-service` exited before {what}:\n"
                               + (folder / "hub.log").read_text(errors="replace")[-6000:])
        if hub_process.poll() is not None:
            raise RuntimeError(f"JupyterHub exited ({hub_process.returncode}) before {what}:\n"
                               + (folder / "hub.log").read_text(errors="replace")[-6000:])
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"no {what} within {timeout:g} s:\n" + (folder / "hub.log").read_text(errors="replace")[-6000:])


def _stop(process: subprocess.Popen[bytes], folder: Path, proxy_api_port: int) -> None:
    """Stop the hub as an operator does (SIGTERM): it stops its managed service, which stops its server,
    and its proxy; a hub that died leaves its proxy behind, which is stopped by its pid file."""
    import signal
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    proxy_pid = folder / "proxy.pid"
    if proxy_pid.exists():
        import psutil
        try:
            proxy = psutil.Process(int(proxy_pid.read_text().strip()))
            command = proxy.cmdline()
            if any("configurable-http-proxy" in part for part in command) and str(proxy_api_port) in command:
                proxy.terminate()
                proxy.wait(timeout=10)
        except (ValueError, psutil.Error):
            pass


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    import importlib.util
    if importlib.util.find_spec("jupyterhub") is None or shutil.which("configurable-http-proxy") is None:
        pytest.fail("JupyterHub or configurable-http-proxy is missing: `bash scripts/install.sh --test` installs both")
    folder = tmp_path_factory.mktemp("hub")
    with lab_settings() as stack, labkit.Lab.open(folder / "lab", **stack) as lab:
        lab.as_user("alice").add_model(DEMO_MODELS / "hodgkin_huxley_1952.cellml", name="alice_private")
        lab.add_model(DEMO_MODELS / "noble_1962.cellml", name="public_model", visibility="public")
        ports = {name: free_port(HOST) for name in ("proxy_port", "proxy_api_port", "hub_port", "service_port")}
        tester_token = secrets.token_hex(32)
        (folder / "user_server.py").write_text(USER_SERVER)
        config = folder / "jupyterhub_config.py"
        config.write_text(HUB_CONFIG.format(
            host=HOST, **ports, proxy_pid=str(folder / "proxy.pid"), hub_pid=str(folder / "hub.pid"),
            db_url=f"sqlite:///{folder / 'jupyterhub.sqlite'}", cookie_secret=str(folder / "cookie_secret"),
            password=PASSWORD, tester_token=tester_token, homes=str(folder / "home" / "{username}"),
            python=sys.executable, user_server=str(folder / "user_server.py"),
            command=[sys.executable, "-m", "labkit", "--lab", str(lab.settings.root), "hub-service"],
            environment=settings_environment(lab.settings)))
        with open(folder / "hub.log", "wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(config)], cwd=folder,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        the_hub = Hub(lab, f"http://{HOST}:{ports['proxy_port']}", tester_token, folder, process)
        try:
            _wait_for("hub API", lambda: the_hub.hub_api("GET", "/").status_code == 200, process, folder, 120)
            answer = the_hub.hub_api("POST", "/users", json={"usernames": ["alice", "bob"]})
            assert answer.status_code == 201, answer.text
            _wait_for("labkit service behind the proxy",
                      lambda: requests.get(the_hub.api + "/openapi.json", timeout=10).status_code == 200,
                      process, folder, 180)
            yield the_hub
        finally:
            _stop(process, folder, ports["proxy_api_port"])


@pytest.fixture(scope="module")
def tokens(hub: Hub) -> dict[str, str]:
    return {"alice": hub.token("alice", [ACCESS_SCOPE]), "bob": hub.token("bob", [ACCESS_SCOPE]),
            # a token of alice's that does not include access to the service
            "alice-no-access": hub.token("alice", ["read:users:name!user"])}


def as_user(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


def test_the_api_acts_as_the_hub_user_of_the_token(hub: Hub, tokens: dict[str, str]) -> None:
    me = requests.get(hub.api + "/me", headers=as_user(tokens["alice"]), timeout=30)
    assert me.status_code == 200, hub.log()
    assert me.json() == {"user": "alice", "authenticated_by": "jupyter"}  # the hub's identity, through Jupyter
    assert requests.get(hub.api + "/me", headers=as_user(tokens["bob"]), timeout=30).json()["user"] == "bob"
    names = {user: sorted(m["name"] for m in requests.get(hub.api + "/models", headers=as_user(token),
                                                            timeout=30).json()["items"])
             for user, token in (("alice", tokens["alice"]), ("bob", tokens["bob"]))}
    assert names == {"alice": ["alice_private", "public_model"], "bob": ["public_model"]}
    hidden = requests.get(hub.api + "/models/alice_private", headers=as_user(tokens["bob"]), timeout=30)
    assert hidden.status_code == 404


def test_a_hub_user_disabled_in_the_lab_is_refused(hub: Hub, tokens: dict[str, str]) -> None:
    hub.lab.add_user("bob")
    hub.lab.disable_user("bob")  # the hub still knows bob; the lab has closed his account
    try:
        refused = requests.get(hub.api + "/models", headers=as_user(tokens["bob"]), timeout=30)
        assert refused.status_code == 403 and "disabled" in refused.json()["error"]
    finally:
        hub.lab.disable_user("bob", False)
    assert requests.get(hub.api + "/models", headers=as_user(tokens["bob"]), timeout=30).status_code == 200


def test_no_hub_credentials_no_access(hub: Hub, tokens: dict[str, str]) -> None:
    for headers in ({}, as_user(tokens["alice-no-access"]), as_user("not-a-token")):
        answer = requests.get(hub.api + "/me", headers=headers, timeout=30, allow_redirects=False)
        assert answer.status_code in (401, 403), (headers, answer.status_code, answer.text)
        listing = requests.get(hub.api + "/models", headers=headers, timeout=30, allow_redirects=False)
        assert listing.status_code in (401, 403)
    # a hub token in the URL is not taken (tokens in URLs end up in logs and histories)
    in_url = requests.get(hub.api + "/me", params={"token": tokens["alice"]}, timeout=30, allow_redirects=False)
    assert in_url.status_code in (401, 403)
    # a browser without the hub's cookie is sent to sign in to the hub, not shown a page
    page = requests.get(hub.service + "/voila/render/home.ipynb", timeout=30, allow_redirects=False)
    assert page.status_code == 302 and "/hub/api/oauth2/authorize" in page.headers["Location"]


def test_a_labkit_token_still_works_through_the_hub(hub: Hub) -> None:
    token = hub.lab.create_token("alice", name=f"script-{uuid.uuid4().hex[:6]}")
    me = requests.get(hub.api + "/me", headers=as_user(token), timeout=30)
    assert me.status_code == 200 and me.json()["user"] == "alice"


def server_token(hub: Hub, user: str) -> str:
    """Start ``user``'s own server and return its $JUPYTERHUB_API_TOKEN."""
    answer = hub.hub_api("POST", f"/users/{user}/server")
    assert answer.status_code in (201, 202), answer.text
    deadline = time.monotonic() + 60
    while not hub.hub_api("GET", f"/users/{user}").json()["servers"].get("", {}).get("ready"):
        assert time.monotonic() < deadline, hub.log()
        time.sleep(0.3)
    return (hub.folder / "home" / user / "token").read_text()


def test_a_users_own_server_reaches_the_api_if_its_token_scopes_allow(hub: Hub) -> None:
    """A notebook on a user's own server authenticates with the server's $JUPYTERHUB_API_TOKEN only if
    the operator adds access to the service to the server tokens' scopes (c.Spawner.server_token_scopes);
    the hub's default server token cannot reach the service."""
    alice = requests.get(hub.api + "/me", headers=as_user(server_token(hub, "alice")), timeout=30)
    assert alice.status_code == 200 and alice.json()["user"] == "alice"
    bob = requests.get(hub.api + "/me", headers=as_user(server_token(hub, "bob")), timeout=30)
    assert bob.status_code == 401


def test_jupyters_own_resources_are_closed_to_hub_users(hub: Hub, tokens: dict[str, str]) -> None:
    for path in ("/api/kernels", "/api/contents", "/api/contents/home.ipynb", "/api/sessions", "/api/kernelspecs",
                 "/api/terminals"):
        answer = requests.get(hub.service + path, headers=as_user(tokens["alice"]), timeout=30)
        assert answer.status_code in (403, 404), (path, answer.status_code)
        if path != "/api/terminals":  # terminals are not even served (404); the rest are refused
            assert answer.status_code == 403, path
    started = requests.post(hub.service + "/api/kernels", json={"name": "python3"}, headers=as_user(tokens["alice"]),
                            timeout=30)
    assert started.status_code == 403


# -- dashboard pages ---------------------------------------------------------------------------------
class PageKernel:
    """A page kernel's websocket, spoken as Voilà's page speaks it (Jupyter's JSON message protocol)."""

    def __init__(self, hub: Hub, kernel_id: str, token: str) -> None:
        from websockets.sync.client import connect
        url = hub.url.replace("http://", "ws://") + f"{PREFIX}/api/kernels/{kernel_id}/channels"
        self.session = uuid.uuid4().hex
        self.socket = connect(f"{url}?session_id={self.session}", additional_headers=as_user(token),
                              open_timeout=30, max_size=None)
        self.socket.__enter__()  # the connection is a context manager; close() leaves it

    def __enter__(self) -> "PageKernel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, msg_type: str, content: dict[str, Any], metadata: dict[str, Any] | None = None) -> str:
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": msg_type, "username": "test", "session": self.session,
                  "date": "2024-01-01T00:00:00Z", "version": "5.3"}
        self.socket.send(json.dumps({"header": header, "parent_header": {}, "metadata": metadata or {},
                                     "content": content, "channel": "shell", "buffers": []}))
        return msg_id

    def replies(self, msg_id: str, timeout: float) -> Iterator[dict[str, Any]]:
        """The messages answering ``msg_id`` until ``timeout`` seconds pass in silence."""
        return (m for m in self.messages(timeout) if m.get("parent_header", {}).get("msg_id") == msg_id)

    def messages(self, timeout: float) -> Iterator[dict[str, Any]]:
        """Every message from the kernel until ``timeout`` seconds pass in silence."""
        while True:
            try:
                frame = self.socket.recv(timeout=timeout)
            except TimeoutError:
                return
            # a message with binary buffers (widget state may carry some) comes as one binary frame
            yield json.loads(frame) if isinstance(frame, str) else deserialize_binary_message(frame)

    def widget_states(self) -> dict[str, Any]:
        """Every widget's state, as the page's widget manager asks for them (ipywidgets' control comm)."""
        comm_id = uuid.uuid4().hex
        self.send("comm_open", {"comm_id": comm_id, "target_name": "jupyter.widget.control", "data": {}},
                  {"version": "1.0.0"})  # ipywidgets' control protocol
        asked = self.send("comm_msg", {"comm_id": comm_id, "data": {"method": "request_states"}})
        for message in self.replies(asked, timeout=60):
            data = message["content"].get("data", {})
            if message["msg_type"] == "comm_msg" and data.get("method") == "update_states":
                return data["states"]
        raise AssertionError("the page kernel sent no widget states")

    def close(self) -> None:
        self.socket.close()


def render(hub: Hub, token: str, page: str) -> str:
    """A dashboard page through the proxy, as Voilà renders it for the token's user: its kernel id."""
    answer = requests.get(f"{hub.service}/voila/render/{page}", headers=as_user(token), timeout=240)
    assert answer.status_code == 200, hub.log()
    kernel = re.search(r'"kernelId":\s*"([0-9a-f-]{36})"', answer.text)
    assert kernel, answer.text[:3000]
    return kernel.group(1)


def shown_text(states: dict[str, Any]) -> str:
    """Every string in the page's widgets (HTML values, button labels, options...)."""
    def strings(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)

    text = "\n".join(strings([s.get("state", {}) for s in states.values()]))
    assert 'class="lk-error"' not in text, text
    return text


def test_a_dashboard_page_acts_as_its_hub_user(hub: Hub, tokens: dict[str, str]) -> None:
    with PageKernel(hub, render(hub, tokens["alice"], "browse.ipynb"), tokens["alice"]) as page:
        text = shown_text(page.widget_states())
    assert '<span class="lk-user">alice</span>' in text
    assert "alice_private" in text and "public_model" in text
    with PageKernel(hub, render(hub, tokens["bob"], "browse.ipynb"), tokens["bob"]) as page:
        text = shown_text(page.widget_states())
    assert '<span class="lk-user">bob</span>' in text
    assert "public_model" in text and "alice_private" not in text


def test_a_page_kernel_takes_widget_messages_only_and_from_its_own_user(hub: Hub, tokens: dict[str, str]) -> None:
    from websockets.exceptions import InvalidStatus
    kernel = render(hub, tokens["alice"], "home.ipynb")
    with pytest.raises(InvalidStatus) as refused:  # bob may not talk to alice's page
        PageKernel(hub, kernel, tokens["bob"])
    assert refused.value.response.status_code == 403
    with PageKernel(hub, kernel, tokens["alice"]) as page:
        marker = hub.lab.settings.root / "executed-by-a-visitor"
        code = f"open({str(marker)!r}, 'w').write('code ran as the lab')"
        executed = page.send("execute_request", {"code": code, "silent": False, "store_history": False,
                                                 "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
        info = page.send("kernel_info_request", {})
        # the kernel answers its shell messages in order: an execution would come before this reply
        answers: dict[str, set[str]] = {executed: set(), info: set()}
        for message in page.messages(timeout=30):
            parent = message.get("parent_header", {}).get("msg_id")
            if parent in answers:
                answers[parent].add(message["msg_type"])
            if "kernel_info_reply" in answers[info]:
                break
        for message in page.messages(timeout=2):  # and whatever an execution would still send
            parent = message.get("parent_header", {}).get("msg_id")
            if parent in answers:
                answers[parent].add(message["msg_type"])
        assert "kernel_info_reply" in answers[info]  # the channel works...
        assert answers[executed] == set()  # ...but code is dropped, never run
    assert not marker.exists()
