"""The shared lab as one JupyterHub managed service (``labkit hub-service``; docs/jupyterhub.md).

JupyterHub starts the service (``c.JupyterHub.services``, with ``command`` and ``url``) and gives it
its ``JUPYTERHUB_*`` environment; the service runs JupyterHub's own single-user server
(``jupyterhub-singleuser``, in its Jupyter server extension form) with:

* labkit's REST API (``labkit_api``) on the lab, under ``/services/labkit/labkit/api/v1``;
* Voilà's server extension on the dashboard notebooks, under ``/services/labkit/voila/render/``;
* JupyterHub's identity provider: every request must carry the hub's OAuth cookie (a browser signed in
  to the hub) or ``Authorization: token <hub token>`` of a user whose scopes include access to the
  service (``access:services!service=labkit``); the API and the pages then act as that hub user;
* ``labkit_api.hub``'s authorizer, kernel manager and Voilà prelaunch hook, which keep Jupyter's own
  kernels, contents and terminals (code and files with the lab's rights) from every hub user, let a
  page's widgets reach only the kernel rendered for them, and make each page act as its hub user.

Only this service holds the lab's folder, database and broker settings; users' own servers reach the
lab through the API with their hub identity.
"""
from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .config import Settings
from .dashboards.serve import ServerProcess, dashboards_folder

SERVICE_NAME = "labkit"
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
HOME_PAGE = "/voila/render/home.ipynb"
HUB_AUTHORIZER = "labkit_api.hub.HubAuthorizer"
PAGE_KERNEL_MANAGER = "labkit_api.hub.PageKernelManager"

# Voilà's prelaunch hook is a Python callable, which a command line cannot name: it goes in a config
# file (written afresh at each start, next to nothing else).
CONFIG_FILE = """\
# Written by `labkit hub-service` (labkit/hub.py) at each start; edits are lost.
from labkit_api.hub import prelaunch_hook

c.VoilaConfiguration.prelaunch_hook = prelaunch_hook
"""


def hub_service_command(lab_root: Path, config_file: Path, *, dashboards: Path | None = None) -> list[str]:
    """JupyterHub's single-user server with labkit's API on ``lab_root`` and Voilà on the dashboards;
    it takes its address, base URL and hub credentials from the ``JUPYTERHUB_*`` environment."""
    command = [sys.executable, "-m", "jupyterhub.singleuser", f"--config={config_file}",
               "--ServerApp.jpserver_extensions=labkit_api=True",
               "--ServerApp.jpserver_extensions=voila.server_extension=True",
               f"--LabkitAPI.lab_dir={lab_root}",
               # Voilà renders notebooks relative to the server's root: the dashboards, never the lab folder
               f"--ServerApp.root_dir={dashboards or dashboards_folder()}",
               f"--ServerApp.default_url={HOME_PAGE}",
               f"--ServerApp.authorizer_class={HUB_AUTHORIZER}",
               f"--ServerApp.kernel_manager_class={PAGE_KERNEL_MANAGER}",
               "--ServerApp.terminals_enabled=False",
               # a page's one output cell opens hundreds of widget comms; see dashboards/serve.py
               "--VoilaExecutor.iopub_timeout=60"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers run as root
        command.append("--allow-root")
    return command


def hub_environment() -> dict[str, str]:
    """The hub's settings for its service, checked: ``labkit hub-service`` only runs under the hub."""
    env = os.environ
    missing = [name for name in ("JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL")
               if not env.get(name)]
    if missing:
        raise RuntimeError(
            f"labkit hub-service runs as a JupyterHub managed service (c.JupyterHub.services with 'command' "
            f"and 'url'); {', '.join(missing)} missing from its environment. See docs/jupyterhub.md")
    if env.get("JUPYTERHUB_SERVICE_NAME", SERVICE_NAME) != SERVICE_NAME:
        raise RuntimeError(f"name the service {SERVICE_NAME!r} in c.JupyterHub.services, not "
                           f"{env['JUPYTERHUB_SERVICE_NAME']!r}: users' scopes and labkit's docs use that name")
    # the extension form of the single-user server, even where JupyterLab would be the default app; pages
    # that the hub's prelaunch hook did not name a visitor for act for nobody (dashboards.common.visitor)
    from .dashboards.common import HUB_SERVICE_ENV
    return {"JUPYTERHUB_SINGLEUSER_EXTENSION": "1", HUB_SERVICE_ENV: "1"}


class HubService(ServerProcess):
    """The single-user server of the lab's hub service, as a child process (its log: the lab's
    ``logs/hub-service.log``)."""

    label = "The labkit hub service"

    def __init__(self, settings: Settings, config_file: Path, *, log: Path | None = None) -> None:
        from urllib.parse import urlparse
        address = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
        super().__init__(settings, port=address.port or 80, host=address.hostname or "127.0.0.1",
                         log=log or settings.logs / "hub-service.log", extra_env=hub_environment())
        self.config_file = config_file

    def command(self) -> list[str]:
        return hub_service_command(self.settings.root, self.config_file)


def run_hub_service(settings: Settings, *, start_workers: Callable[[], None] | None = None,
                    stop_workers: Callable[[], None] | None = None,
                    echo: Callable[[str], None] = print) -> int:
    """Serve the lab as the hub's ``labkit`` service until the hub stops it (SIGINT or SIGTERM) and
    return the server's exit status; the lab's workers too, if ``start_workers`` is given."""
    import signal
    hub_environment()  # refuse early, before starting any worker
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the hub stops its services with SIGINT
    with tempfile.TemporaryDirectory(prefix="labkit-hub-") as folder:
        config_file = Path(folder) / "labkit_hub_config.py"
        config_file.write_text(CONFIG_FILE)
        service = HubService(settings, config_file)
        if start_workers is not None:
            start_workers()
        try:
            service.start(wait=False)
            echo(f"labkit hub service of {settings.root} at {os.environ['JUPYTERHUB_SERVICE_URL']} "
                 f"(behind the hub: {os.environ.get('JUPYTERHUB_SERVICE_PREFIX', '/services/labkit/')}); "
                 f"log: {service.log}")
            return service.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            service.stop()
            if stop_workers is not None:
                stop_workers()
