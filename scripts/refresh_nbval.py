"""Write the stored outputs that nbval compares against (tests/nbval/README.md):

- tests/nbval/<protocol>.ipynb: each standard protocol notebook executed on the simplest demo model it
  can run, with its quick parameters, and a last cell that prints every output it saved to 6
  significant figures;
- tests/nbval/tutorials/*.ipynb: the tutorials of notebooks/tutorials, executed (each in a new
  temporary lab); the tutorials themselves stay without outputs.

`pytest` (the --nbval options in pyproject.toml) executes them again and fails when any output
changes. Run this only after a change that is meant to change results, and say why in the commit:

    python scripts/refresh_nbval.py               # every protocol and the tutorials
    python scripts/refresh_nbval.py s1s2          # one protocol
    python scripts/refresh_nbval.py tutorials     # the tutorials
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

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "tests" / "nbval"
TUTORIALS = ROOT / "notebooks" / "tutorials"
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
    _strip_run_metadata(target)
    return target


def _strip_run_metadata(notebook: Path) -> None:
    """Run times and paths papermill records: not part of the regression, and noise in diffs."""
    executed = nbformat.read(notebook, as_version=4)
    executed.metadata.pop("papermill", None)
    for cell in executed.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(executed, notebook)


def refresh_tutorial(notebook: Path) -> Path:
    target = HERE / "tutorials" / notebook.name
    target.parent.mkdir(exist_ok=True)
    papermill.execute_notebook(notebook, target, cwd=str(target.parent), kernel_name="python3", progress_bar=False)
    _strip_run_metadata(target)
    return target


def main(names: list[str]) -> None:
    chosen = names or [*sorted(QUICK_PARAMETERS), "tutorials"]
    unknown = sorted(set(chosen) - set(QUICK_PARAMETERS) - {"tutorials"})
    if unknown:
        raise SystemExit(f"no standard protocol {unknown}; known: {sorted(QUICK_PARAMETERS)} and 'tutorials'")
    work = [(refresh, n) for n in chosen if n != "tutorials"]
    if "tutorials" in chosen:
        work += [(refresh_tutorial, p) for p in sorted(TUTORIALS.glob("*.ipynb"))]
    for action, item in tqdm(work, desc="nbval notebooks", unit="notebook"):
        action(item)


if __name__ == "__main__":
    main(sys.argv[1:])
