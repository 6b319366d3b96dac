"""The experiment matrix runs each pair of versions once, as the Web Lab did (no workers needed)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
from notebooks import protocol_notebook

import labkit


def _seed(lab: labkit.Lab, models_dir: Path) -> None:
    lab.add_model(models_dir / "hodgkin_huxley_squid_axon_model_1952_modified.cellml", name="hh")
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")


def test_the_matrix_returns_the_pairs_already_run_instead_of_queuing_them_again(lab: labkit.Lab,
                                                                               models_dir: Path) -> None:
    _seed(lab, models_dir)
    [first] = lab.run_matrix()
    assert first.status == "queued"
    assert [r.id for r in lab.run_matrix()] == [first.id]  # queued already: shown, not queued twice
    assert len(lab.runs()) == 1

    [forced] = lab.run_matrix(rerun=True)
    assert forced.id != first.id and len(lab.runs()) == 2
    assert [r.id for r in lab.run_matrix()] == [forced.id]  # the newest of the pair's runs

    lab.cancel(first.id)
    lab.cancel(forced.id)
    [after_cancel] = lab.run_matrix()  # a cancelled run is no result: the pair is queued again
    assert after_cancel.id not in (first.id, forced.id) and after_cancel.status == "queued"


def test_a_new_version_or_other_parameters_are_not_taken_for_the_matrix_run(lab: labkit.Lab,
                                                                          models_dir: Path) -> None:
    _seed(lab, models_dir)
    with_parameters = lab.run("hh", "test", {"sleep": 1.0})
    [matrix_run] = lab.run_matrix()
    assert matrix_run.id != with_parameters.id  # a run with other parameters is another experiment

    notebook = nbformat.reads(protocol_notebook().decode(), as_version=4)
    notebook.cells.append(nbformat.v4.new_markdown_cell("A second version."))
    lab.add_protocol({"test.ipynb": nbformat.writes(notebook).encode()}, name="test")
    [on_new_version] = lab.run_matrix()
    assert on_new_version.id != matrix_run.id and on_new_version.protocol_version == 2


def test_the_cli_matrix_reruns_only_when_asked(tmp_path: Path, models_dir: Path) -> None:
    root = tmp_path / "lab"
    with labkit.Lab.open(root) as lab:
        _seed(lab, models_dir)

    def matrix(*flags: str) -> list[str]:
        done = subprocess.run([sys.executable, "-m", "labkit", "--lab", str(root), "matrix", "--no-wait", *flags],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        with labkit.Lab.open(root) as lab:
            return sorted(r.id for r in lab.runs())

    once = matrix()
    assert len(once) == 1 and matrix() == once
    assert len(matrix("--rerun")) == 2
