"""Small protocol notebooks written by the tests themselves (real notebooks, real kernels)."""
from __future__ import annotations

import textwrap

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_raw_cell

DEFAULT_INTERFACE = """
title: Test protocol
description: Writes two outputs after an optional pause.
requires: [membrane_voltage]
optional: [cytosolic_calcium_concentration]
outputs:
  time: {units: ms, shape: [n], description: sample times}
  doubled: {units: mV, shape: [n], description: twice the time}
  peak: {units: mV, description: the largest doubled value}
plots:
  - {x: time, y: doubled, title: Doubled against time}
"""

DEFAULT_BODY = """
import time as _time
import numpy as np
from labkit.results import OutputWriter
_time.sleep(sleep)
if fail:
    raise RuntimeError("the protocol failed on purpose")
out = OutputWriter(output_dir)
t = np.arange(5.0)
out.save("time", t, units="ms")
if not skip_doubled:
    out.save("doubled", 2 * t, units="mV")
if fail_late:
    raise RuntimeError("the protocol failed on purpose after saving two outputs")
out.save("peak", (2 * t).max(), units="mV")
"""


def protocol_notebook(interface: str = DEFAULT_INTERFACE, body: str = DEFAULT_BODY,
                      parameters: str = 'model_path = "model.cellml"\noutput_dir = "outputs"\n'
                                        "sleep = 0.0\nfail = False\nskip_doubled = False\nfail_late = False\n",
                      tag_parameters: bool = True) -> bytes:
    params = new_code_cell(textwrap.dedent(parameters))
    if tag_parameters:
        params.metadata["tags"] = ["parameters"]
    iface = new_raw_cell(textwrap.dedent(interface).strip())
    iface.metadata["tags"] = ["interface"]
    nb = new_notebook(cells=[iface, params, new_code_cell(textwrap.dedent(body).strip())])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.writes(nb).encode()
