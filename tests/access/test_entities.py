"""Reading entities as an outsider, a collaborator and the owner: the library's every read call.
These tests share one world and must not change it (writes are in test_editing.py)."""
from __future__ import annotations

import pytest
from access_helpers import HH_ONLY_TERM, World, assert_looks_missing, error_of

import labkit


def test_names_list_only_what_each_user_may_read(world: World) -> None:
    assert world.outsider.names("model") == ["open"]
    assert world.collaborator.names("model") == ["open", "secret"]
    assert world.owner.names("model") == ["open", "secret"]
    assert world.moderator.names("model") == ["open", "secret"]  # moderators read everything
    assert world.outsider.names("protocol") == world.collaborator.names("protocol") == ["test"]
    assert world.owner.names("protocol") == ["hidden_protocol", "test"]
    assert world.outsider.names("dataset") == ["open_data"]
    assert world.collaborator.names("dataset") == world.owner.names("dataset") == ["open_data", "secret_data"]


@pytest.mark.parametrize("call", [
    lambda lab, name: lab.versions("model", name),
    lambda lab, name: lab.version("model", name),
    lambda lab, name: lab.version("model", name, 1),
    lambda lab, name: lab.files("model", name),
    lambda lab, name: lab.read_file("model", name),
    lambda lab, name: lab.read_file("model", name, 1, "hodgkin_huxley_1952.cellml"),
    lambda lab, name: lab.annotations(name),
    lambda lab, name: lab.compatibility(name, "test"),
    lambda lab, name: lab.collaborators("model", name),
], ids=["versions", "version", "version-1", "files", "read_file", "read_file-named", "annotations",
        "compatibility", "collaborators"])
def test_a_private_model_is_missing_for_an_outsider_and_readable_by_the_others(world: World, call) -> None:
    assert_looks_missing(lambda name: call(world.outsider, name), "secret")
    assert call(world.collaborator, "secret") == call(world.owner, "secret")
    assert call(world.owner, "secret")  # something real came back


def test_a_private_protocol_and_dataset_are_missing_for_an_outsider(world: World) -> None:
    for lab in (world.outsider, world.collaborator):  # hidden_protocol is not shared at all
        assert_looks_missing(lambda name: lab.interface(name), "hidden_protocol")
        assert_looks_missing(lambda name: lab.read_file("protocol", name), "hidden_protocol")
        assert_looks_missing(lambda name: lab.compatibility("open", name), "hidden_protocol")
    assert world.owner.interface("hidden_protocol").title == "Test protocol"
    assert_looks_missing(lambda name: world.outsider.dataset(name), "secret_data")
    assert_looks_missing(lambda name: world.outsider.read_file("dataset", name), "secret_data")
    assert world.collaborator.dataset("secret_data") == world.owner.dataset("secret_data")
    assert world.owner.dataset("secret_data")["protocol"] == "test"


def test_a_public_dataset_does_not_name_the_private_protocol_it_measures(world: World) -> None:
    assert world.outsider.dataset("open_data")["protocol"] is None
    assert world.outsider.dataset("open_data")["rows"] == 5
    assert world.owner.dataset("open_data")["protocol"] == "hidden_protocol"


def test_an_outsider_sees_only_the_published_versions_and_their_latest(world: World) -> None:
    assert [v.number for v in world.outsider.versions("model", "open")] == [1]
    assert world.outsider.version("model", "open").number == 1  # "latest" for them
    assert world.outsider.version("model", "open").visibility == "public"
    assert [v.number for v in world.collaborator.versions("model", "open")] == [1]  # not shared with them
    assert [(v.number, v.visibility) for v in world.owner.versions("model", "open")] == [(1, "public"), (2, "private")]
    assert world.owner.version("model", "open").number == 2
    assert b"draft" not in world.outsider.read_file("model", "open")
    assert b"draft" in world.owner.read_file("model", "open")
    # the hidden version's number, tag and commit are as unknown as a version that does not exist
    hidden = world.owner.version("model", "open", 2)
    for ref in (2, "v2", "draft", hidden.commit[:10]):
        message = error_of(lambda: world.outsider.version("model", "open", ref))
        assert message == f"model open has no version {str(ref)!r}; it has v1 and tags []"
        assert "draft" not in error_of(lambda: world.outsider.version("model", "open", 7))


def test_models_with_term_counts_only_readable_latest_versions(world: World) -> None:
    assert world.outsider.models_with_term(HH_ONLY_TERM) == []
    assert world.collaborator.models_with_term(HH_ONLY_TERM) == ["secret"]
    assert world.owner.models_with_term(HH_ONLY_TERM) == ["secret"]
    shared_term = "membrane_capacitance"
    assert world.outsider.models_with_term(shared_term) == ["open"]
    assert world.owner.models_with_term(shared_term) == ["open", "secret"]


def test_an_unknown_user_reads_only_published_versions(world: World) -> None:
    stranger = world.owner.as_user("never_seen_before")
    assert stranger.names("model") == ["open"]
    assert_looks_missing(lambda name: stranger.version("model", name), "secret")


def test_as_user_refuses_a_name_that_cannot_be_a_user(world: World) -> None:
    for bad in ("", "two words", "a/b"):
        with pytest.raises(labkit.InvalidInput, match="not a user name"):
            world.owner.as_user(bad)
