"""Fixtures that start real things: a lab folder with SQLite, Celery workers on a SQLite broker,
kernels through papermill. Shared data comes from ../shared/webdata, read in place."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from notebooks import protocol_notebook  # noqa: E402
from shared_data import REPO, WEBDATA, webdata  # noqa: E402,F401
from labs import lab_with_workers  # noqa: E402
from stacks import STACK, lab_environment  # noqa: E402

import labkit  # noqa: E402


def pytest_report_header() -> str:
    return f"labkit test stack: {STACK} (LABKIT_TEST_STACK=embedded|scaleout)"


# tests/deploy always runs on PostgreSQL + RabbitMQ, whatever the stack: it runs once, in the
# scale-out pass of the test command (README), instead of twice.
# Tests that never open a lab (CellML parsing, simulation, output files, tolerance rules) give the
# same answer on both stacks: they run once, in the embedded pass.
STACKLESS = ["cellml", "sim", "results", "validation/test_compare.py", "demo/test_demo_models.py"]
# Tests that open a lab but check what the stack cannot change run once too: the demo command, which
# the README documents on the embedded default; each shipped protocol's outputs and plots; the
# executor's restart of a kernel that never answered; what a browser shows of the dashboards (their
# queries, their live updates and `labkit serve` are tested on both stacks in tests/dashboards; signing
# in through the browser runs on both, since sessions live in the lab's database); the JupyterHub
# service's identity plumbing (the accounts it checks are tested on both stacks in tests/access); the
# sweep's classification of how runs ended; and
# the numerical validation subset. The queue, the workers and the delivery of predictions they pass
# through are tested on both stacks (tests/runner, tests/api, tests/dashboards) and, isolated
# workers included, in tests/deploy.
STACK_INDEPENDENT = ["test_acceptance.py", "demo/test_protocol_library.py", "runner/test_kernel_start.py",
                     "browser/test_dashboards_browser.py", "hub", "validation/test_subset.py",
                     "validation/test_sweep.py",
                     # the Binder folder's rebuild in a fresh virtual environment reads a finished
                     # prediction: the stack that computed it changes nothing there
                     "runner/test_binder_export.py",
                     "nbval"]  # the regression notebooks run protocols in a kernel, no lab at all
collect_ignore = STACKLESS + STACK_INDEPENDENT if STACK == "scaleout" else ["deploy"]


@pytest.fixture(autouse=True)
def _stack() -> Iterator[None]:
    """Every lab a test opens itself lives on the chosen stack (a no-op for the embedded one)."""
    with lab_environment():
        yield


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return webdata() / "models"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[labkit.Lab]:
    """A fresh embedded lab with no workers."""
    with labkit.Lab.open(tmp_path / "lab") as the_lab:
        yield the_lab


@pytest.fixture(scope="module")
def running_lab(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[labkit.Lab]:
    """An embedded lab with two real Celery workers, TT06 and a small test protocol."""
    def seed(lab: labkit.Lab) -> None:
        lab.add_model(models_dir / "ten_tusscher_model_2006_epi.cellml", name="tt06")
        lab.add_model(models_dir / "hodgkin_huxley_squid_axon_model_1952_modified.cellml", name="hh")
        lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")

    with lab_with_workers(tmp_path_factory.mktemp("running") / "lab", seed=seed,
                          stale_after=6.0, heartbeat_interval=0.5) as the_lab:
        yield the_lab
