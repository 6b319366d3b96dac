"""Locating and reading the oxmeta ontology."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from labkit.cellml import OXMETA_NS, is_oxmeta_term, ontology_path, oxmeta_terms
from labkit.cellml.ontology import ENV_VAR, OntologyNotFoundError

SHARED_TTL = Path(__file__).resolve().parents[2] / ".." / "shared" / "webdata" / "oxford-metadata.ttl"


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """By default the installed chaste-codegen copy must be used."""
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_default_path_is_chaste_codegen_copy() -> None:
    path = ontology_path()
    assert path.is_file()
    assert path.as_posix().endswith("chaste_codegen/ontologies/oxford-metadata.ttl")


def test_expected_terms_are_defined() -> None:
    terms = oxmeta_terms()
    for term in (
        "membrane_voltage",
        "membrane_rapid_delayed_rectifier_potassium_current",
        "membrane_stimulus_current_amplitude",
        "time",
        "state_variable",
    ):
        assert term in terms
    assert "bath_potassium_concentration" not in terms  # used by some models, but not defined
    assert all(not t.startswith("http") and "#" not in t for t in terms)
    assert len(terms) > 150


def test_is_oxmeta_term() -> None:
    assert is_oxmeta_term("membrane_voltage")
    assert is_oxmeta_term(OXMETA_NS + "membrane_voltage")
    assert not is_oxmeta_term("membrane_voltage_typo")
    assert not is_oxmeta_term("")


def test_terms_are_cached() -> None:
    assert oxmeta_terms() is oxmeta_terms()


def test_env_var_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    if not SHARED_TTL.is_file():
        pytest.fail(f"shared ontology not found at {SHARED_TTL.resolve()}")
    monkeypatch.setenv(ENV_VAR, str(SHARED_TTL))
    assert ontology_path() == SHARED_TTL
    assert "membrane_voltage" in oxmeta_terms()
    assert oxmeta_terms(SHARED_TTL) == oxmeta_terms()


def test_env_var_to_missing_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "nope.ttl"
    monkeypatch.setenv(ENV_VAR, str(missing))
    with pytest.raises(OntologyNotFoundError) as info:
        ontology_path()
    text = str(info.value)
    assert ENV_VAR in text and str(missing) in text
    assert "pip install --no-deps chaste-codegen" in text
    with pytest.raises(FileNotFoundError):
        oxmeta_terms()


def test_missing_distribution_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dist(name: str) -> importlib.metadata.Distribution:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", no_dist)
    with pytest.raises(OntologyNotFoundError) as info:
        ontology_path()
    assert "pip install --no-deps chaste-codegen" in str(info.value)
    assert ENV_VAR in str(info.value)


def test_explicit_missing_path(tmp_path: Path) -> None:
    with pytest.raises(OntologyNotFoundError):
        oxmeta_terms(tmp_path / "missing.ttl")


def test_unparseable_ontology(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ttl"
    bad.write_text("this is @@@ not turtle <<<")
    with pytest.raises(ValueError, match="cannot parse oxmeta ontology"):
        oxmeta_terms(bad)
