"""Helpers for the entity-store tests: the lab's whole stored state, to prove a refusal stored nothing."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

import labkit
from labkit.store.orm import Base

TT06 = "ten_tusscher_model_2006_epi.cellml"
HH = "hodgkin_huxley_squid_axon_model_1952_modified.cellml"
OHARA = "ohara_rudy_2011_epi.cellml"
BR = "beeler_reuter_model_1977.cellml"
LR91 = "luo_rudy_1991.cellml"


def git(repo: Path, *args: str) -> str:
    """Ask git itself (not labkit) about a bare entity repository."""
    return subprocess.run(["git", "--git-dir", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def git_blob(repo: Path, commit: str, file: str) -> bytes:
    """A file of a commit, exactly as git holds it."""
    return subprocess.run(["git", "--git-dir", str(repo), "cat-file", "blob", f"{commit}:{file}"], check=True,
                          capture_output=True).stdout


def lab_state(lab: labkit.Lab) -> dict[str, Any]:
    """Everything a save could have touched: entity names, every table's row count, every repository
    folder with its branch head and tags."""
    with lab.db.engine.connect() as connection:
        rows = {t.name: connection.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}
    repos = {}
    for repo in sorted(lab.settings.repositories.glob("*/*")):
        has_main = subprocess.run(["git", "--git-dir", str(repo), "rev-parse", "--verify", "-q", "main"],
                                  capture_output=True, text=True).stdout.strip()
        repos[str(repo.relative_to(lab.settings.repositories))] = (has_main, git(repo, "tag", "--list"))
    return {"names": {k: lab.names(k) for k in ("model", "protocol", "dataset")}, "rows": rows, "repos": repos}
