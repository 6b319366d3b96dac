"""Hostile protocols (``hostile.py``) run through the real queue, on either stack, each checked from
outside its sandbox: the secret it went for is in none of the prediction's files, nothing it tried
to write exists, the lab's users are unchanged, the worker survives and the next run succeeds."""
from __future__ import annotations

import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import psutil
import pytest
from hostile import CORPUS, TINY_MODEL_A, TINY_MODEL_B
from labs import lab_with_workers
from notebooks import protocol_notebook

import labkit
from labkit.runner.sandbox import UID_SLOTS, unavailable_reason

pytestmark = pytest.mark.timeout(600)

CANARY_ENV = "canary-env-7f3a"  # a credential in the worker's environment
CANARY_FILE = "canary-host-file-91c2"  # a root-only file on the host
CANARY_MODEL = "canary-private-model-5d8e"  # inside another user's private model
SLEEP_MARKER = 987654  # the grandchild's `sleep` argument: unique on the machine
# Small limits, and uids of their own, so that no other lab's runs on the machine count as this lab's.
LIMITS = {"run_memory_mb": 1536, "run_processes": 64, "run_file_mb": 32, "run_folder_mb": 64,
          "run_outputs_mb": 8, "stale_after": 20.0, "sandbox_uid_base": 1_600_000_000}


class Attacked:
    """The lab the attacks ran in, the targets they were given, and their finished runs."""

    def __init__(self, lab: labkit.Lab, targets: dict, runs: dict[str, labkit.RunInfo],
                 worker_pids: list[int], listener: socket.socket, users_before: list) -> None:
        self.lab, self.targets, self.runs = lab, targets, runs
        self.worker_pids, self.listener, self.users_before = worker_pids, listener, users_before

    def printed(self, attack: str) -> str:
        """What the notebook of ``attack`` printed or raised (its cells' outputs, not its source)."""
        notebook = nbformat.read(self.lab.prediction(self.runs[attack].id).notebook, as_version=4)
        parts = []
        for cell in notebook.cells:
            for out in cell.get("outputs", []):
                parts.append(out.get("text", "") + out.get("evalue", "") + str(out.get("data", "")))
        return "\n".join(parts)

    def text(self, attack: str) -> str:
        """Everything the prediction of ``attack`` holds, as text (notebook, log, outputs, error)."""
        info = self.runs[attack]
        folder = self.lab.prediction(info.id).folder
        parts = [info.error or "", info.failing_cell or ""]
        parts += [p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file()]
        return "\n".join(parts)


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Attacked]:
    assert unavailable_reason() is None, "these tests need bubblewrap (scripts/install.sh installs it)"
    base = tmp_path_factory.mktemp("hostile")
    secret = base / "root-only-secret.txt"
    secret.write_text(CANARY_FILE)
    secret.chmod(stat.S_IRUSR)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    os.environ["AWS_SECRET_ACCESS_KEY"] = CANARY_ENV  # the workers inherit it

    def seed(lab: labkit.Lab) -> None:
        lab.add_model(models_dir / "ten_tusscher_model_2006_epi.cellml", name="tt06")
        lab.add_user("victim")
        cellml = (models_dir / "ten_tusscher_model_2006_epi.cellml").read_bytes()
        victim = cellml.replace(b"<model ", f"<!-- {CANARY_MODEL} -->\n<model ".encode(), 1)
        lab.as_user("victim").add_model({"victim.cellml": victim}, name="victim_model")
        lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")

    try:
        with lab_with_workers(base / "lab", seed=seed, **LIMITS) as lab:
            workers = lab.workers.running()
            storage = sorted({Path(w.folder or lab.settings.storage_root) for w in workers if w.name != "beat"})
            commit = lab.version("model", "tt06").commit  # each model version has its own cache folder
            cache_dirs = [folder / "cache" / "sim" / commit for folder in storage]
            for folder in cache_dirs:
                folder.mkdir(parents=True, exist_ok=True)
            root = lab.settings.root
            targets = {
                "db_files": [str(root / "labkit.sqlite"), str(root / "broker.sqlite")],
                "lab_root": str(root), "database_url": lab.settings.database_url, "victim_repo": str(lab.settings.repositories / "models" / "victim_model.git"),
                "secret_file": str(secret), "listener_port": listener.getsockname()[1],
                "targets": [str(base / "written-outside"), str(root / "written-in-lab"), str(secret)],
                "sleep_marker": SLEEP_MARKER, "cache_dirs": [str(d) for d in cache_dirs],
                "model_a": TINY_MODEL_A, "model_b": TINY_MODEL_B,
            }
            users_before = lab.users()
            queued = {}
            for attack in CORPUS:
                lab.add_protocol({f"{attack.name}.ipynb": attack.notebook(**targets)}, name=attack.name)
                queued[attack.name] = lab.run("tt06", attack.name)
            finished = lab.wait(list(queued.values()), timeout=480)
            runs = {name: info for name, info in zip(queued, finished)}
            yield Attacked(lab, {**targets, "cache_dirs": cache_dirs, "scratch": [f / "scratch" for f in storage]},
                           runs, [w.pid for w in workers], listener, users_before)
    finally:
        os.environ.pop("AWS_SECRET_ACCESS_KEY", None)
        listener.close()


def test_the_worker_environment_and_its_credentials_are_not_visible(attacked: Attacked) -> None:
    text = attacked.text("env")
    assert attacked.runs["env"].status == "partial"  # it ran, and saved nothing
    assert "PATH = " in attacked.printed("env")  # the attack did print its environment
    assert CANARY_ENV not in text
    settings = attacked.lab.settings
    for secret in (settings.database_url, settings.broker_url, "LABKIT_DATABASE_URL", "LABKIT_BROKER_URL",
                   "LABKIT_LAB", str(settings.root)):
        assert secret not in text


def test_the_lab_database_file_cannot_be_read(attacked: Attacked) -> None:
    printed = attacked.printed("lab_database_file")
    assert printed.count("blocked:") == 2 and "PWNED" not in printed
    assert CANARY_MODEL not in attacked.text("lab_database_file") and "victim_model" not in printed


def test_the_lab_cannot_be_opened_through_labkit(attacked: Attacked) -> None:
    printed = attacked.printed("open_lab")
    # Lab.open may succeed, on an empty lab in the sandbox's own /tmp, but never reaches the operator's
    assert "PWNED" not in printed and "tt06" not in printed and CANARY_MODEL not in printed
    assert ("blocked:" in printed) or ("models seen: []" in printed)
    assert attacked.lab.users() == attacked.users_before  # no moderator made, no user added
    assert "mallory" not in [name for name, _ in attacked.lab.users()]


def test_another_users_private_model_cannot_be_read_from_disk(attacked: Attacked) -> None:
    assert CANARY_MODEL not in attacked.text("private_model")
    printed = attacked.printed("private_model")
    assert "PWNED" not in printed
    assert "victim_model.git" in printed  # git was started and said the repository is not there


def test_a_root_only_host_file_cannot_be_read(attacked: Attacked) -> None:
    assert CANARY_FILE not in attacked.text("host_file")
    printed = attacked.printed("host_file")
    assert "PWNED" not in printed and "root:" not in printed
    assert printed.count("blocked:") == 4


@pytest.mark.parametrize("attack", ["connect_database", "connect_broker", "connect_local_port"])
def test_no_network_not_even_the_loopback_services(attacked: Attacked, attack: str) -> None:
    printed = attacked.printed(attack)
    assert "blocked:" in printed and "PWNED" not in printed
    if attack == "connect_local_port":
        with pytest.raises(BlockingIOError):  # nothing ever knocked on the host's listening socket
            attacked.listener.accept()


def test_nothing_is_written_outside_the_run_folder(attacked: Attacked) -> None:
    printed = attacked.printed("write_outside")
    assert printed.count("blocked:") == 3 and "wrote " not in printed
    written, in_lab, secret = map(Path, attacked.targets["targets"])
    assert not written.exists() and not in_lab.exists()
    assert secret.read_text() == CANARY_FILE


def test_a_fork_bomb_meets_the_process_limit(attacked: Attacked) -> None:
    info = attacked.runs["fork_bomb"]
    assert info.status == "failed"
    assert "limit of 64 processes" in info.error and "run_processes" in info.error


def test_a_memory_hog_meets_the_memory_limit(attacked: Attacked) -> None:
    info = attacked.runs["memory_hog"]
    assert info.status == "failed"
    assert "memory" in info.error and "run_memory_mb" in info.error, info.error


def test_filling_the_disk_meets_the_folder_limit(attacked: Attacked) -> None:
    info = attacked.runs["fill_disk"]
    assert info.status == "failed"
    assert "more than 64 MB" in info.error and "run_folder_mb" in info.error, info.error
    for scratch in attacked.targets["scratch"]:  # the workers' own: the run's folder was removed
        assert not list(scratch.glob(f"{info.id}-*"))


def test_huge_outputs_are_refused(attacked: Attacked) -> None:
    info = attacked.runs["huge_outputs"]
    assert info.status == "failed" and "run_outputs_mb" in info.error, info.error
    assert not attacked.lab.prediction(info.id).outputs


def test_an_output_that_is_a_symlink_to_a_host_file_is_refused(attacked: Attacked) -> None:
    info = attacked.runs["symlink_output"]
    assert info.status == "failed" and "symbolic link" in info.error, info.error
    assert CANARY_FILE not in attacked.text("symlink_output")


def test_a_grandchild_does_not_outlive_its_run(attacked: Attacked) -> None:
    assert attacked.runs["grandchild"].status == "success", attacked.runs["grandchild"].error
    survivors = [p for p in psutil.process_iter(["cmdline"])
                 if f"sleep {SLEEP_MARKER}" in " ".join(p.info["cmdline"] or [])]
    assert not survivors


def test_the_simulation_cache_cannot_be_poisoned(attacked: Attacked) -> None:
    import myokit

    from labkit.sim.cache import _load, structure_key
    printed = attacked.printed("poison_cache")
    assert attacked.runs["poison_cache"].status == "success", attacked.runs["poison_cache"].error
    assert "PWNED" not in printed and printed.count("blocked:") == 2
    key_a = structure_key(myokit.parse_model(TINY_MODEL_A))
    model_b = myokit.parse_model(TINY_MODEL_B)
    dirs = attacked.targets["cache_dirs"]
    for folder in dirs:
        assert not (folder / "evil.zip").exists()
        assert not (folder / f"{key_a}.zip").exists()  # B's code never stored under A's key
    # the worker did compile the request (after reporting the run), under the key of what it really is
    deadline = time.monotonic() + 120
    while not (stored := [folder / f"{structure_key(model_b)}.zip" for folder in dirs
                          if (folder / f"{structure_key(model_b)}.zip").exists()]):
        assert time.monotonic() < deadline, "the requested structure was never compiled"
        time.sleep(0.5)
    assert len(stored) == 1
    simulation = _load(stored[0], model_b)
    assert simulation.run(1, log=["tiny.x"])["tiny.x"][0] == 1.0


def test_a_loop_ignoring_sigterm_is_stopped_at_its_time_limit(attacked: Attacked) -> None:
    info = attacked.runs["ignore_sigterm"]
    assert info.status == "failed" and "time limit of 8 s" in info.error, info.error


def test_the_workers_survive_and_run_the_next_protocol(attacked: Attacked) -> None:
    assert [w.pid for w in attacked.lab.workers.running()] == attacked.worker_pids
    info = attacked.lab.wait([attacked.lab.run("tt06", "test")], timeout=120)[0]
    assert info.status == "success", info.error
    assert attacked.lab.prediction(info.id).outputs["peak"].scalar == 8.0


def test_no_process_of_any_run_is_left(attacked: Attacked) -> None:
    base = attacked.lab.settings.sandbox_uid_base
    left = [p for p in psutil.process_iter(["uids", "cmdline"])
            if p.info["uids"] and base <= p.info["uids"].real < base + UID_SLOTS]
    assert not left, [p.info["cmdline"] for p in left]
