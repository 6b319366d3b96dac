"""On-disk cache of compiled Myokit simulations.

Compiling a ``myokit.Simulation`` costs about a second per model, which dominates short
protocols and repeats in every worker. Myokit can store the compiled extension in a zip
(``Simulation(model, path=...)``) and reload it in well under 0.1 s, so we keep one zip
per *model structure*.

Two details make this safe:

* The key ignores the values of literal constants and initial states. Myokit passes
  those to the compiled code at run time, so a model with another stimulus period, a
  clamp at another voltage or a blocked conductance reuses the same binary; on loading,
  every literal and the default state are set from the model actually requested.
* Myokit 1.39's ``Simulation.from_path`` rebuilds its list of literal values from the
  unpickled model, whose order is not the order the C code was generated with, and the
  reloaded simulation then computes garbage. We store the compile-time order in the
  zip and restore it after loading.

Zips are written to a private temporary directory and renamed into place, so
concurrent workers never see half-written files.

Only trusted code writes the cache, because every later run loads its zips (and Myokit unpickles
them). A sandboxed run sees the cache read-only and has ``$LABKIT_SIM_CACHE_REQUESTS`` set: on a
miss it compiles for itself and leaves the model's structure there as ``<key>.mmt``; after the run
the worker compiles those with labkit's own code (``python -m labkit.sim.cache``, in a sandbox with
no protocol in it) and adds the zips (``labkit/runner/compile_requests.py``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path

import myokit

from .solver import MAX_ERROR_TEST_FAILURES, Simulation

log = logging.getLogger(__name__)

ENV_VAR = "LABKIT_SIM_CACHE"
REQUESTS_ENV_VAR = "LABKIT_SIM_CACHE_REQUESTS"
MAX_REQUESTS = 8  # structures one run may ask the worker to compile
_ORDER_FILE = "labkit_literal_order.json"
_FORMAT = "1"  # bump when the layout of cache entries changes


def cache_dir(default: Path | None = None) -> Path | None:
    """The cache directory (``$LABKIT_SIM_CACHE``, else ``default``, else ``~/.cache/labkit/sim``);
    ``None`` if disabled.

    Set ``LABKIT_SIM_CACHE=off`` to always compile, e.g. when debugging Myokit itself. A worker passes
    its lab's folder as ``default``.
    """
    env = os.environ.get(ENV_VAR, "").strip()
    if env.lower() in ("off", "none", "0", "false", "no"):
        return None
    return Path(env).expanduser() if env else default or Path.home() / ".cache" / "labkit" / "sim"


def structure_key(model: myokit.Model) -> str:
    """Hash of everything that shapes the compiled code, and of nothing that does not.

    Literal constants and initial values are replaced by placeholders (they are inputs of
    the compiled code); the Myokit, SUNDIALS, Python ABI and platform identifiers are
    included because the zip holds a native extension.
    """
    skeleton = model.clone()
    for var in skeleton.variables(const=True, deep=True):
        if var.is_literal():
            var.set_rhs(myokit.Number(0))
    for var in skeleton.states():
        var.set_initial_value(0)
    parts = [
        _FORMAT,
        myokit.__version__,
        str(getattr(myokit, "SUNDIALS_VERSION", "")),
        sys.implementation.cache_tag or "",
        platform.system(),
        platform.machine(),
        f"max_error_test_failures={MAX_ERROR_TEST_FAILURES}",  # compiled in: see solver.py
        skeleton.code(),
    ]
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:32]


def cached_simulation(model: myokit.Model) -> tuple[myokit.Simulation, bool]:
    """A ``myokit.Simulation`` of ``model``, from the cache when possible.

    Returns ``(simulation, loaded_from_cache)``. Any problem with the cache (unwritable
    directory, corrupt or foreign zip) falls back to compiling, with a logged warning,
    because a cache must never make a run fail.
    """
    directory = cache_dir()
    requests = os.environ.get(REQUESTS_ENV_VAR, "").strip()
    if directory is None and not requests:
        return Simulation(model), False
    key = structure_key(model)
    path = directory / f"{key}.zip" if directory is not None else None
    if path is not None and path.is_file():
        try:
            return _load(path, model), True
        except Exception as exc:  # corrupt, truncated or built elsewhere: rebuild it
            log.warning("ignoring unusable compiled simulation %s (%s); recompiling", path, exc)
    if requests:  # a sandboxed run: the cache is read-only here, the worker fills it
        _request(Path(requests), key, model)
        return Simulation(model), False
    assert directory is not None and path is not None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        return _compile_and_store(model, directory, path), False
    except OSError as exc:
        log.warning("cannot write the simulation cache in %s (%s); compiling without it", directory, exc)
        return Simulation(model), False


def _request(folder: Path, key: str, model: myokit.Model) -> None:
    """Leave ``model``'s structure for the worker to compile into the shared cache."""
    try:
        if folder.is_dir() and len(list(folder.glob("*.mmt"))) < MAX_REQUESTS:
            (folder / f"{key}.mmt").write_text(model.code())
    except OSError as exc:
        log.warning("cannot leave a compile request in %s (%s)", folder, exc)


def compile_into(mmt: Path, directory: Path) -> Path:
    """Compile the model in ``mmt`` (Myokit's text format) into ``directory``/<its key>.zip.

    The key is computed here, from the model as parsed, never taken from the requester: an entry
    can only ever hold the compiled form of the structure its name says.
    """
    model = myokit.parse_model(mmt.read_text())
    path = directory / f"{structure_key(model)}.zip"
    directory.mkdir(parents=True, exist_ok=True)
    _compile_and_store(model, directory, path)
    return path


def _compile_and_store(model: myokit.Model, directory: Path, path: Path) -> myokit.Simulation:
    """Compile ``model``, store the zip plus literal order, and rename it into place atomically."""
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=directory))
    try:
        staged = tmp / "sim.zip"
        sim = Simulation(model, path=str(staged))
        order = {
            "literals": [v.qname() for v in sim._literals],
            "parameters": [v.qname() for v in sim._parameters],
        }
        with zipfile.ZipFile(staged, "a") as zf:
            zf.writestr(_ORDER_FILE, json.dumps(order))
        os.replace(staged, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return sim


def _load(path: Path, model: myokit.Model) -> myokit.Simulation:
    """Reload a stored simulation and make it simulate ``model`` (its values, its state)."""
    with zipfile.ZipFile(path) as zf:
        order = json.loads(zf.read(_ORDER_FILE))
    sim = myokit.Simulation.from_path(str(path))
    # Restore the compile-time order of the literal and parameter value lists (see module doc).
    for attr, names in (("_literals", order["literals"]), ("_parameters", order["parameters"])):
        current: OrderedDict = getattr(sim, attr)
        by_name = {v.qname(): (v, x) for v, x in current.items()}
        if sorted(by_name) != sorted(names):
            raise ValueError(f"stored {attr[1:]} do not match the compiled model")
        setattr(sim, attr, OrderedDict(by_name[n] for n in names))
    # The zip may come from a model with other constant values or initial state.
    for name in order["literals"]:
        sim.set_constant(name, model.get(name).rhs().eval())
    sim.set_default_state(model.initial_values(as_floats=True))
    sim.reset()
    return sim


if __name__ == "__main__":  # python -m labkit.sim.cache MODEL.mmt FOLDER (run by the worker)
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m labkit.sim.cache MODEL.mmt FOLDER")
    print(compile_into(Path(sys.argv[1]), Path(sys.argv[2])).name)
