"""Where a prediction lives on the lab's side, and fetching it from the database when a worker on
another machine computed it.

A worker records every file of its prediction folder in the database (``labkit.store.blobs``) and
stores the folder's place as a path relative to the results store (``runs/<run id>``). The lab
reads ``<results>/runs/<run id>`` and, the first time it is asked for a prediction it does not
hold, writes it there from the database. With embedded workers, which share the lab's folder, the
prediction is already in place and nothing is copied.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import NotFound
from ..store import blobs
from ..store.db import Database

LAST_FILE = "timings.json"  # the runner writes it last: a folder without it is incomplete


def prediction_path(run_id: str) -> str:
    """A run's prediction folder, relative to the lab's results store."""
    return f"runs/{run_id}"


def prediction_folder(db: Database, results: Path, run_id: str, results_path: str) -> Path:
    """The local folder holding a run's prediction, fetched from the database if it is not here."""
    recorded = Path(results_path)
    # labs from before predictions were in the database recorded absolute paths; only one inside the
    # lab's own results folder is believed (a row pointing elsewhere would serve host files)
    if recorded.is_absolute() and recorded.resolve().is_relative_to(results.resolve()) and recorded.exists():
        return recorded
    folder = results / prediction_path(run_id)
    if (folder / LAST_FILE).exists():
        return folder
    with db.session() as session:
        files = blobs.prediction_files(session, run_id)
    if not files:
        raise NotFound(f"the prediction of run {run_id} is neither in {folder} nor in the database; "
                       "re-run the experiment")
    if folder.exists():  # an incomplete folder, left by a lost attempt
        shutil.rmtree(folder)
    blobs.write_tree(files, folder)
    return folder
