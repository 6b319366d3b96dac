"""Make a stored prediction self-contained: its folder keeps the exact model files and protocol
notebook the run used, and its executed notebook points at them by relative paths, so that opening
``notebook.ipynb`` in JupyterLab (its folder as the working directory) and running every cell
computes the prediction again, without the lab.

During the run papermill injected absolute paths inside the run's sandbox (``/run/labkit/...``),
which are gone once the run ends. Here the injected-parameters cell is written again with paths
relative to the prediction folder. Outputs of such a re-execution go to ``rerun-outputs/``, so the
stored outputs are never overwritten.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import nbformat
from papermill.translators import translate_parameters

from ..results.prediction import MODEL_FOLDER, PROTOCOL_FOLDER, RERUN_OUTPUTS

if TYPE_CHECKING:
    from ..store.entities import EntityStore, VersionInfo

INJECTED_TAG = "injected-parameters"  # papermill's tag for the cell it writes


def portable_parameters(parameters: dict[str, Any], model_file: str) -> dict[str, Any]:
    """The run's parameters with the prediction folder's own paths (relative to that folder)."""
    return {**parameters, "model_path": str(PurePosixPath(MODEL_FOLDER) / model_file),
            "output_dir": RERUN_OUTPUTS}


def relocate_notebook(notebook: Path, parameters: dict[str, Any], model_file: str, protocol_file: str) -> bool:
    """Rewrite the executed ``notebook``'s injected parameters (and papermill's record of them) to the
    prediction folder's copies. Returns False, leaving the file as it is, when the notebook cannot be
    read or has no injected cell: it was written by the run, i.e. by untrusted code."""
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception:  # noqa: BLE001 - whatever the run left is kept as it is
        return False
    cells = [c for c in nb.cells if INJECTED_TAG in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        return False
    relocated = portable_parameters(parameters, model_file)
    cells[0].source = translate_parameters("python3", "python", relocated, "Parameters").rstrip("\n")
    record = nb.metadata.get("papermill")
    if isinstance(record, dict):
        record["parameters"] = relocated
        record["input_path"] = str(PurePosixPath(PROTOCOL_FOLDER) / protocol_file)
        record["output_path"] = "notebook.ipynb"
        record.pop("environment_variables", None)
    try:
        text = nbformat.writes(nb)
    except Exception:  # noqa: BLE001 - a notebook nbformat cannot write back is kept as it is
        return False
    notebook.write_text(text, encoding="utf-8")
    return True


def keep_inputs(store: "EntityStore", model: "VersionInfo", protocol: "VersionInfo", parameters: dict[str, Any],
                results: Path) -> None:
    """Write the exact model and protocol versions into the prediction folder ``results`` (from the
    database, as the run's own inputs were) and point its executed notebook at them."""
    model_path = store.fetch(model, results / MODEL_FOLDER)
    protocol_path = store.fetch(protocol, results / PROTOCOL_FOLDER)
    notebook = results / "notebook.ipynb"
    if notebook.is_file():
        relocate_notebook(notebook, parameters, model_path.relative_to(results / MODEL_FOLDER).as_posix(),
                          protocol_path.relative_to(results / PROTOCOL_FOLDER).as_posix())
