"""Settings for one lab, from its ``labkit.toml`` and ``LABKIT_*`` environment variables.

The embedded default needs nothing but a folder: SQLite for metadata, a SQLite-backed Celery broker
and result store, and worker processes labkit starts itself. Scale-out is the same code with other
URLs (``postgresql://``, ``amqp://``); nothing else changes.
"""
from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from .errors import LabkitError

CONFIG_FILE = "labkit.toml"
ENV_PREFIX = "LABKIT_"
MAX_TIME_LIMIT = 7 * 24 * 3600.0  # seconds: no run, and no protocol's time_limit, may ask for more


class ConfigError(LabkitError, ValueError):
    """A setting that cannot be used; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    """Everything a lab, its workers and its CLI need to agree on."""

    root: Path
    database_url: str = ""
    broker_url: str = ""
    result_backend: str = ""
    storage_root: Path = field(default=Path())
    workers: int = 2
    run_time_limit: float = 3600.0
    heartbeat_interval: float = 1.0
    stale_after: float = 15.0
    kernel_start_timeout: int = 60  # seconds papermill waits for a run's kernel to answer, per attempt
    default_queue: str = "labkit"
    run_queues: str = ""  # comma-separated queues, besides default_queue, that runs may be sent to
    user: str = ""  # who this lab acts for; default: $JUPYTERHUB_USER, then $USER
    default_visibility: str = "private"  # of new versions: "private" (owner and collaborators) or "public"
    read_only: bool = False
    # Sign-in on the dashboards and the API (docs/permissions.md): visitors who are not signed in see
    # the public lab read-only. Required to serve on anything but loopback, unless read_only.
    sign_in: bool = False
    session_days: float = 14.0  # a sign-in lasts this long
    token_days: float = 90.0  # default lifetime of a new API token (0: no expiry)
    # Per-user limits (labkit/access/quotas.py); the operator and admins are not limited.
    user_versions_per_day: int = 500
    user_storage_mb: int = 2048
    user_active_runs: int = 1000
    isolate_workers: bool = False  # workers labkit starts get folders of their own, as on other machines
    # The run sandbox (docs/security.md). Limits apply to each run; the wall time is the smaller of the
    # protocol's time_limit and run_time_limit, the CPU time at most twice that.
    run_cpu_seconds: int = 7200
    run_memory_mb: int = 4096
    run_processes: int = 256
    run_file_mb: int = 512
    run_folder_mb: int = 2048
    run_folder_files: int = 20000
    run_outputs_mb: int = 256
    sandbox_bwrap: str = "bwrap"  # the bubblewrap executable
    # A root worker runs each concurrent run as one of 64 uids from here: far above the ranges that
    # Debian, systemd (DynamicUser 61184-65519) and /etc/subuid (from 100000) hand out.
    sandbox_uid_base: int = 1_500_000_000
    # No sandbox at all: every protocol runs with the worker's rights. Only for a lab used by one person
    # who trusts every protocol in it (Binder, a laptop).
    trusted_single_user: bool = False
    # Publishing predictions for Binder (`labkit export RUN --binder DIR --push`, docs/reproducibility.md):
    # a git remote BinderHub can clone, and the BinderHub that serves it.
    binder_remote: str = ""
    binderhub_url: str = "https://mybinder.org"

    @property
    def queues(self) -> tuple[str, ...]:
        """The queues a run may be sent to: the default one first, then ``run_queues``."""
        extra = [q.strip() for q in self.run_queues.split(",") if q.strip()]
        return tuple(dict.fromkeys([self.default_queue, *extra]))

    @property
    def repositories(self) -> Path:
        """Where each entity's git repository lives."""
        return self.storage_root / "repos"

    @property
    def results(self) -> Path:
        """Where predictions and datasets are stored (layout in docs/architecture.md)."""
        return self.storage_root / "results"

    @property
    def scratch(self) -> Path:
        """Working directories of runs in progress."""
        return self.storage_root / "scratch"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


_CASTS = {"workers": int, "run_time_limit": float, "heartbeat_interval": float, "stale_after": float,
          "kernel_start_timeout": int, "run_cpu_seconds": int, "run_memory_mb": int, "run_processes": int,
          "run_file_mb": int, "run_folder_mb": int, "run_folder_files": int, "run_outputs_mb": int,
          "sandbox_uid_base": int, "session_days": float, "token_days": float,
          "user_versions_per_day": int, "user_storage_mb": int, "user_active_runs": int}
_BOOLS = {"read_only", "sign_in", "isolate_workers", "trusted_single_user"}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def _cast_bool(value: object) -> bool:
    """A TOML boolean, or the usual spellings in an environment variable (``1``/``true``/``yes``...)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise TypeError(f"expected true or false, got {value!r}")


def _cast(name: str, value: object) -> object:
    try:
        if name in _BOOLS:
            return _cast_bool(value)
        if name in _CASTS:
            # bool is an int to Python, and int(2.5) is 2: neither is what the user meant
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise TypeError(f"expected a number, got {type(value).__name__}")
            number = _CASTS[name](value)
            if isinstance(value, float) and number != value:
                raise ValueError("expected a whole number")
            if not math.isfinite(number):
                raise ValueError("expected a finite number")
            return number
        if name == "storage_root":
            if not isinstance(value, (str, os.PathLike)):
                raise TypeError(f"expected a path, got {type(value).__name__}")
            return Path(value)
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return value
    except (TypeError, ValueError) as err:
        raise ConfigError(f"setting {name!r} has the unusable value {value!r}: {err}") from None


def load_settings(root: str | os.PathLike | None = None, **overrides: object) -> Settings:
    """Read a lab's settings: defaults < ``labkit.toml`` < environment < explicit overrides.

    ``root`` defaults to ``$LABKIT_LAB`` and then the current directory.
    """
    root_path = Path(root or os.environ.get(f"{ENV_PREFIX}LAB") or Path.cwd()).resolve()
    values: dict[str, object] = {}
    config_file = root_path / CONFIG_FILE
    if config_file.exists():
        try:
            document = tomllib.loads(config_file.read_text())
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{config_file} is not valid TOML: {err}") from None
        table = document.get("labkit", {})
        if not isinstance(table, dict) or set(document) - {"labkit"}:
            raise ConfigError(f"{config_file}: settings belong in a [labkit] table; found "
                              f"{sorted(document)} at the top level")
        values.update(table)
    names = {f.name for f in fields(Settings)} - {"root"}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"{config_file} has unknown settings {sorted(unknown)}; known: {sorted(names)}")
    unknown = {k for k, v in overrides.items() if v is not None} - names
    if unknown:
        raise ConfigError(f"unknown settings {sorted(unknown)}; known: {sorted(names)}")
    for name in names:
        env = os.environ.get(ENV_PREFIX + name.upper())
        if env is not None:
            values[name] = env
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = Settings(root=root_path, **{k: _cast(k, v) for k, v in values.items()})
    return _with_embedded_defaults(settings)


def _with_embedded_defaults(s: Settings) -> Settings:
    """Fill every empty URL and path with the embedded (single folder, SQLite) default."""
    storage = s.storage_root if str(s.storage_root) not in ("", ".") else s.root
    if not storage.is_absolute():
        storage = s.root / storage
    database = s.database_url or f"sqlite:///{s.root / 'labkit.sqlite'}"
    broker = s.broker_url or f"sqla+sqlite:///{s.root / 'broker.sqlite'}"
    backend = s.result_backend or f"db+sqlite:///{s.root / 'celery-results.sqlite'}"
    # A JupyterHub single-user server knows who its user is; elsewhere the login name is the identity.
    user = s.user or os.environ.get("JUPYTERHUB_USER") or os.environ.get("USER") or "scientist"
    if s.default_visibility not in ("private", "public"):
        raise ConfigError(f"default_visibility must be 'private' or 'public', not {s.default_visibility!r} "
                          "('moderated' is granted by a moderator, one version at a time)")
    for queue in s.queues:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", queue) or queue.endswith(".control"):
            raise ConfigError(f"{queue!r} cannot be a run queue: use letters, digits, '_', '.' and '-' "
                              "(a name ending in '.control' is the reaper's)")
    if s.workers < 0:
        raise ConfigError("workers must be 0 or more")
    for name in ("run_time_limit", "heartbeat_interval", "stale_after", "kernel_start_timeout", "run_cpu_seconds"):
        if getattr(s, name) <= 0:
            raise ConfigError(f"{name} must be a positive number of seconds")
    if s.run_time_limit > MAX_TIME_LIMIT:
        raise ConfigError(f"run_time_limit must be at most {MAX_TIME_LIMIT:g} s (a week)")
    for name in ("run_memory_mb", "run_processes", "run_file_mb", "run_folder_mb", "run_folder_files",
                 "run_outputs_mb"):
        if getattr(s, name) <= 0:
            raise ConfigError(f"{name} must be a positive whole number")
    for name in ("user_versions_per_day", "user_storage_mb", "user_active_runs"):
        if getattr(s, name) <= 0:
            raise ConfigError(f"{name} must be a positive whole number")
    if not 0 < s.session_days <= 366:
        raise ConfigError("session_days must be more than 0 and at most 366")
    if not 0 <= s.token_days <= 3650:
        raise ConfigError("token_days must be from 0 (tokens never expire) to 3650")
    if not 1000 <= s.sandbox_uid_base <= 2**31 - 100:
        raise ConfigError("sandbox_uid_base must be an unprivileged uid (1000 or more) with 64 free uids after it")
    return replace(s, storage_root=storage, database_url=database, broker_url=broker,
                   result_backend=backend, user=user)
