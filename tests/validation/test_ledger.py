"""The validation ledger: our outputs kept under a key of everything that made them, so that a
validation can be finished over several sittings. The end-to-end use (a lab with no workers judging
from a ledger) is in tests/validation/test_subset.py."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from labkit.errors import InvalidInput
from labkit.validation.ledger import Ledger, StoredOutput, code_fingerprint, entry_key

PACKAGE = Path(__file__).resolve().parents[2] / "labkit"


def _outputs() -> dict[str, StoredOutput]:
    return {"APD90": StoredOutput(np.array([[250.5, np.nan], [1e-300, -3.25]]), "ms"),
            "num_paces": StoredOutput(np.array(17.0), "dimensionless")}


def test_outputs_survive_a_save_and_a_load_exactly(tmp_path: Path) -> None:
    ledger = Ledger.load(tmp_path / "ledger.json")
    assert ledger.entries == {}  # no file yet: an empty ledger
    ledger.record("m", "P", "k1", status="success", run="r1", seconds=12.5, outputs=_outputs())
    ledger.save()
    again = Ledger.load(tmp_path / "ledger.json")
    entry = again.find("m", "P", "k1")
    assert entry is not None and (entry.status, entry.run, entry.seconds) == ("success", "r1", 12.5)
    np.testing.assert_array_equal(entry.outputs["APD90"].values, _outputs()["APD90"].values)  # NaN where NaN
    assert entry.outputs["APD90"].units == "ms" and entry.outputs["num_paces"].values.shape == ()
    assert again.find("m", "P", "another key") is None  # other inputs or code: not this entry
    assert again.find("other model", "P", "k1") is None


def test_a_failed_run_is_kept_with_its_error_and_judged_a_fail(tmp_path: Path) -> None:
    from labkit.validation.reference import ReferenceOutput
    from labkit.validation.run import judge

    ledger = Ledger.load(tmp_path / "ledger.json")
    ledger.record("m", "IK1_block", "k1", status="failed", run="r1", seconds=3.0, outputs={},
                  error="SimulationError: CV_CONV_FAILURE")
    ledger.record("m", "IKr_block", "k2", status="failed", run="r2", seconds=1.0, outputs={},
                  error="MissingTermError: no membrane_rapid_delayed_rectifier_potassium_current")
    ledger.save()
    again = Ledger.load(tmp_path / "ledger.json")
    failed = again.find("m", "IK1_block", "k1")
    assert failed is not None and failed.failed and failed.outputs == {}
    assert failed.error == "SimulationError: CV_CONV_FAILURE"

    reference = ReferenceOutput("m", "IK1_block", "scaled_APD90", "APD90 scaled", np.array([100.0, 90.0]), tmp_path / "x.csv")
    verdict = judge(None, reference, failed)  # type: ignore[arg-type]  # a ledger entry needs no lab
    assert verdict.verdict == "fail" and "CV_CONV_FAILURE" in verdict.reason and verdict.ledger is failed
    missing = again.find("m", "IKr_block", "k2")
    assert judge(None, dataclasses.replace(reference, protocol="IKr_block"), missing).verdict == "inapplicable"  # type: ignore[arg-type]


def test_the_key_changes_with_every_input() -> None:
    base = entry_key(b"model", b"notebook", {"a": 1, "b": 2}, "code")
    assert entry_key(b"model", b"notebook", {"b": 2, "a": 1}, "code") == base  # order does not matter
    for changed in [entry_key(b"model2", b"notebook", {"a": 1, "b": 2}, "code"),
                    entry_key(b"model", b"notebook2", {"a": 1, "b": 2}, "code"),
                    entry_key(b"model", b"notebook", {"a": 1, "b": 3}, "code"),
                    entry_key(b"model", b"notebook", {"a": 1, "b": 2}, "code2")]:
        assert changed != base


def test_the_code_fingerprint_follows_the_simulation_code(tmp_path: Path) -> None:
    copy = tmp_path / "labkit"
    for folder in ("sim", "results"):
        shutil.copytree(PACKAGE / folder, copy / folder)
    assert code_fingerprint(copy) == code_fingerprint()
    (copy / "results" / "store.py").write_text("# where predictions are kept does not change them\n")
    assert code_fingerprint(copy) == code_fingerprint()
    with open(copy / "results" / "outputs.py", "a") as source:
        source.write("\n# a change to the output writer\n")
    changed_writer = code_fingerprint(copy)
    assert changed_writer != code_fingerprint()
    shutil.copy(PACKAGE / "results" / "outputs.py", copy / "results" / "outputs.py")
    with open(copy / "sim" / "analysis.py", "a") as source:
        source.write("\n# a change to the simulation code\n")
    assert code_fingerprint(copy) != code_fingerprint()


def test_a_file_that_is_not_a_ledger_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.json"
    for text in ['{"entries": []}', "not json", '{"format": 1, "entries": [{"model": "m"}]}']:
        path.write_text(text)
        with pytest.raises(InvalidInput, match="not a labkit validation ledger"):
            Ledger.load(path)
        assert path.read_text() == text


def test_validate_refuses_a_bad_ledger_before_opening_the_lab(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from shared_data import webdata

    from labkit.cli import main
    bad = tmp_path / "ledger.json"
    bad.write_text("not json")
    result = CliRunner().invoke(main, ["--lab", str(tmp_path / "lab"), "validate", "--reference",
                                       str(webdata() / "reference"), "--ledger", str(bad)])
    assert result.exit_code == 1 and "not a labkit validation ledger" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "lab").exists() and bad.read_text() == "not json"
