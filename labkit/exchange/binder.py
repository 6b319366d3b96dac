"""Export one prediction as a folder that repo2docker builds (and so BinderHub serves): the
prediction's own notebook, inputs, outputs and provenance, with the files repo2docker reads to build
the environment the run executed in.

- ``requirements.txt``: what executing the notebook needs (``KERNEL_ROOTS``, and the distributions
  of every module the protocol notebook imports) with everything they depend on, each pinned to the
  version recorded in the prediction's ``provenance.json`` (``environment``). labkit's lab side
  (database, queue, dashboards) is not installed: the notebook never uses it;
- ``runtime.txt``: the run's Python (``python-X.Y``); ``apt.txt``: the C compiler and SUNDIALS that
  Myokit compiles simulations with;
- ``postBuild``: installs the labkit source bundled in ``labkit-src/`` (labkit is not on PyPI) and
  the oxmeta ontology's distribution, both without dependencies (they are in requirements.txt);
- ``README.md``: what ran, its outputs, and how to re-run and check it.

The notebook runs in the container's own kernel, without a lab: the folder is self-contained
(``labkit/runner/portable.py``). ``python -m labkit.results.reproduce`` compares the re-computed
outputs with the stored ones.
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from packaging.requirements import Requirement

from ..errors import InvalidInput
from ..protocols.check import without_magics
from ..results.prediction import INPUTS, PROTOCOL_FOLDER, RERUN_OUTPUTS

if TYPE_CHECKING:
    from ..lab import Lab

# What a protocol notebook's kernel uses (labkit.sim, labkit.results, papermill and ipykernel to run
# it, the ontology's rdflib for `python -m labkit.results.reproduce`), and what builds labkit-src.
KERNEL_ROOTS = ("myokit", "numpy", "pandas", "matplotlib", "papermill", "ipykernel", "nbformat", "pyyaml",
                "lxml", "rdflib", "setuptools", "wheel")
# Installed by postBuild without dependencies: labkit from the bundled source, and the distribution
# that ships the oxmeta ontology (its own dependencies are neither needed nor importable).
NO_DEPS = ("labkit", "chaste-codegen")
APT_PACKAGES = ("gcc", "libsundials-dev")  # Myokit compiles each simulation against CVODES
PREDICTION_FILES = ("notebook.ipynb", "provenance.json", "timings.json", "log.txt")
PREDICTION_FOLDERS = (INPUTS, "outputs", "plots")
SOURCE_PATTERNS = ("*.py", "*.cellml", "*.ipynb", "*.ini", "*.mako", "*.ttl", "*.css")


@dataclass(frozen=True)
class BinderExport:
    folder: Path
    requirements: tuple[str, ...]  # "name==version" lines
    unpinned: tuple[str, ...]  # dependencies the prediction's environment did not record
    binder_url: str | None = None  # where BinderHub serves it, once pushed


def binder_branch(run_id: str) -> str:
    """The branch of the lab's Binder remote that holds a run's export."""
    return f"prediction-{run_id}"


def binder_link(binderhub_url: str, remote: str, branch: str) -> str:
    """BinderHub's address for a branch of any git repository (its ``/v2/git/`` provider), opening
    the notebook in JupyterLab."""
    return f"{binderhub_url.rstrip('/')}/v2/git/{quote(remote, safe='')}/{quote(branch, safe='')}?labpath=notebook.ipynb"


def push_export(folder: Path, remote: str, branch: str) -> str:
    """Commit an export folder as a git repository of its own and push it to ``branch`` of ``remote``;
    return the pushed commit. A branch already holding other content is refused by git (no force)."""
    import git

    repo = git.Repo.init(folder, initial_branch=branch)
    with repo.config_writer() as config:
        config.set_value("user", "name", "labkit")
        config.set_value("user", "email", "labkit@localhost")
    repo.git.add(A=True)
    repo.index.commit(f"labkit prediction export: {branch}")
    try:
        repo.git.push(remote, f"HEAD:refs/heads/{branch}")
    except git.GitCommandError as err:
        raise InvalidInput(f"could not push the export to {remote} ({branch}): {err.stderr.strip()}") from None
    return repo.head.commit.hexsha


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def notebook_imports(notebook: Path) -> set[str]:
    """Distributions providing the top-level modules a notebook's code cells import (standard library
    and labkit left out; cells that are not Python, such as magics, are skipped)."""
    import ast

    import nbformat
    modules: set[str] = set()
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(without_magics(cell.source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module.split(".")[0])
    providers = metadata.packages_distributions()
    return {dist for module in modules - {"labkit"} for dist in providers.get(module, [])}


def dependency_closure(roots: tuple[str, ...]) -> dict[str, str]:
    """Every distribution ``roots`` need, with their extras' needs, read from this machine's
    installed metadata: normalised name -> the name as the distribution spells it."""
    found: dict[str, str] = {}
    stack: list[tuple[str, frozenset[str]]] = [(r, frozenset()) for r in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    while stack:
        name, extras = stack.pop()
        if (_norm(name), extras) in seen:
            continue
        seen.add((_norm(name), extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            found.setdefault(_norm(name), name)
            continue
        found[_norm(name)] = dist.metadata["Name"] or name
        for line in dist.requires or []:
            requirement = Requirement(line)
            wanted = extras or frozenset({""})
            if requirement.marker and not any(requirement.marker.evaluate({"extra": e}) for e in wanted):
                continue
            stack.append((requirement.name, frozenset(requirement.extras)))
    return found


def pinned_requirements(environment: dict[str, Any], roots: tuple[str, ...] = KERNEL_ROOTS
                        ) -> tuple[list[str], list[str]]:
    """``name==version`` for the dependency closure of ``roots`` at the versions the run recorded,
    and the names it did not record (left unpinned, so pip chooses)."""
    recorded = {_norm(name): version for name, version in environment.get("distributions", {}).items()}
    pinned, unpinned = [], []
    for norm, name in sorted(dependency_closure(roots).items()):
        if norm in NO_DEPS:
            continue
        if norm in recorded:
            pinned.append(f"{name}=={recorded[norm]}")
        else:
            unpinned.append(name)
    return pinned, unpinned


def _copy_labkit_source(target: Path) -> None:
    """labkit's package (the code of this export, see the README) with a minimal build file."""
    import labkit
    package = Path(labkit.__file__).resolve().parent
    for pattern in SOURCE_PATTERNS:
        for path in package.rglob(pattern):
            if "__pycache__" in path.parts:
                continue
            destination = target / "labkit" / path.relative_to(package)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
    data = ", ".join(f'"{p}"' for p in SOURCE_PATTERNS if p != "*.py")
    (target / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "labkit"\nversion = "{labkit.__version__}"\nrequires-python = ">=3.11"\n\n'
        '[tool.setuptools.packages.find]\ninclude = ["labkit", "labkit.*"]\n\n'
        f'[tool.setuptools.package-data]\n"*" = [{data}]\n')


def _post_build(environment: dict[str, Any]) -> str:
    recorded = {_norm(n): (n, v) for n, v in environment.get("distributions", {}).items()}
    lines = ["#!/usr/bin/env bash", "# repo2docker runs this after installing requirements.txt.", "set -euo pipefail",
             "python3 -m pip install --no-deps --no-build-isolation ./labkit-src  # setuptools, wheel: pinned"]
    if "chaste-codegen" in recorded:
        name, version = recorded["chaste-codegen"]
        lines.append(f'python3 -m pip install --no-deps "{name}=={version}"  # the oxmeta ontology labkit reads')
    return "\n".join(lines) + "\n"


def _readme(provenance: dict[str, Any], outputs: dict[str, Any], binder_url: str | None) -> str:
    model, protocol = provenance.get("model", {}), provenance.get("protocol", {})
    parameters = ", ".join(f"`{k}={v!r}`" for k, v in provenance.get("parameters", {}).items()) or "the defaults"
    environment = provenance.get("environment", {})
    rows = "\n".join(f"| `{name}` | {meta.get('units', '')} | {meta.get('shape') or 'scalar'} | "
                     f"{meta.get('description', '')} |" for name, meta in sorted(outputs.items()))
    badge = f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder_url})\n\n" if binder_url else ""
    return f"""# {protocol.get('name')} on {model.get('name')}: labkit prediction {provenance.get('run')}

{badge}A prediction computed by labkit: the protocol notebook `{protocol.get('file')}` (version
{protocol.get('version')}, commit `{protocol.get('commit')}`) run on the model `{model.get('file')}`
(version {model.get('version')}, commit `{model.get('commit')}`) with {parameters}. It ended
`{provenance.get('status')}` on {provenance.get('finished_at')} (worker `{provenance.get('worker')}`,
Python {environment.get('python')}, SUNDIALS {environment.get('sundials')}).

| output | units | shape | description |
| --- | --- | --- | --- |
{rows}

## What is here
- `notebook.ipynb`: the executed notebook, with the run's outputs; its parameters cell points at
  `inputs/model/` and writes to `{RERUN_OUTPUTS}/`.
- `inputs/model/`, `inputs/protocol/`: the exact model and protocol versions the run used.
- `outputs/`: the outputs as the run saved them (labkit's CSV format: `#` lines give the name, units
  and shape); `plots/`: its default plots; `provenance.json`: everything above, and every installed
  distribution with its version (`environment`).
- `requirements.txt`, `runtime.txt`, `apt.txt`, `postBuild`: the environment, for repo2docker. Python
  packages are pinned to the versions the run used; `labkit-src/` is the labkit code of this export,
  installed for running the notebook (its lab side, the database and the queue, is not).

## Re-run it
On Binder, or anywhere repo2docker builds this folder: open `notebook.ipynb` and *Run All*. Without
Docker, in a fresh virtual environment with the packages of `apt.txt` installed:

    python3 -m pip install -r requirements.txt && bash postBuild
    papermill notebook.ipynb again.ipynb --cwd .
    python3 -m labkit.results.reproduce .

The last command compares every output in `{RERUN_OUTPUTS}/` with `outputs/` (identical, within the
protocol's tolerance, or different) and exits with status 1 if the prediction was not reproduced.
"""


def export_binder(lab: "Lab", run_id: str, destination: str | Path, *, binder_url: str | None = None) -> BinderExport:
    """Write ``run_id``'s prediction as a repo2docker folder at ``destination`` (which must not exist,
    or be empty). Nothing is left behind when it fails."""
    info = lab.status(run_id)  # NotFound for a run the user may not read
    if not info.results_path:
        raise InvalidInput(f"run {run_id} has no prediction to export (status {info.status})")
    prediction = lab.prediction(run_id)
    if not (prediction.folder / INPUTS).is_dir():
        raise InvalidInput(f"the prediction of run {run_id} predates self-contained predictions (it has no "
                           f"{INPUTS}/ folder); re-run it with `labkit rerun {run_id}` and export the re-run")
    target = Path(destination).expanduser().resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInput(f"{target} already exists and is not an empty folder; choose a new folder to export to")
    provenance = prediction.provenance
    environment = provenance.get("environment") or {}
    if not environment.get("distributions"):
        raise InvalidInput(f"the provenance of run {run_id} does not record its environment; re-run it "
                           f"(`labkit rerun {run_id}`) and export the re-run")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".labkit-export-", dir=target.parent))
    try:
        for name in PREDICTION_FILES:
            if (prediction.folder / name).is_file():
                shutil.copyfile(prediction.folder / name, staging / name)
        for name in PREDICTION_FOLDERS:
            if (prediction.folder / name).is_dir():
                shutil.copytree(prediction.folder / name, staging / name)
        imported = set()
        for notebook in (staging / PROTOCOL_FOLDER).glob("*.ipynb"):
            imported |= notebook_imports(notebook)
        pinned, unpinned = pinned_requirements(environment, KERNEL_ROOTS + tuple(sorted(imported)))
        (staging / "requirements.txt").write_text(
            "# labkit's dependencies at the versions the run used (provenance.json: environment)\n"
            + "".join(f"{line}\n" for line in pinned) + "".join(f"{name}\n" for name in unpinned))
        python = ".".join(str(environment.get("python", "3.11")).split(".")[:2])
        (staging / "runtime.txt").write_text(f"python-{python}\n")
        (staging / "apt.txt").write_text("".join(f"{p}\n" for p in APT_PACKAGES))
        post_build = staging / "postBuild"
        post_build.write_text(_post_build(environment))
        post_build.chmod(0o755)
        _copy_labkit_source(staging / "labkit-src")
        manifest_path = staging / "outputs" / "outputs.json"
        outputs = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        (staging / "README.md").write_text(_readme(provenance, outputs, binder_url))
        if target.exists():
            target.rmdir()
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BinderExport(target, tuple(pinned), tuple(unpinned))
