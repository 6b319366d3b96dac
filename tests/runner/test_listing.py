"""Listing runs a page at a time, cut and counted by the database (no workers needed)."""
from __future__ import annotations

from pathlib import Path

from notebooks import protocol_notebook

import labkit


def test_runs_come_in_pages_that_match_the_whole_listing(lab: labkit.Lab, models_dir: Path) -> None:
    lab.add_model(models_dir / "hodgkin_huxley_squid_axon_model_1952_modified.cellml", name="hh")
    lab.add_model(models_dir / "beeler_reuter_model_1977.cellml", name="br")
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
    submitted = [lab.run(model, "test", {"sleep": float(i)}) for i in range(3) for model in ("hh", "br")]
    lab.cancel(submitted[0].id)

    everything = lab.runs()
    assert [r.id for r in everything] == [r.id for r in submitted]  # oldest first
    assert lab.count_runs() == 6
    assert [r.id for r in lab.runs(limit=2, offset=1)] == [r.id for r in everything[1:3]]
    assert lab.runs(offset=6) == [] and lab.runs(limit=4, offset=5) == everything[5:]

    hh = lab.runs(model="hh")
    assert lab.count_runs(model="hh") == len(hh) == 3
    assert [r.id for r in lab.runs(model="hh", limit=1, offset=2)] == [hh[2].id]
    assert lab.count_runs(status="cancelled") == 1 and lab.count_runs(status="queued") == 5

    outsider = lab.as_user("outsider")  # the entities are private: another user counts nothing
    assert outsider.count_runs() == 0 and outsider.runs(limit=10) == []
