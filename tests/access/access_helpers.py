"""A lab with an owner, a collaborator, an outsider and a moderator, and the entities the permission
tests look at. Everything is real: SQLite, git repositories, the library's own calls."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from labs import lab_state  # noqa: F401  (the access tests import it from here)
from notebooks import protocol_notebook

import labkit
from labkit.demo.build import DEMO_MODELS

HH = DEMO_MODELS / "hodgkin_huxley_1952.cellml"
NOBLE = DEMO_MODELS / "noble_1962.cellml"
OUTSIDER, COLLABORATOR, MODERATOR = "outsider", "collaborator", "moderator"
HH_ONLY_TERM = "temperature"  # annotated by the HH model ("secret"), not by Noble ("open")
DATA_CSV = b"time (ms),doubled (mV),peak (mV)\n" + b"".join(f"{t},{2 * t},8\n".encode() for t in range(5))


@dataclass
class World:
    """The owner's lab and views of it acting for the other users.

    * model ``secret``: HH, private (the default), shared with the collaborator;
    * model ``open``: Noble, v1 public, v2 private and tagged ``draft``;
    * protocol ``test``: public; protocol ``hidden_protocol``: private, not shared;
    * dataset ``secret_data``: private, measures ``test``, shared with the collaborator;
    * dataset ``open_data``: public, measures ``hidden_protocol``.
    """

    owner: labkit.Lab
    collaborator: labkit.Lab
    outsider: labkit.Lab
    moderator: labkit.Lab

    def as_(self, role: str) -> labkit.Lab:
        return getattr(self, role)


ROLES = ("outsider", "collaborator", "owner")


def build_world(lab: labkit.Lab) -> World:
    lab.add_user(OUTSIDER, roles=["protocol-author"])  # so that they may try their own protocols on others' models
    lab.add_user(COLLABORATOR)
    lab.add_user(MODERATOR, moderator=True)
    lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test", visibility="public")
    lab.add_protocol({"hidden.ipynb": protocol_notebook()}, name="hidden_protocol")
    lab.add_model(HH, name="secret")
    lab.add_model(NOBLE, name="open", visibility="public")
    changed = NOBLE.read_bytes().replace(b"<model ", b"<!-- draft -->\n<model ", 1)
    lab.add_model({"noble_1962.cellml": changed}, name="open", message="draft change", tag="draft")
    lab.add_dataset({"data.csv": DATA_CSV}, protocol="test", name="secret_data")
    lab.add_dataset({"data.csv": DATA_CSV}, protocol="hidden_protocol", name="open_data", visibility="public")
    lab.share("model", "secret", COLLABORATOR)
    lab.share("dataset", "secret_data", COLLABORATOR)
    return World(lab, lab.as_user(COLLABORATOR), lab.as_user(OUTSIDER), lab.as_user(MODERATOR))


def error_of(call: Callable[[], Any], expected: type[Exception] = labkit.NotFound) -> str:
    with pytest.raises(expected) as err:
        call()
    return str(err.value)


def assert_looks_missing(call: Callable[[str], Any], hidden: str, missing: str = "no_such_thing") -> None:
    """``call(hidden)`` fails exactly as ``call(missing)`` does: same error class, same message once the
    names are swapped. An outsider cannot tell a hidden entity from one that does not exist."""
    hidden_message = error_of(lambda: call(hidden))
    missing_message = error_of(lambda: call(missing))
    assert hidden_message.replace(hidden, "NAME") == missing_message.replace(missing, "NAME")
