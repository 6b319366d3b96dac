"""Writing as an outsider, a collaborator and the owner: new versions, tags, visibility and sharing.
A refusal says what to do next and changes nothing (every table row and every git ref compared)."""
from __future__ import annotations

import pytest
from access_helpers import COLLABORATOR, HH, NOBLE, OUTSIDER, World, assert_looks_missing, error_of, lab_state

import labkit


def _new_hh(comment: str) -> dict[str, bytes]:
    return {"hodgkin_huxley_1952.cellml": HH.read_bytes().replace(b"<model ", f"<!-- {comment} -->\n<model ".encode(), 1)}


def test_only_the_owner_and_collaborators_add_versions(fresh: World) -> None:
    before = lab_state(fresh.owner)
    message = error_of(lambda: fresh.outsider.add_model(_new_hh("outsider"), name="secret"), labkit.Forbidden)
    assert "only its owner and the collaborators" in message and "labkit share model secret outsider" in message
    public_refusal = error_of(lambda: fresh.outsider.add_model(NOBLE, name="open"), labkit.Forbidden)
    # a hidden name and a readable one are refused alike: the refusal does not tell them apart
    assert message.replace("secret", "X") == public_refusal.replace("open", "X")
    assert lab_state(fresh.owner) == before
    saved = fresh.collaborator.add_model(_new_hh("collaborator"), name="secret", message="by the collaborator")
    assert (saved.version.number, saved.version.author) == (2, COLLABORATOR)
    assert fresh.owner.version("model", "secret").author == COLLABORATOR
    assert fresh.owner.add_model(_new_hh("owner"), name="secret").version.number == 3


def test_an_outsider_may_create_entities_of_their_own_and_they_are_private(fresh: World) -> None:
    saved = fresh.outsider.add_model(HH, name="mine")
    assert saved.version.visibility == "private"
    assert fresh.outsider.names("model") == ["mine", "open"]
    assert "mine" not in fresh.collaborator.names("model")
    assert "mine" in fresh.moderator.names("model")
    assert "mine" not in fresh.owner.names("model")  # the lab's operator is not a moderator


def test_a_dataset_must_measure_a_protocol_its_author_may_read(fresh: World) -> None:
    before = lab_state(fresh.owner)
    data = fresh.owner.read_file("dataset", "secret_data")
    assert_looks_missing(lambda name: fresh.outsider.add_dataset({"d.csv": data}, protocol=name, name="d"),
                         "hidden_protocol")
    assert lab_state(fresh.owner) == before
    assert fresh.outsider.add_dataset({"d.csv": data}, protocol="test", name="d").version.number == 1


def test_only_the_owner_and_collaborators_tag(fresh: World) -> None:
    before = lab_state(fresh.owner)
    assert_looks_missing(lambda name: fresh.outsider.tag("model", name, 1, "mine"), "secret")
    assert "only its owner" in error_of(lambda: fresh.outsider.tag("model", "open", 1, "mine"), labkit.Forbidden)
    assert "only its owner" in error_of(lambda: fresh.outsider.add_model(NOBLE, name="open", tag="t"),
                                        labkit.Forbidden)
    assert lab_state(fresh.owner) == before
    assert fresh.collaborator.tag("model", "secret", 1, "checked").tags == ("checked",)
    assert fresh.owner.tag("model", "secret", 1, "published").tags == ("checked", "published")


def test_the_owner_publishes_a_version_and_everyone_then_reads_it(fresh: World) -> None:
    before = lab_state(fresh.owner)
    assert_looks_missing(lambda name: fresh.outsider.set_visibility("model", name, 1, "public"), "secret")
    assert "only the owner" in error_of(lambda: fresh.collaborator.set_visibility("model", "secret", 1, "public"),
                                        labkit.Forbidden)
    assert "only the owner" in error_of(lambda: fresh.outsider.set_visibility("model", "open", 1, "private"),
                                        labkit.Forbidden)
    assert "unknown visibility 'open'" in error_of(
        lambda: fresh.owner.set_visibility("model", "secret", 1, "open"), labkit.InvalidInput)
    assert lab_state(fresh.owner) == before
    assert fresh.owner.set_visibility("model", "secret", 1, "public").visibility == "public"
    assert fresh.outsider.names("model") == ["open", "secret"]
    assert fresh.outsider.read_file("model", "secret") == HH.read_bytes()
    fresh.owner.set_visibility("model", "secret", "latest", "private")
    assert fresh.outsider.names("model") == ["open"]


def test_only_a_moderator_grants_moderated_and_a_refusal_changes_nothing(fresh: World) -> None:
    fresh.owner.set_visibility("model", "secret", 1, "public")
    before = lab_state(fresh.owner)
    for lab in (fresh.owner, fresh.collaborator, fresh.outsider):
        message = error_of(lambda: lab.set_visibility("model", "secret", 1, "moderated"), labkit.Forbidden)
        assert message.startswith("only a moderator may make a version moderated")
    with pytest.raises(labkit.InvalidInput, match="cannot be saved as moderated"):
        fresh.owner.add_model(_new_hh("x"), name="secret", visibility="moderated")
    assert lab_state(fresh.owner) == before
    assert fresh.moderator.set_visibility("model", "secret", 1, "moderated").visibility == "moderated"
    assert fresh.outsider.version("model", "secret").visibility == "moderated"
    # the owner may still take their version back out of view
    assert fresh.owner.set_visibility("model", "secret", 1, "private").visibility == "private"


def test_only_the_owner_shares_and_only_with_known_users(fresh: World) -> None:
    before = lab_state(fresh.owner)
    assert_looks_missing(lambda name: fresh.outsider.share("model", name, OUTSIDER), "secret")
    assert "only the owner" in error_of(lambda: fresh.collaborator.share("model", "secret", OUTSIDER),
                                        labkit.Forbidden)
    assert "only the owner" in error_of(lambda: fresh.outsider.share("model", "open", OUTSIDER), labkit.Forbidden)
    assert "labkit user add nobody" in error_of(lambda: fresh.owner.share("model", "secret", "nobody"))
    assert lab_state(fresh.owner) == before
    assert fresh.owner.share("model", "secret", OUTSIDER) == [COLLABORATOR, OUTSIDER]
    assert fresh.outsider.names("model") == ["open", "secret"]
    assert fresh.outsider.add_model(_new_hh("now shared"), name="secret").version.number == 2
    assert fresh.owner.unshare("model", "secret", OUTSIDER) == [COLLABORATOR]
    assert fresh.outsider.names("model") == ["open"]
    assert fresh.owner.collaborators("model", "secret") == (fresh.owner.user, [COLLABORATOR])
