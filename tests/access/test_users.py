"""Users, moderators and API tokens; the identity a lab acts for; the CLI commands."""
from __future__ import annotations

from pathlib import Path

import pytest
from access_helpers import COLLABORATOR, HH, MODERATOR, OUTSIDER, World, error_of, lab_state
from click.testing import CliRunner, Result

import labkit
from labkit.access import InvalidToken
from labkit.cli import main
from labkit.config import ConfigError, load_settings


def test_a_token_names_its_user_and_only_its_hash_is_stored(fresh: World) -> None:
    token = fresh.owner.create_token(OUTSIDER)
    assert token.startswith("lk_") and len(token) > 40
    assert fresh.owner.user_for_token(token) == OUTSIDER
    assert fresh.owner.create_token(OUTSIDER) != token  # a new one each time; both work
    state = repr(lab_state(fresh.owner))  # every row of every table, on either database
    assert token not in state and token[3:] not in state
    url = fresh.owner.settings.database_url
    if url.startswith("sqlite:///"):  # and not in the file's bytes either (free pages, the journal)
        assert Path(url.removeprefix("sqlite:///")).read_bytes().find(token.encode()) == -1
    as_outsider = fresh.owner.as_user(fresh.owner.user_for_token(token))
    assert as_outsider.names("model") == ["open"]  # the REST API's path: token -> user -> as_user


def test_a_wrong_or_revoked_token_is_refused(fresh: World) -> None:
    token = fresh.outsider.create_token()  # a user may create their own
    for bad in ("", "lk_" + "x" * 43, token + "x", token[:-1], "Bearer " + token):
        with pytest.raises(InvalidToken):
            fresh.owner.user_for_token(bad)
    assert fresh.outsider.revoke_tokens() == 1
    assert "revoked" in error_of(lambda: fresh.owner.user_for_token(token), InvalidToken)
    assert isinstance(InvalidToken("x"), labkit.Forbidden)


def test_user_administration_is_for_the_operator_or_an_admin(fresh: World) -> None:
    before = lab_state(fresh.owner)
    for lab in (fresh.outsider, fresh.collaborator, fresh.moderator):  # moderating is not administering
        assert "only an admin" in error_of(lambda: lab.add_user("mallory", moderator=True), labkit.Forbidden)
        assert "only an admin" in error_of(lambda: lab.create_token(fresh.owner.user), labkit.Forbidden)
        assert "only an admin" in error_of(lambda: lab.revoke_tokens(fresh.owner.user), labkit.Forbidden)
        assert "only an admin" in error_of(lambda: lab.users(), labkit.Forbidden)
        assert "only an admin" in error_of(lambda: lab.set_role(lab.user, "admin"), labkit.Forbidden)
    assert "labkit user add nobody" in error_of(lambda: fresh.owner.create_token("nobody"))
    assert "not a user name" in error_of(lambda: fresh.owner.add_user("two words"), labkit.InvalidInput)
    assert lab_state(fresh.owner) == before
    fresh.owner.add_user("boss", roles=["admin"])
    boss = fresh.owner.as_user("boss")
    boss.add_user("newcomer")
    assert boss.user_for_token(boss.create_token("newcomer")) == "newcomer"
    fresh.owner.add_user(COLLABORATOR, moderator=True)  # the operator names moderators
    assert (COLLABORATOR, True) in fresh.owner.users()
    assert fresh.collaborator.names("protocol") == ["hidden_protocol", "test"]  # at once: moderators read all
    fresh.owner.add_user(COLLABORATOR)
    assert fresh.collaborator.names("protocol") == ["test"]


def test_the_identity_is_the_jupyterhub_user_where_there_is_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABKIT_USER", raising=False)
    monkeypatch.setenv("USER", "unix_login")
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    assert load_settings(tmp_path).user == "unix_login"
    monkeypatch.setenv("JUPYTERHUB_USER", "hub_user")
    assert load_settings(tmp_path).user == "hub_user"
    assert load_settings(tmp_path, user="explicit").user == "explicit"


def test_default_visibility_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABKIT_DEFAULT_VISIBILITY", raising=False)
    assert load_settings(tmp_path).default_visibility == "private"
    for bad in ("moderated", "everyone"):
        with pytest.raises(ConfigError, match="default_visibility must be 'private' or 'public'"):
            load_settings(tmp_path, default_visibility=bad)
    with labkit.Lab.open(tmp_path / "lab", default_visibility="public") as lab:
        assert lab.add_model(HH, name="hh").version.visibility == "public"
        assert lab.as_user("anyone").names("model") == ["hh"]


@pytest.fixture
def cli(lab: labkit.Lab, monkeypatch: pytest.MonkeyPatch):
    """``cli(user, *args)`` runs labkit on the ``lab`` fixture's folder as ``user``."""
    runner = CliRunner()

    def run(user: str, *args: str) -> Result:
        monkeypatch.setenv("LABKIT_USER", user)
        return runner.invoke(main, ["--lab", str(lab.settings.root), *args])

    return run


def test_cli_users_tokens_visibility_and_sharing(lab: labkit.Lab, cli) -> None:
    owner = lab.user
    assert cli(owner, "add", "model", str(HH), "--name", "hh").exit_code == 0
    assert cli(owner, "user", "add", "alice").output == "user alice\n"
    assert cli(owner, "user", "add", "mod", "--moderator").output == "user mod (moderator)\n"
    token = cli(owner, "token", "create", "alice").output.strip()
    assert lab.user_for_token(token) == "alice"
    assert cli(owner, "token", "revoke", "alice").exit_code == 2  # one by name, or --all: never by accident
    assert lab.user_for_token(token) == "alice"
    assert cli(owner, "token", "revoke", "alice", "--all").output == "revoked 1 token(s) of alice\n"
    # alice cannot see the private model: the same error as for a missing one
    hidden, missing = cli("alice", "cat", "model", "hh"), cli("alice", "cat", "model", "nope")
    assert hidden.exit_code == missing.exit_code == 1
    assert hidden.output == missing.output.replace("nope", "hh")
    assert cli("alice", "list", "models").output == ""
    refused = cli(owner, "visibility", "model", "hh", "1", "moderated")
    assert refused.exit_code == 1 and "only a moderator" in refused.output
    assert cli(owner, "versions", "model", "hh").output.split()[4] == "private"  # nothing changed
    assert cli(owner, "visibility", "model", "hh", "1", "public").output.endswith("is now public\n")
    assert cli("alice", "list", "models").output.startswith("hh ")
    assert cli("mod", "visibility", "model", "hh", "latest", "moderated").exit_code == 0
    assert "moderated" in cli("alice", "versions", "model", "hh").output
    assert cli(owner, "share", "model", "hh", "alice").output == f"model hh: owner {owner}; collaborators: alice\n"
    assert cli("alice", "share", "model", "hh", "mod").exit_code == 1
    assert cli(owner, "share", "model", "hh", "alice", "--remove").output.endswith("collaborators: none\n")
    assert cli("alice", "user", "add", "eve").exit_code == 0  # the CLI operates the lab folder itself
