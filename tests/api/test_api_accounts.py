"""Accounts and named, expiring API tokens through the REST API, on the real server with labkit tokens:
roles, disabling and deleting users (the operator's or an admin's job), and each user's own tokens.
Every refusal is checked to change nothing; the rules are the library's (labkit.access.accounts)."""
from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from labs import lab_state
from notebooks import protocol_notebook
from shared_data import webdata
from stacks import lab_settings

import labkit
from labkit.dashboards.serve import ApiServer

from .client import Api

HH = "hodgkin_huxley_squid_axon_model_1952_modified.cellml"
PASSWORD = "a long enough password"
ACCOUNT_TABLES = ("users", "api_tokens", "user_sessions", "collaborators")


@pytest.fixture(scope="module")
def people(api: Api, api_lab: labkit.Lab) -> dict[str, Api]:
    """ada (an admin), mo (a moderator), una (no role) and pat (no role, a password), each with a
    labkit token already used once (so a later request changes no token's "last used")."""
    clients = {}
    for name, roles in (("ada", ["admin"]), ("mo", ["moderator"]), ("una", []), ("pat", [])):
        api_lab.add_user(name, roles=roles, password=PASSWORD if name == "pat" else None)
        clients[name] = api.as_token(api_lab.create_token(name))
        assert clients[name].ok("GET", "/me")["user"] == name
    return clients


def accounts_state(lab: labkit.Lab, *clients: Api) -> dict[str, Any]:
    """The rows of the account tables, to prove a refusal changed nothing (runs of other tests may
    still be finishing, so the other tables are left out). Each of ``clients`` is used first, so that
    its token's "last used" (refreshed at most every few minutes) is not what changes meanwhile."""
    for client in clients:
        client.ok("GET", "/me")
    state = lab_state(lab)
    return {table: state[table] for table in ACCOUNT_TABLES}


def users_by_name(client: Api) -> dict[str, dict[str, Any]]:
    return {u["name"]: u for u in client.ok("GET", "/users?limit=500")["items"]}


def token_names(client: Api, user: str) -> list[str]:
    return [t["name"] for t in client.ok("GET", f"/users/{user}/tokens?limit=500")["items"]]


def moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def test_users_list_roles_disabled_and_password(api: Api, people: dict[str, Api]) -> None:
    users = users_by_name(people["ada"])
    ada, mo, una, pat = (users[n] for n in ("ada", "mo", "una", "pat"))
    assert (ada["roles"], ada["moderator"], ada["disabled"]) == (["admin"], False, False)
    assert (mo["roles"], mo["moderator"]) == (["moderator"], True)
    assert (una["roles"], una["moderator"], una["has_password"]) == ([], False, False)
    assert pat["has_password"] is True and moment(pat["created_at"]).tzinfo is not None
    assert users_by_name(api)["ada"] == ada  # the operator (the Jupyter token) manages accounts too
    for refused in ("mo", "una"):
        assert "only an admin may list users" in people[refused].error("GET", "/users", 403)


def test_put_user_holds_exactly_the_roles_listed_and_they_take_effect(api_lab: labkit.Lab,
                                                                      people: dict[str, Api]) -> None:
    ada = people["ada"]
    made = ada.ok("PUT", "/users/ines", json={"roles": ["protocol-author", "moderator"]})
    assert (made["name"], made["roles"], made["moderator"], made["disabled"]) == \
        ("ines", ["moderator", "protocol-author"], True, False)
    assert api_lab.account("ines").roles == ("moderator", "protocol-author")
    ines = ada.as_token(api_lab.create_token("ines"))
    ines.ok("POST", "/protocols/ines-protocol/versions", 201, files={"file": ("p.ipynb", protocol_notebook())})

    assert ada.ok("PUT", "/users/ines", json={"roles": ["moderator"]})["roles"] == ["moderator"]  # the rest withdrawn
    assert "protocol-author role" in ines.error("POST", "/protocols/ines-protocol/versions", 403,
                                                files={"file": ("p.ipynb", protocol_notebook())})
    assert ines.ok("GET", "/protocols/ines-protocol")["versions"] == 1
    assert ada.ok("PUT", "/users/ines", json={"moderator": False})["roles"] == []  # one role, the others kept
    assert ada.ok("PUT", "/users/ines", json={"roles": ["admin"], "moderator": False})["roles"] == ["admin"]
    assert ada.ok("PUT", "/users/ines", json={})["roles"] == ["admin"]  # nothing named: nothing changes
    assert ada.ok("PUT", "/users/ines", json={"roles": []})["roles"] == []
    assert api_lab.account("ines").roles == ()


def test_disabling_stops_the_users_token_at_once_and_enabling_restores_it(api_lab: labkit.Lab,
                                                                          people: dict[str, Api]) -> None:
    ada = people["ada"]
    ada.ok("PUT", "/users/dora", json={"roles": ["protocol-author"]})
    dora = ada.as_token(api_lab.create_token("dora"))
    assert dora.ok("GET", "/me")["user"] == "dora"
    disabled = ada.ok("PUT", "/users/dora", json={"disabled": True})
    assert disabled["disabled"] is True and disabled["roles"] == ["protocol-author"]
    assert "disabled" in dora.error("GET", "/me", 401)
    assert users_by_name(ada)["dora"]["disabled"] is True
    assert ada.ok("PUT", "/users/dora", json={"disabled": False})["disabled"] is False
    assert dora.ok("GET", "/me")["user"] == "dora"
    born_disabled = ada.ok("PUT", "/users/dormant", json={"disabled": True, "roles": ["moderator"]})
    assert (born_disabled["disabled"], born_disabled["roles"]) == (True, ["moderator"])


def test_deleting_an_account(api_lab: labkit.Lab, people: dict[str, Api]) -> None:
    ada = people["ada"]
    ada.ok("PUT", "/users/leaver", json={})
    leaver = ada.as_token(api_lab.create_token("leaver"))
    assert ada.ok("DELETE", "/users/leaver") == {"name": "leaver", "deleted": True}
    assert "leaver" not in users_by_name(ada)
    assert "unknown or revoked" in leaver.error("GET", "/me", 401)  # its tokens went with it
    ada.error("DELETE", "/users/leaver", 404)
    ada.error("DELETE", "/users/nobody-at-all", 404)

    ada.ok("PUT", "/users/owner", json={})
    owner = ada.as_token(api_lab.create_token("owner"))
    with open(webdata() / "models" / HH, "rb") as f:
        owner.ok("POST", "/models/owners-model/versions", 201, files={"file": f})
    before = accounts_state(api_lab, ada, owner)
    message = ada.error("DELETE", "/users/owner", 403)
    assert "owner owns 1 entity" in message and "disable the account instead" in message
    assert accounts_state(api_lab) == before and owner.ok("GET", "/me")["user"] == "owner"


def test_only_an_admin_manages_accounts_and_a_refusal_changes_nothing(api_lab: labkit.Lab,
                                                                      people: dict[str, Api]) -> None:
    before = accounts_state(api_lab, *people.values())
    for name in ("mo", "una"):
        client = people[name]
        refusals = [client.error("PUT", "/users/ada", 403, json={"roles": []}),
                    client.error("PUT", "/users/ada", 403, json={"disabled": True}),
                    client.error("PUT", "/users/newcomer", 403, json={}),
                    client.error("PUT", f"/users/{name}", 403, json={"roles": ["admin"]}),  # promoting oneself
                    client.error("PUT", f"/users/{name}", 403, json={}),  # even a change to nothing
                    client.error("DELETE", "/users/pat", 403),
                    client.error("DELETE", f"/users/{name}", 403),
                    client.error("POST", "/users/pat/tokens", 403, json={"name": "theirs"}),
                    client.error("GET", "/users/pat/tokens", 403),
                    client.error("DELETE", "/users/pat/tokens/token-1", 403),
                    client.error("DELETE", "/users/pat/tokens", 403)]
        assert all("only an admin" in message for message in refusals), refusals
    assert accounts_state(api_lab) == before
    assert people["pat"].ok("GET", "/me")["user"] == "pat"


@pytest.mark.parametrize(("body", "message"), [
    ({"roles": "admin"}, "'roles' must be a list of roles"),
    ({"roles": ["root"]}, "unknown role 'root'"),
    ({"roles": [1]}, "role names as strings"),
    ({"roles": ["admin", "admin"]}, "names a role twice"),
    ({"roles": None}, "(got null)"),
    ({"moderator": None}, "(got null)"),
    ({"disabled": "yes"}, "'disabled' must be true or false"),
    ({"moderator": True, "roles": []}, "contradicts 'roles'"),
    ({"colour": "red"}, "unknown fields ['colour']"),
    ([], "must be a JSON object"),
    (None, "send a JSON object"),
])
def test_a_bad_account_body_is_a_clear_400_and_changes_nothing(api_lab: labkit.Lab, people: dict[str, Api],
                                                               body: Any, message: str) -> None:
    ada = people["ada"]
    before = accounts_state(api_lab, ada)
    for user in ("una", "ghost"):  # an existing user and a new one
        sent = {"json": body} if body is not None else {}
        assert message in ada.error("PUT", f"/users/{user}", 400, **sent)
    assert accounts_state(api_lab) == before


def test_a_users_own_tokens_named_and_expiring(api_lab: labkit.Lab, people: dict[str, Api]) -> None:
    pat = people["pat"]
    default = pat.ok("POST", "/users/pat/tokens", 201)
    assert default["user"] == "pat" and default["name"].startswith("token-") and default["token"].startswith("lk_")
    days = api_lab.settings.token_days  # the lab's default lifetime (0: never expires)
    if days:
        expected = datetime.now(timezone.utc) + timedelta(days=days)
        assert abs(moment(default["expires_at"]) - expected) < timedelta(minutes=5)
    else:
        assert default["expires_at"] is None

    laptop = pat.ok("POST", "/users/pat/tokens", 201, json={"name": "laptop", "days": 2})
    assert laptop["name"] == "laptop"
    assert abs(moment(laptop["expires_at"]) - (datetime.now(timezone.utc) + timedelta(days=2))) < timedelta(minutes=5)
    forever = pat.ok("POST", "/users/pat/tokens", 201, json={"name": "forever", "days": None})
    assert forever["expires_at"] is None
    assert pat.as_token(laptop["token"]).ok("GET", "/me")["user"] == "pat"

    listed = pat.get("/users/pat/tokens?limit=500")
    assert listed.status_code == 200
    tokens = {t["name"]: t for t in listed.json()["items"]}
    assert {default["name"], "laptop", "forever"} <= set(tokens)
    assert all(made["token"] not in listed.text for made in (default, laptop, forever))  # never the token
    assert tokens["laptop"]["last_used_at"] is not None and tokens["forever"]["last_used_at"] is None
    assert tokens["forever"]["expires_at"] is None and not any(t["expired"] for t in tokens.values())
    assert people["ada"].ok("GET", "/users/pat/tokens?limit=500")["items"] == listed.json()["items"]  # an admin too

    assert pat.ok("DELETE", "/users/pat/tokens/laptop") == {"user": "pat", "name": "laptop", "revoked": 1}
    assert "unknown or revoked" in pat.as_token(laptop["token"]).error("GET", "/me", 401)
    assert pat.as_token(forever["token"]).ok("GET", "/me")["user"] == "pat"  # the others keep working
    assert "no token called 'laptop'" in pat.error("DELETE", "/users/pat/tokens/laptop", 404)
    assert "no token called 'nope'" in pat.error("DELETE", "/users/pat/tokens/nope", 404)
    assert "laptop" not in token_names(pat, "pat")

    by_admin = people["ada"].ok("POST", "/users/pat/tokens", 201, json={"name": "from-admin"})
    assert pat.as_token(by_admin["token"]).ok("GET", "/me")["user"] == "pat"
    assert people["ada"].ok("DELETE", "/users/pat/tokens/from-admin")["revoked"] == 1
    people["ada"].error("POST", "/users/nobody-at-all/tokens", 404)
    people["ada"].error("GET", "/users/nobody-at-all/tokens", 404)


def test_an_expired_token_is_refused(people: dict[str, Api]) -> None:
    una = people["una"]
    brief = una.ok("POST", "/users/una/tokens", 201, json={"name": "brief", "days": 1 / 86400})  # one second
    time.sleep(max(0.0, (moment(brief["expires_at"]) - datetime.now(timezone.utc)).total_seconds()) + 0.5)
    assert "token 'brief' expired" in una.as_token(brief["token"]).error("GET", "/me", 401)
    listed = {t["name"]: t for t in una.ok("GET", "/users/una/tokens")["items"]}
    assert listed["brief"]["expired"] is True
    assert una.ok("GET", "/me")["user"] == "una"  # their other token is unaffected


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"name": "two words"}, 400, "not a token name"),
    ({"name": "x" * 101}, 400, "not a token name"),
    ({"name": ""}, 400, "the field 'name' is empty"),
    ({"name": None}, 400, "(got null)"),
    ({"name": 7}, 400, "'name' must be the token's name"),
    ({"days": 0}, 400, "more than 0"),
    ({"days": -1}, 400, "more than 0"),
    ({"days": 3651}, 400, "at most 3650"),
    ({"days": "7"}, 400, "'days' must be a number"),
    ({"days": True}, 400, "'days' must be a number"),
    ({"colour": "red"}, 400, "unknown fields ['colour']"),
    ([1], 400, "must be a JSON object"),
    ({"name": "token-1"}, 400, "already has a token called 'token-1'"),
])
def test_a_bad_token_request_is_a_clear_400_and_makes_nothing(api_lab: labkit.Lab, people: dict[str, Api],
                                                              body: Any, status: int, message: str) -> None:
    mo = people["mo"]  # a token called token-1 already: the fixture's
    assert "token-1" in token_names(mo, "mo")
    before = accounts_state(api_lab, mo)
    assert message in mo.error("POST", "/users/mo/tokens", status, json=body)
    assert accounts_state(api_lab) == before


def test_a_malformed_json_body_is_a_400(people: dict[str, Api]) -> None:
    before = token_names(people["una"], "una")
    message = people["una"].error("POST", "/users/una/tokens", 400, data=b'{"name": ',
                                  headers={"Content-Type": "application/json"})
    assert "not valid JSON" in message and token_names(people["una"], "una") == before


@pytest.fixture
def one_admin(tmp_path: Path) -> Iterator[tuple[labkit.Lab, Api]]:
    """A lab of its own (no workers) whose only admin is solo, and solo's client on its own API server."""
    with lab_settings() as stack, labkit.Lab.open(tmp_path / "lab", **stack) as lab:
        lab.add_user("solo", roles=["admin"])
        with ApiServer(lab.settings) as server:
            yield lab, Api(server.url, lab.create_token("solo"))


def test_the_last_admin_is_kept_and_a_refused_change_changes_none_of_its_parts(
        one_admin: tuple[labkit.Lab, Api]) -> None:
    lab, solo = one_admin
    before = accounts_state(lab, solo)
    for body in ({"roles": ["moderator"]},  # withdraws admin, grants moderator: the grant must not happen
                 {"roles": ["admin", "moderator"], "disabled": True},  # the disabling is refused first
                 {"disabled": True}):
        assert "without an admin" in solo.error("PUT", "/users/solo", 403, json=body)
    assert "without an admin" in solo.error("DELETE", "/users/solo", 403)
    assert "without an admin" in solo.error("PUT", "/users/solo", 403, json={"roles": [], "disabled": True})
    assert accounts_state(lab) == before and lab.account("solo").roles == ("admin",)
    solo.ok("PUT", "/users/deputy", json={"roles": ["admin"]})  # with a second admin, solo may step down
    assert solo.ok("PUT", "/users/solo", json={"roles": ["moderator"]})["roles"] == ["moderator"]
    assert "only an admin" in solo.error("GET", "/users", 403)
