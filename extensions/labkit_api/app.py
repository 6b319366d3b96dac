"""The Jupyter server extension: opens the lab once, serves the API's handlers.

Configuration (traitlets): ``LabkitAPI.lab_dir`` (default ``$LABKIT_LAB``), ``LabkitAPI.owner``
(who holds the server's shared token; default the lab's ``user`` setting) and
``LabkitAPI.threads`` (library calls run in a thread pool so the server's event loop never
waits on SQL or git).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from jupyter_server.extension.application import ExtensionApp
from traitlets import Integer, Unicode, default

from labkit import Lab

from .handlers.base import SETTINGS_KEY
from .routes import handlers


class LabkitAPI(ExtensionApp):
    """labkit's REST API under /labkit/api/v1 (docs/api.md)."""

    name = "labkit_api"
    load_other_extensions = True

    lab_dir = Unicode(help="The lab folder the API serves (default: $LABKIT_LAB).").tag(config=True)
    owner = Unicode("", help="The user a request authenticated with the Jupyter server's own token or password "
                             "acts as (default: the lab's `user` setting).").tag(config=True)
    threads = Integer(4, help="Threads that run library calls.").tag(config=True)

    @default("lab_dir")
    def _lab_dir_default(self) -> str:
        return os.environ.get("LABKIT_LAB", "")

    lab: Lab | None = None
    executor: ThreadPoolExecutor | None = None

    def initialize_settings(self) -> None:
        self.executor = ThreadPoolExecutor(self.threads, thread_name_prefix="labkit-api")
        if self.lab_dir:
            self.lab = Lab.open(self.lab_dir)
            self.log.info("labkit API serving the lab in %s", self.lab.settings.root)
        else:  # never create a lab in whatever folder Jupyter was started from
            self.log.warning("labkit API: no lab configured (set LABKIT_LAB or --LabkitAPI.lab_dir); "
                             "its endpoints answer 503 until then")
        self.settings[SETTINGS_KEY] = self

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers())

    async def stop_extension(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
        if self.lab is not None:
            self.lab.close()
