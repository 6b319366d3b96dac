"""papermill as a child process tree: started, watched, and killed as a whole.

A run's papermill process and the kernel it starts are one process tree, started by the run's
``sandbox.Session`` (inside bubblewrap by default). The tree is killed on cancellation, on the time
limit, when it reaches one of its resource limits, or when another worker has taken the run over, so
nothing is left behind; and it dies with the worker that started it. A kernel that never answers is
started again.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..config import Settings
from ..store.db import Database
from . import claims
from .sandbox import Session, Usage

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
USAGE_SECONDS = 1.0  # how often the run's processes and folder are measured against its limits
KERNEL_START_ATTEMPTS = 3
# What nbclient raises when a kernel it launched never answers its first request.
KERNEL_START_FAILURES = ("Kernel didn't respond in", "Kernel died before replying to kernel_info")
# The line labkit writes into log.txt after each start whose kernel never answered.
RESTART_MARK = "labkit: the kernel did not answer"


@dataclass(frozen=True)
class Outcome:
    """How papermill's process tree ended: finished, error, cancelled, lost, timeout, limit or no
    kernel; ``detail`` names the limit for ``limit``."""

    kind: str
    detail: str = ""


def kill_all(procs: list[psutil.Process]) -> None:
    """SIGKILL every process of ``procs`` that still exists and wait for them to go."""
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=5)


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant (papermill and its kernel)."""
    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    kill_all(parent.children(recursive=True) + [parent])


def kill_uid(uid: int | None) -> None:
    """SIGKILL every process of a sandbox uid (a root worker's runs each have their own uid): the
    PID namespace already ends them with the run, this makes sure of it."""
    if uid is not None:
        kill_all([p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid])


def run_papermill(settings: Settings, db: Database, claim: claims.Claim, session: Session,
                  command: list[str], env: dict[str, str]) -> Outcome:
    """Run papermill, starting it again when its kernel never answered (up to KERNEL_START_ATTEMPTS).

    Now and then a kernel started on a busy machine (two workers starting kernels at the same
    moment) never answers papermill's first request. That says nothing about the model or the
    protocol, so it is not the run's failure until it has happened KERNEL_START_ATTEMPTS times in a row.
    Every attempt is kept in ``log.txt`` (outside the sandbox's folder); the time limit counts across
    attempts.
    """
    started = time.monotonic()
    paths = session.paths
    log_path = paths.scratch / "log.txt"
    argv, child_env = session.command(command, env)
    try:
        for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
            with open(log_path, "ab") as log_file:
                child = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=child_env,
                                         stdin=subprocess.DEVNULL, cwd=paths.work, preexec_fn=session.preexec)
                outcome = _watch(settings, db, claim, child, session,
                                 session.limits.wall_seconds - (time.monotonic() - started))
            if outcome.kind != "error" or not _kernel_never_answered(log_path, paths.executed):
                return outcome
            log.warning("run %s attempt %s: the kernel did not answer papermill (start %d of %d)",
                        claim.run_id, claim.attempt, attempt, KERNEL_START_ATTEMPTS)
            with open(log_path, "a") as log_file:
                log_file.write(f"\n{RESTART_MARK} within {settings.kernel_start_timeout} s "
                               f"(start {attempt} of {KERNEL_START_ATTEMPTS})\n\n")
        return Outcome("no kernel")
    finally:
        kill_uid(session.uid)


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
           session: Session, time_limit: float) -> Outcome:
    """Wait for the child, heart-beating and measuring it; kill it on cancel, time-out, a limit
    reached or lost ownership."""
    started = time.monotonic()
    last_beat = last_measure = 0.0
    while child.poll() is None:
        time.sleep(POLL_SECONDS)
        outcome = None
        if time.monotonic() - last_beat >= settings.heartbeat_interval:
            last_beat = time.monotonic()
            ours, cancel = claims.heartbeat(db, claim)
            if cancel or not ours:
                outcome = Outcome("cancelled" if cancel else "lost")
        if outcome is None and time.monotonic() - started > time_limit:
            outcome = Outcome("timeout")
        if outcome is None and time.monotonic() - last_measure >= USAGE_SECONDS:
            last_measure = time.monotonic()
            reached = session.limits.exceeded(measure(child.pid, session.paths.work))
            if reached:
                outcome = Outcome("limit", reached)
        if outcome is not None:
            kill_tree(child.pid)
            child.wait()
            return outcome
    return Outcome("finished" if child.returncode == 0 else "error")


def measure(pid: int, folder: Path) -> Usage:
    """CPU seconds, memory (proportional set size) and number of the processes (threads included) under ``pid``
    (bubblewrap's own not counted), and what ``folder`` holds on disk."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return Usage()
    cpu, memory, count = 0.0, 0, 0
    for p in procs:
        try:
            with p.oneshot():
                times = p.cpu_times()
                cpu += times.user + times.system + times.children_user + times.children_system
                memory += _proportional_memory(p)
                if p.name() != "bwrap":
                    count += p.num_threads()  # as RLIMIT_NPROC counts: every thread is a task
        except psutil.NoSuchProcess:
            pass
    size, files = _folder_usage(folder)
    return Usage(cpu, memory, count, size, files)


def _proportional_memory(process: psutil.Process) -> int:
    """The process's share of the memory it uses (PSS): pages shared after a fork count once in all,
    where summing resident sizes would count them in every copy."""
    try:
        with open(f"/proc/{process.pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return process.memory_info().rss


def _folder_usage(folder: Path) -> tuple[int, int]:
    """Bytes allocated and entries under ``folder``, without following links."""
    size, files, stack = 0, 0, [folder]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            files += 1
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            size += st.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
    return size, files
