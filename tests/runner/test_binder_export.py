"""`labkit export --binder`: a prediction as a folder repo2docker builds, rebuilt here without
Docker and compared output by output; publishing it with --push (docs/reproducibility.md)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from reproduce_lab import paced, repro_lab  # noqa: F401 - fixtures
from stacks import cli_environment

import labkit
from labkit.dashboards import PredictionView
from labkit.results import read_outputs
from labkit.results.prediction import RERUN_OUTPUTS
from labkit.results.reproduce import compare_output
from labkit.store import orm

pytestmark = pytest.mark.timeout(400)


@pytest.mark.timeout(1200)
def test_a_binder_export_rebuilds_in_a_fresh_virtual_environment_and_reproduces(
        repro_lab: labkit.Lab, paced: labkit.RunInfo, tmp_path: Path) -> None:
    """repo2docker cannot run here (no Docker), so the export's own files are used the way it would
    use them: a fresh virtual environment (nothing from this one), requirements.txt, postBuild, then
    the notebook executed with papermill there and every output compared with the original's."""
    export = repro_lab.export_binder(paced.id, tmp_path / "binder")
    folder = export.folder
    environment = repro_lab.prediction(paced.id).provenance["environment"]["distributions"]
    requirements = [line for line in (folder / "requirements.txt").read_text().splitlines()
                    if line and not line.startswith("#")]
    assert requirements == list(export.requirements) + list(export.unpinned)
    assert set(export.unpinned) <= {"wheel"}  # a build tool this environment may not have had
    for name in ("myokit", "numpy", "papermill", "ipykernel", "rdflib"):
        assert f"{name}=={environment[name]}" in requirements, name
    assert not any(line.lower().startswith(("labkit", "pytest", "playwright", "celery", "sqlalchemy"))
                   for line in requirements)  # the notebook needs neither the tests nor the lab side
    assert (folder / "runtime.txt").read_text() == f"python-{sys.version_info.major}.{sys.version_info.minor}\n"
    for package in (folder / "apt.txt").read_text().split():  # what repo2docker would apt-get: here already
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
        assert status.stdout == "install ok installed", package
    assert (folder / "postBuild").stat().st_mode & 0o111
    readme = (folder / "README.md").read_text()
    assert paced.id in readme and "br77" in readme and "APD90" in readme and "papermill" in readme
    assert {"notebook.ipynb", "provenance.json"} <= {p.name for p in folder.iterdir()}
    assert (folder / "inputs/model/beeler_reuter_1977.cellml").is_file()

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {"PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "VIRTUAL_ENV": str(venv)}

    def inside(*command: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(list(command), cwd=folder, env=env, capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, f"{command}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    inside("python", "-m", "pip", "install", "--quiet", "-r", "requirements.txt")
    inside("bash", "postBuild")
    where = inside("python", "-c", "import labkit, myokit, sys; print(sys.prefix); print(labkit.__file__)")
    assert where.stdout.splitlines()[0] == str(venv) and where.stdout.splitlines()[1].startswith(str(venv))
    inside("python", "-m", "papermill", "notebook.ipynb", "again.ipynb", "--cwd", ".", "--no-progress-bar")
    checked = subprocess.run([str(venv / "bin" / "python"), "-m", "labkit.results.reproduce", "."], cwd=folder,
                             env=env, capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0 and "reproduced:" in checked.stdout, checked.stdout + checked.stderr
    original, again = read_outputs(folder / "outputs"), read_outputs(folder / RERUN_OUTPUTS)
    assert set(again) == set(original) and len(original) >= 5
    verdicts = {name: compare_output(output, again[name]).verdict for name, output in original.items()}
    print(f"binder rebuild: {len(verdicts)} outputs compared: {verdicts}")
    assert set(verdicts.values()) <= {"identical", "within tolerance"}, verdicts


def test_exports_that_cannot_be_made_say_why_and_write_nothing(repro_lab: labkit.Lab, paced: labkit.RunInfo,
                                                                tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep me")
    with pytest.raises(labkit.InvalidInput, match="is not an empty folder"):
        repro_lab.export_binder(paced.id, taken)
    assert [p.name for p in taken.iterdir()] == ["mine.txt"]
    with pytest.raises(labkit.NotFound, match="there is no run"):
        repro_lab.export_binder("no-such-run", tmp_path / "x")
    with pytest.raises(labkit.InvalidInput, match="no Binder remote: set binder_remote"):
        repro_lab.export_binder(paced.id, tmp_path / "x", push=True)
    assert not (tmp_path / "x").exists() and [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_pushing_an_export_publishes_a_public_run_and_records_its_binder_link(
        repro_lab: labkit.Lab, paced: labkit.RunInfo, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--bare", "-q", str(remote)], check=True)
    lab = labkit.Lab.open(repro_lab.settings.root, binder_remote=str(remote), binderhub_url="https://binder.example")
    try:
        with pytest.raises(labkit.Forbidden, match="private model or protocol version"):
            lab.export_binder(paced.id, tmp_path / "private", push=True)
        assert not (tmp_path / "private").exists() and lab.status(paced.id).binder_ref is None
        lab.set_visibility("model", "br77", paced.model_version, orm.PUBLIC)
        lab.set_visibility("protocol", "steady_pacing", paced.protocol_version, orm.PUBLIC)
        done = lab.export_binder(paced.id, tmp_path / "public", push=True)
        branch = f"prediction-{paced.id}"
        assert done.binder_url == (f"https://binder.example/v2/git/{str(remote).replace('/', '%2F')}/{branch}"
                                   "?labpath=notebook.ipynb")
        assert lab.binder_url(paced.id) == done.binder_url and lab.status(paced.id).binder_ref == branch
        pushed = subprocess.run(["git", "--git-dir", str(remote), "ls-tree", "--name-only", branch],
                                capture_output=True, text=True, check=True).stdout.split()
        assert {"README.md", "requirements.txt", "postBuild", "notebook.ipynb", "inputs"} <= set(pushed)
        readme = subprocess.run(["git", "--git-dir", str(remote), "show", f"{branch}:README.md"],
                                capture_output=True, text=True, check=True).stdout
        assert done.binder_url in readme
        shown = subprocess.run([sys.executable, "-m", "labkit", "--lab", str(lab.settings.root), "show", paced.id],
                               capture_output=True, text=True,
                               env={**cli_environment(lab.settings), "LABKIT_BINDER_REMOTE": str(remote),
                                    "LABKIT_BINDERHUB_URL": "https://binder.example"})
        assert f"binder: {done.binder_url}" in shown.stdout, shown.stderr
        page = PredictionView(lab, paced.id, live=False)
        assert f'href="{done.binder_url.replace("&", "&amp;")}"' in page.summary.value
    finally:
        lab.close()


def test_a_prediction_round_trips_as_a_combine_archive(repro_lab: labkit.Lab, paced: labkit.RunInfo,
                                                       tmp_path: Path) -> None:
    from labkit.exchange import omex
    from stacks import lab_settings

    archive = repro_lab.export_prediction_archive(paced.id, tmp_path / "prediction.omex")
    content = omex.read_archive(archive)
    folder = repro_lab.prediction(paced.id).folder
    stored = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert content.files == stored and content.master == "notebook.ipynb"
    assert content.formats["outputs/APD90.csv"].endswith("text/csv")
    assert content.description["run"] == paced.id and content.description["parameters"] == {"max_paces": 5}
    with lab_settings() as stack, labkit.Lab.open(tmp_path / "elsewhere", **stack) as other:
        imported = other.import_archive(archive)
        assert imported.kind == "prediction" and imported.prediction is not None
        again = {p.relative_to(imported.prediction.folder).as_posix(): p.read_bytes()
                 for p in imported.prediction.folder.rglob("*") if p.is_file()}
        assert again == stored
        assert imported.prediction.output("APD90").scalar == repro_lab.prediction(paced.id).output("APD90").scalar
        assert other.read_file("model", "br77") == repro_lab.read_file("model", "br77", paced.model_version)
        assert other.names("protocol") == ["steady_pacing"]
        with pytest.raises(labkit.InvalidInput, match="was imported already"):
            other.import_archive(archive)
