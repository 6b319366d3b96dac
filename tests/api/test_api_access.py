"""Users, visibility and sharing through the REST API, with labkit tokens: what another user cannot
see is 404 (as if missing), what they can see but may not do is 403, and refusals change nothing.
The rules are the library's (labkit.access); these tests check the API passes them on faithfully."""
from __future__ import annotations

from pathlib import Path

import pytest

import labkit

from .client import Api


@pytest.fixture(scope="module")
def people(api: Api, api_lab: labkit.Lab) -> dict[str, Api]:
    """alice and bob (plain users), mod (a moderator) and boss (an admin), each with a labkit token."""
    clients = {}
    for name, roles in (("alice", []), ("bob", []), ("mod", ["moderator"]), ("boss", ["admin"])):
        api_lab.add_user(name, roles=roles)
        clients[name] = api.as_token(api_lab.create_token(name))
    return clients


@pytest.fixture(scope="module")
def alice_model(people: dict[str, Api], model_file: Path) -> str:
    """A model alice saved privately (the lab's default visibility)."""
    with open(model_file, "rb") as f:
        saved = people["alice"].ok("POST", "/models/alice-model/versions", 201, files={"file": f})
    assert saved["version"]["visibility"] == "private"
    return "alice-model"


@pytest.fixture(scope="module")
def model_file() -> Path:
    from shared_data import webdata
    return webdata() / "models" / "hodgkin_huxley_squid_axon_model_1952_modified.cellml"


def test_a_labkit_token_acts_as_its_user(people: dict[str, Api]) -> None:
    alice = people["alice"]
    assert alice.ok("GET", "/me") == {"user": "alice", "authenticated_by": "labkit-token"}
    bearer = alice.as_token(None).ok("GET", "/me", headers={"Authorization": f"Bearer {alice.token}"})
    assert bearer["user"] == "alice"


def test_a_private_entity_is_missing_for_others(people: dict[str, Api], alice_model: str) -> None:
    alice, bob = people["alice"], people["bob"]
    entity = alice.ok("GET", f"/models/{alice_model}")
    assert entity["owner"] == "alice" and entity["may_edit"] is True
    missing = bob.error("GET", "/models/no-such-model", 404)
    assert bob.error("GET", f"/models/{alice_model}", 404) == missing.replace("no-such-model", alice_model)
    assert alice_model not in [m["name"] for m in bob.ok("GET", "/models?limit=500")["items"]]
    bob.error("GET", f"/models/{alice_model}/versions/1/files", 404)
    bob.error("POST", f"/models/{alice_model}/versions/1/tags", 404, json={"tag": "mine"})
    bob.error("GET", f"/compatibility?model={alice_model}&protocol=calcium", 404)
    assert people["mod"].ok("GET", f"/models/{alice_model}")["owner"] == "alice"  # moderators read everything


def test_public_is_readable_but_only_editors_change_it(people: dict[str, Api], alice_model: str,
                                                        model_file: Path) -> None:
    alice, bob = people["alice"], people["bob"]
    bob.error("PUT", f"/models/{alice_model}/versions/1/visibility", 404, json={"visibility": "public"})
    published = alice.ok("PUT", f"/models/{alice_model}/versions/1/visibility", json={"visibility": "public"})
    assert published["visibility"] == "public"
    entity = bob.ok("GET", f"/models/{alice_model}")
    assert entity["may_edit"] is False and entity["latest"]["visibility"] == "public"

    assert bob.error("POST", f"/models/{alice_model}/versions/1/tags", 403, json={"tag": "mine"})
    with open(model_file, "rb") as f:
        bob.error("POST", f"/models/{alice_model}/versions", 403, files={"file": f})
    bob.error("PUT", f"/models/{alice_model}/versions/1/visibility", 403, json={"visibility": "private"})
    bob.error("POST", f"/models/{alice_model}/collaborators", 403, json={"user": "bob"})
    assert alice.ok("GET", f"/models/{alice_model}")["versions"] == 1
    assert alice.ok("GET", f"/models/{alice_model}/versions/1")["tags"] == []
    assert "unknown visibility 'secret'" in alice.error("PUT", f"/models/{alice_model}/versions/1/visibility", 400,
                                                        json={"visibility": "secret"})


def test_only_a_moderator_grants_moderated(people: dict[str, Api], alice_model: str) -> None:
    people["alice"].error("PUT", f"/models/{alice_model}/versions/1/visibility", 403, json={"visibility": "moderated"})
    moderated = people["mod"].ok("PUT", f"/models/{alice_model}/versions/1/visibility",
                                 json={"visibility": "moderated"})
    assert moderated["visibility"] == "moderated"


def test_sharing_lets_a_collaborator_tag_until_unshared(people: dict[str, Api], model_file: Path) -> None:
    alice, bob = people["alice"], people["bob"]
    with open(model_file, "rb") as f:
        alice.ok("POST", "/models/alice-shared/versions", 201, files={"file": f})
    assert "there is no user 'nobody'" in alice.error("POST", "/models/alice-shared/collaborators", 404,
                                                      json={"user": "nobody"})
    shared = alice.ok("POST", "/models/alice-shared/collaborators", 201, json={"user": "bob"})
    assert shared == {"owner": "alice", "collaborators": ["bob"]}
    assert bob.ok("GET", "/models/alice-shared/collaborators") == shared
    assert bob.ok("POST", "/models/alice-shared/versions/1/tags", 201, json={"tag": "by-bob"})["tags"] == ["by-bob"]
    bob.error("DELETE", "/models/alice-shared/collaborators/bob", 403)  # only the owner unshares
    assert alice.ok("DELETE", "/models/alice-shared/collaborators/bob") == {"owner": "alice", "collaborators": []}
    bob.error("GET", "/models/alice-shared", 404)


def test_runs_follow_their_inputs_visibility_and_only_who_may_cancel(api: Api, people: dict[str, Api],
                                                                      model_file: Path) -> None:
    alice, bob = people["alice"], people["bob"]
    with open(model_file, "rb") as f:
        alice.ok("POST", "/models/alice-runs/versions", 201, files={"file": f}, data={"visibility": "public"})
    # the seeded protocol is the lab owner's and private: for alice it does not exist
    assert "there is no protocol called 'test'" in alice.error("POST", "/runs", 404,
                                                               json={"model": "alice-runs", "protocol": "test"})
    api.ok("PUT", "/protocols/test/versions/latest/visibility", json={"visibility": "public"})
    run = alice.ok("POST", "/runs", 201, json={"model": "alice-runs", "protocol": "test", "parameters": {"sleep": 30}})
    assert run["visibility"] == "public" and bob.ok("GET", f"/runs/{run['id']}")["id"] == run["id"]
    assert "cancel" in bob.error("POST", f"/runs/{run['id']}/cancel", 403)
    assert alice.ok("POST", f"/runs/{run['id']}/cancel")["status"] in ("cancelled", "queued", "running")

    alice.ok("PUT", "/models/alice-runs/versions/1/visibility", json={"visibility": "private"})
    assert "there is no run" in bob.error("GET", f"/runs/{run['id']}", 404)
    assert run["id"] not in [r["id"] for r in bob.ok("GET", "/runs?limit=500")["items"]]
    assert alice.ok("GET", f"/runs/{run['id']}")["visibility"] == "private"


def test_users_and_tokens(people: dict[str, Api]) -> None:
    bob, mod, boss = people["bob"], people["mod"], people["boss"]
    for refused in (bob, mod):  # managing accounts is an admin's job: moderating is not administering
        assert "only an admin" in refused.error("GET", "/users", 403)
        assert "only an admin" in refused.error("PUT", "/users/carol", 403, json={"moderator": True})
    assert "carol" not in [u["name"] for u in boss.ok("GET", "/users?limit=500")["items"]]  # refused: not added
    carol = boss.ok("PUT", "/users/carol", json={})
    assert (carol["name"], carol["roles"], carol["moderator"], carol["disabled"]) == ("carol", [], False, False)
    users = {u["name"]: u for u in boss.ok("GET", "/users?limit=500")["items"]}
    assert users["carol"]["moderator"] is False and users["mod"]["moderator"] is True
    assert users["mod"]["roles"] == ["moderator"] and users["boss"]["roles"] == ["admin"]
    assert "must be true or false" in boss.error("PUT", "/users/carol", 400, json={"moderator": "yes"})

    bob.error("POST", "/users/alice/tokens", 403)
    assert "only an admin" in mod.error("POST", "/users/carol/tokens", 403)
    made = bob.ok("POST", "/users/bob/tokens", 201)
    assert made["user"] == "bob" and made["token"].startswith("lk_")
    second_bob = bob.as_token(made["token"])
    assert second_bob.ok("GET", "/me")["user"] == "bob"
    carol_token = boss.ok("POST", "/users/carol/tokens", 201)["token"]
    assert bob.as_token(carol_token).ok("GET", "/me")["user"] == "carol"
    assert "only an admin" in mod.error("DELETE", "/users/carol/tokens", 403)
    assert bob.as_token(carol_token).ok("GET", "/me")["user"] == "carol"  # the refusal revoked nothing
    assert boss.ok("DELETE", "/users/carol/tokens") == {"user": "carol", "revoked": 1}
    assert "revoked" in bob.as_token(carol_token).error("GET", "/me", 401)
