"""Waiting for runs with a progress bar (the CLI, the validation and the sweep): long CLI work shows
how far it has got and names each run as it ends."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from tqdm import tqdm

if TYPE_CHECKING:
    from .experiments import RunInfo
    from .lab import Lab


def wait_with_progress(lab: Lab, runs: list[RunInfo], desc: str, *, timeout: float | None = None,
                       progress: bool = True) -> list[RunInfo]:
    """Wait for the unfinished ``runs``; returns every run as it now is, in the same order."""
    pending = [r for r in runs if not r.done]
    if not pending:
        return runs
    bar = tqdm(total=len(pending), desc=desc, unit="run", file=sys.stderr, disable=not progress)
    seen: set[str] = set()

    def on_change(info: RunInfo) -> None:
        if info.done and info.id not in seen:
            seen.add(info.id)
            bar.update(1)
            bar.set_postfix_str(f"{info.model} x {info.protocol}: {info.status}")

    try:
        done = {r.id: r for r in lab.wait(pending, timeout=timeout, on_change=on_change)}
    finally:
        bar.close()
    return [done.get(r.id, r) for r in runs]
