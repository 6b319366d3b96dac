"""Write the nbval regression notebooks (tests/nbval/): each standard protocol notebook executed on the
simplest demo model it can run, with its quick parameters, and a last cell that prints every output it
saved to 6 significant figures. `pytest` (the --nbval option in pyproject.toml) executes them again
and fails when any printed number changes (tests/nbval/README.md).

Run it only after a change that is meant to change results, and say why in the commit:

    python scripts/refresh_nbval.py            # every protocol
    python scripts/refresh_nbval.py s1s2       # one
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import papermill
from nbformat.v4 import new_code_cell
from tqdm import tqdm

from labkit.cellml import parse_cellml_file
from labkit.demo.build import DEMO_MODELS, QUICK_PARAMETERS, STANDARD_PROTOCOLS
from labkit.protocols import compatibility
from labkit.protocols.check import check_protocol

HERE = Path(__file__).resolve().parents[1] / "tests" / "nbval"
SUMMARY_CELL = '''# labkit nbval: every saved output to 6 significant figures; a changed number fails the test
from pathlib import Path

import numpy as np
from labkit.results import read_outputs

for _name, _output in sorted(read_outputs(Path(output_dir)).items()):
    _values = np.asarray(_output.values, dtype=float).ravel()
    _finite = _values[np.isfinite(_values)]
    _shown = " ".join(f"{v:.6g}" for v in _values[:6]) + (" ..." if _values.size > 6 else "")
    _range = f"min {_finite.min():.6g} max {_finite.max():.6g} sum {_finite.sum():.6g}" if _finite.size else "all NaN"
    print(f"{_name} [{_output.units}] shape {list(_output.shape)}: {_shown} | {_range}")'''


def simplest_model(notebook: Path) -> Path:
    """The demo model with the fewest annotations that the protocol can run (the quickest)."""
    interface = check_protocol(notebook.read_bytes())
    models = sorted(DEMO_MODELS.glob("*.cellml"), key=lambda m: len(parse_cellml_file(m).terms()))
    for model in models:
        if compatibility(interface, parse_cellml_file(model).terms()).compatible:
            return model
    raise SystemExit(f"no demo model can run {notebook.name}")


def refresh(name: str) -> Path:
    notebook = STANDARD_PROTOCOLS / f"{name}.ipynb"
    model = simplest_model(notebook)
    target = HERE / f"{name}.ipynb"
    parameters = {**QUICK_PARAMETERS[name], "model_path": os.path.relpath(model, HERE),
                  "output_dir": f"nbval-outputs/{name}"}
    source = nbformat.read(notebook, as_version=4)
    source.cells.append(new_code_cell(SUMMARY_CELL))
    staged = HERE / f".{name}.input.ipynb"
    nbformat.write(source, staged)
    try:
        papermill.execute_notebook(staged, target, parameters=parameters, cwd=str(HERE), kernel_name="python3",
                                   progress_bar=False)
    finally:
        staged.unlink()
    executed = nbformat.read(target, as_version=4)
    executed.metadata.pop("papermill", None)  # run times and paths: not part of the regression
    for cell in executed.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(executed, target)
    return target


def main(names: list[str]) -> None:
    chosen = names or sorted(QUICK_PARAMETERS)
    unknown = sorted(set(chosen) - set(QUICK_PARAMETERS))
    if unknown:
        raise SystemExit(f"no standard protocol {unknown}; known: {sorted(QUICK_PARAMETERS)}")
    for name in tqdm(chosen, desc="nbval notebooks", unit="notebook"):
        refresh(name)


if __name__ == "__main__":
    main(sys.argv[1:])
