"""Fill the worker's compiled-simulation cache with trusted code only.

A sandboxed run cannot write the cache that later runs load (``labkit/sim/cache.py``). When it had to
compile a model structure, it leaves the structure as ``<key>.mmt`` in its work folder. After the run,
the worker compiles each of them with labkit's own code, in a sandbox of its own that holds nothing
of the protocol, and moves the zips into the cache. The zip's name is the key computed from the
model as parsed by that trusted compile, so a request can add an entry but never change what an
existing structure loads.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..config import Settings
from .collect import read_regular
from .sandbox import Launcher, Limits, RunPaths

log = logging.getLogger(__name__)

REQUEST = re.compile(r"^[0-9a-f]{32}\.mmt$")
MAX_REQUEST_BYTES = 8 * 1024 * 1024
COMPILE_SECONDS = 300.0


def compile_requested(settings: Settings, launcher: Launcher, run: RunPaths, cache: Path | None) -> list[str]:
    """Compile the structures ``run`` asked for into ``cache`` (its model's); return the keys added."""
    from ..sim.cache import MAX_REQUESTS  # imports Myokit: kept out of `import labkit`
    if cache is None or not run.pending_compiles.is_dir() or run.pending_compiles.is_symlink():
        return []
    added = []
    for entry in sorted(os.scandir(run.pending_compiles), key=lambda e: e.name)[:MAX_REQUESTS]:
        key = entry.name[:-4]
        if not REQUEST.match(entry.name) or (cache / f"{key}.zip").exists():
            continue
        try:
            text = read_regular(Path(entry.path), MAX_REQUEST_BYTES)
            zip_path = _compile_in_sandbox(settings, launcher, run.scratch / "compile" / key, text)
        except (OSError, ValueError, subprocess.SubprocessError) as err:
            log.warning("compile request %s from run folder %s not used: %s", key, run.scratch, err)
            continue
        if zip_path is None:
            continue
        cache.mkdir(parents=True, exist_ok=True)
        os.replace(zip_path, cache / zip_path.name)
        added.append(zip_path.stem)
    return added


def _compile_in_sandbox(settings: Settings, launcher: Launcher, scratch: Path, mmt: bytes) -> Path | None:
    shutil.rmtree(scratch, ignore_errors=True)
    paths = launcher.paths(scratch)
    paths.inputs.mkdir(parents=True)
    (paths.inputs / "model.mmt").write_bytes(mmt)
    limits = Limits.for_run(settings, COMPILE_SECONDS)
    with launcher.session(paths, limits, settings) as session:
        out = paths.work / "compiled"
        out.mkdir()
        if session.uid is not None:
            os.chown(out, session.uid, session.uid)
        argv, env = session.command(
            [sys.executable, "-m", "labkit.sim.cache", str(paths.inside(paths.inputs / "model.mmt")),
             str(paths.inside(out))], {"LABKIT_SIM_CACHE": "off", "LABKIT_SIM_CACHE_REQUESTS": ""})
        done = subprocess.run(argv, env=env, cwd=paths.work, preexec_fn=session.preexec, capture_output=True,
                              text=True, timeout=COMPILE_SECONDS, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        log.warning("compiling a requested model structure failed: %s", done.stderr[-1000:])
        return None
    name = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    zip_path = out / name
    if not re.fullmatch(r"[0-9a-f]{32}\.zip", name) or zip_path.is_symlink() or not zip_path.is_file():
        return None
    return zip_path
