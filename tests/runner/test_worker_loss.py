"""A worker killed with SIGKILL mid-run: the run is not left stuck and completes once elsewhere."""
from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from labs import lab_with_workers
from notebooks import protocol_notebook
from test_runs import wait_for_status

import labkit
from labkit.store import orm

pytestmark = pytest.mark.timeout(300)


@contextmanager
def losing_lab(root: Path, models_dir: Path, workers: int = 2) -> Iterator[labkit.Lab]:
    """A lab with the test protocol and a model called ``cell``, whose workers count as lost 5 s
    after their last heartbeat."""
    def seed(lab: labkit.Lab) -> None:
        lab.add_model(models_dir / "hodgkin_huxley_squid_axon_model_1952_modified.cellml", name="cell")
        lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")

    with lab_with_workers(root / "lab", workers, seed, stale_after=5.0, heartbeat_interval=0.5) as lab:
        yield lab


def worker_running(lab: labkit.Lab, run_id: str) -> tuple[int, psutil.Process]:
    """The pid of the process executing ``run_id`` and the Celery worker (main process) it belongs to."""
    with lab.db.session() as s:
        child_pid = s.get(orm.Run, run_id).worker_pid
    return child_pid, psutil.Process(child_pid).parent()


def kill_all(*processes: psutil.Process) -> None:
    """SIGKILL each process and all its descendants, as a machine that dies would."""
    victims = [q for p in processes for q in (p, *p.children(recursive=True))]
    for p in victims:
        os.kill(p.pid, signal.SIGKILL)
    psutil.wait_procs(victims, timeout=10)


def test_sigkill_of_a_whole_worker_mid_run_requeues_the_run_onto_the_other(tmp_path, models_dir) -> None:
    with losing_lab(tmp_path, models_dir) as lab:
        info = lab.run("cell", "test", {"sleep": 6.0})
        wait_for_status(lab, info.id, "running")
        child_pid, node = worker_running(lab, info.id)
        kill_all(node)

        done = lab.wait([info], timeout=180)[0]
        assert done.status == "success", done.error
        assert done.attempt == 2
        statuses = [h[0] for h in done.history]
        assert statuses.count("success") == 1 and statuses.count("running") == 2
        assert "worker was lost" in " ".join(h[3] for h in done.history)
        with lab.db.session() as s:
            run = s.get(orm.Run, info.id)
            assert run.worker_pid != child_pid
            assert s.query(orm.Output).filter(orm.Output.run_id == info.id).count() == 3


def test_sigkill_of_the_process_running_the_task_is_recovered(tmp_path, models_dir) -> None:
    with losing_lab(tmp_path, models_dir) as lab:
        info = lab.run("cell", "test", {"sleep": 6.0})
        wait_for_status(lab, info.id, "running")
        child_pid, _ = worker_running(lab, info.id)
        os.kill(child_pid, signal.SIGKILL)
        done = lab.wait([info], timeout=180)[0]
        assert done.status == "success", done.error
        statuses = [h[0] for h in done.history]
        assert statuses.count("success") == 1 and done.attempt == 2


def test_a_run_cancelled_after_its_worker_died_ends_cancelled_and_never_restarts(tmp_path, models_dir) -> None:
    with losing_lab(tmp_path, models_dir, workers=1) as lab:
        info = lab.run("cell", "test", {"sleep": 30.0})
        wait_for_status(lab, info.id, "running")
        _, node = worker_running(lab, info.id)
        [reaper] = [psutil.Process(w.pid) for w in lab.workers.running() if w.name == "beat"]
        kill_all(reaper, node)  # the reaper first, so that the cancel below meets the run still running
        lab.stop_workers()
        assert lab.cancel(info.id).status == "running"  # the request is recorded; nobody can act on it yet

        lab.start_workers(1)  # its reaper finds the lost run; Celery redelivers the unacknowledged task
        done = lab.wait([info], timeout=120)[0]
        assert done.status == "cancelled"
        assert [h[0] for h in done.history] == ["queued", "running", "cancelled"]
        later = lab.wait([lab.run("cell", "test")], timeout=120)[0]  # the worker is alive and consuming
        assert later.status == "success"
        assert lab.status(info.id).status == "cancelled" and lab.status(info.id).attempt == 1


def test_a_lost_run_is_requeued_at_once_while_the_other_worker_is_busy_and_runs_wait(tmp_path, models_dir) -> None:
    """Re-queueing must not wait behind the queue: the reaper has a queue and a process of its own."""
    with losing_lab(tmp_path, models_dir) as lab:
        long_runs = [lab.run("cell", "test", {"sleep": 120.0}) for _ in range(2)]
        backlog: list[labkit.RunInfo] = []
        try:
            for info in long_runs:
                wait_for_status(lab, info.id, "running")
            backlog = [lab.run("cell", "test") for _ in range(3)]  # queued behind the long runs
            lost, busy = long_runs
            kill_all(worker_running(lab, lost.id)[1])

            requeued = wait_for_status(lab, lost.id, "queued", timeout=60)  # stale after 5 s, then re-queued
            assert "worker was lost" in " ".join(h[3] for h in requeued.history)
            assert lab.status(busy.id).status == "running"  # the only live worker is still busy
            assert all(lab.status(b.id).status == "queued" for b in backlog)
        finally:
            for info in [*long_runs, *backlog]:
                lab.cancel(info.id)
