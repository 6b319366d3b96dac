"""Worker processes that labkit starts itself for the embedded default: N Celery workers (one task
at a time each) and one Celery beat that re-queues runs of lost workers. Their process ids are
kept in ``<lab>/workers.json`` so any later command can stop them."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import psutil

from ..config import Settings
from ..runner.child import kill_all
from .app import control_queue

STATE_FILE = "workers.json"


@dataclass(frozen=True)
class WorkerProcess:
    name: str
    pid: int
    log: str
    folder: str = ""  # the worker's own storage folder, when isolated from the lab's


def worker_command(name: str, queues: str, concurrency: int = 1) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "labkit.queue.worker_app", "worker",
            "--loglevel=INFO", f"--concurrency={concurrency}", "--pool=prefork", "-n", f"{name}@%h",
            "-Q", queues, "--without-gossip", "--without-mingle"]


def reaper_command(schedule: Path, control_queue: str) -> list[str]:
    """Celery beat inside a worker of its own that takes only the control queue: it schedules the
    re-queueing of lost workers' runs and does it at once, however busy the run workers are."""
    return [sys.executable, "-m", "celery", "-A", "labkit.queue.worker_app", "worker", "--beat",
            "--loglevel=INFO", "--concurrency=1", "--pool=solo", "-n", f"{control_queue}-reaper@%h",
            "-Q", control_queue, "-s", str(schedule), "--without-gossip", "--without-mingle"]


class EmbeddedWorkers:
    """Start, list and stop the lab's own worker processes."""

    def __init__(self, settings: Settings, declare_queues: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.declare_queues = declare_queues
        self.state_file = settings.root / STATE_FILE

    def running(self) -> list[WorkerProcess]:
        return [e for e in self._recorded() if _alive(e.pid)]

    def start(self, count: int | None = None, *, beat: bool = True) -> list[WorkerProcess]:
        """Start ``count`` workers (default: the lab's setting) unless they already run."""
        existing = self.running()
        if existing:
            return existing
        count = self.settings.workers if count is None else count
        self.settings.logs.mkdir(parents=True, exist_ok=True)
        if self.declare_queues is not None:
            self.declare_queues()  # once, here: workers creating broker tables together race
        env = {**os.environ, **settings_environment(self.settings)}
        started = []
        # node names are unique per broker (Celery's control queues are exclusive): name them by queue
        commands = [(f"worker{i + 1}", worker_command(f"{self.settings.default_queue}-worker{i + 1}",
                                                      self.settings.default_queue))
                    for i in range(count)]
        if beat and count:
            commands.append(("beat", reaper_command(self.settings.root / "celerybeat-schedule",
                                                    control_queue(self.settings))))
        for name, command in commands:
            log = self.settings.logs / f"{name}.log"
            folder, cwd, worker_env = "", self.settings.root, env
            if self.settings.isolate_workers and name != "beat":
                folder = tempfile.mkdtemp(prefix=f"labkit-{name}-")
                cwd, worker_env = Path(folder), {**env, **_isolated(folder)}
            with open(log, "wb") as out:
                proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=worker_env,
                                        cwd=cwd, start_new_session=True)
            started.append(WorkerProcess(name, proc.pid, str(log), folder))
        self.state_file.write_text(json.dumps([w.__dict__ for w in started], indent=1))
        return started

    def stop(self, timeout: float = 10.0) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL whatever is left, children included."""
        procs = []
        for w in self.running():
            try:
                p = psutil.Process(w.pid)
                procs.extend([p, *p.children(recursive=True)])
                p.send_signal(signal.SIGTERM)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=timeout)
        kill_all(alive)
        for w in self._recorded():
            if w.folder:
                shutil.rmtree(w.folder, ignore_errors=True)
        self.state_file.unlink(missing_ok=True)

    def _recorded(self) -> list[WorkerProcess]:
        if not self.state_file.exists():
            return []
        return [WorkerProcess(**e) for e in json.loads(self.state_file.read_text())]

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until every started worker logs that it is ready to take tasks."""
        deadline = time.monotonic() + timeout
        workers = [w for w in self.running() if w.name != "beat"]
        while time.monotonic() < deadline:
            if all("ready." in Path(w.log).read_text(errors="replace") for w in workers):
                return
            time.sleep(0.2)
        raise TimeoutError(f"workers did not become ready in {timeout:g} s; see {self.settings.logs}")


def settings_environment(settings: Settings) -> dict[str, str]:
    """The lab's settings as LABKIT_* variables, so child processes see exactly the same lab."""
    env = {"LABKIT_LAB": str(settings.root)}
    for f in fields(settings):
        if f.name != "root":
            env[f"LABKIT_{f.name.upper()}"] = str(getattr(settings, f.name))
    return env


def _isolated(folder: str) -> dict[str, str]:
    """Environment of a worker that shares only the database and the broker with its lab: its own
    lab folder and storage (scratch and results before delivery)."""
    return {"LABKIT_LAB": folder, "LABKIT_STORAGE_ROOT": folder}


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
