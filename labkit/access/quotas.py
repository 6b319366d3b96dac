"""Per-user limits in a shared lab: how many versions a day, how many bytes of files, how many runs
waiting or running at once. One user (or one leaked token) must not be able to fill the disk or the
queue for everyone. The operator and admins are not limited; the limits are settings
(docs/configuration.md), checked before anything is stored or queued, so a refusal changes nothing.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..config import Settings
from ..errors import Forbidden
from ..store import orm


class QuotaExceeded(Forbidden):
    """A per-user limit would be passed; the message names the limit, its setting and what to do."""


def check_new_version(session: Session, settings: Settings, user: str, new_bytes: int) -> None:
    """Before saving a version of ``new_bytes`` bytes of files by ``user``."""
    since = datetime.now(timezone.utc) - timedelta(days=1)
    today = session.scalar(select(func.count(orm.Version.id))
                           .where(orm.Version.author == user, orm.Version.created_at >= since)) or 0
    if today >= settings.user_versions_per_day:
        raise QuotaExceeded(f"{user} saved {today} versions in the last 24 hours, the most this lab allows "
                            f"(user_versions_per_day = {settings.user_versions_per_day}); try again later or "
                            "ask the lab's admin")
    # Every file of every version they authored, counted once per version (identical files are stored
    # once, but each version is theirs to account for).
    stored = session.scalar(select(func.coalesce(func.sum(orm.Blob.size), 0))
                            .select_from(orm.VersionFile)
                            .join(orm.Blob, orm.Blob.sha256 == orm.VersionFile.blob_sha256)
                            .join(orm.Version, orm.Version.id == orm.VersionFile.version_id)
                            .where(orm.Version.author == user)) or 0
    limit = settings.user_storage_mb * 1024 * 1024
    if stored + new_bytes > limit:
        raise QuotaExceeded(f"{user}'s versions hold {stored / 2**20:.1f} MiB; {new_bytes / 2**20:.1f} MiB more "
                            f"would pass this lab's limit of {settings.user_storage_mb} MiB per user "
                            "(user_storage_mb); ask the lab's admin")


def check_new_runs(session: Session, settings: Settings, user: str, count: int = 1) -> None:
    """Before queuing ``count`` runs for ``user``: runs still waiting or running are what is limited."""
    active = session.scalar(select(func.count(orm.Run.id))
                            .where(orm.Run.created_by == user, orm.Run.status.in_(("queued", "running")))) or 0
    if active + count > settings.user_active_runs:
        raise QuotaExceeded(f"{user} has {active} runs queued or running; {count} more would pass this lab's "
                            f"limit of {settings.user_active_runs} (user_active_runs): wait for some to "
                            "finish, or cancel some")
