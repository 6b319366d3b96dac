"""The stored nbval notebooks run the code in the repository: each one's cells are those of the
notebook it was made from (a standard protocol plus the summary cell, or a tutorial). A notebook
changed without `python scripts/refresh_nbval.py` fails here, not silently in nbval."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

from labkit.demo.build import QUICK_PARAMETERS, STANDARD_PROTOCOLS

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("refresh_nbval", ROOT / "scripts" / "refresh_nbval.py")
refresh_nbval = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(refresh_nbval)  # type: ignore[union-attr]


def _sources(path: Path) -> list[str]:
    return [c.source for c in nbformat.read(path, as_version=4).cells
            if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]


@pytest.mark.parametrize("name", sorted(QUICK_PARAMETERS))
def test_each_stored_protocol_notebook_is_the_protocol_plus_its_summary(name: str) -> None:
    assert _sources(HERE / f"{name}.ipynb") == _sources(STANDARD_PROTOCOLS / f"{name}.ipynb") + \
        [refresh_nbval.SUMMARY_CELL]


def test_each_tutorial_has_its_stored_run_and_no_outputs_of_its_own() -> None:
    tutorials = sorted((ROOT / "notebooks" / "tutorials").glob("*.ipynb"))
    assert len(tutorials) >= 2
    for tutorial in tutorials:
        assert _sources(HERE / "tutorials" / tutorial.name) == _sources(tutorial), tutorial.name
        assert not any(c.get("outputs") for c in nbformat.read(tutorial, as_version=4).cells), tutorial.name
