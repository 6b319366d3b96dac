"""Celery's monitor, Flower, against a scale-out lab's broker: it sees the workers and their runs."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import stacks
from notebooks import protocol_notebook

import labkit
from labkit.queue.embedded import settings_environment

pytestmark = pytest.mark.timeout(300)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _poll(what: str, check, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as err:  # Flower not listening yet
            last = err
        time.sleep(1.0)
    raise AssertionError(f"{what} not seen in Flower after {timeout:g} s; last answer: {last!r}")


def test_flower_on_the_lab_broker_lists_the_workers_and_their_runs(tmp_path: Path, models_dir: Path) -> None:
    with stacks.scaleout_settings() as settings, labkit.Lab.open(tmp_path / "lab", **settings) as lab:
        lab.add_model(models_dir / "hodgkin_huxley_squid_axon_model_1952_modified.cellml", name="hh")
        lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
        lab.start_workers(1)
        port = _free_port()
        env = {**os.environ, **settings_environment(lab.settings), "FLOWER_UNAUTHENTICATED_API": "true"}
        log = open(tmp_path / "flower.log", "wb")
        flower = subprocess.Popen([sys.executable, "-m", "celery", "-A", "labkit.queue.worker_app", "flower",
                                   f"--port={port}", "--address=127.0.0.1"], env=env, cwd=tmp_path,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}/api"
            workers = _poll("the lab's worker", lambda: [name for name in _get(f"{base}/workers?refresh=1")
                                                         if name.startswith(f"{lab.settings.default_queue}-worker1@")])
            assert len(workers) == 1
            info = lab.wait([lab.run("hh", "test")], timeout=120)[0]
            assert info.status == "success", info.error
            tasks = _poll("the run's task", lambda: [t for t in _get(f"{base}/tasks").values()
                                                     if t.get("name") == "labkit.execute_run"
                                                     and t.get("args", "").find(info.id) >= 0
                                                     and t.get("state") == "SUCCESS"])
            assert tasks[0]["worker"] == workers[0]
        finally:
            flower.terminate()
            flower.wait(timeout=30)
            log.close()
            lab.stop_workers()
