"""Datasets: CSV files whose headers give units, linked to the protocol whose outputs they measure."""
from __future__ import annotations

import pytest
from notebooks import protocol_notebook
from store_helpers import git, lab_state

import labkit
from labkit.errors import InvalidInput, NotFound

TRACE = b"time (ms),voltage (mV)\n0,-85.2\n1,-84.9\n2,20.5\n"


@pytest.fixture
def lab_with_protocol(lab: labkit.Lab) -> labkit.Lab:
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
    return lab


def test_a_dataset_is_stored_with_its_columns_units_and_protocol(lab_with_protocol: labkit.Lab) -> None:
    lab = lab_with_protocol
    saved = lab.add_dataset({"trace.csv": TRACE}, protocol="test", name="trace", message="patch clamp")
    assert saved.version.number == 1 and saved.version.main_file == "trace.csv"
    assert saved.planned == []  # datasets imply no experiments
    assert lab.dataset("trace") == {
        "protocol": "test", "rows": 3,
        "columns": [{"name": "time", "units": "ms"}, {"name": "voltage", "units": "mV"}]}
    assert lab.read_file("dataset", "trace") == TRACE
    assert lab.names("dataset") == ["trace"]
    assert git(lab.settings.repositories / "datasets" / "trace.git", "rev-list", "--count", "main") == "1"


def test_a_dataset_version_keeps_the_older_one(lab_with_protocol: labkit.Lab) -> None:
    lab = lab_with_protocol
    lab.add_dataset({"trace.csv": TRACE}, protocol="test", name="trace")
    longer = TRACE + b"3,10.0\n"
    assert lab.add_dataset({"trace.csv": longer}, protocol="test", name="trace").version.number == 2
    assert lab.dataset("trace", 1)["rows"] == 3 and lab.dataset("trace")["rows"] == 4
    assert lab.read_file("dataset", "trace", 1) == TRACE and lab.read_file("dataset", "trace") == longer


def test_trailing_commas_do_not_shift_values_into_the_wrong_column(lab_with_protocol: labkit.Lab) -> None:
    """Spreadsheets often end rows with a comma; the values still belong to the named columns."""
    data = b"time (ms),voltage (mV),\n0,-85,\n1,-84,\n"
    with pytest.raises(InvalidInput, match="must give its units"):  # the unnamed third column
        lab_with_protocol.add_dataset({"t.csv": data}, protocol="test", name="t")
    data = b"time (ms),voltage (mV)\n0,-85,\n1,-84,\n"
    lab_with_protocol.add_dataset({"t.csv": data}, protocol="test", name="t")
    assert lab_with_protocol.dataset("t")["rows"] == 2
    # a word in the time column is still seen in the time column (not taken as a row label)
    with pytest.raises(InvalidInput, match=r"\['time \(ms\)'\] hold values that are not numbers"):
        lab_with_protocol.add_dataset({"t.csv": b"time (ms),voltage (mV)\nstart,-85,\n1,-84,\n"},
                                      protocol="test", name="t")
    assert lab_with_protocol.dataset("t")["rows"] == 2 and len(lab_with_protocol.versions("dataset", "t")) == 1


def test_square_brackets_comments_and_spaces_in_headers_are_understood(lab_with_protocol: labkit.Lab) -> None:
    data = b"# recorded 2024-01-01\n time [ms] , calcium (uM)\n0,0.1\n1,0.4\n"
    lab_with_protocol.add_dataset({"ca.csv": data}, protocol="test", name="ca")
    assert lab_with_protocol.dataset("ca")["columns"] == [{"name": "time", "units": "ms"},
                                                          {"name": "calcium", "units": "uM"}]


UNUSABLE = [
    (b"time,voltage\n0,-85\n", r"column 'time' must give its units.*column 'voltage' must give its units"),
    (b"time (ms),voltage\n0,-85\n", r"column 'voltage' must give its units"),
    (b"time (ms),voltage (mV)\n0,-85\n1,high\n", r"\['voltage \(mV\)'\] hold values that are not numbers"),
    (b"time (ms),label (1)\n0,a\n1,b\n", r"not numbers"),
    (b"", r"not a readable CSV file"),
    (b"time (ms),voltage (mV)\n", r"header but no rows"),
    (b"time (ms),voltage (mV)\n0,1,2,3\n1,2\n", r"not a readable CSV file"),  # not an index
    (b"time (ms),voltage (mV)\n0,1\n1,2,3\n", r"not a readable CSV file"),
    (b"time (ms)\n\xff\xfe\x00\x01\n", r"not a readable CSV file|not numbers"),
]


def test_an_unusable_csv_is_refused_with_a_clear_message_and_nothing_stored(lab_with_protocol: labkit.Lab) -> None:
    lab = lab_with_protocol
    before = lab_state(lab)
    for data, message in UNUSABLE:
        with pytest.raises(InvalidInput, match=message):
            lab.add_dataset({"bad.csv": data}, protocol="test", name="bad")
    assert lab_state(lab) == before
    assert lab.names("dataset") == []
    assert not (lab.settings.repositories / "datasets" / "bad.git").exists()


def test_a_dataset_for_a_protocol_that_does_not_exist_is_refused(lab_with_protocol: labkit.Lab) -> None:
    lab = lab_with_protocol
    before = lab_state(lab)
    with pytest.raises(NotFound, match="there is no protocol called 'pacing'"):
        lab.add_dataset({"trace.csv": TRACE}, protocol="pacing", name="trace")
    with pytest.raises(InvalidInput, match="must name the protocol"):
        lab.store.save("dataset", "trace", {"trace.csv": TRACE}, author="a")
    assert lab_state(lab) == before
    assert not (lab.settings.repositories / "datasets" / "trace.git").exists()


def test_a_dataset_linked_to_a_model_name_is_refused(lab_with_protocol: labkit.Lab, models_dir) -> None:
    lab = lab_with_protocol
    lab.add_model(models_dir / "ten_tusscher_model_2006_epi.cellml", name="tt06")
    before = lab_state(lab)
    with pytest.raises(NotFound, match="no protocol called 'tt06'"):
        lab.add_dataset({"trace.csv": TRACE}, protocol="tt06", name="trace")
    assert lab_state(lab) == before


def test_a_dataset_main_file_must_be_csv(lab_with_protocol: labkit.Lab) -> None:
    before = lab_state(lab_with_protocol)
    with pytest.raises(InvalidInput, match=r"\.csv"):
        lab_with_protocol.add_dataset({"trace.txt": TRACE}, protocol="test", name="trace")
    assert lab_state(lab_with_protocol) == before
