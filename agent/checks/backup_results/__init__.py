"""The backup_results check: for each configured backup job, how its last run went and what it holds."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from agent.checks import Check, CheckContext
from agent.checks.backup_results.jobs import BackupSettings, Job, parse_jobs
from agent.commands import CommandNotFound
from shared.backup_results import BackupJob, BackupResults
from shared.base import Signal

log = logging.getLogger(__name__)

# What a provider returns: BackupJob fields other than the job's identity.
Facts = dict[str, Any]
Provider = Callable[[Any, CheckContext, datetime], Facts]
MAX_ERROR = 2000


def provider_for(tool: str) -> Provider:
    """The collect function of one backup tool."""
    if tool == "restic":
        from agent.checks.backup_results.restic import collect
    elif tool == "borg":
        from agent.checks.backup_results.borg import collect
    elif tool == "wsb":
        from agent.checks.backup_results.wsb import collect
    elif tool == "veeam":
        from agent.checks.backup_results.veeam import collect
    elif tool == "macrium":
        from agent.checks.backup_results.macrium import collect
    elif tool == "timemachine":
        from agent.checks.backup_results.timemachine import collect
    elif tool == "script":
        from agent.checks.backup_results.script import collect
    else:
        from agent.checks.backup_results.imagefiles import collect
    return collect


def local_zone_name() -> str:
    """The IANA name of the device's time zone, which cron schedules in the config are written in."""
    from tzlocal import get_localzone_name

    try:
        return get_localzone_name() or "UTC"
    except Exception:  # tzlocal raises several types on odd setups; UTC is then the honest fallback
        log.warning("could not tell the local time zone; cron schedules are read as UTC")
        return "UTC"


def free_bytes(path: Path | str) -> int | None:
    """Free space on the filesystem holding `path`, or None when the agent cannot see it (remote, absent)."""
    try:
        return shutil.disk_usage(path).free
    except (OSError, ValueError):
        return None


def cut(text: str) -> str:
    """Error text cut to what the wire accepts."""
    return text.strip()[:MAX_ERROR]


def merged(facts: Facts, integrity: Facts, free: int | None) -> Facts:
    """A repository job's facts with its integrity facts and the destination's free space."""
    detail = {**facts.get("detail", {}), **integrity.get("detail", {})}
    return {**facts, **integrity, "detail": detail, "destination_free_bytes": free}


def job_report(job: Job, timezone: str, facts: Facts) -> BackupJob:
    """The wire entry of one job: its identity from the config plus what the provider found."""
    grace = job.grace_hours * 3600 if job.grace_hours is not None else None
    return BackupJob(
        name=job.name, tool=job.tool, schedule=job.schedule, timezone=timezone, grace_seconds=grace, **facts
    )


class BackupResultsCheck(Check):
    """Reports every configured backup job: last result and success, sizes, free space at the destination."""

    kind: ClassVar[str] = "backup_results"
    # Listing a large remote repository (and borg's cache sync) can take minutes.
    timeout: ClassVar[float] = 600.0
    default_interval: ClassVar[float] = 900.0
    settings_model: ClassVar[type[BackupSettings]] = BackupSettings

    def __init__(self, context: CheckContext | None = None) -> None:
        super().__init__(context)
        self.jobs = parse_jobs(self.context.settings.get("jobs") or [])

    def report(self, job: Job, now: datetime, timezone: str) -> BackupJob:
        """One job's entry; a job whose tool cannot be read is `unknown` with the reason, never a success."""
        try:
            facts = provider_for(job.tool)(job, self.context, now)
        except CommandNotFound as exc:
            facts = {"last_result": "unknown", "error": str(exc)}
        except Exception as exc:
            log.exception("backup job %s could not be read", job.name)
            facts = {"last_result": "unknown", "error": cut(f"{type(exc).__name__}: {exc}")}
        return job_report(job, timezone, facts)

    def collect(self) -> list[Signal]:
        """One signal listing every configured job."""
        now = self.context.clock()
        timezone = local_zone_name()
        return [BackupResults(collected_at=now, jobs=[self.report(job, now, timezone) for job in self.jobs])]
