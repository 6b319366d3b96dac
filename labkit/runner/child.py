"""papermill as a child process tree: started, watched, and killed as a whole.

A run's papermill process and the kernel it starts are one process tree. The tree is killed on
cancellation, on the time limit, or when another worker has taken the run over, so nothing is left
behind; and it dies with the worker that started it. A kernel that never answers is started again.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from pathlib import Path

import psutil

from ..config import Settings
from ..store.db import Database
from . import claims

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
KERNEL_START_ATTEMPTS = 3
# What nbclient raises when a kernel it launched never answers its first request.
KERNEL_START_FAILURES = ("Kernel didn't respond in", "Kernel died before replying to kernel_info")
# The line labkit writes into log.txt after each start whose kernel never answered.
RESTART_MARK = "labkit: the kernel did not answer"


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant (papermill and its kernel)."""
    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    procs = parent.children(recursive=True) + [parent]
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=5)


def _die_with_parent() -> None:
    """Ask Linux to kill the child when the worker that started it dies (PR_SET_PDEATHSIG)."""
    os.setsid()
    try:
        import ctypes
        import signal
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


def run_papermill(settings: Settings, db: Database, claim: claims.Claim, command: list[str],
                   env: dict[str, str], scratch: Path, time_limit: float) -> str:
    """Run papermill, starting it again when its kernel never answered (up to KERNEL_START_ATTEMPTS).

    Now and then a kernel started on a busy machine (two workers starting kernels at the same
    moment) never answers papermill's first request. That says nothing about the model or the
    protocol, so it is not the run's failure until it has happened KERNEL_START_ATTEMPTS times in a row.
    Every attempt is kept in ``log.txt``; the time limit counts across attempts.
    """
    started = time.monotonic()
    log_path = scratch / "log.txt"
    for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
        with open(log_path, "ab") as log_file:
            child = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                     cwd=scratch, preexec_fn=_die_with_parent)
            outcome = _watch(settings, db, claim, child, time_limit - (time.monotonic() - started))
        if outcome != "error" or not _kernel_never_answered(log_path, scratch / "executed.ipynb"):
            return outcome
        log.warning("run %s attempt %s: the kernel did not answer papermill (start %d of %d)",
                    claim.run_id, claim.attempt, attempt, KERNEL_START_ATTEMPTS)
        with open(log_path, "a") as log_file:
            log_file.write(f"\n{RESTART_MARK} within {settings.kernel_start_timeout} s "
                           f"(start {attempt} of {KERNEL_START_ATTEMPTS})\n\n")
    return "no kernel"


def _kernel_never_answered(log_path: Path, notebook: Path) -> bool:
    """Did papermill's last start end because the kernel never answered (and so no cell ran)?"""
    last_start = log_path.read_text(errors="replace").rsplit(RESTART_MARK, 1)[-1]
    if not any(message in last_start for message in KERNEL_START_FAILURES):
        return False
    try:  # a protocol's own output could quote those messages; then its cells have run
        cells = json.loads(notebook.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return True  # papermill stopped before writing the notebook
    return all(cell.get("execution_count") is None for cell in cells)


def _watch(settings: Settings, db: Database, claim: claims.Claim, child: subprocess.Popen,
           time_limit: float) -> str:
    """Wait for the child, heart-beating; kill it on cancel, time-out or lost ownership."""
    started = time.monotonic()
    last_beat = 0.0
    while child.poll() is None:
        time.sleep(POLL_SECONDS)
        if time.monotonic() - last_beat >= settings.heartbeat_interval:
            last_beat = time.monotonic()
            ours, cancel = claims.heartbeat(db, claim)
            if cancel or not ours:
                kill_tree(child.pid)
                child.wait()
                return "cancelled" if cancel else "lost"
        if time.monotonic() - started > time_limit:
            kill_tree(child.pid)
            child.wait()
            return "timeout"
    return "finished" if child.returncode == 0 else "error"
