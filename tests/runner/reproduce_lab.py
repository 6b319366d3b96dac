"""A lab for the reproducibility tests (tests/runner/test_reproduce.py, test_binder_export.py): the
demo's Beeler-Reuter model, the standard steady-pacing protocol, the test protocol and a protocol
that saves random numbers."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from labs import lab_with_workers
from notebooks import protocol_notebook

import labkit
from labkit.demo.build import DEMO_MODELS, STANDARD_PROTOCOLS

NOISY_INTERFACE = """
title: Noisy protocol
description: Saves random numbers, some within a declared tolerance.
requires: [membrane_voltage]
outputs:
  steady: {units: mV, description: the same every time}
  wobbly: {units: mV, shape: [3], description: 5 mV plus noise below 1e-3 mV, tolerance: {abs: 0.01}}
  random: {units: mV, shape: [3], description: new noise each run, no tolerance declared}
"""
NOISY_BODY = """
import numpy as np
from labkit.results import OutputWriter
out = OutputWriter(output_dir)
out.save("steady", 1.5, units="mV")
out.save("wobbly", 5 + 1e-3 * np.random.random(3), units="mV")
out.save("random", np.random.random(3), units="mV")
"""


@pytest.fixture(scope="module")
def repro_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[labkit.Lab]:
    def seed(lab: labkit.Lab) -> None:
        lab.add_model(DEMO_MODELS / "beeler_reuter_1977.cellml", name="br77")
        lab.add_protocol(STANDARD_PROTOCOLS / "steady_pacing.ipynb")
        lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
        lab.add_protocol({"noisy.ipynb": protocol_notebook(interface=NOISY_INTERFACE, body=NOISY_BODY,
                                                           parameters='model_path = "m"\noutput_dir = "o"\n')},
                         name="noisy")

    with lab_with_workers(tmp_path_factory.mktemp("repro") / "lab", seed=seed) as lab:
        yield lab


@pytest.fixture(scope="module")
def paced(repro_lab: labkit.Lab) -> labkit.RunInfo:
    """A standard protocol's prediction: steady pacing of Beeler-Reuter 1977, a few paces."""
    info = repro_lab.wait([repro_lab.run("br77", "steady_pacing", {"max_paces": 5})], timeout=300)[0]
    assert info.status == "success", info.error
    return info


