"""Accounts, roles, sign-in sessions and named expiring tokens, through the library on the test's stack
(the database is real; nothing is mocked). Every refusal is checked to change nothing."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from access_helpers import HH, error_of, lab_state
from notebooks import protocol_notebook
from sqlalchemy import select, update

import labkit
from labkit.access import PUBLIC_VISITOR, InvalidToken, SignInFailed
from labkit.access.quotas import QuotaExceeded
from labkit.store import orm

PASSWORD = "a long enough password"


@pytest.fixture
def accounts_lab(lab: labkit.Lab) -> labkit.Lab:
    lab.add_user("ada", roles=["admin"], password=PASSWORD)
    lab.add_user("bert", password=PASSWORD)
    return lab


def test_passwords_are_stored_as_argon2_hashes_only(accounts_lab: labkit.Lab) -> None:
    with accounts_lab.db.session() as s:
        stored = s.scalar(select(orm.User.password_hash).where(orm.User.name == "bert"))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_sign_in_starts_a_session_that_signing_out_ends(accounts_lab: labkit.Lab) -> None:
    secret = accounts_lab.sign_in("bert", PASSWORD)
    assert accounts_lab.session_user(secret) == "bert"
    with accounts_lab.db.session() as s:  # the database keeps a digest, never the cookie's value
        assert s.scalar(select(orm.UserSession.session_hash)) != secret
    accounts_lab.sign_out(secret)
    assert accounts_lab.session_user(secret) is None
    assert accounts_lab.session_user("made-up") is None and accounts_lab.session_user("") is None


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(accounts_lab: labkit.Lab) -> None:
    before = lab_state(accounts_lab)
    wrong = error_of(lambda: accounts_lab.sign_in("bert", "not the password"), SignInFailed)
    unknown = error_of(lambda: accounts_lab.sign_in("nobody", "not the password"), SignInFailed)
    assert wrong == unknown and "wrong user name or password" in wrong
    accounts_lab.add_user("nopass")  # no password: cannot sign in at all
    assert error_of(lambda: accounts_lab.sign_in("nopass", ""), SignInFailed) == wrong
    accounts_lab.delete_user("nopass")
    assert lab_state(accounts_lab) == before


def test_sessions_end_on_password_change_disabling_and_expiry(accounts_lab: labkit.Lab) -> None:
    bert = accounts_lab.as_user("bert")
    first, second = accounts_lab.sign_in("bert", PASSWORD), accounts_lab.sign_in("bert", PASSWORD)
    assert "wrong user name or password" in error_of(lambda: bert.set_password("another long password",
                                                                               current="not it"), SignInFailed)
    assert accounts_lab.session_user(first) == "bert"  # a refused change changes nothing
    bert.set_password("another long password", current=PASSWORD)
    assert accounts_lab.session_user(first) is None and accounts_lab.session_user(second) is None
    third = accounts_lab.sign_in("bert", "another long password")
    accounts_lab.disable_user("bert")
    assert accounts_lab.session_user(third) is None
    assert "wrong user name or password" in error_of(lambda: accounts_lab.sign_in("bert", "another long password"),
                                                     SignInFailed)
    accounts_lab.disable_user("bert", False)
    fourth = accounts_lab.sign_in("bert", "another long password")
    with accounts_lab.db.session() as s:
        s.execute(update(orm.UserSession).values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    assert accounts_lab.session_user(fourth) is None


def test_bad_passwords_are_refused_and_change_nothing(accounts_lab: labkit.Lab) -> None:
    before = lab_state(accounts_lab)
    for bad in ("short", " padded password ", "x" * 2000, "tab\tinside pass"):
        with pytest.raises(labkit.InvalidInput):
            accounts_lab.set_password(bad, user="bert")
        with pytest.raises(labkit.InvalidInput):
            accounts_lab.add_user("carl", password=bad)
    assert lab_state(accounts_lab) == before


def test_roles_are_granted_by_admins_and_the_last_admin_stays(accounts_lab: labkit.Lab) -> None:
    ada, bert = accounts_lab.as_user("ada"), accounts_lab.as_user("bert")
    assert "only an admin" in error_of(lambda: bert.set_role("bert", "admin"), labkit.Forbidden)
    ada.set_role("bert", "protocol-author")
    assert accounts_lab.account("bert").roles == ("protocol-author",)
    before = lab_state(accounts_lab)
    assert "without an admin" in error_of(lambda: ada.set_role("ada", "admin", False), labkit.Forbidden)
    assert "without an admin" in error_of(lambda: ada.disable_user("ada"), labkit.Forbidden)
    assert "without an admin" in error_of(lambda: ada.delete_user("ada"), labkit.Forbidden)
    assert "unknown role" in error_of(lambda: ada.set_role("bert", "king"), labkit.InvalidInput)
    assert lab_state(accounts_lab) == before


def test_adding_a_protocol_needs_the_protocol_author_role(accounts_lab: labkit.Lab) -> None:
    bert = accounts_lab.as_user("bert")
    before = lab_state(accounts_lab)
    assert "protocol-author role" in error_of(lambda: bert.add_protocol({"p.ipynb": protocol_notebook()}, name="p"),
                                              labkit.Forbidden)
    assert lab_state(accounts_lab) == before
    assert not bert.may_add_protocols
    accounts_lab.set_role("bert", "protocol-author")
    assert bert.may_add_protocols
    assert bert.add_protocol({"p.ipynb": protocol_notebook()}, name="p").version.author == "bert"
    bert.add_model(HH, name="hh")  # models need no role


def test_a_user_who_owns_something_is_disabled_not_deleted(accounts_lab: labkit.Lab) -> None:
    accounts_lab.as_user("bert").add_model(HH, name="berts")
    before = lab_state(accounts_lab)
    assert "disable the account instead" in error_of(lambda: accounts_lab.delete_user("bert"), labkit.Forbidden)
    assert lab_state(accounts_lab) == before
    accounts_lab.add_user("temp", password=PASSWORD)
    token = accounts_lab.create_token("temp")
    accounts_lab.delete_user("temp")
    assert "temp" not in [a.name for a in accounts_lab.accounts()]
    with pytest.raises(InvalidToken):
        accounts_lab.user_for_token(token)


def test_tokens_are_named_expire_and_are_revoked_one_at_a_time(accounts_lab: labkit.Lab) -> None:
    bert = accounts_lab.as_user("bert")
    laptop, ci = bert.create_token(name="laptop", days=30), bert.create_token(name="ci", days=None)
    assert [(t.name, t.expires_at is None) for t in bert.tokens()] == [("laptop", False), ("ci", True)]
    assert "already has a token called 'ci'" in error_of(lambda: bert.create_token(name="ci"), labkit.InvalidInput)
    for bad_name, bad_days in (("no spaces", 1), ("ok", 0), ("ok", -1), ("ok", 10_000)):
        with pytest.raises(labkit.InvalidInput):
            bert.create_token(name=bad_name, days=bad_days)
    bert.revoke_token("laptop")
    with pytest.raises(InvalidToken):
        accounts_lab.user_for_token(laptop)
    assert accounts_lab.user_for_token(ci) == "bert"  # the other one still works
    assert [t.last_used_at is not None for t in bert.tokens()] == [True]
    assert "has no token called 'laptop'" in error_of(lambda: bert.revoke_token("laptop"))
    soon = bert.create_token(name="soon", days=1)
    with accounts_lab.db.session() as s:
        s.execute(update(orm.ApiToken).where(orm.ApiToken.name == "soon")
                  .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    assert "expired" in error_of(lambda: accounts_lab.user_for_token(soon), InvalidToken)
    assert [t.expired for t in bert.tokens()] == [False, True]
    accounts_lab.disable_user("bert")
    assert "disabled" in error_of(lambda: accounts_lab.user_for_token(ci), InvalidToken)


def test_the_default_token_lifetime_is_the_labs_setting(accounts_lab: labkit.Lab) -> None:
    accounts_lab.create_token("bert")
    expires = accounts_lab.tokens("bert")[0].expires_at
    expected = datetime.now(timezone.utc) + timedelta(days=accounts_lab.settings.token_days)
    assert abs((expires - expected).total_seconds()) < 600


def test_the_public_visitor_and_a_read_only_lab_change_nothing(accounts_lab: labkit.Lab) -> None:
    accounts_lab.add_model(HH, name="hh", visibility="public")
    accounts_lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test", visibility="public")
    before = lab_state(accounts_lab)
    with labkit.Lab.open(accounts_lab.settings.root, read_only=True,
                         database_url=accounts_lab.settings.database_url) as read_only:
        for lab, says in ((accounts_lab.as_user(PUBLIC_VISITOR), "not signed in"), (read_only, "read-only")):
            assert lab.names("model") == ["hh"]  # reading is fine
            for attempt in (lambda: lab.add_model(HH, name="mine"), lambda: lab.run("hh", "test"),
                            lambda: lab.run_matrix(), lambda: lab.tag("model", "hh", 1, "t"),
                            lambda: lab.create_token(), lambda: lab.set_visibility("model", "hh", 1, "private")):
                assert says in error_of(attempt, labkit.Forbidden)
            assert not lab.may_change
    with pytest.raises(labkit.Forbidden, match="visitors who are not signed in"):
        accounts_lab.add_user(PUBLIC_VISITOR)
    assert lab_state(accounts_lab) == before


def test_per_user_limits_refuse_and_change_nothing_but_not_for_admins(tmp_path) -> None:
    with labkit.Lab.open(tmp_path / "lab", user_versions_per_day=2, user_storage_mb=1, user_active_runs=1) as lab:
        lab.add_user("ada", roles=["admin"])
        lab.add_user("bert", roles=["protocol-author"])
        bert = lab.as_user("bert")
        bert.add_protocol({"test.ipynb": protocol_notebook()}, name="test", visibility="public")
        bert.add_model(HH, name="hh", visibility="public")
        before = lab_state(lab)
        assert "user_versions_per_day = 2" in error_of(lambda: bert.add_model(HH, name="third"), QuotaExceeded)
        assert lab_state(lab) == before
        with lab.db.session() as s:  # a day later, saving is allowed again ...
            s.execute(update(orm.Version).values(created_at=datetime.now(timezone.utc) - timedelta(days=2)))
        big = {"big.cellml": HH.read_bytes() + b"<!--" + b"x" * (1024 * 1024) + b"-->"}
        before = lab_state(lab)
        assert "user_storage_mb" in error_of(lambda: bert.add_model(big, name="big"), QuotaExceeded)  # ... not bytes
        assert lab_state(lab) == before
        bert.run("hh", "test")
        before = lab_state(lab)
        assert "user_active_runs" in error_of(lambda: bert.run("hh", "test"), QuotaExceeded)
        assert lab_state(lab) == before
        ada = lab.as_user("ada")  # admins and the operator are not limited
        ada.add_model(big, name="big")
        ada.run("hh", "test")
        ada.run("hh", "test")
        lab.run("hh", "test")
