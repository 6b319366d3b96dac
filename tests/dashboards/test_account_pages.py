"""The dashboards' sign-in plumbing and the account and users pages, driven through their widgets as a
visitor would (the browser tests check the same pages through Chromium)."""
from __future__ import annotations

import pytest
from labs import lab_state
from notebooks import protocol_notebook

import labkit
from labkit.access import PUBLIC_VISITOR, SESSION_COOKIE
from labkit.dashboards import AccountPage, UsersPage, page, visitor
from labkit.dashboards.common import session_secret
from labkit.demo.build import DEMO_MODELS

PASSWORD = "a password long enough"


@pytest.fixture
def signin_lab(tmp_path, monkeypatch: pytest.MonkeyPatch) -> labkit.Lab:
    monkeypatch.delenv("HTTP_COOKIE", raising=False)
    with labkit.Lab.open(tmp_path / "lab", sign_in=True) as lab:
        lab.add_user("ada", roles=["admin"], password=PASSWORD)
        lab.add_user("bert", password=PASSWORD)
        lab.as_user("bert").add_model(DEMO_MODELS / "hodgkin_huxley_1952.cellml", name="berts_model")
        yield lab


def as_visitor(lab: labkit.Lab, monkeypatch: pytest.MonkeyPatch, user: str | None) -> labkit.Lab:
    """The lab as a page kernel sees it when Voilà hands it this visitor's cookies."""
    cookie = f"_xsrf=abc; {SESSION_COOKIE}={lab.sign_in(user, PASSWORD)}" if user else "_xsrf=abc"
    monkeypatch.setenv("HTTP_COOKIE", cookie)
    return visitor(lab)


def test_a_page_acts_as_the_visitor_whose_session_the_cookie_holds(signin_lab: labkit.Lab,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    bert = as_visitor(signin_lab, monkeypatch, "bert")
    assert bert.user == "bert" and not bert.is_operator and bert.names("model") == ["berts_model"]
    assert as_visitor(signin_lab, monkeypatch, None).user == PUBLIC_VISITOR
    for forged in (f"{SESSION_COOKIE}=made-up", f'{SESSION_COOKIE}="unterminated', "bert"):
        monkeypatch.setenv("HTTP_COOKIE", forged)
        assert visitor(signin_lab).user == PUBLIC_VISITOR and visitor(signin_lab).names("model") == []
    assert session_secret("a=1; b=2") is None
    with labkit.Lab.open(signin_lab.settings.root, sign_in=False) as no_sign_in:  # the operator's own site
        assert visitor(no_sign_in) is no_sign_in


def test_the_navigation_bar_offers_sign_in_or_names_the_user(signin_lab: labkit.Lab,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRIPT_NAME", "/voila/render/matrix.ipynb")
    monkeypatch.setenv("QUERY_STRING", "page=2")
    as_visitor(signin_lab, monkeypatch, None)
    nav = page("home", lab=signin_lab).widget.children[0].value
    assert 'id="lk-sign-in" href="/login?next=/voila/render/matrix.ipynb%3Fpage%3D2"' in nav
    as_visitor(signin_lab, monkeypatch, "ada")
    nav = page("home", lab=signin_lab).widget.children[0].value
    assert '<span class="lk-user">ada</span>' in nav and "admin.ipynb" in nav and 'id="lk-sign-out"' in nav
    as_visitor(signin_lab, monkeypatch, "bert")
    nav = page("home", lab=signin_lab).widget.children[0].value
    assert '<span class="lk-user">bert</span>' in nav and "admin.ipynb" not in nav


def test_the_account_page_lists_ones_things_and_manages_tokens_and_password(
        signin_lab: labkit.Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    signin_lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test", visibility="public")
    signin_lab.as_user("bert").set_visibility("model", "berts_model", 1, "public")
    berts_run, others_run = signin_lab.as_user("bert").run("berts_model", "test"), signin_lab.run("berts_model", "test")
    account = AccountPage(as_visitor(signin_lab, monkeypatch, "bert"))
    assert "berts_model" in account.entities.value
    assert berts_run.id in account.runs.value and others_run.id not in account.runs.value  # only the runs he queued
    account.token_name.value, account.token_days.value = "laptop", 7
    account.create_button.click()
    token = account.token_message.text.split(": ")[-1].strip()
    assert signin_lab.user_for_token(token) == "bert" and "laptop" in account.tokens.value
    account.revoke_choice.value = "laptop"
    account.revoke_button.click()
    assert account.token_message.kind == "ok" and "No tokens" in account.tokens.value
    before = lab_state(signin_lab)
    account.current.value, account.new.value, account.repeat.value = "wrong one!", "new password 123", "new password 123"
    account.password_button.click()
    assert account.password_message.kind == "error" and "wrong user name or password" in account.password_message.text
    account.current.value, account.repeat.value = PASSWORD, "something else"
    account.password_button.click()
    assert "differ" in account.password_message.text and lab_state(signin_lab) == before
    account.current.value, account.new.value, account.repeat.value = PASSWORD, "new password 123", "new password 123"
    account.password_button.click()
    assert account.password_message.kind == "ok"
    assert signin_lab.sign_in("bert", "new password 123")


def test_the_public_visitor_gets_no_account_page(signin_lab: labkit.Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    account = AccountPage(as_visitor(signin_lab, monkeypatch, None))
    assert not hasattr(account, "tokens") and "Sign in" in account.widget.children[1].value


def test_the_users_page_is_the_admins_and_does_what_the_cli_does(signin_lab: labkit.Lab,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    refused = UsersPage(as_visitor(signin_lab, monkeypatch, "bert"))
    assert not hasattr(refused, "table") and "Only the lab's admins" in refused.widget.children[1].value
    users = UsersPage(as_visitor(signin_lab, monkeypatch, "ada"))
    assert "bert" in users.table.value
    users.new_name.value = "carla"
    users.new_roles["protocol-author"].value = True
    users.add_button.click()
    password = users.add_message.text.split("the password ")[1].split(" ")[0]
    assert signin_lab.session_user(signin_lab.sign_in("carla", password)) == "carla"
    assert signin_lab.account("carla").roles == ("protocol-author",)

    users.user_choice.value, users.action.value, users.role.value = "carla", "grant", "moderator"
    users.apply_button.click()
    assert signin_lab.account("carla").roles == ("moderator", "protocol-author")
    users.action.value = "disable"
    users.apply_button.click()
    assert signin_lab.account("carla").disabled and "disabled" in users.table.value
    users.action.value = "reset"
    users.apply_button.click()
    reset = users.action_message.text.split(": ")[1].split(" ")[0]
    users.action.value = "enable"
    users.apply_button.click()
    assert signin_lab.session_user(signin_lab.sign_in("carla", reset)) == "carla"
    users.action.value = "delete"
    users.user_choice.value = "bert"
    users.apply_button.click()  # bert owns a model: refused, shown, nothing changed
    assert users.action_message.kind == "error" and "disable the account instead" in users.action_message.text
    users.user_choice.value = "carla"
    users.apply_button.click()
    assert "carla" not in [a.name for a in signin_lab.accounts()]


def test_an_open_page_changes_nothing_once_its_sign_in_has_ended(signin_lab: labkit.Lab,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    bert = as_visitor(signin_lab, monkeypatch, "bert")
    account = AccountPage(bert)
    signin_lab.sign_out(bert.session)  # in another tab
    before = lab_state(signin_lab)
    account.token_name.value = "stolen"
    account.create_button.click()
    assert account.token_message.kind == "error" and "sign-in has ended" in account.token_message.text
    assert lab_state(signin_lab) == before


def test_the_session_is_found_among_odd_cookies_as_the_servers_find_it() -> None:
    assert session_secret(f'other={{"a": 1}}; spaced=a b; {SESSION_COOKIE}=s3cret') == "s3cret"
    assert session_secret("") is None and session_secret(f"{SESSION_COOKIE}=") is None
