"""Labs with real Celery workers for tests: one place that starts them and always stops them."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stacks import lab_settings

import labkit


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
                lab.stop_workers()
        finally:
            lab.close()
