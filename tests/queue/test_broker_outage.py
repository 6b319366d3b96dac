"""A broker that is down when a run is submitted (issue 13, item 4b), on the real broker of each stack.

A submit the broker refuses fails at once, says which broker and what to do, and records nothing. A
run whose row was written but whose message never reached the broker (its submitter died between the
two) is found by the reaper and sent, and then runs."""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kombu import Connection
from labs import lab_with_workers
from notebooks import protocol_notebook
from sqlalchemy import func, select
from stacks import scaleout

import labkit
from labkit.queue.app import declare_queues
from labkit.queue.embedded import settings_environment
from labkit import BrokerUnavailable
from labkit.store import orm
from labkit.store.orm import Base

HH = "hodgkin_huxley_squid_axon_model_1952_modified.cellml"


def seed(lab: labkit.Lab, models_dir: Path) -> None:
    lab.add_model(models_dir / HH, name="hh")
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")


def row_counts(lab: labkit.Lab) -> dict[str, int]:
    with lab.db.engine.connect() as connection:
        return {t.name: connection.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def waiting_messages(lab: labkit.Lab) -> list[str]:
    """Run ids of the messages on the lab's run queue (taken off it)."""
    run_ids = []
    with Connection(lab.celery.conf.broker_url,
                    transport_options=lab.celery.conf.broker_transport_options or {}) as connection:
        while (message := connection.default_channel.basic_get(lab.settings.default_queue, no_ack=True)) is not None:
            run_ids.append(json.loads(message.body)[0][0])
    return run_ids


def unreachable_broker(tmp_path: Path) -> str:
    """The stack's broker, but where nothing answers: a SQLite file in a folder that does not exist,
    or RabbitMQ's protocol on a closed port. (The machine's RabbitMQ itself is left running.)"""
    if scaleout():
        return f"amqp://guest:guest@127.0.0.1:{closed_port()}//"
    return f"sqla+sqlite:///{tmp_path / 'no-such-folder' / 'broker.sqlite'}"


@pytest.mark.parametrize("pair_has_run_before", [False, True])
def test_a_run_submitted_while_the_broker_is_down_fails_at_once_and_records_nothing(
        tmp_path: Path, models_dir: Path, pair_has_run_before: bool) -> None:
    with labkit.Lab.open(tmp_path / "lab") as lab:
        seed(lab, models_dir)
        declare_queues(lab.celery, lab.settings)
        if pair_has_run_before:  # the experiment row exists already and must stay
            lab.run("hh", "test")
        before = row_counts(lab)
        with labkit.Lab.open(tmp_path / "lab", broker_url=unreachable_broker(tmp_path)) as down:
            started = time.monotonic()
            with pytest.raises(BrokerUnavailable) as refused:
                down.run("hh", "test", {"sleep": 1.0})
            seconds = time.monotonic() - started
        message = str(refused.value)
        print(f"\nrefused in {seconds:.2f} s: {message}")
        assert "did not take run" in message and "was not recorded" in message and "broker_url" in message
        assert ("127.0.0.1:" if scaleout() else "no-such-folder") in message
        assert isinstance(refused.value, labkit.LabkitError)  # the CLI and the API show it as one line
        assert row_counts(lab) == before  # no run, no event, no experiment left behind
        assert [r.status for r in lab.runs()] == (["queued"] if pair_has_run_before else [])
        assert len(waiting_messages(lab)) == (1 if pair_has_run_before else 0)


def test_a_submitted_run_is_marked_as_sent(lab: labkit.Lab, models_dir: Path) -> None:
    """What the reaper relies on: a run whose message reached the broker is marked, so it is not
    sent twice; an unmarked one older than the grace period is found."""
    from labkit.runner import claims

    seed(lab, models_dir)
    run = lab.run("hh", "test")
    with lab.db.session() as s:
        assert s.get(orm.Run, run.id).heartbeat_at is not None
    assert claims.unsent_runs(lab.db, 0.0) == []
    with lab.db.session() as s:  # as a submitter that died before marking it leaves it
        s.get(orm.Run, run.id).heartbeat_at = None
    assert claims.unsent_runs(lab.db, 3600.0) == []  # too recent: its submit may still be sending
    assert claims.unsent_runs(lab.db, 0.0) == [run.id]
    assert claims.mark_sent(lab.db, run.id) and not claims.mark_sent(lab.db, run.id)
    assert claims.unsent_runs(lab.db, 0.0) == []


@contextmanager
def broker_that_hangs(lab: labkit.Lab) -> Iterator[dict[str, str]]:
    """Environment overrides under which a submit writes its run row and then hangs handing the
    message to the broker: the SQLite broker file held locked, or a socket that accepts a connection
    and never answers."""
    if scaleout():
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            yield {"LABKIT_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{silent.getsockname()[1]}//"}
        return
    path = lab.settings.broker_url.removeprefix("sqla+sqlite:///")
    held = sqlite3.connect(path, isolation_level=None)
    held.execute("BEGIN EXCLUSIVE")
    try:
        yield {}
    finally:
        held.rollback()
        held.close()


def test_a_run_whose_submitter_died_before_its_message_reached_the_broker_is_sent_and_runs(
        tmp_path: Path, models_dir: Path) -> None:
    cut: dict[str, object] = {}

    def seed_and_cut(lab: labkit.Lab) -> None:
        seed(lab, models_dir)
        declare_queues(lab.celery, lab.settings)
        with broker_that_hangs(lab) as overrides:
            env = {**os.environ, **settings_environment(lab.settings), **overrides}
            submitter = subprocess.Popen([sys.executable, "-c", "import labkit; labkit.Lab.open().run('hh', 'test')"],
                                         env=env)
            deadline = time.monotonic() + 120
            while not lab.runs():  # its row is committed; it is now stuck handing over the message
                assert submitter.poll() is None, "the submit ended instead of hanging on the broker"
                assert time.monotonic() < deadline, "the submitter never wrote its run"
                time.sleep(0.05)
            time.sleep(0.5)
            submitter.kill()  # the process dies between the database and the broker
            submitter.wait()
        [run] = lab.runs()
        assert run.status == "queued" and waiting_messages(lab) == []  # a run no worker would ever get
        cut["run"] = run.id

    with lab_with_workers(tmp_path / "lab", workers=1, seed=seed_and_cut, stale_after=3.0,
                          heartbeat_interval=0.5) as lab:
        started = time.monotonic()
        [done] = lab.wait([str(cut["run"])], timeout=180)
        seconds = time.monotonic() - started
        print(f"\nunsent run sent by the reaper and finished {seconds:.1f} s after the workers were ready")
        assert done.status == "success", done.error
        assert [h[0] for h in done.history] == ["queued", "running", "success"]
        log = (lab.settings.logs / "beat.log").read_text()
        assert "never reached the broker" in log and str(cut["run"]) in log
