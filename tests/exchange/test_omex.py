"""COMBINE/OMEX archives: versions round-trip between labs unchanged (every shared model, a protocol,
a dataset), hostile or inconsistent archives are refused with nothing stored, and a folder imports in
bulk with a summary of what was refused and why."""
from __future__ import annotations

import json
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from labs import lab_state
from notebooks import protocol_notebook
from stacks import lab_settings

import labkit
from labkit.exchange import omex

DATASET = b"time (ms),doubled (mV)\n0,0\n1,2\n2,4\n"


@pytest.fixture
def second_lab(tmp_path: Path) -> Iterator[labkit.Lab]:
    """Another lab, on a database of its own on either stack."""
    with lab_settings() as stack, labkit.Lab.open(tmp_path / "other-lab", **stack) as other:
        yield other


def _same_version(a: labkit.Lab, b: labkit.Lab, kind: str, name: str) -> None:
    va, vb = a.version(kind, name), b.version(kind, name)
    assert (va.tags, va.message, va.main_file) == (vb.tags, vb.message, vb.main_file)
    assert a.files(kind, name) == b.files(kind, name)
    for file in a.files(kind, name):
        assert a.read_file(kind, name, va.number, file) == b.read_file(kind, name, vb.number, file), file


def _round_trip_models(lab: labkit.Lab, second_lab: labkit.Lab, models: list[Path], tmp_path: Path) -> None:
    for path in models:
        lab.add_model(path, message=f"from {path.name}")
        archive = lab.export_archive("model", path.stem, tmp_path / f"{path.stem}.omex")
        imported = second_lab.import_archive(archive)
        assert (imported.kind, imported.name) == ("model", path.stem)
        _same_version(lab, second_lab, "model", path.stem)
        assert second_lab.annotations(path.stem) == lab.annotations(path.stem)
        again = omex.read_archive(second_lab.export_archive("model", path.stem, tmp_path / f"{path.stem}-2.omex"))
        first = omex.read_archive(archive)
        assert again.files == first.files and again.master == first.master == path.name
        assert {k: v for k, v in again.description.items() if k != "commit"} == \
            {k: v for k, v in first.description.items() if k != "commit"}
    print(f"OMEX round trips: {len(models)} models")


def test_shared_models_round_trip_unchanged(lab: labkit.Lab, second_lab: labkit.Lab, models_dir: Path,
                                           tmp_path: Path) -> None:
    """Every tenth shared model here; all 49 with ``-m slow``."""
    _round_trip_models(lab, second_lab, sorted(models_dir.glob("*.cellml"))[::10], tmp_path)


@pytest.mark.slow
def test_every_shared_model_round_trips_unchanged(lab: labkit.Lab, second_lab: labkit.Lab, models_dir: Path,
                                                 tmp_path: Path) -> None:
    models = sorted(models_dir.glob("*.cellml"))
    assert len(models) == 49
    _round_trip_models(lab, second_lab, models, tmp_path)


def test_a_protocol_and_a_dataset_round_trip_with_their_tags_and_links(
        lab: labkit.Lab, second_lab: labkit.Lab, tmp_path: Path) -> None:
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test", tag="v-one", message="the test protocol")
    lab.tag("protocol", "test", 1, "stable")
    lab.add_dataset({"doubled.csv": DATASET}, name="data", protocol="test", message="measured")
    for kind, name in (("protocol", "test"), ("dataset", "data")):
        second_lab.import_archive(lab.export_archive(kind, name, tmp_path / f"{name}.omex"))
        _same_version(lab, second_lab, kind, name)
    assert set(second_lab.version("protocol", "test").tags) == {"v-one", "stable"}
    assert second_lab.dataset("data")["protocol"] == "test"
    manifest = zipfile.ZipFile(tmp_path / "test.omex").read("manifest.xml").decode()
    assert 'location="./test.ipynb"' in manifest and "x-ipynb+json" in manifest and 'master="true"' in manifest
    before = lab_state(second_lab)  # importing the same archive again changes nothing
    assert second_lab.import_archive(tmp_path / "test.omex").version.number == 1
    assert lab_state(second_lab) == before


def _zip(path: Path, entries: dict[str, bytes], *, symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


MANIFEST = ('<?xml version="1.0" encoding="UTF-8"?>\n<omexManifest xmlns="http://identifiers.org/combine.'
            'specifications/omex-manifest">\n<content location="." format="http://identifiers.org/combine.'
            'specifications/omex"/>\n{}</omexManifest>\n')


def _manifest(*locations: str) -> bytes:
    rows = "".join(f'<content location="./{loc}" format="{omex.file_format(loc)}" master="{str(i == 0).lower()}"/>\n'
                   for i, loc in enumerate(locations))
    return MANIFEST.format(rows).encode()


def test_hostile_or_inconsistent_archives_are_refused_and_store_nothing(lab: labkit.Lab, models_dir: Path,
                                                                      tmp_path: Path) -> None:
    model = (models_dir / "beeler_reuter_model_1977.cellml").read_bytes()
    good = {"manifest.xml": _manifest("m.cellml"), "m.cellml": model}
    cases = {
        "climbing out": ({**good, "../evil.cellml": model}, "without '..'"),
        "absolute": ({**good, "/etc/evil": b"x"}, "must be relative"),
        "no manifest": ({"m.cellml": model}, "no manifest.xml"),
        "manifest names a missing file": ({"manifest.xml": _manifest("m.cellml", "gone.csv"), "m.cellml": model},
                                          "which the archive does not hold"),
        "a file the manifest does not name": ({**good, "extra.txt": b"hidden"}, "does not name: extra.txt"),
        "zip bomb": ({"manifest.xml": _manifest("m.cellml", "bomb.txt"), "m.cellml": model,
                      "bomb.txt": b"\0" * (30 * 2**20)}, "a zip bomb"),
        "not a model": ({"manifest.xml": _manifest("m.cellml"), "m.cellml": b"<not cellml"},
                        "not-a-model.omex: not a usable CellML model"),
        "unknown kind": ({"manifest.xml": _manifest("m.cellml", "labkit.json"), "m.cellml": model,
                          "labkit.json": json.dumps({"kind": "spreadsheet"}).encode()}, "labkit reads model"),
    }
    before = lab_state(lab)
    for case, (entries, message) in cases.items():
        path = _zip(tmp_path / f"{case.replace(' ', '-')}.omex", entries)
        with pytest.raises(labkit.InvalidInput, match=message):
            lab.import_archive(path)
        assert lab_state(lab) == before, case
    with pytest.raises(labkit.InvalidInput, match="symbolic link"):
        lab.import_archive(_zip(tmp_path / "link.omex", good, symlink="m2.cellml"))
    (tmp_path / "plain.omex").write_bytes(b"just text")
    with pytest.raises(labkit.InvalidInput, match="not a zip file"):
        lab.import_archive(tmp_path / "plain.omex")
    with pytest.raises(labkit.InvalidInput, match="archives may be at most"):
        omex.read_archive(_zip(tmp_path / "big.omex", good), omex.Limits(archive_bytes=100))
    assert lab_state(lab) == before
    exported = lab.export_archive  # refusals on the way out too
    with pytest.raises(labkit.NotFound):
        exported("model", "no-such-model", tmp_path / "x.omex")
    (tmp_path / "taken.omex").write_bytes(b"mine")
    lab.add_model(models_dir / "beeler_reuter_model_1977.cellml", name="br")
    with pytest.raises(labkit.InvalidInput, match="already exists"):
        exported("model", "br", tmp_path / "taken.omex")
    assert (tmp_path / "taken.omex").read_bytes() == b"mine"


def test_a_folder_imports_in_bulk_with_a_summary_of_refusals(lab: labkit.Lab, models_dir: Path,
                                                            tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    with lab_settings() as stack, labkit.Lab.open(tmp_path / "source-lab", **stack) as source:
        source.add_model(models_dir / "beeler_reuter_model_1977.cellml", name="br")
        source.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
        source.export_archive("model", "br", folder / "a-br.omex")
        source.export_archive("protocol", "test", folder / "b-test.omex")
    (folder / "c-hh.cellml").write_bytes((models_dir / "hodgkin_huxley_squid_axon_model_1952_modified.cellml")
                                         .read_bytes())
    (folder / "d-broken.cellml").write_bytes(b"<model")
    _zip(folder / "e-evil.omex", {"manifest.xml": _manifest("m.cellml"), "../m.cellml": b"x"})
    (folder / "notes.txt").write_text("not imported, not counted")
    done = subprocess.run([sys.executable, "-m", "labkit", "--lab", str(lab.settings.root), "import", str(folder)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "imported a-br.omex: model br v1" in done.stdout and "imported b-test.omex: protocol test v1" in done.stdout
    assert "imported c-hh.cellml: model c-hh v1" in done.stdout
    assert "refused  d-broken.cellml:" in done.stdout and "refused  e-evil.omex:" in done.stdout
    assert "without '..'" in done.stdout and "3 imported, 2 refused" in done.stdout
    assert "importing incoming" in done.stderr and "5/5" in done.stderr  # the progress bar
    assert sorted(lab.names("model")) == ["br", "c-hh"] and lab.names("protocol") == ["test"]
