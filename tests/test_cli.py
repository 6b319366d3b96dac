"""The command line, run in-process through click's CliRunner against a real lab folder (and once as
a real subprocess, to see exactly what a user sees on stderr)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from notebooks import DEFAULT_INTERFACE, protocol_notebook

import labkit
from labkit.cellml import parse_cellml_file
from labkit.cli import main

TT06 = "ten_tusscher_model_2006_epi.cellml"
HH = "hodgkin_huxley_squid_axon_model_1952_modified.cellml"
IKR = "membrane_rapid_delayed_rectifier_potassium_current"
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE model [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<model xmlns="http://www.cellml.org/cellml/1.0#" name="m">
  <component name="c"><variable name="v" units="mV" initial_value="&secret;"/></component>
</model>
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``cli("list", "models")`` runs labkit on one lab folder."""
    for name in ("LAB", "DATABASE_URL", "BROKER_URL", "RESULT_BACKEND", "STORAGE_ROOT", "WORKERS", "USER"):
        monkeypatch.delenv(f"LABKIT_{name}", raising=False)
    monkeypatch.setenv("USER", "tester")
    lab_dir = tmp_path / "lab"
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, ["--lab", str(lab_dir), *args])

    run.lab_dir = lab_dir  # type: ignore[attr-defined]
    return run


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def one_line_error(result: Result, exit_code: int = 1) -> str:
    """A refusal: a non-zero exit, one 'Error: ...' line, no traceback."""
    assert result.exit_code == exit_code, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit)  # click's clean exit, not an escaped exception
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.fixture
def with_models(cli, models_dir: Path, tmp_path: Path):
    ok(cli("add", "model", str(models_dir / TT06), "--name", "tt06", "-m", "as published"))
    changed = tmp_path / TT06
    changed.write_bytes((models_dir / TT06).read_bytes() + b"\n<!-- v2 -->\n")
    ok(cli("add", "model", str(changed), "--name", "tt06", "-m", "with a comment", "--tag", "reviewed"))
    ok(cli("add", "model", str(models_dir / HH), "--name", "hh"))
    return cli


def test_add_model_reports_the_saved_version(cli, models_dir: Path) -> None:
    out = ok(cli("add", "model", str(models_dir / TT06), "--name", "tt06"))
    with labkit.Lab.open(cli.lab_dir) as lab:
        v = lab.version("model", "tt06")
    assert out == f"saved model tt06 v1 ({v.commit[:10]})\n"
    out = ok(cli("add", "model", str(models_dir / HH)))  # named after the file
    assert out.startswith(f"saved model {Path(HH).stem} v1 (")


def test_list_and_versions(with_models) -> None:
    cli = with_models
    lines = ok(cli("list", "models")).splitlines()
    assert [line.split()[0] for line in lines] == ["hh", "tt06"]
    assert lines[1].split()[1] == "v2" and lines[0].split()[1] == "v1"
    assert lines[1].rstrip().endswith("tester")
    versions = ok(cli("versions", "model", "tt06")).splitlines()
    assert len(versions) == 2
    assert versions[0].startswith("v1  ") and versions[0].endswith("as published")
    assert versions[1].startswith("v2  ") and versions[1].endswith("with a comment [reviewed]")
    with labkit.Lab.open(cli.lab_dir) as lab:
        assert versions[0].split()[1] == lab.version("model", "tt06", 1).commit
    assert ok(cli("list", "protocols")) == ""


def test_cat_gives_the_bytes_back(with_models, models_dir: Path) -> None:
    cli = with_models
    original = (models_dir / TT06).read_bytes()
    assert cli("cat", "model", "tt06", "--version", "1").stdout_bytes == original
    assert cli("cat", "model", "tt06").stdout_bytes == original + b"\n<!-- v2 -->\n"
    assert cli("cat", "model", "tt06", "--version", "reviewed").stdout_bytes == original + b"\n<!-- v2 -->\n"
    assert ok(cli("cat", "model", "tt06", "--list")) == f"{TT06}\n"


def test_tag_then_resolve_it(with_models) -> None:
    cli = with_models
    assert ok(cli("tag", "model", "tt06", "1", "paper")).startswith("tagged model tt06 v1 (")
    assert "[paper]" in ok(cli("versions", "model", "tt06")).splitlines()[0]
    error = one_line_error(cli("tag", "model", "tt06", "2", "paper"))
    assert "already has a tag 'paper' (on v1)" in error


def test_annotations_and_models_with(with_models, models_dir: Path) -> None:
    cli = with_models
    lines = ok(cli("annotations", "tt06")).splitlines()
    parsed = parse_cellml_file(models_dir / TT06)
    assert [tuple(line.split()) for line in lines] == sorted((a.term, f"{a.component}.{a.variable}")
                                                             for a in parsed.annotations)
    assert ok(cli("models-with", IKR)) == "tt06\n"
    assert ok(cli("models-with", "membrane_voltage")) == "hh\ntt06\n"
    assert ok(cli("models-with", "no_such_term")).strip() == ""


def test_compat_exits_0_when_compatible_and_1_with_the_missing_terms(with_models, tmp_path: Path) -> None:
    cli = with_models
    nb = tmp_path / "ca.ipynb"
    nb.write_bytes(protocol_notebook(interface=DEFAULT_INTERFACE.replace(
        "requires: [membrane_voltage]", "requires: [membrane_voltage, cytosolic_calcium_concentration, "
                                        "membrane_persistent_sodium_current]").replace(
        "optional: [cytosolic_calcium_concentration]", "optional: []")))
    out = ok(cli("add", "protocol", str(nb)))
    assert out.splitlines()[0].startswith("saved protocol ca v1 (") and len(out.splitlines()) == 1  # nothing fits

    result = cli("compat", "tt06", "ca")
    assert result.exit_code == 1
    assert result.stdout == "incompatible: the model does not annotate membrane_persistent_sodium_current\n"
    result = cli("compat", "hh", "ca")
    assert result.exit_code == 1
    assert result.stdout.strip().endswith("cytosolic_calcium_concentration, membrane_persistent_sodium_current")

    nb.write_bytes(protocol_notebook())
    out = ok(cli("add", "protocol", str(nb), "--name", "test"))
    assert out.splitlines()[1] == "2 experiment(s) implied: hh x test, tt06 x test"
    result = cli("compat", "tt06", "test")
    assert result.exit_code == 0 and result.stdout == "compatible\n"
    result = cli("compat", "hh", "test")
    assert result.exit_code == 0
    assert result.stdout == "compatible (optional terms not annotated: cytosolic_calcium_concentration)\n"


ERRORS = [
    (("versions", "model", "nope"), "Error: there is no model called 'nope'"),
    (("cat", "model", "nope"), "Error: there is no model called 'nope'"),
    (("annotations", "nope"), "Error: there is no model called 'nope'"),
    (("compat", "nope", "test"), "Error: there is no model called 'nope'"),
    (("cat", "model", "tt06", "--version", "9"), "Error: model tt06 has no version '9'; it has v1, v2"),
    (("cat", "model", "tt06", "--file", "notes.txt"), "Error: version "),
]


def test_an_error_is_one_line_and_exits_non_zero(with_models) -> None:
    for args, message in ERRORS:
        assert one_line_error(with_models(*args)).startswith(message), args


def test_adding_a_broken_cellml_prints_the_reason_stores_nothing_and_exits_non_zero(cli, tmp_path: Path) -> None:
    bad = tmp_path / "evil.cellml"
    bad.write_bytes(XXE)
    error = one_line_error(cli("add", "model", str(bad)))
    assert error.startswith("Error: not a usable CellML model: rejected DOCTYPE with entity declarations")
    bad.write_bytes(b"<model")
    assert "not well-formed XML" in one_line_error(cli("add", "model", str(bad)))
    assert ok(cli("list", "models")) == ""
    assert not (cli.lab_dir / "repos" / "models" / "evil.git").exists()


def test_a_refused_protocol_lists_every_problem(cli, tmp_path: Path) -> None:
    nb = tmp_path / "bad.ipynb"
    nb.write_bytes(protocol_notebook(body="c = = 3", tag_parameters=False))
    result = cli("add", "protocol", str(nb))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Error: the protocol failed its check:" in result.stderr
    assert "code cell 2 does not compile" in result.stderr and "no cell is tagged 'parameters'" in result.stderr
    assert ok(cli("list", "protocols")) == ""


def test_a_dataset_needs_its_protocol(cli, tmp_path: Path) -> None:
    csv = tmp_path / "trace.csv"
    csv.write_bytes(b"time (ms),voltage (mV)\n0,-85\n")
    result = cli("add", "dataset", str(csv))
    assert result.exit_code == 2 and "a dataset needs --protocol NAME" in result.output
    assert one_line_error(cli("add", "dataset", str(csv), "--protocol", "nope")).startswith(
        "Error: there is no protocol called 'nope'")
    nb = tmp_path / "test.ipynb"
    nb.write_bytes(protocol_notebook())
    ok(cli("add", "protocol", str(nb)))
    assert ok(cli("add", "dataset", str(csv), "--protocol", "test")).startswith("saved dataset trace v1 (")
    assert cli("cat", "dataset", "trace").stdout_bytes == csv.read_bytes()


def test_a_stale_parent_is_refused(with_models, models_dir: Path) -> None:
    cli = with_models
    with labkit.Lab.open(cli.lab_dir) as lab:
        v1 = lab.version("model", "tt06", 1).commit
    error = one_line_error(cli("add", "model", str(models_dir / TT06), "--name", "tt06", "--parent", v1[:10]))
    assert "was changed since version" in error and "the latest is v2" in error
    assert len(ok(cli("versions", "model", "tt06")).splitlines()) == 2


def test_a_broken_labkit_toml_is_one_line_not_a_traceback(cli) -> None:
    cli.lab_dir.mkdir(parents=True)
    (cli.lab_dir / "labkit.toml").write_text("[labkit]\nwokers = 4\n")
    assert "unknown settings ['wokers']" in one_line_error(cli("list", "models"))
    (cli.lab_dir / "labkit.toml").write_text("[labkit\n")
    assert "is not valid TOML" in one_line_error(cli("list", "models"))


def test_a_real_process_prints_no_traceback(tmp_path: Path, models_dir: Path) -> None:
    """What a user at a terminal sees: one line on stderr and exit status 1."""
    lab = tmp_path / "lab"
    result = subprocess.run([sys.executable, "-m", "labkit", "--lab", str(lab), "versions", "model", "nope"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "Error: there is no model called 'nope'; `labkit list models` shows what there is"]
