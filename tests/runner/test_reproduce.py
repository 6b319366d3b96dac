"""Reproducing predictions: a prediction folder is self-contained (its model, its protocol, relative
paths), and `rerun` runs an experiment again and compares every output with the original's."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import papermill
import pytest
from reproduce_lab import paced, repro_lab  # noqa: F401 - fixtures
from stacks import cli_environment

import labkit
from labkit.demo.build import STANDARD_PROTOCOLS
from labkit.results import read_outputs
from labkit.results.outputs import OutputData
from labkit.results.prediction import RERUN_OUTPUTS
from labkit.results.reproduce import compare_output

pytestmark = pytest.mark.timeout(400)


def test_a_prediction_folder_reruns_by_itself_in_a_fresh_copy(repro_lab: labkit.Lab, paced: labkit.RunInfo,
                                                               tmp_path: Path) -> None:
    """Its folder keeps the exact model and protocol; its notebook points at them by relative paths,
    so executing it anywhere (here: a copy, outside the lab) computes the same outputs."""
    info = paced
    folder = repro_lab.prediction(info.id).folder
    assert (folder / "inputs/model/beeler_reuter_1977.cellml").read_bytes() == \
        repro_lab.read_file("model", "br77", info.model_version)
    assert (folder / "inputs/protocol/steady_pacing.ipynb").read_bytes() == \
        (STANDARD_PROTOCOLS / "steady_pacing.ipynb").read_bytes()
    executed = nbformat.read(folder / "notebook.ipynb", as_version=4)
    injected = next(c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert 'model_path = "inputs/model/beeler_reuter_1977.cellml"' in injected.source
    assert f'output_dir = "{RERUN_OUTPUTS}"' in injected.source and "max_paces = 5" in injected.source
    sources = "".join(c.source for c in executed.cells) + str(executed.metadata["papermill"])
    assert "/run/labkit" not in sources and str(repro_lab.settings.scratch) not in sources  # outputs may say

    copy = tmp_path / "elsewhere"
    shutil.copytree(folder, copy)
    papermill.execute_notebook(copy / "notebook.ipynb", copy / "again.ipynb", cwd=str(copy), progress_bar=False,
                               kernel_name="python3")
    original, again = read_outputs(folder / "outputs"), read_outputs(copy / RERUN_OUTPUTS)
    assert set(again) == set(original) and "APD90" in again
    for name, output in original.items():
        assert compare_output(output, again[name]).verdict == "identical", name
    assert read_outputs(copy / "outputs").keys() == original.keys()  # the stored outputs were left alone


def test_rerun_compares_every_output_and_names_its_original(repro_lab: labkit.Lab) -> None:
    first = repro_lab.wait([repro_lab.run("br77", "test", {"sleep": 0.1})], timeout=120)[0]
    again = repro_lab.rerun(first.id)
    assert again.rerun_of == first.id and again.id != first.id and again.parameters == {"sleep": 0.1}
    again = repro_lab.wait([again], timeout=120)[0]
    report = repro_lab.reproduction(again.id)
    assert report.reproduced and report.original == first.id and report.rerun == again.id
    assert [(o.name, o.verdict, o.differing) for o in report.outputs] == [
        ("doubled", "identical", 0), ("peak", "identical", 0), ("time", "identical", 0)]
    assert repro_lab.status(first.id).rerun_of is None


def test_declared_tolerances_decide_within_or_different(repro_lab: labkit.Lab) -> None:
    first = repro_lab.wait([repro_lab.run("br77", "noisy")], timeout=120)[0]
    again = repro_lab.wait([repro_lab.rerun(first.id)], timeout=120)[0]
    report = repro_lab.reproduction(again.id)
    verdicts = {o.name: o for o in report.outputs}
    assert verdicts["steady"].verdict == "identical"
    assert verdicts["wobbly"].verdict == "within tolerance" and "(the protocol's)" in verdicts["wobbly"].tolerance
    assert 0 < verdicts["wobbly"].max_abs < 1e-3
    assert verdicts["random"].verdict == "different" and verdicts["random"].differing > 0
    assert "(default)" in verdicts["random"].tolerance
    assert not report.reproduced and report.counts()["different"] == 1


def test_the_cli_reruns_prints_the_comparison_and_fails_when_not_reproduced(repro_lab: labkit.Lab) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "labkit", "--lab", str(repro_lab.settings.root), *args],
                              capture_output=True, text=True, timeout=300, env=cli_environment(repro_lab.settings))

    good = repro_lab.wait([repro_lab.run("br77", "test")], timeout=120)[0]
    done = cli("rerun", good.id, "--timeout", "200")
    assert done.returncode == 0, done.stderr
    assert f"run {good.id} reproduced by" in done.stdout and "3 identical" in done.stdout
    assert "peak" in done.stdout and "identical" in done.stdout
    rerun_id = next(r.id for r in reversed(repro_lab.runs()) if r.rerun_of == good.id)
    shown = cli("show", rerun_id)
    assert shown.returncode == 0 and f"re-run of {good.id}" in shown.stdout and "reproduced by" in shown.stdout

    noisy = repro_lab.wait([repro_lab.run("br77", "noisy")], timeout=120)[0]
    failed = cli("rerun", noisy.id, "--timeout", "200")
    assert failed.returncode == 1 and "was NOT reproduced" in failed.stderr and "1 different" in failed.stderr
    assert "random" in failed.stdout and "different" in failed.stdout


def test_comparing_what_is_no_rerun_or_not_finished_says_so_and_changes_nothing(repro_lab: labkit.Lab) -> None:
    done = repro_lab.wait([repro_lab.run("br77", "test")], timeout=120)[0]
    before = repro_lab.count_runs()
    with pytest.raises(labkit.InvalidInput, match="is not a re-run of another run"):
        repro_lab.reproduction(done.id)
    with pytest.raises(labkit.NotFound, match="there is no run"):
        repro_lab.rerun("no-such-run")
    slow = repro_lab.rerun(done.id)
    with pytest.raises(labkit.InvalidInput, match="still (queued|running); wait for it to end"):
        repro_lab.reproduction(slow.id)
    assert repro_lab.count_runs() == before + 1
    repro_lab.wait([slow], timeout=120)


def test_an_output_comparison_handles_nan_units_shapes_and_missing_outputs() -> None:
    def output(values: list[float], units: str = "mV") -> OutputData:
        array = np.asarray(values, dtype=float)
        return OutputData("x", units, array.shape, "", array)

    assert compare_output(output([1.0, np.nan]), output([1.0, np.nan])).verdict == "identical"
    one_sided = compare_output(output([1.0, 2.0]), output([1.0, np.nan]))
    assert one_sided.verdict == "different" and one_sided.differing == 1 and "NaN on one side" in one_sided.note
    assert compare_output(output([1.0]), output([1.0], "ms")).note == "units 'ms' instead of 'mV'"
    assert compare_output(output([1.0, 2.0]), output([1.0])).verdict == "different"
    assert compare_output(output([1.0]), None).verdict == "missing"
    default = compare_output(output([100.0, 0.0]), output([100.0 + 5e-5, 5e-5]))
    assert default.verdict == "within tolerance", default  # one millionth of the largest value, 1e-4
    assert compare_output(output([100.0, 0.0]), output([100.0, 2e-4])).verdict == "different"
    declared = compare_output(output([10.0]), output([10.4]), (0.0, 0.05))
    assert declared.verdict == "within tolerance" and declared.max_rel == pytest.approx(0.04)
    assert compare_output(output([10.0]), output([10.6]), (0.0, 0.05)).verdict == "different"
