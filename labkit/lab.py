"""``Lab``: the one object a scientist uses, in JupyterLab or through the CLI.

A lab acts for one user (``settings.user``; ``as_user`` gives a view acting for another). Every
method reads and writes through ``labkit.access``: what that user may not read does not exist for
them, and what they may not change raises Forbidden (docs/permissions.md)."""
from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from . import access
from .access import accounts, quotas
from .config import CONFIG_FILE, Settings, load_settings
from .errors import Forbidden, InvalidInput
from .experiments import Experiments, PlannedExperiment, RunInfo
from .protocols import Compatibility, Interface
from .queue import EmbeddedWorkers, make_celery
from .queue.app import declare_queues
from .results import Prediction
from .results.reproduce import Reproduction, compare_predictions
from .results.store import prediction_folder
from .store import orm
from .store.db import Database
from .store.entities import LATEST, EntityStore, VersionInfo

if TYPE_CHECKING:
    from .exchange.archives import Imported
    from .exchange.binder import BinderExport

#: Run states the matrix shows again instead of queuing the pair anew (see ``Lab.run_matrix``).
MATRIX_REUSES = frozenset({"queued", "running", "success", "partial", "inapplicable"})

Ref = str | int


@dataclass(frozen=True)
class SaveResult:
    """A saved version and the experiments it implies (run them with ``Lab.run_planned``)."""

    version: VersionInfo
    planned: list[PlannedExperiment] = field(default_factory=list)


class Lab:
    """A lab: its entities, experiments, workers and predictions."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Whoever opens the lab folder (a notebook, the CLI) operates it and may manage its users;
        # an ``as_user`` view (a web request) may do so only if its user is an admin.
        self.is_operator = True
        self.session: str | None = None  # the sign-in a web page acts under (``as_user``)
        for folder in (settings.repositories, settings.results, settings.scratch, settings.logs):
            folder.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.database_url)
        self.db.upgrade()
        self.store = EntityStore(self.db, settings.repositories)
        from .doctor import at_startup
        # interrupted saves are recorded before anyone saves on top of them (docs/storage.md)
        self.repairs = at_startup(self)
        self.celery = make_celery(settings)
        self.experiments = Experiments(settings, self.db, self.store, self.celery)
        self.workers = EmbeddedWorkers(settings, lambda: declare_queues(self.celery, settings))

    @classmethod
    def open(cls, path: str | os.PathLike | None = None, **overrides: Any) -> "Lab":
        """Open (creating if needed) the lab in ``path``; settings from its labkit.toml and LABKIT_*."""
        root = Path(path or os.environ.get("LABKIT_LAB") or Path.cwd())
        root.mkdir(parents=True, exist_ok=True)
        if not (root / CONFIG_FILE).exists():
            (root / CONFIG_FILE).write_text("[labkit]\n# database_url, broker_url, result_backend, storage_root,\n"
                                            "# workers, run_time_limit: see docs/configuration.md\n")
        return cls(load_settings(root, **overrides))

    def as_user(self, user: str, *, operator: bool = False, session: str | None = None) -> "Lab":
        """The same lab seen and used by ``user`` (a web request's identity, say): it shares this
        lab's database, store and queue, and everything it does is done, and checked, as ``user``.
        ``operator``: the request holds the server's own secret (the Jupyter token of a server that
        has no sign-in), which is as good as holding the lab folder. ``session``: the sign-in the view
        acts under (a dashboard page lives longer than a request): once it ends, the view changes nothing."""
        view = copy.copy(self)
        view.settings = replace(self.settings, user=access.check_user_name(user))
        view.is_operator = operator and self.is_operator
        view.session = session
        view.experiments = Experiments(view.settings, self.db, self.store, self.celery)
        return view

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _repr_html_(self) -> str:
        """How a lab shows itself in a notebook: where it is, for whom, and what it holds."""
        from .results import display
        entities = {kind: len(self.names(kind)) for kind in ("model", "protocol", "dataset")}
        counted = self.experiments.count_by_status()
        runs = {status: counted.get(status, 0) for status in display.RUN_STATUSES}
        return display.lab_html(self.settings.root, self.user, entities, runs)

    # -- entities --------------------------------------------------------------------------------
    @property
    def user(self) -> str:
        """The user this lab acts for."""
        return self.settings.user

    def _save(self, kind: str, source: str | os.PathLike | dict[str, bytes], name: str | None,
              message: str, parent: str | None, tag: str | None, protocol: str | None = None,
              visibility: str | None = None, main_file: str | None = None) -> SaveResult:
        self._require_may_change()
        if isinstance(source, dict):
            files, main = source, main_file
            if not name:
                raise InvalidInput("give a name when saving files from memory")
        else:
            path = Path(source)
            if not path.is_file():
                raise InvalidInput(f"{path} is not a file")
            files, main = {path.name: path.read_bytes()}, path.name
            name = name or path.stem
        if kind == "protocol" and not self.is_operator:
            access.require_protocol_author(self._viewer())
        if self._limited():
            with self.db.session() as s:
                quotas.check_new_version(s, self.settings, self.user, sum(len(data) for data in files.values()))
        if tag:
            self.store.check_tag(kind, name, tag, user=self.user)  # refuse a bad tag before saving anything
        version = self.store.save(kind, name, files, author=self.user, message=message,
                                  main_file=main, parent=parent, protocol=protocol,
                                  visibility=visibility or self.settings.default_visibility)
        if tag:
            version = self.store.tag(kind, version.entity, version.number, tag, user=self.user)
        planned = self.experiments.plan_for(version) if kind in ("model", "protocol") else []
        return SaveResult(version, planned)

    def add_model(self, source: str | os.PathLike | dict[str, bytes], *, name: str | None = None,
                  message: str = "", parent: str | None = None, tag: str | None = None,
                  visibility: str | None = None) -> SaveResult:
        """Add a CellML model (or a new version of one); it is checked and its annotations indexed.
        ``visibility``: private or public (default: the lab's ``default_visibility``)."""
        return self._save("model", source, name, message, parent, tag, visibility=visibility)

    def add_protocol(self, source: str | os.PathLike | dict[str, bytes], *, name: str | None = None,
                     message: str = "", parent: str | None = None, tag: str | None = None,
                     visibility: str | None = None) -> SaveResult:
        """Add a protocol notebook (or a new version); it must pass the protocol check."""
        return self._save("protocol", source, name, message, parent, tag, visibility=visibility)

    def add_dataset(self, source: str | os.PathLike | dict[str, bytes], *, protocol: str,
                    name: str | None = None, message: str = "", parent: str | None = None,
                    tag: str | None = None, visibility: str | None = None) -> SaveResult:
        """Add a CSV data set (``name (units)`` headers) measuring ``protocol``'s outputs."""
        return self._save("dataset", source, name, message, parent, tag, protocol=protocol, visibility=visibility)

    def names(self, kind: str) -> list[str]:
        return self.store.names(kind, user=self.user)

    def versions(self, kind: str, name: str) -> list[VersionInfo]:
        return self.store.versions(kind, name, user=self.user)

    def version(self, kind: str, name: str, ref: Ref = LATEST) -> VersionInfo:
        return self.store.version(kind, name, ref, user=self.user)

    def tag(self, kind: str, name: str, ref: Ref, tag: str) -> VersionInfo:
        self._require_may_change()
        return self.store.tag(kind, name, ref, tag, user=self.user)

    def files(self, kind: str, name: str, ref: Ref = LATEST) -> list[str]:
        return self.store.files(kind, name, ref, user=self.user)

    def read_file(self, kind: str, name: str, ref: Ref = LATEST, file: str | None = None) -> bytes:
        return self.store.read(kind, name, ref, file, user=self.user)

    def annotations(self, model: str, ref: Ref = LATEST) -> dict[str, str]:
        """oxmeta term -> ``component.variable`` for a model version."""
        return {a.term: f"{a.component}.{a.variable}" for a in self.store.annotations(model, ref, user=self.user)}

    def models_with_term(self, term: str) -> list[str]:
        return self.store.models_with_term(term, user=self.user)

    def interface(self, protocol: str, ref: Ref = LATEST) -> Interface:
        return Interface.from_json(self.store.interface(self.version("protocol", protocol, ref).id))

    def dataset(self, name: str, ref: Ref = LATEST) -> dict[str, Any]:
        return self.store.dataset(name, ref, user=self.user)

    # -- users, sharing and visibility (rules: labkit/access/policy.py) --------------------------
    def set_visibility(self, kind: str, name: str, ref: Ref, visibility: str) -> VersionInfo:
        """Make one version private or public (its owner), or moderated (a moderator only)."""
        self._require_may_change()
        return self.store.set_visibility(kind, name, ref, visibility, user=self.user)

    def share(self, kind: str, name: str, user: str) -> list[str]:
        """Let ``user`` read every version of an entity, add versions and tag (the owner only);
        returns its collaborators."""
        self._require_may_change()
        return self.store.share(kind, name, user, user=self.user)

    def unshare(self, kind: str, name: str, user: str) -> list[str]:
        self._require_may_change()
        return self.store.unshare(kind, name, user, user=self.user)

    def may_edit(self, kind: str, name: str) -> bool:
        """May this lab's user add versions to and tag the entity (its owner or a collaborator)?"""
        return self.store.may_edit(kind, name, user=self.user)

    def collaborators(self, kind: str, name: str) -> tuple[str, list[str]]:
        """(owner, collaborators) of an entity."""
        return self.store.collaborators(kind, name, user=self.user)

    # -- accounts (docs/permissions.md) ----------------------------------------------------------
    def _viewer(self) -> access.Viewer:
        with self.db.session() as s:
            return access.viewer(s, self.user)

    def _limited(self) -> bool:
        """Per-user limits (access/quotas.py) apply to everyone but the operator and admins."""
        return not self.is_operator and not self._viewer().admin

    def _check_run_quota(self, count: int) -> None:
        if self._limited():
            with self.db.session() as s:
                quotas.check_new_runs(s, self.settings, self.user, count)

    @property
    def may_change(self) -> bool:
        """May this lab's user change anything (not the public visitor, not a read-only site)?"""
        return not self.settings.read_only and self.user != access.PUBLIC_VISITOR

    @property
    def may_add_protocols(self) -> bool:
        """Protocols are code: adding one needs the protocol-author role (or admin, or the operator)."""
        if not self.may_change:
            return False
        viewer = self._viewer()
        return self.is_operator or viewer.protocol_author or viewer.admin

    @property
    def may_manage_users(self) -> bool:
        """Is this lab acting for its operator or an admin (who see the users page)?"""
        return not self.settings.read_only and (self.is_operator or self._viewer().admin)

    def _require_may_change(self) -> None:
        """A visitor who is not signed in, a disabled user, and anyone on a read-only site only read."""
        if self.settings.read_only:
            raise Forbidden("this lab is served read-only: nothing can be changed here")
        if self.user == access.PUBLIC_VISITOR:
            raise Forbidden("visitors who are not signed in can only read: sign in to change anything")
        if self.user_disabled(self.user):
            raise Forbidden(f"the account {self.user!r} is disabled; ask the lab's admin")
        if self.session is not None and self.session_user(self.session) != self.user:
            raise Forbidden("your sign-in has ended (you signed out, or the password changed): reload the page "
                            "and sign in again")

    def user_disabled(self, name: str) -> bool:
        """Is ``name`` a disabled account? (An identity from elsewhere, such as JupyterHub's, is checked
        against it: the hub knows nothing of labkit's accounts.)"""
        with self.db.session() as s:
            return accounts.is_disabled(s, name)

    def _require_admin(self, action: str) -> None:
        """Managing accounts is for the lab's operator (who opened its folder) or an admin."""
        self._require_may_change()
        if not self.is_operator and not self._viewer().admin:
            raise Forbidden(f"only an admin may {action}; {self.user} is not one")

    def add_user(self, name: str, *, moderator: bool = False, roles: Iterable[str] = (),
                 password: str | None = None) -> str:
        """Add a user (or change whether an existing one is a moderator), granting ``roles``
        ("admin", "moderator", "protocol-author") and setting a password to sign in with; returns the name."""
        self._require_admin("add users or grant roles")
        granted = {role: True for role in roles}
        if password is not None:
            access.check_password(password)  # refuse a bad password before the user exists
        with self.db.session() as s:
            access.get_or_create_user(s, name).is_moderator = moderator or granted.pop(access.MODERATOR, False)
            s.flush()
            if granted:
                accounts.update_account(s, name, granted)
            if password is not None:
                accounts.set_password(s, name, password)
        return name

    def users(self) -> list[tuple[str, bool]]:
        """(name, is moderator) of every user."""
        return [(a.name, access.MODERATOR in a.roles) for a in self.accounts()]

    def accounts(self) -> list[access.Account]:
        """Every user with their roles, whether they have a password and whether they are disabled."""
        self._require_admin("list users")
        with self.db.session() as s:
            return accounts.accounts(s)

    def account(self, name: str | None = None) -> access.Account:
        """One user's account (default: this lab's user; others need an admin)."""
        name = name or self.user
        if name != self.user:
            self._require_admin(f"see the account of {name}")
        with self.db.session() as s:
            return accounts.account(access.existing_user(s, name))

    def set_role(self, name: str, role: str, granted: bool = True) -> access.Account:
        """Grant or withdraw one role (admin, moderator, protocol-author)."""
        self._require_admin("grant or withdraw roles")
        with self.db.session() as s:
            return accounts.update_account(s, name, {role: granted})

    def update_account(self, name: str, *, roles: dict[str, bool] | None = None, disabled: bool | None = None,
                       create: bool = False) -> access.Account:
        """Grant (True) or withdraw (False) roles and enable or disable ``name`` in one transaction: all of
        it or nothing (a web form's one request). ``create``: add the user first if they are new."""
        self._require_admin("change accounts")
        with self.db.session() as s:
            if create:
                access.get_or_create_user(s, name)
                s.flush()
            return accounts.update_account(s, name, roles or {}, disabled)

    def set_password(self, password: str, *, user: str | None = None, current: str | None = None) -> None:
        """Set a password: one's own needs the current one (if there is one); anyone else's needs an
        admin. Every session of the user ends."""
        self._require_may_change()
        user = user or self.user
        if user != self.user or self.is_operator:
            self._require_admin(f"set the password of {user}")
        else:
            with self.db.session() as s:
                if access.existing_user(s, user).password_hash is not None:
                    accounts.verify_password(s, user, current or "")
        with self.db.session() as s:
            accounts.set_password(s, user, password)

    def reset_password(self, user: str) -> str:
        """A new random password for ``user``, to be handed over once (an admin's job, often because the
        account was misused): their sessions end and their API tokens are revoked too."""
        self._require_admin(f"reset the password of {user}")
        with self.db.session() as s:
            password = accounts.reset_password(s, user)
            access.revoke_tokens(s, user)
            return password

    def disable_user(self, name: str, disabled: bool = True) -> access.Account:
        """A disabled user cannot sign in; their tokens and sessions stop working at once."""
        self._require_admin(f"{'disable' if disabled else 'enable'} {name}")
        with self.db.session() as s:
            return accounts.update_account(s, name, {}, disabled)

    def delete_user(self, name: str) -> None:
        """Delete an account that owns nothing (disable one that does)."""
        self._require_admin(f"delete {name}")
        with self.db.session() as s:
            accounts.delete_user(s, name)

    def owned(self) -> list[tuple[str, str]]:
        """(kind, name) of every entity this lab's user owns: their account page."""
        with self.db.session() as s:
            return accounts.owned_entities(s, self.user)

    # -- signing in ------------------------------------------------------------------------------
    def sign_in(self, name: str, password: str) -> str:
        """Check ``name``'s password and start a session; returns the secret the browser's cookie holds.
        Raises access.SignInFailed (a Forbidden) with the same message whatever was wrong."""
        with self.db.session() as s:
            return accounts.start_session(s, accounts.verify_password(s, name, password),
                                          self.settings.session_days)

    def session_user(self, secret: str | None) -> str | None:
        """Who a session cookie belongs to, or None (unknown, expired, signed out, user disabled)."""
        with self.db.session() as s:
            return accounts.user_for_session(s, secret)

    def sign_out(self, secret: str | None) -> None:
        with self.db.session() as s:
            accounts.end_session(s, secret)

    # -- API tokens ------------------------------------------------------------------------------
    def create_token(self, user: str | None = None, *, name: str | None = None,
                     days: float | None | str = "default") -> str:
        """A new API token for ``user`` (default: this lab's user), called ``name`` and expiring after
        ``days`` (default: the lab's ``token_days``; None: never). Shown once, only its hash is kept.
        Users create their own tokens; tokens for others need the operator or an admin."""
        return self.issue_token(user, name=name, days=days)[0]

    def issue_token(self, user: str | None = None, *, name: str | None = None,
                    days: float | None | str = "default") -> tuple[str, access.TokenInfo]:
        """``create_token``, also answering the new token's record (its name and expiry)."""
        self._require_may_change()
        user = user or self.user
        if user != self.user:
            self._require_admin(f"create a token for {user}")
        lifetime = (self.settings.token_days or None) if days == "default" else days
        with self.db.session() as s:
            taken = {t.name for t in access.tokens(s, user)}
            name = name or next(f"token-{i}" for i in range(1, len(taken) + 2) if f"token-{i}" not in taken)
            token = access.create_token(s, user, name, lifetime)  # type: ignore[arg-type]
            return token, next(t for t in access.tokens(s, user) if t.name == name)

    def tokens(self, user: str | None = None) -> list[access.TokenInfo]:
        """The tokens of ``user`` (default: this lab's user): names and dates, never the tokens."""
        user = user or self.user
        if user != self.user:
            self._require_admin(f"list the tokens of {user}")
        with self.db.session() as s:
            return access.tokens(s, user)

    def revoke_token(self, name: str, user: str | None = None) -> None:
        """Revoke one token by its name; the user's other tokens keep working."""
        self._require_may_change()
        user = user or self.user
        if user != self.user:
            self._require_admin(f"revoke the tokens of {user}")
        with self.db.session() as s:
            access.revoke_token(s, user, name)

    def revoke_tokens(self, user: str | None = None) -> int:
        """Revoke every token of ``user`` (default: this lab's user); returns how many."""
        self._require_may_change()
        user = user or self.user
        if user != self.user:
            self._require_admin(f"revoke the tokens of {user}")
        with self.db.session() as s:
            return access.revoke_tokens(s, user)

    def user_for_token(self, token: str) -> str:
        """The user a token belongs to (raises access.InvalidToken, a Forbidden, if none): a web
        request then acts through ``lab.as_user(lab.user_for_token(token))``."""
        with self.db.session() as s:
            return access.user_for_token(s, token)

    # -- experiments -----------------------------------------------------------------------------
    def compatibility(self, model: str, protocol: str, model_version: Ref = LATEST,
                      protocol_version: Ref = LATEST) -> Compatibility:
        return self.experiments.compatibility(self.version("model", model, model_version),
                                              self.version("protocol", protocol, protocol_version))

    def run(self, model: str, protocol: str, parameters: dict[str, Any] | None = None, *,
            model_version: Ref = LATEST, protocol_version: Ref = LATEST, queue: str | None = None) -> RunInfo:
        """Queue one protocol version on one model version."""
        self._require_may_change()
        self._check_run_quota(1)
        return self.experiments.submit(self.version("model", model, model_version),
                                       self.version("protocol", protocol, protocol_version),
                                       parameters, queue=queue)

    def rerun(self, run_id: str, *, queue: str | None = None) -> RunInfo:
        """Queue ``run_id``'s experiment again: the same model and protocol versions and parameters,
        in a fresh scratch folder on a worker. ``reproduction`` then compares the two predictions."""
        self._require_may_change()
        original = self.status(run_id)
        self._check_run_quota(1)
        return self.experiments.submit(self.version("model", original.model, original.model_version),
                                       self.version("protocol", original.protocol, original.protocol_version),
                                       original.parameters, queue=queue, rerun_of=run_id)

    def reproduction(self, rerun_id: str) -> Reproduction:
        """Compare a finished re-run's outputs with its original's, output by output (identical /
        within the protocol's tolerance / different); ``labkit.results.reproduce`` says how."""
        again = self.status(rerun_id)
        if not again.rerun_of:
            raise InvalidInput(f"run {rerun_id} is not a re-run of another run; start one with rerun(run_id)")
        if not again.done:
            raise InvalidInput(f"re-run {rerun_id} is still {again.status}; wait for it to end, then compare")
        first = self.status(again.rerun_of)
        if not first.results_path:
            raise InvalidInput(f"run {first.id}, which {rerun_id} repeats, has no prediction to compare with "
                               f"(status {first.status})")
        original = self.prediction(first.id)
        rerun = self.prediction(rerun_id) if again.results_path else None
        interface = self.interface(again.protocol, again.protocol_version)
        return compare_predictions(original, rerun, interface, rerun_id=rerun_id, rerun_status=again.status)

    def export_binder(self, run_id: str, destination: str | os.PathLike, *, push: bool = False) -> "BinderExport":
        """Write ``run_id``'s prediction as a folder repo2docker builds (``labkit.exchange.binder``).
        ``push`` publishes it on the lab's ``binder_remote`` and records its Binder link; only a run
        of public versions may be published."""
        from .exchange import binder
        info = self.status(run_id)
        link, branch = None, binder.binder_branch(run_id)
        if push:
            self._require_may_change()
            if not self.settings.binder_remote:
                raise InvalidInput("this lab has no Binder remote: set binder_remote (a git URL BinderHub can "
                                   "clone) in labkit.toml, or export without --push")
            if info.visibility not in (orm.PUBLIC, orm.MODERATED):
                raise Forbidden(f"run {run_id} uses a {info.visibility} model or protocol version; publish both "
                                "versions before pushing the prediction to a public Binder remote")
            link = binder.binder_link(self.settings.binderhub_url, self.settings.binder_remote, branch)
        export = binder.export_binder(self, run_id, destination, binder_url=link)
        if push:
            binder.push_export(export.folder, self.settings.binder_remote, branch)
            with self.db.session() as s:
                s.get(orm.Run, run_id).binder_ref = branch
        return replace(export, binder_url=link)

    def export_archive(self, kind: str, name: str, target: str | os.PathLike, ref: Ref = LATEST) -> Path:
        """One version of a model, protocol or dataset as a COMBINE/OMEX archive (``labkit.exchange``)."""
        from .exchange import archives
        return archives.export_version(self, kind, name, ref, target)

    def export_prediction_archive(self, run_id: str, target: str | os.PathLike) -> Path:
        """A whole prediction (notebook, inputs, outputs, plots, provenance) as a COMBINE/OMEX archive."""
        from .exchange import archives
        return archives.export_prediction(self, run_id, target)

    def import_archive(self, path: str | os.PathLike) -> "Imported":
        """Import a COMBINE/OMEX archive: a model, protocol or dataset version (saved through the same
        checks as an upload), or a prediction. An unsafe or inconsistent archive stores nothing."""
        self._require_may_change()
        from .exchange import archives
        return archives.import_archive(self, path)

    def binder_url(self, run_id: str) -> str | None:
        """Where BinderHub serves ``run_id``'s pushed export, or None if it was never pushed."""
        info = self.status(run_id)
        if not info.binder_ref or not self.settings.binder_remote:
            return None
        from .exchange.binder import binder_link
        return binder_link(self.settings.binderhub_url, self.settings.binder_remote, info.binder_ref)

    def run_matrix(self, models: Iterable[str] | None = None, protocols: Iterable[str] | None = None,
                   *, only_compatible: bool = True, rerun: bool = False) -> list[RunInfo]:
        """Queue every (model, protocol) pair of latest versions; by default only compatible pairs.

        As in the Web Lab, an experiment is run once per pair of versions: a pair whose latest
        versions already have a run with default parameters that is queued, running or ended well
        (or was found inapplicable) gets that run back instead of a new one. ``rerun`` queues
        every pair again; failed and cancelled runs are always queued again.
        """
        self._require_may_change()
        models = list(models or self.names("model"))
        runs = []
        for protocol in (protocols or self.names("protocol")):
            for model in models:
                if only_compatible and not self.compatibility(model, protocol).compatible:
                    continue
                existing = None if rerun else self.latest_run(model, protocol, {}, statuses=MATRIX_REUSES)
                runs.append(existing or self.run(model, protocol))
        return runs

    def latest_run(self, model: str, protocol: str, parameters: dict[str, Any], *,
                   statuses: Iterable[str]) -> RunInfo | None:
        """The newest run of the latest versions of ``model`` and ``protocol`` with exactly these
        ``parameters`` and one of ``statuses``: the run to show again instead of queuing a new one."""
        model_version = self.version("model", model).number
        protocol_version = self.version("protocol", protocol).number
        wanted = frozenset(statuses)
        for info in reversed(self.runs(model=model, protocol=protocol)):
            if info.model_version == model_version and info.protocol_version == protocol_version \
                    and info.parameters == parameters and info.status in wanted:
                return info
        return None

    def run_planned(self, saved: SaveResult) -> list[RunInfo]:
        self._require_may_change()
        self._check_run_quota(len(saved.planned))
        return [self.experiments.submit(p.model, p.protocol) for p in saved.planned]

    def status(self, run_id: str) -> RunInfo:
        return self.experiments.get(run_id)

    def runs(self, **filters: Any) -> list[RunInfo]:
        """Runs this user may read, oldest first. Filters: ``status``, ``model``, ``protocol``,
        ``created_by`` (who queued it); a page with ``limit`` and ``offset`` (counted by ``count_runs``
        with the same filters)."""
        return self.experiments.list(**filters)

    def count_runs(self, **filters: Any) -> int:
        return self.experiments.count(**filters)

    def cancel(self, run_id: str) -> RunInfo:
        self._require_may_change()
        return self.experiments.cancel(run_id)

    def wait(self, runs: Iterable[str | RunInfo], *, timeout: float | None = None,
             on_change: Callable[[RunInfo], None] | None = None) -> list[RunInfo]:
        ids = [r.id if isinstance(r, RunInfo) else r for r in runs]
        return self.experiments.wait(ids, timeout=timeout, on_change=on_change)

    def prediction(self, run_id: str) -> Prediction:
        info = self.status(run_id)
        if not info.results_path:
            raise InvalidInput(f"run {run_id} has no prediction (status {info.status})"
                               + (f": {info.error}" if info.error else ""))
        folder = prediction_folder(self.db, self.settings.results, run_id, info.results_path)
        return Prediction(run_id, info.status, folder)

    # -- workers ---------------------------------------------------------------------------------
    @property
    def sandbox_warning(self) -> str | None:
        """Why this machine's workers will not sandbox runs (docs/security.md), or None when they will."""
        from .runner.sandbox import startup_warning
        return startup_warning(self.settings)

    def start_workers(self, count: int | None = None, *, wait: bool = True) -> None:
        self.workers.start(count)
        if wait:
            self.workers.wait_ready()

    def stop_workers(self, timeout: float = 10.0) -> None:
        """Stop the workers this lab started: a warm shutdown, then SIGKILL for whatever has not
        exited after ``timeout`` seconds (an idle Celery worker takes about 6 s to exit)."""
        self.workers.stop(timeout)
