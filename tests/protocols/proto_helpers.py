"""Helpers for the protocol tests: interfaces to build notebooks from, and the lab's stored state."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from notebooks import protocol_notebook
from sqlalchemy import func, select

import labkit
from labkit.store.orm import Base

TT06 = "ten_tusscher_model_2006_epi.cellml"
HH = "hodgkin_huxley_squid_axon_model_1952_modified.cellml"
OHARA = "ohara_rudy_2011_epi.cellml"


def interface(requires: Sequence[str], optional: Sequence[str] = (), title: str = "P") -> str:
    return (f"title: {title}\nrequires: [{', '.join(requires)}]\noptional: [{', '.join(optional)}]\n"
            "outputs:\n  time: {units: ms, shape: [n]}\n")


def notebook(requires: Sequence[str], optional: Sequence[str] = ()) -> bytes:
    return protocol_notebook(interface=interface(requires, optional), body="x = 1\n")


def lab_state(lab: labkit.Lab) -> dict[str, Any]:
    """Entity names, every table's row count and the repository folders: what a save could touch."""
    with lab.db.engine.connect() as connection:
        rows = {t.name: connection.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}
    repos = sorted(str(p.relative_to(lab.settings.repositories)) for p in lab.settings.repositories.glob("*/*"))
    return {"names": {k: lab.names(k) for k in ("model", "protocol", "dataset")}, "rows": rows, "repos": repos}
