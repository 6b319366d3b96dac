"""Scale-out: a lab on the machine's PostgreSQL and RabbitMQ whose workers run in folders of their own
and share nothing with the lab but those two services (whatever LABKIT_TEST_STACK says)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import stacks
from notebooks import protocol_notebook

import labkit
from labkit.queue.embedded import settings_environment
from labkit.store import orm
from labkit.store.entities import EntityStore

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def scaleout_lab(tmp_path: Path, models_dir: Path):
    """A PostgreSQL + RabbitMQ lab with two isolated workers, HH and the test protocol."""
    with stacks.scaleout_settings() as settings:
        # the lab names the second queue that test_a_run_routed_to_its_own_queue... sends a run to
        lab = labkit.Lab.open(tmp_path / "lab", **settings, run_queues=f"{settings['default_queue']}-long")
        try:
            lab.add_model(models_dir / "hodgkin_huxley_squid_axon_model_1952_modified.cellml", name="hh")
            lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
            yield lab
        finally:
            lab.stop_workers()
            lab.close()


def test_isolated_workers_get_versions_from_the_database_and_deliver_predictions_through_it(
        scaleout_lab: labkit.Lab) -> None:
    lab = scaleout_lab
    assert lab.settings.database_url.startswith("postgresql") and lab.settings.broker_url.startswith("amqp")
    lab.start_workers(2)
    folders = [Path(w.folder) for w in lab.workers.running() if w.name != "beat"]
    assert len(folders) == 2 and all(not f.is_relative_to(lab.settings.storage_root) for f in folders)

    info = lab.wait([lab.run("hh", "test", {"sleep": 0.5})], timeout=120)[0]
    assert info.status == "success", info.error
    assert info.results_path == f"runs/{info.id}"  # relative: the lab decides where it lives locally

    # the worker worked in its own folder; nothing reached the lab's storage but through the database
    assert not any(lab.settings.scratch.iterdir())
    local = lab.settings.results / "runs" / info.id
    assert not local.exists()
    computed_in = [f for f in folders if (f / "results" / "runs" / info.id / "timings.json").exists()]
    assert len(computed_in) == 1
    prediction = lab.prediction(info.id)  # fetched from the database on first read
    assert prediction.folder == local
    assert prediction.output("doubled").values.tolist() == [0, 2, 4, 6, 8]
    worker_copy = computed_in[0] / "results" / "runs" / info.id
    for name in ("notebook.ipynb", "outputs/doubled.csv", "plots/doubled_vs_time.png", "log.txt"):
        assert (local / name).read_bytes() == (worker_copy / name).read_bytes(), name
    assert prediction.provenance["model"]["commit"] == lab.version("model", "hh").commit


def test_a_run_routed_to_its_own_queue_waits_for_a_worker_of_that_queue(scaleout_lab: labkit.Lab,
                                                                       tmp_path: Path) -> None:
    lab = scaleout_lab
    lab.start_workers(1)
    long_queue = f"{lab.settings.default_queue}-long"
    routed = lab.run("hh", "test", {"sleep": 0.2}, queue=long_queue)
    quick = lab.wait([lab.run("hh", "test")], timeout=120)[0]
    assert quick.status == "success", quick.error
    assert lab.status(routed.id).status == "queued"  # the default-queue worker never takes it

    folder = tmp_path / "long-worker"  # `labkit worker`, as on another machine: URLs only
    folder.mkdir()
    env = {**os.environ, **settings_environment(lab.settings), "LABKIT_LAB": str(folder),
           "LABKIT_STORAGE_ROOT": str(folder)}
    log = open(tmp_path / "long-worker.log", "wb")
    worker = subprocess.Popen([sys.executable, "-m", "labkit", "worker", "--queues", long_queue],
                              cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        done = lab.wait([routed], timeout=120)[0]
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()
    assert done.status == "success", done.error
    assert (folder / "results" / "runs" / routed.id / "timings.json").exists()
    with lab.db.session() as s:
        assert s.get(orm.Run, routed.id).queue == long_queue


def test_a_worker_refuses_a_database_on_another_schema_revision(tmp_path: Path) -> None:
    with stacks.scaleout_settings() as settings:  # an empty schema: no lab was ever opened on it
        env = {**os.environ, "LABKIT_DATABASE_URL": settings["database_url"],
               "LABKIT_BROKER_URL": settings["broker_url"]}
        result = subprocess.run([sys.executable, "-m", "labkit", "--lab", str(tmp_path), "worker"],
                                env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode != 0
        assert "schema revision none" in result.stderr and "labkit upgrade" in result.stderr

        upgraded = subprocess.run([sys.executable, "-m", "labkit", "--lab", str(tmp_path), "upgrade"],
                                  env=env, capture_output=True, text=True, timeout=60)
        assert upgraded.returncode == 0, upgraded.stderr
        assert "empty ->" in upgraded.stdout
        with labkit.Lab.open(tmp_path, **settings) as lab:  # the schema is there now
            assert lab.names("model") == []


def test_a_version_saved_before_files_were_kept_in_the_database_is_recorded_when_run(
        scaleout_lab: labkit.Lab) -> None:
    lab = scaleout_lab
    model = lab.version("model", "hh")
    with lab.db.session() as s:  # as an older labkit left it
        s.query(orm.VersionFile).filter(orm.VersionFile.version_id == model.id).delete()
    remote = EntityStore(lab.db, Path(lab.settings.root) / "no-repositories")  # what a worker has
    with pytest.raises(labkit.NotFound, match="not in the database"):
        remote.fetch(model, Path(lab.settings.root) / "elsewhere")
    lab.start_workers(1)
    started = time.monotonic()
    info = lab.wait([lab.run("hh", "test")], timeout=120)[0]
    assert info.status == "success", (info.error, time.monotonic() - started)
    with lab.db.session() as s:
        assert s.query(orm.VersionFile).filter(orm.VersionFile.version_id == model.id).count() == 1


def test_a_run_whose_files_a_remote_worker_cannot_get_fails_with_the_reason_instead_of_hanging(
        scaleout_lab: labkit.Lab) -> None:
    lab = scaleout_lab
    queued = lab.run("hh", "test")  # recorded and queued while no worker runs
    with lab.db.session() as s:  # then the files vanish from the database (an older lab's state)
        s.query(orm.VersionFile).filter(orm.VersionFile.version_id == lab.version("model", "hh").id).delete()
    lab.start_workers(1)
    done = lab.wait([queued], timeout=120)[0]
    assert done.status == "failed"
    assert "not in the database" in done.error and "submit the run again" in done.error
    assert done.attempt == 1  # ended once, not re-queued into the same error
