"""The output format: self-describing CSV files plus outputs.json, read back with units and shape."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from labkit.results import OutputWriter
from labkit.results.outputs import read_outputs


def test_outputs_round_trip_with_units_and_shape(tmp_path: Path) -> None:
    out = OutputWriter(tmp_path)
    out.save("APD90", 301.9, units="ms", description="APD at 90 %")
    out.save("trace", np.arange(6.0).reshape(2, 3), units="mV")
    read = read_outputs(tmp_path)
    assert read["APD90"].units == "ms" and read["APD90"].values.shape == ()
    assert read["APD90"].values.item() == 301.9
    assert read["trace"].values.shape == (2, 3) and read["trace"].values[1, 2] == 5.0
    # pandas reads the same files directly, skipping the self-describing header
    frame = pd.read_csv(tmp_path / "trace.csv", comment="#", header=None)
    assert frame.shape == (2, 3)


def test_an_empty_output_reads_back_as_an_empty_array(tmp_path: Path) -> None:
    """A protocol may legitimately find nothing (no S2 beat qualified): empty, not an error."""
    out = OutputWriter(tmp_path)
    out.save("DI", np.array([]), units="ms")
    read = read_outputs(tmp_path)
    assert read["DI"].values.shape == (0,) and read["DI"].units == "ms"
