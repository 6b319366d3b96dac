"""Fixtures of the permission tests: one world per module for the tests that only read, a fresh one
per test for those that write."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from access_helpers import World, build_world
from stacks import lab_settings

import labkit


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A world the module's tests only read (they must not change it)."""
    with lab_settings() as stack, labkit.Lab.open(tmp_path_factory.mktemp("access") / "lab", **stack) as lab:
        yield build_world(lab)


@pytest.fixture
def fresh(lab: labkit.Lab) -> World:
    """A world of its own, for a test that changes it."""
    return build_world(lab)
