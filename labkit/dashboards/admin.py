"""Users: the admin's page to create, disable, enable and delete accounts, grant roles and reset
passwords (the same library calls as `labkit user ...`; the library checks that the visitor is an admin)."""
from __future__ import annotations

import ipywidgets as w

from ..access import ROLES
from ..lab import Lab
from .common import Message, esc, guarded, h2, header, html_table, page_box

ACTIONS = (("grant role", "grant"), ("withdraw role", "withdraw"), ("reset password", "reset"),
           ("disable", "disable"), ("enable", "enable"), ("delete", "delete"))


class UsersPage:
    """Every account, a form to add one, and the actions on a chosen one."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        if not lab.may_manage_users:
            self.widget = page_box([header("admin", lab, "Users"),
                                    w.HTML('<div class="lk-error">Only the lab\'s admins manage users.</div>')])
            return
        self.table = w.HTML()
        self.new_name = w.Text(description="user name")
        self.new_password = w.Password(description="password", placeholder="blank: a random one, shown once")
        self.new_roles = {role: w.Checkbox(value=False, description=role, indent=False) for role in ROLES}
        self.add_button = w.Button(description="Add user", icon="user-plus", button_style="primary")
        self.add_button.add_class("lk-add-user")
        self.add_message = Message()
        self.add_button.on_click(guarded(self.add_message, lambda _: self.add()))

        self.user_choice = w.Dropdown(description="user", options=[])
        self.action = w.Dropdown(description="action", options=ACTIONS, value="grant")
        self.role = w.Dropdown(description="role", options=ROLES, value=ROLES[-1])
        self.apply_button = w.Button(description="Apply", icon="check")
        self.apply_button.add_class("lk-apply")
        self.action_message = Message()
        self.apply_button.on_click(guarded(self.action_message, lambda _: self.apply()))
        self.widget = page_box([
            header("admin", lab, "Users"), self.table,
            h2("Add a user"), self.new_name, self.new_password, w.HBox(list(self.new_roles.values())),
            self.add_button, self.add_message,
            h2("Change a user"), w.HBox([self.user_choice, self.action, self.role]), self.apply_button,
            self.action_message])
        self.refresh()

    def refresh(self) -> None:
        accounts = self.lab.accounts()
        self.table.value = html_table(
            ["user", "roles", "can sign in", "state"],
            [(a.name, ", ".join(a.roles) or "user", "yes" if a.has_password else "no (no password)",
              "disabled" if a.disabled else "active") for a in accounts])
        self.user_choice.options = [a.name for a in accounts]

    def add(self) -> None:
        import secrets
        name = self.new_name.value.strip()
        password = self.new_password.value or secrets.token_urlsafe(12)
        roles = [role for role, box in self.new_roles.items() if box.value]
        self.lab.add_user(name, roles=roles, password=password)
        shown = "" if self.new_password.value else f' with the password <code class="lk-password">{esc(password)}</code> (hand it over now: it is not shown again)'
        self.new_name.value = self.new_password.value = ""
        self.refresh()
        self.add_message.ok(f"added {esc(name)}{shown}", raw=True)

    def apply(self) -> None:
        name, action = self.user_choice.value, self.action.value
        if not name:
            raise ValueError("choose a user first")
        if action in ("grant", "withdraw"):
            self.lab.set_role(name, self.role.value, action == "grant")
            done = f"{'granted' if action == 'grant' else 'withdrew'} {self.role.value} {'to' if action == 'grant' else 'from'} {name}"
        elif action == "reset":
            password = self.lab.reset_password(name)
            self.refresh()
            self.action_message.ok(f'new password of {esc(name)}: <code class="lk-password">{esc(password)}</code> '
                                   "(hand it over now: it is not shown again)", raw=True)
            return
        elif action in ("disable", "enable"):
            self.lab.disable_user(name, action == "disable")
            done = f"{action}d {name}"
        else:
            self.lab.delete_user(name)
            done = f"deleted {name}"
        self.refresh()
        self.action_message.ok(done)
