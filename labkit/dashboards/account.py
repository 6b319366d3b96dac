"""Account: what the signed-in user owns and ran, their API tokens, and their password."""
from __future__ import annotations

import ipywidgets as w

from ..access import PUBLIC_VISITOR, Account
from ..errors import NotFound
from ..lab import Lab
from .common import (Message, badge, entity_link, esc, guarded, h2, header, html_table, link, page_box, site_url,
                     when)

RECENT_RUNS = 50


class AccountPage:
    """One user's own page; the public visitor is asked to sign in instead."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        if lab.user == PUBLIC_VISITOR or not lab.may_change:
            text = ("Sign in to see your models, runs and tokens." if lab.user == PUBLIC_VISITOR
                    else "This site is read-only: accounts are managed on the lab's own site.")
            sign_in = (f' <a href="{esc(site_url("login"))}" target="_self">Sign in</a>'
                       if lab.settings.sign_in else "")
            self.widget = page_box([header("account", lab, "Account"), w.HTML(f"<div>{esc(text)}{sign_in}</div>")])
            return
        self.entities = w.HTML()
        self.runs = w.HTML()
        self.tokens = w.HTML()
        self.token_name = w.Text(description="name", placeholder="what it is for: laptop, ci")
        self.token_days = w.BoundedFloatText(value=lab.settings.token_days or 90, min=0, max=3650, description="days",
                                             tooltip="0: never expires")
        self.create_button = w.Button(description="Create token", icon="key")
        self.create_button.add_class("lk-create-token")
        self.revoke_choice = w.Dropdown(description="token", options=[])
        self.revoke_button = w.Button(description="Revoke", icon="trash", button_style="danger")
        self.revoke_button.add_class("lk-revoke-token")
        self.token_message = Message()
        self.create_button.on_click(guarded(self.token_message, lambda _: self.create_token()))
        self.revoke_button.on_click(guarded(self.token_message, lambda _: self.revoke_token()))

        self.current = w.Password(description="current")
        self.new = w.Password(description="new")
        self.repeat = w.Password(description="repeat")
        self.password_button = w.Button(description="Change password", icon="lock")
        self.password_message = Message()
        self.password_button.on_click(guarded(self.password_message, lambda _: self.change_password()))

        account = self._account()
        roles = ", ".join(account.roles) if account and account.roles else "user"
        self.widget = page_box([
            header("account", lab, f"Account of {lab.user}"),
            w.HTML(f'<div class="lk-muted">roles: {esc(roles)}</div>'),
            h2("Your models, protocols and data sets"), self.entities,
            h2(f"Your runs (latest {RECENT_RUNS})"), self.runs,
            h2("API tokens"),
            w.HTML('<div class="lk-muted">A token lets a script use the REST API as you (header '
                   "<code>Authorization: token lk_…</code>). It is shown once; revoke one you no longer use.</div>"),
            self.tokens, w.HBox([self.token_name, self.token_days, self.create_button]),
            w.HBox([self.revoke_choice, self.revoke_button]), self.token_message,
            h2("Password"), self.current, self.new, self.repeat, self.password_button, self.password_message])
        self.refresh()

    def _account(self) -> Account | None:
        try:
            return self.lab.account()
        except NotFound:  # the operator of a new lab has no user row until they first save something
            return None

    def refresh(self) -> None:
        owned = self.lab.owned()
        self.entities.value = (html_table(["kind", "name"], [(esc(k), entity_link(k, n)) for k, n in owned], raw=True)
                               if owned else '<div class="lk-muted">Nothing yet.</div>')
        total = self.lab.count_runs(created_by=self.lab.user)
        mine = self.lab.runs(created_by=self.lab.user, limit=RECENT_RUNS, offset=max(0, total - RECENT_RUNS))[::-1]
        self.runs.value = (html_table(
            ["run", "model", "protocol", "status", "queued"],
            [(link("prediction", r.id[:8], run=r.id), esc(r.model), esc(r.protocol), badge(r.status),
              esc(when(r.created_at))) for r in mine], raw=True)
            if mine else '<div class="lk-muted">No runs yet.</div>')
        tokens = self.lab.tokens() if self._account() else []
        self.tokens.value = (html_table(
            ["name", "created", "expires", "last used"],
            [(t.name, when(t.created_at), "expired" if t.expired else (when(t.expires_at) or "never"),
              when(t.last_used_at) or "never") for t in tokens])
            if tokens else '<div class="lk-muted">No tokens.</div>')
        self.revoke_choice.options = [t.name for t in tokens]

    def create_token(self) -> str:
        days = float(self.token_days.value)
        token = self.lab.create_token(name=self.token_name.value.strip() or None, days=days or None)
        self.token_name.value = ""
        self.refresh()
        self.token_message.ok(f'Your new token (copy it now, it is not shown again): <code class="lk-token">'
                              f'{esc(token)}</code>', raw=True)
        return token

    def revoke_token(self) -> None:
        if not self.revoke_choice.value:
            raise ValueError("choose a token to revoke")
        name = self.revoke_choice.value
        self.lab.revoke_token(name)
        self.refresh()
        self.token_message.ok(f"token {name!r} revoked")

    def change_password(self) -> None:
        if self.new.value != self.repeat.value:
            raise ValueError("the new password and its repetition differ")
        self.lab.set_password(self.new.value, current=self.current.value or None)
        for field in (self.current, self.new, self.repeat):
            field.value = ""
        self.password_message.ok("password changed; your other sign-ins have ended"
                                 + (": sign in again" if self.lab.settings.sign_in else ""))
