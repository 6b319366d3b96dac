"""Where the shared reference data lives: ../shared/webdata beside the repository, read in place.

A module of its own (not conftest) so that test files can import it unambiguously: pytest
loads several conftest.py files and a bare `import conftest` picks whichever came first."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WEBDATA = REPO.parent / "shared" / "webdata"


def webdata() -> Path:
    """The shared data folder, or a clear test failure saying what is missing."""
    if not (WEBDATA / "models").is_dir():
        pytest.fail(f"the shared reference data is missing: expected {WEBDATA} beside the repository")
    return WEBDATA
