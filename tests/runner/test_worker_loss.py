"""A worker killed with SIGKILL mid-run: the run is not left stuck and completes once elsewhere."""
from __future__ import annotations

import os
import signal
import time

import psutil
import pytest
from notebooks import protocol_notebook
from test_runs import wait_for_status

import labkit
from labkit.store import orm

pytestmark = pytest.mark.timeout(300)


def test_sigkill_of_a_whole_worker_mid_run_requeues_the_run_onto_the_other(tmp_path, models_dir) -> None:
    lab = labkit.Lab.open(tmp_path / "lab", stale_after=5.0, heartbeat_interval=0.5)
    lab.add_model(models_dir / "ten_tusscher_model_2006_epi.cellml", name="tt06")
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
    lab.start_workers(2)
    try:
        info = lab.run("tt06", "test", {"sleep": 6.0})
        wait_for_status(lab, info.id, "running")
        with lab.db.session() as s:
            child_pid = s.get(orm.Run, info.id).worker_pid
        node = psutil.Process(child_pid).parent()  # the Celery worker's main process
        victims = [node, *node.children(recursive=True)]
        for p in victims:
            os.kill(p.pid, signal.SIGKILL)
        psutil.wait_procs(victims, timeout=10)

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
    finally:
        lab.stop_workers()
        lab.close()


def test_sigkill_of_the_process_running_the_task_is_recovered(tmp_path, models_dir) -> None:
    lab = labkit.Lab.open(tmp_path / "lab", stale_after=5.0, heartbeat_interval=0.5)
    lab.add_model(models_dir / "ten_tusscher_model_2006_epi.cellml", name="tt06")
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
    lab.start_workers(2)
    try:
        info = lab.run("tt06", "test", {"sleep": 6.0})
        wait_for_status(lab, info.id, "running")
        with lab.db.session() as s:
            child_pid = s.get(orm.Run, info.id).worker_pid
        os.kill(child_pid, signal.SIGKILL)
        done = lab.wait([info], timeout=180)[0]
        assert done.status == "success", done.error
        statuses = [h[0] for h in done.history]
        assert statuses.count("success") == 1 and done.attempt == 2
    finally:
        lab.stop_workers()
        lab.close()


def test_a_run_cancelled_after_its_worker_died_ends_cancelled_and_never_restarts(tmp_path, models_dir) -> None:
    lab = labkit.Lab.open(tmp_path / "lab", stale_after=5.0, heartbeat_interval=0.5)
    lab.add_model(models_dir / "ten_tusscher_model_2006_epi.cellml", name="tt06")
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
    lab.start_workers(1)
    try:
        info = lab.run("tt06", "test", {"sleep": 30.0})
        wait_for_status(lab, info.id, "running")
        with lab.db.session() as s:
            node = psutil.Process(s.get(orm.Run, info.id).worker_pid).parent()
        [reaper] = [psutil.Process(w.pid) for w in lab.workers.running() if w.name == "beat"]
        # the reaper goes first, so that the cancel below meets the run still marked running
        victims = [reaper, *reaper.children(recursive=True), node, *node.children(recursive=True)]
        for p in victims:
            os.kill(p.pid, signal.SIGKILL)
        psutil.wait_procs(victims, timeout=10)
        lab.stop_workers()
        assert lab.cancel(info.id).status == "running"  # the request is recorded; nobody can act on it yet

        lab.start_workers(1)  # its beat finds the lost run; Celery redelivers the unacknowledged task
        done = lab.wait([info], timeout=120)[0]
        assert done.status == "cancelled"
        assert [h[0] for h in done.history] == ["queued", "running", "cancelled"]
        later = lab.wait([lab.run("tt06", "test")], timeout=120)[0]  # the worker is alive and consuming
        assert later.status == "success"
        assert lab.status(info.id).status == "cancelled" and lab.status(info.id).attempt == 1
    finally:
        lab.stop_workers()
        lab.close()


def test_a_lost_run_is_requeued_at_once_while_the_other_worker_is_busy_and_runs_wait(tmp_path, models_dir) -> None:
    """Re-queueing must not wait behind the queue: the reaper has a queue and a process of its own."""
    lab = labkit.Lab.open(tmp_path / "lab", stale_after=5.0, heartbeat_interval=0.5)
    lab.add_model(models_dir / "hodgkin_huxley_squid_axon_model_1952_modified.cellml", name="hh")
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
    lab.start_workers(2)
    try:
        long_runs = [lab.run("hh", "test", {"sleep": 120.0}) for _ in range(2)]
        for info in long_runs:
            wait_for_status(lab, info.id, "running")
        backlog = [lab.run("hh", "test") for _ in range(3)]  # queued behind the long runs
        lost, busy = long_runs
        with lab.db.session() as s:
            node = psutil.Process(s.get(orm.Run, lost.id).worker_pid).parent()
        victims = [node, *node.children(recursive=True)]
        for p in victims:
            os.kill(p.pid, signal.SIGKILL)
        psutil.wait_procs(victims, timeout=10)

        requeued = wait_for_status(lab, lost.id, "queued", timeout=60)  # stale after 5 s, then re-queued
        assert "worker was lost" in " ".join(h[3] for h in requeued.history)
        assert lab.status(busy.id).status == "running"  # the only live worker is still busy
        assert all(lab.status(b.id).status == "queued" for b in backlog)
    finally:
        for info in [*long_runs, *backlog]:
            lab.cancel(info.id)
        lab.stop_workers()
        lab.close()
