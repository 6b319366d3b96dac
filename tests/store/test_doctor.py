"""labkit.doctor (issue 13, item 4c): a save really cut between its git commit and its database
commit (a process killed while the database held it back) is recorded by ``repair`` with nothing
lost; what cannot be recorded is kept on a branch and reported; versions whose commit git lost are
reported. Real processes, real git, the stack's real database."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from held_writes import writes_held
from notebooks import protocol_notebook
from store_helpers import HH, git, lab_state

import labkit
from labkit import doctor
from labkit.config import load_settings
from labkit.store.db import Database, current_revision
from labkit.store.repos import EntityRepository

CUT_SAVE = """
import json, sys
import labkit
a = json.loads(sys.argv[1])
lab = labkit.Lab.open(a["root"])
lab.store.save(a["kind"], a["name"], {a["file"]: a["content"].encode()}, author=a["author"],
               message=a["message"], protocol=a.get("protocol"), visibility=a["visibility"])
"""


def main_of(repo: Path) -> str:
    found = subprocess.run(["git", "--git-dir", str(repo), "rev-parse", "--verify", "-q", "main"],
                           capture_output=True, text=True)
    return found.stdout.strip()


def cut_save(lab: labkit.Lab, kind: str, name: str, file: str, content: bytes, *, message: str,
             author: str | None = None, visibility: str = "private", protocol: str | None = None) -> str:
    """Save in another process and kill it once its git commit is made, while the database holds its
    rows back: what a crash between the two leaves. Returns the commit."""
    repo = lab.settings.repositories / f"{kind}s" / f"{name}.git"
    before = main_of(repo) if repo.exists() else ""
    args = {"root": str(lab.settings.root), "kind": kind, "name": name, "file": file,
            "content": content.decode(), "author": author or lab.user, "message": message,
            "visibility": visibility, "protocol": protocol}
    with writes_held(lab, ("users", "entities", "versions")):
        saver = subprocess.Popen([sys.executable, "-c", CUT_SAVE, json.dumps(args)], env=os.environ.copy())
        deadline = time.monotonic() + 120
        while not repo.exists() or main_of(repo) in ("", before):
            assert saver.poll() is None, "the save ended instead of waiting for the database"
            assert time.monotonic() < deadline, "the save never made its git commit"
            time.sleep(0.02)
        time.sleep(0.3)  # it is now waiting to write its rows
        saver.kill()
        saver.wait()
    return main_of(repo)


@pytest.fixture
def seeded(lab: labkit.Lab, models_dir: Path) -> labkit.Lab:
    lab.add_model(models_dir / HH, name="hh")
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
    return lab


def test_a_new_version_cut_before_its_database_commit_is_recorded_by_repair(seeded: labkit.Lab, models_dir: Path,
                                                                             tmp_path: Path) -> None:
    lab = seeded
    content = (models_dir / HH).read_bytes().replace(b"<model ", b"<!-- reviewed -->\n<model ", 1)
    sha = cut_save(lab, "model", "hh", HH, content, message="reviewed copy", visibility="public")
    repo = lab.settings.repositories / "models" / "hh.git"
    assert git(repo, "rev-parse", "main") == sha
    assert git(repo, "rev-parse", "main^") == lab.version("model", "hh").commit
    assert [v.number for v in lab.versions("model", "hh")] == [1]  # lost to the lab, for now

    report = doctor.repair(lab)
    print(f"\n{report}")
    assert len(report.recorded) == 1 and sha[:10] in report.recorded[0] and "v2" in report.recorded[0]
    assert report.kept == report.missing == report.unexplained == []
    v2 = lab.version("model", "hh", 2)
    assert (v2.commit, v2.message, v2.author, v2.main_file, v2.visibility) == (sha, "reviewed copy", lab.user, HH,
                                                                                "public")
    assert lab.read_file("model", "hh", 2) == content
    assert lab.annotations("hh", 2) == lab.annotations("hh", 1)  # its metadata too
    assert lab.store.fetch(v2, tmp_path / "fetched").read_bytes() == content  # and its files, for workers

    again = doctor.repair(lab)  # idempotent
    assert again.clean and [v.number for v in lab.versions("model", "hh")] == [1, 2]
    v3 = lab.add_model({HH: content + b"\n"}, name="hh", parent=sha).version
    assert v3.number == 3 and git(repo, "rev-parse", "main^") == sha


def test_the_first_version_of_a_dataset_cut_before_its_database_commit_is_recorded(seeded: labkit.Lab) -> None:
    lab = seeded
    content = b"time (ms),voltage (mV)\n0,1\n1,2\n"
    sha = cut_save(lab, "dataset", "cut", "data.csv", content, message="first", protocol="test")
    assert "cut" not in lab.names("dataset")  # its entity row was never committed either
    report = doctor.repair(lab.settings)  # from settings alone, as `labkit doctor` would
    assert len(report.recorded) == 1 and "dataset cut" in report.recorded[0]
    assert lab.names("dataset") == ["cut"]
    assert lab.version("dataset", "cut").commit == sha
    assert lab.dataset("cut")["protocol"] == "test"  # from the commit, as the save was asked
    assert lab.read_file("dataset", "cut") == content
    assert doctor.repair(lab).clean


def test_a_cut_save_overtaken_by_a_later_save_is_kept_on_a_branch_and_reported(seeded: labkit.Lab,
                                                                                models_dir: Path) -> None:
    lab = seeded
    model = (models_dir / HH).read_bytes()
    sha = cut_save(lab, "model", "hh", HH, model + b"<!-- cut -->", message="cut")
    v2 = lab.add_model({HH: model + b"<!-- later -->"}, name="hh").version  # no repair ran first
    repo = lab.settings.repositories / "models" / "hh.git"
    assert v2.number == 2 and git(repo, "rev-parse", "main") == v2.commit
    assert git(repo, "rev-parse", f"unrecorded/{sha[:12]}") == sha  # not left to git's garbage collection
    state = lab_state(lab)
    report = doctor.repair(lab)
    assert report.recorded == [] and len(report.kept) == 1
    assert f"unrecorded/{sha[:12]}" in report.kept[0] and "main moved on without it" in report.kept[0]
    assert lab_state(lab) == state  # reported, not changed


def test_a_cut_save_whose_author_may_no_longer_save_is_kept_on_a_branch(seeded: labkit.Lab, models_dir: Path) -> None:
    lab = seeded
    lab.add_user("alice")
    lab.share("model", "hh", "alice")
    model = (models_dir / HH).read_bytes()
    sha = cut_save(lab, "model", "hh", HH, model + b"<!-- alice -->", message="alice's", author="alice")
    lab.unshare("model", "hh", "alice")  # before anyone repaired it
    report = doctor.repair(lab)
    assert report.recorded == [] and len(report.kept) == 1
    assert "could not be recorded" in report.kept[0] and "alice" in report.kept[0]
    repo = lab.settings.repositories / "models" / "hh.git"
    assert git(repo, "rev-parse", "main") == lab.version("model", "hh").commit  # main back at v1
    assert git(repo, "rev-parse", f"unrecorded/{sha[:12]}") == sha
    assert [v.number for v in lab.versions("model", "hh")] == [1]
    assert lab.add_model({HH: model + b"<!-- v2 -->"}, name="hh").version.number == 2  # not wedged


def test_versions_whose_commit_git_lost_and_a_hand_commit_are_reported_and_left_alone(
        seeded: labkit.Lab, models_dir: Path) -> None:
    lab = seeded
    lab.add_dataset({"d.csv": b"time (ms),voltage (mV)\n0,1\n"}, name="gone", protocol="test")
    lab.add_dataset({"d.csv": b"time (ms),voltage (mV)\n0,2\n"}, name="gone", protocol="test")
    shutil.rmtree(lab.settings.repositories / "datasets" / "gone.git")
    repo = EntityRepository(lab.settings.repositories / "protocols" / "test.git")
    by_hand = repo.commit({"notes.txt": b"by hand"}, message="by hand", author="someone",
                          email="someone@example.org", base=repo.head())
    state = lab_state(lab)
    quick = doctor.repair(lab, check_commits=False)
    assert quick.missing == [] and len(quick.unexplained) == 1  # the start-up check skips the lookups
    report = doctor.repair(lab)
    assert len(report.missing) == 2 and all("dataset gone" in m and "repository is missing" in m
                                            for m in report.missing)
    assert len(report.unexplained) == 1 and by_hand.sha[:10] in report.unexplained[0]
    assert report.recorded == report.kept == []
    assert lab_state(lab) == state and repo.head() == by_hand.sha


def test_repair_refuses_a_database_not_at_this_labkits_schema_and_changes_nothing(tmp_path: Path) -> None:
    """A folder that was never opened as a lab (on PostgreSQL: an empty schema) is refused, not set up."""
    settings = load_settings(tmp_path / "never-opened")
    with pytest.raises(labkit.LabkitError, match="labkit upgrade"):
        doctor.repair(settings)
    with pytest.raises(TypeError, match="a Lab or its Settings"):
        doctor.repair(str(tmp_path))
    if settings.database_url.startswith("sqlite"):
        assert not (tmp_path / "never-opened").exists()  # no database file was created
    else:
        db = Database(settings.database_url)
        try:
            assert current_revision(db.engine) is None  # no schema was created
        finally:
            db.dispose()


def test_repair_when_nothing_needs_it_is_quick(lab: labkit.Lab) -> None:
    """Figures only (no wall-clock assertion): the start-up check over 40 entities."""
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
    for i in range(40):
        lab.add_dataset({"d.csv": f"time (ms),voltage (mV)\n0,{i}\n".encode()}, name=f"d{i}", protocol="test")
    quick, full = doctor.repair(lab, check_commits=False), doctor.repair(lab)
    print(f"\nstart-up check: {quick}\nfull check: {full}")
    assert quick.clean and full.clean and quick.entities == full.entities == 41


def test_the_start_up_check_records_a_cut_save_and_logs_it(seeded: labkit.Lab, models_dir: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    lab = seeded
    sha = cut_save(lab, "model", "hh", HH, (models_dir / HH).read_bytes() + b"<!-- cut -->", message="cut")
    with caplog.at_level("WARNING", logger="labkit.doctor"):
        report = doctor.at_startup(lab)
    assert report is not None and len(report.recorded) == 1
    assert lab.version("model", "hh").commit == sha
    assert sha[:10] in caplog.text and "recorded as v2" in caplog.text
    with caplog.at_level("ERROR", logger="labkit.doctor"):
        assert doctor.at_startup(object()) is None  # a failing check is logged, never raised
    assert "run `labkit doctor`" in caplog.text
