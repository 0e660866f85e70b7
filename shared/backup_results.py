"""The `backup_results` signal: per configured backup job, how its last run went and what it holds."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import field_validator

from shared.base import Int, Signal, Timestamp, WireModel, fact

MAX_JOBS = 100
Result = Literal["success", "warning", "failed", "unknown"]
# Named schedules and their period; anything else must be a five-field cron expression.
PERIODS = {"daily": timedelta(days=1), "weekly": timedelta(weeks=1)}
CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

# A backup more than a year late is not late but gone; and a year keeps the rule's date arithmetic in range.
GRACE_MAX_SECONDS = 366 * 24 * 3600


def _day_number(token: str) -> int:
    """A crontab weekday (0-7 with 0 and 7 Sunday, or a three-letter name) as 0-7."""
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token in CRON_DAYS:
        return CRON_DAYS.index(token)
    raise ValueError(f"bad day of week {token!r}")


def crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field as a list of weekday names.

    APScheduler 3.x counts numeric weekdays from Monday (its documented issue 286), so "0" would mean
    Monday there; names mean the same day in both, hence the translation.
    """
    if field == "*":
        return field
    days: set[int] = set()
    for item in field.lower().split(","):
        span, _, step = item.partition("/")
        if span == "*":
            first, last = 0, 6
        else:
            low, _, high = span.partition("-")
            first = _day_number(low)
            last = _day_number(high) if high else (6 if step else first)
        if last < first or (step and not step.isdigit()) or step == "0":
            raise ValueError(f"bad day of week {item!r}")
        days.update(range(first, last + 1, int(step or 1)))
    return ",".join(CRON_DAYS[day % 7] for day in sorted({day % 7 for day in days}))


def cron_trigger(expression: str, timezone: str = "UTC") -> CronTrigger:
    """The trigger of a five-field crontab expression read in `timezone`; ValueError when it is not one."""
    try:
        zone = UTC if timezone == "UTC" else ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}") from exc
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"a cron expression has 5 fields, got {len(fields)}")
    minute, hour, day, month, weekdays = fields
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=crontab_weekdays(weekdays), timezone=zone
    )


def check_schedule(schedule: str) -> str:
    """`schedule` unchanged when it is "daily", "weekly" or a valid cron expression; else ValueError."""
    if schedule not in PERIODS:
        try:
            cron_trigger(schedule)
        except ValueError as exc:
            raise ValueError(
                f"schedule must be 'daily', 'weekly' or a cron expression like '0 22 * * 0' ({exc})"
            ) from exc
    return schedule


class BackupJob(WireModel):
    """One configured backup job and the facts about its last run, as the backup tool reports them."""

    name: str = fact("Job name as configured on the agent", min_length=1, max_length=100)
    tool: str = fact(
        "Backup tool: restic, borg, wsb, veeam, macrium, timemachine, imagefiles or script", max_length=40
    )
    schedule: str = fact("Expected schedule as configured: daily, weekly or a five-field cron expression")
    timezone: str = fact(
        "IANA time zone of the device clock, in which a cron schedule is read", default="UTC"
    )
    grace_seconds: float | None = fact(
        "Allowed lateness after a due run; null uses the collector's default for the schedule",
        "seconds",
        default=None,
        ge=0,
        le=GRACE_MAX_SECONDS,
    )
    last_result: Result = fact(
        "Result of the last run: success, warning, failed, or unknown when none is known"
    )
    last_run_started_at: Timestamp | None = fact(
        "When the last run started", "ISO 8601 timestamp", default=None
    )
    last_run_ended_at: Timestamp | None = fact(
        "When the last run ended", "ISO 8601 timestamp", default=None
    )
    last_success_at: Timestamp | None = fact(
        "When the last successful run (or the newest good backup) was made",
        "ISO 8601 timestamp",
        default=None,
    )
    duration_seconds: float | None = fact("Duration of the last run", "seconds", default=None, ge=0)
    bytes_total: Int | None = fact("Size of the data in the newest backup", "bytes", default=None, ge=0)
    bytes_added: Int | None = fact(
        "New data the last run stored in the repository", "bytes", default=None, ge=0
    )
    previous_bytes_total: Int | None = fact(
        "Size of the backup before the newest one, where the tool shows it (e.g. the previous image file)",
        "bytes",
        default=None,
        ge=0,
    )
    file_count: Int | None = fact("Files in the newest backup", "count", default=None, ge=0)
    destination_free_bytes: Int | None = fact(
        "Free space where the backups are stored, when the agent can see it", "bytes", default=None, ge=0
    )
    error: str | None = fact(
        "What went wrong, in the tool's words where possible", default=None, max_length=2000
    )
    integrity_checked_at: Timestamp | None = fact(
        "When the repository's integrity was last checked (restic check, borg check); null: never",
        "ISO 8601 timestamp",
        default=None,
    )
    integrity_error: str | None = fact(
        "What the last integrity check found damaged, in the tool's words; null when it passed",
        default=None,
        max_length=2000,
    )
    detail: dict[str, str] = fact(
        "Tool-specific facts: snapshot id, archive name, image file, event id...", default_factory=dict
    )

    @field_validator("schedule")
    @classmethod
    def _known_schedule(cls, value: str) -> str:
        """A schedule the collector can reason about."""
        return check_schedule(value)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        """A time zone the collector knows."""
        cron_trigger("0 0 * * *", value)
        return value


class BackupResults(Signal):
    """The state of every backup job configured on the device."""

    kind: Literal["backup_results"] = "backup_results"
    jobs: list[BackupJob] = fact("One entry per configured job", default_factory=list, max_length=MAX_JOBS)
