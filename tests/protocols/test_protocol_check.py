"""The protocol check: a valid notebook's interface is parsed; an invalid one is refused with every
problem listed, and nothing is stored."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from notebooks import DEFAULT_INTERFACE, protocol_notebook
from proto_helpers import TT06, lab_state

import labkit
from labkit.protocols import Interface, OutputSpec, PlotSpec, ProtocolCheckError, check_protocol

EXPECTED = Interface(
    title="Test protocol", description="Writes two outputs after an optional pause.",
    requires=("membrane_voltage",), optional=("cytosolic_calcium_concentration",),
    outputs=(OutputSpec("time", "ms", "sample times", ("n",)),
             OutputSpec("doubled", "mV", "twice the time", ("n",)),
             OutputSpec("peak", "mV", "the largest doubled value", ())),
    plots=(PlotSpec("time", "doubled", "Doubled against time"),),
    parameters={"sleep": 0.0, "fail": False, "skip_doubled": False, "fail_late": False}, time_limit=None)


def refused(data: bytes) -> ProtocolCheckError:
    with pytest.raises(ProtocolCheckError) as err:
        check_protocol(data)
    assert str(err.value).startswith("the protocol failed its check:")
    for problem in err.value.problems:
        assert f"  - {problem}" in str(err.value)
    return err.value


# -- a valid protocol ---------------------------------------------------------------------------------
def test_a_valid_notebook_passes_and_its_interface_is_parsed() -> None:
    found = check_protocol(protocol_notebook())
    assert found == EXPECTED
    assert found.output("peak") == OutputSpec("peak", "mV", "the largest doubled value", ())
    assert found.output("nope") is None
    assert "model_path" not in found.parameters and "output_dir" not in found.parameters


def test_add_protocol_stores_the_interface_it_checked(lab: labkit.Lab) -> None:
    data = protocol_notebook()
    saved = lab.add_protocol({"test.ipynb": data}, name="test")
    assert saved.version.number == 1 and saved.version.main_file == "test.ipynb"
    assert lab.interface("test") == EXPECTED
    assert lab.interface("test", 1) == check_protocol(lab.read_file("protocol", "test"))
    assert lab.read_file("protocol", "test") == data


def test_time_limit_and_parameter_defaults_of_every_literal_kind() -> None:
    found = check_protocol(protocol_notebook(
        interface=DEFAULT_INTERFACE + "time_limit: 120\n",
        parameters="model_path = 'm.cellml'\noutput_dir: str = 'out'\nrate = 1000\nname = 'a'\n"
                   "levels = [1, 2.5]\nopts = {'x': (1, None)}\nflag: bool\n"))
    assert found.time_limit == 120
    assert found.parameters == {"rate": 1000, "name": "a", "levels": [1, 2.5], "opts": {"x": (1, None)},
                                "flag": None}


def test_ipython_magics_shell_escapes_and_top_level_await_are_not_syntax_errors() -> None:
    found = check_protocol(protocol_notebook(
        parameters="%load_ext autoreload\nmodel_path = 'm.cellml'\noutput_dir = 'out'\nbeats = 3\n",
        body="%matplotlib inline\n!ls -la\nimport asyncio\nawait asyncio.sleep(0)\nx = 1\n"))
    assert found.parameters == {"beats": 3}


# -- refusals -----------------------------------------------------------------------------------------
def test_a_missing_parameters_cell_is_refused_by_name() -> None:
    err = refused(protocol_notebook(tag_parameters=False))
    assert err.problems == ["no cell is tagged 'parameters' (papermill needs one to inject the model and settings)"]


def test_a_parameters_cell_must_define_model_path_and_output_dir() -> None:
    err = refused(protocol_notebook(parameters="model_path = 'm.cellml'\nrate = 1\n"))
    assert err.problems == ["the parameters cell must define 'output_dir'"]
    err = refused(protocol_notebook(parameters="model_path, output_dir = 'm', 'o'\n"))
    assert err.problems == ["the parameters cell must define 'model_path'",
                            "the parameters cell must define 'output_dir'"]


def test_a_parameter_default_must_be_a_literal() -> None:
    err = refused(protocol_notebook(parameters="model_path = 'm'\noutput_dir = 'o'\nrate = 2 * x\n"
                                               "table = {[]: 1}\n"))
    assert err.problems == ["parameter 'rate' must have a literal default value",
                            "parameter 'table' must have a literal default value"]


def test_a_syntax_error_is_refused_naming_the_cell_and_line() -> None:
    err = refused(protocol_notebook(body="a = 1\nb = 2\nc = = 3\n"))
    assert len(err.problems) == 1
    assert err.problems[0].startswith("code cell 2 does not compile: ")
    assert err.problems[0].endswith("(line 3)")


def test_a_syntax_error_in_the_parameters_cell_is_named_too() -> None:
    err = refused(protocol_notebook(parameters="model_path = 'm'\noutput_dir = 'o'\nrate = (\n"))
    assert any(p.startswith("code cell 1 does not compile") and p.endswith("(line 3)") for p in err.problems)


@pytest.mark.parametrize("data", [
    bytes(range(256)) * 8,
    b"",
    b"just some text",
    b'{"a": 1}',
    b"[1, 2, 3]",
    b'"a string"',
    b"42",
    b"null",
    json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": 5}).encode(),
    json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "x"}]}).encode(),
    json.dumps({"nbformat": 99, "nbformat_minor": 0, "metadata": {}, "cells": []}).encode(),
], ids=["random", "empty", "text", "object", "list", "string", "number", "null", "cells-not-list",
        "bad-cell", "nbformat-99"])
def test_what_is_not_a_notebook_is_refused(data: bytes) -> None:
    err = refused(data)
    assert len(err.problems) == 1 and err.problems[0].startswith("not a valid Jupyter notebook (nbformat 4)")


def test_a_cellml_file_is_not_a_protocol(models_dir: Path) -> None:
    err = refused((models_dir / TT06).read_bytes())
    assert err.problems[0].startswith("not a valid Jupyter notebook")


def test_an_interface_term_outside_oxmeta_is_refused_naming_it() -> None:
    err = refused(protocol_notebook(interface=DEFAULT_INTERFACE.replace(
        "requires: [membrane_voltage]", "requires: [membrane_voltage, membrane_voltagee]").replace(
        "optional: [cytosolic_calcium_concentration]", "optional: [calcium_in_the_cytosol]")))
    assert err.problems == ["'membrane_voltagee' is not a term of the oxmeta ontology",
                            "'calcium_in_the_cytosol' is not a term of the oxmeta ontology"]


@pytest.mark.parametrize("spec", ["{description: no units}", "{units: ''}", "{units: 3}", "mV"])
def test_an_output_without_units_is_refused(spec: str) -> None:
    err = refused(protocol_notebook(interface=DEFAULT_INTERFACE.replace(
        "peak: {units: mV, description: the largest doubled value}", f"peak: {spec}")))
    assert err.problems == ["output 'peak' must give its units (use 'dimensionless' for pure numbers)"]


def test_a_plot_of_an_undeclared_output_is_refused() -> None:
    err = refused(protocol_notebook(interface=DEFAULT_INTERFACE.replace(
        "{x: time, y: doubled, title: Doubled against time}", "{x: time, y: voltage}")))
    assert err.problems == ["plot y='voltage' is not a declared output"]


@pytest.mark.parametrize("yaml_text, problem", [
    ("title: t\noutputs: {a: {units: ms}}\nrequire: [membrane_voltage]\n", "unknown key 'require'"),
    ("title: t\noutputs: {a: {units: ms}}\n1: x\nfoo: y\n", "unknown key 1"),
    ("outputs: {a: {units: ms}}\n", "needs a title"),
    ("title: t\n", "must declare its outputs"),
    ("title: t\noutputs: {a: {units: ms}}\nrequires: membrane_voltage\n", "'requires' must be a list"),
    ("title: t\noutputs: {a: {units: ms, shape: 3}}\n", "shape must be a list"),
    ("title: t\noutputs: {a: {units: ms}}\ntime_limit: -5\n", "'time_limit' must be a finite, positive number"),
    ("title: t\noutputs: {a: {units: ms}}\ntime_limit: true\n", "'time_limit' must be a finite, positive number"),
    ("title: t\noutputs: {a: {units: ms}}\ntime_limit: .inf\n", "'time_limit' must be a finite, positive number"),
    ("title: t\noutputs: {a: {units: ms}}\ntime_limit: .nan\n", "'time_limit' must be a finite, positive number"),
    ("title: t\noutputs: {a: {units: ms}}\ntime_limit: 1000000000\n", "at most 604800 (a week); got 1000000000"),
    ("title: t\noutputs: {a: {units: ms}}\nplots: [{x: a}]\n", "must name an output for x and one for y"),
    ("title: t\noutputs: {a: {units: ms, tolerance: 0.1}}\n", "tolerance must be {abs: A, rel: R}"),
    ("title: t\noutputs: {a: {units: ms, tolerance: {abs: -1}}}\n", "tolerance must be {abs: A, rel: R}"),
    ("title: t\noutputs: {a: {units: ms, tolerance: {rel: .nan}}}\n", "tolerance must be {abs: A, rel: R}"),
    ("title: t\noutputs: {a: {units: ms, tolerance: {relative: 0.1}}}\n", "tolerance must be {abs: A, rel: R}"),
    ("title: t\noutputs: {a: {units: ms, tolerance: {abs: true}}}\n", "tolerance must be {abs: A, rel: R}"),
    ("- a list\n", "must be a YAML mapping"),
    ("title: [unclosed\n", "not valid YAML"),
])
def test_a_malformed_interface_is_refused_with_its_problem(yaml_text: str, problem: str) -> None:
    err = refused(protocol_notebook(interface=yaml_text))
    assert any(problem in p for p in err.problems), err.problems


def test_the_interface_cell_must_exist_once() -> None:
    nb = nbformat.reads(protocol_notebook().decode(), as_version=4)
    nb.cells[0].metadata["tags"] = []
    err = refused(nbformat.writes(nb).encode())
    assert err.problems == ["exactly one raw cell must be tagged 'interface' (found 0)"]
    nb.cells[0].metadata["tags"] = ["interface"]
    nb.cells.append(nbformat.v4.new_raw_cell(nb.cells[0].source, metadata={"tags": ["interface"]}))
    assert refused(nbformat.writes(nb).encode()).problems == \
        ["exactly one raw cell must be tagged 'interface' (found 2)"]


def test_every_problem_is_listed_at_once() -> None:
    bad_interface = DEFAULT_INTERFACE.replace("[membrane_voltage]", "[not_a_term]").replace(
        "peak: {units: mV, description: the largest doubled value}", "peak: {description: unitless}").replace(
        "{x: time, y: doubled, title: Doubled against time}", "{x: clock, y: doubled}")
    err = refused(protocol_notebook(interface=bad_interface, body="def broken(:\n    pass\n",
                                    tag_parameters=False))
    expected = ["code cell 2 does not compile", "no cell is tagged 'parameters'", "output 'peak' must give its units",
                "plot x='clock' is not a declared output", "'not_a_term' is not a term of the oxmeta ontology"]
    assert len(err.problems) == len(expected)
    for part in expected:
        assert sum(part in p for p in err.problems) == 1, (part, err.problems)
        assert part in str(err)


# -- nothing stored on refusal ---------------------------------------------------------------------------
REFUSED = [
    protocol_notebook(tag_parameters=False),
    protocol_notebook(body="c = = 3"),
    protocol_notebook(interface=DEFAULT_INTERFACE.replace("[membrane_voltage]", "[not_a_term]")),
    b"[1, 2, 3]",
    bytes(range(256)),
]


def test_a_refused_protocol_stores_nothing(lab: labkit.Lab) -> None:
    lab.add_protocol({"good.ipynb": protocol_notebook()}, name="good")
    before = lab_state(lab)
    for data in REFUSED:
        with pytest.raises(ProtocolCheckError):
            lab.add_protocol({"bad.ipynb": data}, name="bad")
        with pytest.raises(ProtocolCheckError):  # nor as a new version of an existing protocol
            lab.add_protocol({"good.ipynb": data}, name="good")
    assert lab_state(lab) == before
    assert lab.names("protocol") == ["good"]
    assert [v.number for v in lab.versions("protocol", "good")] == [1]
    assert not (lab.settings.repositories / "protocols" / "bad.git").exists()


def test_a_protocol_main_file_must_be_a_notebook(lab: labkit.Lab) -> None:
    before = lab_state(lab)
    with pytest.raises(labkit.InvalidInput, match=r"\.ipynb"):
        lab.add_protocol({"p.py": protocol_notebook()}, name="p")
    assert lab_state(lab) == before
