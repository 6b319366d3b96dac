"""Several OS processes writing to one lab at once (issue 13, item 4a): four real processes each add
versions and submit runs together on the lab's own database and broker. Nothing may be refused for a
lock, and nothing may be lost: every version is a git commit and a row, numbered without gaps or
repeats, and every run is a row and a message on the broker."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from concurrent_writer import MODEL_VERSIONS
from held_writes import writes_held
from kombu import Connection
from notebooks import protocol_notebook
from sqlalchemy import select
from store_helpers import HH, git

import labkit
from labkit.queue.app import declare_queues
from labkit.store import orm


WRITER = Path(__file__).with_name("concurrent_writer.py")
WRITERS, VERSIONS, RUNS = 4, 50, 50


def broker_messages(lab: labkit.Lab) -> list[str]:
    """The run ids of every message waiting on the lab's run queue, taken off it (nobody consumes it)."""
    run_ids = []
    with Connection(lab.celery.conf.broker_url,
                    transport_options=lab.celery.conf.broker_transport_options or {}) as connection:
        channel = connection.default_channel
        while (message := channel.basic_get(lab.settings.default_queue, no_ack=True)) is not None:
            args = json.loads(message.body)[0]
            run_ids.append(args[0])
    return run_ids


def test_four_processes_saving_and_submitting_at_once_lose_nothing(tmp_path: Path, models_dir: Path) -> None:
    lab = labkit.Lab.open(tmp_path / "lab")
    try:
        model = (models_dir / HH).read_bytes()
        for k in range(MODEL_VERSIONS):  # the first run of each pair (hh vk, test) creates its experiment
            lab.add_model({HH: model + f"<!-- {k} -->".encode()}, name="hh")
        lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
        declare_queues(lab.celery, lab.settings)  # as starting workers would; none is started
        start = tmp_path / "start"
        writers = [subprocess.Popen([sys.executable, str(WRITER), str(lab.settings.root), str(i), str(VERSIONS),
                                     str(RUNS), str(start), str(tmp_path / f"result{i}.json")],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                   for i in range(WRITERS)]
        time.sleep(3)  # let them all open the lab (a real start-up each), then start them at once
        start.touch()
        began = time.monotonic()
        outputs = [w.communicate(timeout=500)[0] for w in writers]
        elapsed = time.monotonic() - began
        assert [w.returncode for w in writers] == [0] * WRITERS, outputs
        results = [json.loads((tmp_path / f"result{i}.json").read_text()) for i in range(WRITERS)]
        errors = [e for r in results for e in r["errors"]]
        locked = [e for e in errors if "database is locked" in e]
        saved = [s for r in results for s in r["saved"]]
        submitted = [run for r in results for run in r["runs"]]

        # what the database and git hold, per entity
        lost_versions = []
        with lab.db.session() as s:
            rows = s.execute(select(orm.Entity.name, orm.Version.number, orm.Version.commit)
                             .join(orm.Version.entity).where(orm.Entity.kind == "dataset")).all()
            run_rows = {r.id: r.status for r in s.scalars(select(orm.Run))}
        by_entity: dict[str, list[tuple[int, str]]] = {}
        for name, number, commit in rows:
            by_entity.setdefault(name, []).append((number, commit))
        for name, versions in by_entity.items():
            numbers = sorted(n for n, _ in versions)
            assert numbers == list(range(1, len(numbers) + 1)), f"{name}: numbers {numbers}"
            on_main = git(lab.settings.repositories / "datasets" / f"{name}.git",
                          "rev-list", "--first-parent", "--reverse", "main").split()
            assert on_main == [c for _, c in sorted(versions)], f"{name}: git and the database disagree"
        recorded = {(name, n, c) for name, vs in by_entity.items() for n, c in vs}
        lost_versions = [s for s in saved if (s["entity"], s["number"], s["commit"]) not in recorded]
        messages = broker_messages(lab)
        lost_runs = [r for r in submitted if run_rows.get(r) != "queued"]
        unsent = set(submitted) - set(messages)
        duplicated = [r for r, n in Counter(messages).items() if n > 1]
        print(f"\n{WRITERS} writers x ({VERSIONS} versions + {RUNS} runs) on {lab.settings.database_url.split(':')[0]}"
              f" / {lab.settings.broker_url.split(':')[0]}: {elapsed:.1f} s, {len(errors)} errors, "
              f"{len(locked)} 'database is locked', {len(lost_versions)} lost versions, {len(lost_runs)} lost runs, "
              f"{len(unsent)} runs without a message; writer times {[round(r['elapsed'], 1) for r in results]} s")
        assert errors == [], "\n".join(errors[:5])
        assert len(saved) == WRITERS * VERSIONS and len(submitted) == WRITERS * RUNS
        assert lost_versions == [] and lost_runs == []
        assert sorted(len(v) for v in by_entity.values()) == [VERSIONS // 2] * WRITERS + [WRITERS * VERSIONS // 2]
        assert len(run_rows) == WRITERS * RUNS
        assert sorted(messages) == sorted(submitted) and not unsent and not duplicated
    finally:
        lab.close()


def test_processes_submitting_the_first_run_of_a_pair_at_once_share_one_experiment(
        tmp_path: Path, models_dir: Path) -> None:
    """All four look for the pair's experiment while its insert is held back, so all four find none
    and insert it: one row must result and every run must be queued on it."""
    with labkit.Lab.open(tmp_path / "lab") as lab:
        lab.add_model(models_dir / HH, name="hh")
        lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
        with writes_held(lab, ("experiments",)):
            submitters = [subprocess.Popen([sys.executable, str(WRITER), "--first-run", str(lab.settings.root),
                                            str(tmp_path / f"ready{i}"), str(tmp_path / f"result{i}.json")])
                          for i in range(WRITERS)]
            deadline = time.monotonic() + 120
            while not all((tmp_path / f"ready{i}").exists() for i in range(WRITERS)):
                assert time.monotonic() < deadline, "the submitters did not open the lab"
                time.sleep(0.05)
            time.sleep(3)  # each submits: reads the pair's (missing) experiment, then waits to insert it
        assert [p.wait(timeout=120) for p in submitters] == [0] * WRITERS
        results = [json.loads((tmp_path / f"result{i}.json").read_text()) for i in range(WRITERS)]
        assert [r.get("error") for r in results] == [None] * WRITERS
        with lab.db.session() as s:
            experiments = s.scalars(select(orm.Experiment.id)).all()
            runs = s.execute(select(orm.Run.id, orm.Run.experiment_id, orm.Run.status)).all()
        assert len(experiments) == 1
        assert sorted(r.id for r in runs) == sorted(r["run"] for r in results)
        assert {(r.experiment_id, r.status) for r in runs} == {(experiments[0], "queued")}
