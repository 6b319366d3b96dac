"""One running lab (two real Celery workers) and one real Jupyter server with the labkit API on it,
shared by every test in tests/api; a seeded run has already finished when the tests start."""
from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from labs import lab_with_workers
from notebooks import protocol_notebook
from shared_data import webdata

import labkit
from labkit.dashboards.serve import ApiServer

from .client import Api

HH = "hodgkin_huxley_squid_axon_model_1952_modified.cellml"
CALCIUM_INTERFACE = """
title: Needs calcium
description: Requires a term the Hodgkin-Huxley model does not annotate.
requires: [membrane_voltage, cytosolic_calcium_concentration]
outputs:
  peak: {units: mV}
"""
DATASET = b"time (ms),doubled (mV)\n0,0\n1,2\n2,4\n"


def seed(lab: labkit.Lab) -> None:
    lab.add_model(webdata() / "models" / HH, name="hh", tag="published")
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
    lab.add_protocol({"calcium.ipynb": protocol_notebook(interface=textwrap.dedent(CALCIUM_INTERFACE))},
                     name="calcium")
    lab.add_dataset({"test-data.csv": DATASET}, name="test-data", protocol="test")


@pytest.fixture(scope="package")
def api_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[labkit.Lab]:
    with lab_with_workers(tmp_path_factory.mktemp("api") / "lab", seed=seed,
                          stale_after=6.0, heartbeat_interval=0.5) as lab:
        yield lab


@pytest.fixture(scope="package")
def api_server(api_lab: labkit.Lab) -> Iterator[ApiServer]:
    with ApiServer(api_lab.settings) as server:
        yield server


@pytest.fixture(scope="package")
def api(api_server: ApiServer) -> Api:
    """The API, authenticated with the Jupyter server's own token (so as the lab's owner)."""
    return Api(api_server.url, api_server.token)


@pytest.fixture(scope="package")
def finished_run(api_lab: labkit.Lab) -> labkit.RunInfo:
    """A successful run of the test protocol on hh, with a prediction to download."""
    run = api_lab.wait([api_lab.run("hh", "test")], timeout=180)[0]
    assert run.status == "success", run
    return run


@pytest.fixture
def model_file() -> Path:
    return webdata() / "models" / HH
