"""Labs with real Celery workers for tests: one place that starts them and always stops them."""
from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from stacks import lab_settings

import labkit
from labkit.store.orm import Base


# A test's lab is thrown away afterwards, so its idle workers get one second of warm shutdown before
# they are killed, instead of the ~6 s an idle Celery worker takes to exit. The warm stop itself is
# exercised where a test stops its workers explicitly (tests/runner, tests/deploy) and by the demo.
TEARDOWN_STOP_SECONDS = 1.0


@contextmanager
def lab_with_workers(root: Path, workers: int = 2, seed: Callable[[labkit.Lab], None] | None = None,
                     **settings: Any) -> Iterator[labkit.Lab]:
    """Open a lab at ``root`` on the test stack, seed it, start ``workers`` workers; stop them and
    close it afterwards."""
    with lab_settings() as stack:
        lab = labkit.Lab.open(root, **{**stack, **settings})
        try:
            if seed is not None:
                seed(lab)
            lab.start_workers(workers)
            try:
                yield lab
            finally:
                lab.stop_workers(timeout=TEARDOWN_STOP_SECONDS)
        finally:
            lab.close()


def lab_state(lab: labkit.Lab) -> dict[str, Any]:
    """Every table's rows (as tuples) and every repository's branches and tags: to prove a refusal
    changed nothing."""
    state: dict[str, Any] = {}
    with lab.db.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            state[table.name] = sorted(map(repr, connection.execute(select(table))))
        state["count"] = connection.scalar(select(func.count()).select_from(Base.metadata.tables["versions"]))
    for repo in sorted(lab.settings.repositories.glob("*/*")):
        state[str(repo)] = subprocess.run(["git", "--git-dir", str(repo), "show-ref"], capture_output=True,
                                          text=True).stdout
    return state
