"""A kernel that never answers papermill is started again; a run fails only when it never answers.

The kernels here are real processes found through a ``python3`` kernelspec on ``JUPYTER_PATH``: one
that never answers, and one that never answers the first time and is a real ipykernel afterwards.
The run is executed in the test's own process by the worker's executor (no Celery needed to
exercise its retry, which is the same on either stack).
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
from notebooks import protocol_notebook

import labkit
from labkit.runner import execute_run
from labkit.runner.child import KERNEL_START_ATTEMPTS

FIRST_START_SILENT = """
import os, sys, time
marker = sys.argv[1]
if not os.path.exists(marker):  # the first start never answers
    open(marker, "w").close()
    time.sleep(600)
os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *sys.argv[2:]])
"""


def _python3_kernelspec(jupyter_path: Path, argv: list[str]) -> None:
    folder = jupyter_path / "kernels" / "python3"
    folder.mkdir(parents=True)
    (folder / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3",
                                                    "language": "python"}))


def _processes_mentioning(text: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if text in " ".join(p.info["cmdline"] or []) and p.pid != psutil.Process().pid:
            found.append(p)
    return found


@pytest.fixture
def queued_run(lab: labkit.Lab, models_dir: Path) -> labkit.RunInfo:
    """A run that waits in the queue: the lab has no workers."""
    lab.add_model(models_dir / "ten_tusscher_model_2006_epi.cellml", name="tt06")
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
    return lab.run("tt06", "test")


def test_a_kernel_that_never_answers_fails_the_run_after_every_start(
        lab: labkit.Lab, queued_run: labkit.RunInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = str(tmp_path / "silent-kernel")
    _python3_kernelspec(tmp_path / "jupyter", [sys.executable, "-c", "import time; time.sleep(600)", marker,
                                               "-f", "{connection_file}"])
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))

    status = execute_run(replace(lab.settings, kernel_start_timeout=1), queued_run.id)

    info = lab.status(queued_run.id)
    assert status == info.status == "failed"
    assert "kernel did not answer" in info.error and f"{KERNEL_START_ATTEMPTS} times" in info.error
    assert "kernel_start_timeout" in info.error  # says what to change
    log = (lab.prediction(info.id).folder / "log.txt").read_text()
    assert log.count("labkit: the kernel did not answer within 1 s") == KERNEL_START_ATTEMPTS
    assert log.count("RuntimeError: Kernel didn't respond in 1 seconds") == KERNEL_START_ATTEMPTS
    assert not lab.prediction(info.id).outputs  # the protocol never ran
    time.sleep(0.5)
    assert not [p for p in _processes_mentioning(marker) if p.status() != psutil.STATUS_ZOMBIE]


def test_a_kernel_that_answers_on_the_second_start_runs_the_protocol(
        lab: labkit.Lab, queued_run: labkit.RunInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernelspec's folder is on JUPYTER_PATH, which the run's sandbox sees read-only; the marker
    # goes into the run's own /tmp, which lasts for every start of the attempt.
    _python3_kernelspec(tmp_path / "jupyter", [sys.executable, str(tmp_path / "jupyter" / "first_start_silent.py"),
                                               "/tmp/first-start-happened", "-f", "{connection_file}"])
    (tmp_path / "jupyter" / "first_start_silent.py").write_text(FIRST_START_SILENT)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))

    status = execute_run(replace(lab.settings, kernel_start_timeout=2), queued_run.id)

    info = lab.status(queued_run.id)
    assert status == info.status == "success", info.error
    assert info.attempt == 1  # started again inside the same attempt, not re-queued
    log = (lab.prediction(info.id).folder / "log.txt").read_text()
    assert log.count("labkit: the kernel did not answer within 2 s (start 1 of") == 1
    assert "start 2 of" not in log
    assert lab.prediction(info.id).outputs["peak"].scalar == 8.0


def test_a_protocol_that_fails_quoting_the_message_is_not_started_again(lab: labkit.Lab, models_dir: Path) -> None:
    lab.add_model(models_dir / "ten_tusscher_model_2006_epi.cellml", name="tt06")
    body = 'print("RuntimeError: Kernel didn\'t respond in 60 seconds")\nraise RuntimeError("the protocol failed")'
    lab.add_protocol({"quoting.ipynb": protocol_notebook(body=body)}, name="quoting")
    queued = lab.run("tt06", "quoting")

    assert execute_run(lab.settings, queued.id) == "failed"

    info = lab.status(queued.id)
    assert "the protocol failed" in info.error  # the protocol's own error, not a kernel start-up failure
    assert "labkit: the kernel did not answer" not in (lab.prediction(info.id).folder / "log.txt").read_text()
