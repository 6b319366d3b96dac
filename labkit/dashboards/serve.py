"""Start Voilà on the dashboard notebooks for one lab (``labkit serve``, the demo, the browser tests),
and the Jupyter server with labkit's REST API (``ApiServer``; docs/api.md).

The lab reaches the page kernels through ``LABKIT_LAB`` (and the other ``LABKIT_*`` settings), which
Voilà's kernels inherit. Preheated kernels (one per page) have already imported labkit and opened
the lab when a visitor arrives, so the first paint only builds the widgets.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..config import Settings
from ..queue.embedded import settings_environment

DASHBOARDS = Path(__file__).resolve().parents[2] / "notebooks" / "dashboards"


def dashboards_folder() -> Path:
    """The notebooks Voilà serves (in the labkit checkout, beside the standard protocols)."""
    if not (DASHBOARDS / "home.ipynb").exists():
        raise FileNotFoundError(f"{DASHBOARDS} is missing: serve the dashboards from a labkit checkout")
    return DASHBOARDS


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


SIGN_IN_PROVIDER = "labkit_api.signin.LabkitIdentityProvider"
SIGN_IN_AUTHORIZER = "labkit_api.signin.LabkitAuthorizer"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_host(host: str, settings: Settings) -> None:
    """Refuse to serve a read-write lab without sign-in beyond this machine: every visitor would act
    as the lab's operator (docs/deploy.md says how to serve a public site)."""
    if not _is_loopback(host) and not settings.sign_in and not settings.read_only:
        raise PermissionError(
            f"refusing to serve on {host}: without sign-in every visitor would act as the lab's operator "
            f"({settings.user}). Turn sign-in on (sign_in = true in labkit.toml, or LABKIT_SIGN_IN=1) and give "
            "people accounts (`labkit user add NAME --password`), or serve --read-only; see docs/deploy.md")


def voila_command(port: int, *, host: str = "127.0.0.1", preheat: bool = True, pool_size: int = 1,
                  folder: Path | None = None, sign_in: bool = False) -> list[str]:
    """The Voilà command line: every dashboard notebook, no browser, optionally a pool of kernels
    per page already past their imports. With ``sign_in``, labkit's identity provider serves /login
    and /logout, and each page's kernel gets the visitor's cookie (``HTTP_COOKIE``, also for
    preheated kernels) so that the page can ask the lab whose session it is (common.visitor)."""
    # iopub_timeout: a page's one output cell opens hundreds of widget comms first; on a busy machine
    # they take longer than nbclient's 4 s default, which would drop the page's display message.
    command = [sys.executable, "-m", "voila", str(folder or dashboards_folder()), "--no-browser",
               f"--port={port}", f"--Voila.ip={host}", "--VoilaConfiguration.show_tracebacks=True",
               "--VoilaExecutor.iopub_timeout=60"]
    if preheat and pool_size > 0:
        command += ["--preheat_kernel=True", f"--pool_size={pool_size}"]
    if sign_in:
        command += [f"--Voila.identity_provider_class={SIGN_IN_PROVIDER}",
                    "--VoilaConfiguration.http_header_envs=Cookie"]
    if _is_loopback(host):  # answer only to this machine's own names: no DNS rebinding onto the operator's pages
        command.append("--Voila.tornado_settings={'allow_remote_access': False}")
    # Every page view starts a kernel; one whose page was closed is stopped after 10 minutes.
    command += ["--MappingKernelManager.cull_idle_timeout=600", "--MappingKernelManager.cull_interval=60"]
    return command


def _is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def page_settings(settings: Settings, user: str | None = None) -> Settings:
    """The settings the dashboard kernels get: ``user`` if given; a read-only site acts as the
    public visitor, so that it shows only what everyone may read (docs/permissions.md); with sign-in,
    each page acts as its visitor's session says (common.visitor), the public visitor by default."""
    from dataclasses import replace

    from ..access import PUBLIC_VISITOR
    chosen = user or (PUBLIC_VISITOR if settings.read_only or settings.sign_in else settings.user)
    return replace(settings, user=chosen)


class ServerProcess:
    """A web server in a child process of its own session, for one lab: start, wait until it
    answers HTTP, stop it with everything it started. Subclasses give the command and the address
    that answers once it is ready."""

    label = "server"

    def __init__(self, settings: Settings, *, port: int = 0, host: str = "127.0.0.1", log: Path,
                 extra_env: dict[str, str] | None = None) -> None:
        self.settings, self.host = settings, host
        self.port = port or free_port(host)
        self.log = log
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    @property
    def ready_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self, *, wait: bool = True, timeout: float = 60.0) -> "ServerProcess":
        env = {**os.environ, **settings_environment(self.settings), **self.extra_env}
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.command(), env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the server answers HTTP."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited with status {self.process.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.3)
        raise TimeoutError(f"{self.label} did not answer on port {self.port} within {timeout:g} s; see {self.log}")

    def stop(self) -> None:
        """Stop the server and whatever it started (its whole process group)."""
        if self.process is None or self.process.poll() is not None:
            return
        import signal
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        except ProcessLookupError:
            pass

    def wait(self) -> int:
        """Block until the server ends, Ctrl-C or SIGTERM (both raise KeyboardInterrupt here, so the
        caller's ``finally`` stops it: it runs in its own session and would outlive us)."""
        assert self.process is not None
        import signal

        def interrupt(*_: object) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, interrupt)
        try:
            return self.process.wait()
        finally:
            signal.signal(signal.SIGTERM, previous)

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class DashboardServer(ServerProcess):
    """A Voilà process serving one lab's dashboards; ``url`` is the home page."""

    label = "Voilà"

    def __init__(self, settings: Settings, *, port: int = 0, host: str = "127.0.0.1", preheat: bool = True,
                 pool_size: int = 1, log: Path | None = None, extra_env: dict[str, str] | None = None) -> None:
        super().__init__(settings, port=port, host=host, log=log or settings.logs / "dashboards.log",
                         extra_env=extra_env)
        self.preheat, self.pool_size = preheat, pool_size

    def command(self) -> list[str]:
        return voila_command(self.port, host=self.host, preheat=self.preheat, pool_size=self.pool_size,
                             sign_in=self.settings.sign_in)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/voila/render/"

    @property
    def url(self) -> str:
        return self.base_url + "home.ipynb"

    def page_url(self, page_url: str) -> str:
        """The absolute address of a relative page link (``matrix.ipynb?page=2``)."""
        return self.base_url + page_url

    def __enter__(self) -> "DashboardServer":
        self.start()
        return self


API_PATH = "/labkit/api/v1"


def api_command(port: int, lab_root: Path, *, host: str = "127.0.0.1", sign_in: bool = False) -> list[str]:
    """A Jupyter server with labkit's REST API (extensions/labkit_api) on one lab. Its token comes from
    ``JUPYTER_TOKEN`` in its environment (``ApiServer`` sets it): a command line is readable by every
    local user (``ps``), an environment only by the same user. With ``sign_in``, users are the lab's
    accounts (labkit tokens and sign-in sessions) and Jupyter's own resources are closed to them."""
    # Only labkit's extension: Voilà's server extension and terminals, enabled in this environment for
    # every Jupyter server, would render (run) any notebook under the server's root and list its files.
    # The root is an empty folder of its own for the same reason: the lab folder holds other people's
    # files and notebooks.
    root = lab_root / "logs" / "api-root"
    root.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}", f"--ServerApp.ip={host}",
               "--ServerApp.port_retries=0", "--ServerApp.jpserver_extensions=labkit_api=True",
               "--ServerApp.jpserver_extensions=voila.server_extension=False",
               "--ServerApp.jpserver_extensions=jupyter_server_terminals=False", "--ServerApp.terminals_enabled=False",
               f"--LabkitAPI.lab_dir={lab_root}", f"--ServerApp.root_dir={root}"]
    if sign_in:
        command += [f"--ServerApp.identity_provider_class={SIGN_IN_PROVIDER}",
                    f"--ServerApp.authorizer_class={SIGN_IN_AUTHORIZER}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI run as root
        command.append("--allow-root")
    return command


class ApiServer(ServerProcess):
    """A Jupyter server serving labkit's REST API for one lab; ``url`` is the API's root and
    ``token`` the Jupyter token that authenticates as the lab's owner (docs/api.md)."""

    label = "The labkit API's Jupyter server"

    def __init__(self, settings: Settings, *, port: int = 0, host: str = "127.0.0.1", token: str | None = None,
                 log: Path | None = None, extra_env: dict[str, str] | None = None) -> None:
        super().__init__(settings, port=port, host=host, log=log or settings.logs / "api.log", extra_env=extra_env)
        import secrets
        self.token = token or secrets.token_urlsafe(24)
        self.extra_env = {**self.extra_env, "JUPYTER_TOKEN": self.token}

    def command(self) -> list[str]:
        return api_command(self.port, self.settings.root, host=self.host, sign_in=self.settings.sign_in)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{API_PATH}"

    @property
    def ready_url(self) -> str:
        return self.url + "/openapi.json"  # answers without credentials once the extension is loaded

    def __enter__(self) -> "ApiServer":
        self.start()
        return self
