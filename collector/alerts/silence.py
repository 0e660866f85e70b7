"""Silences and maintenance windows: which alerts they match and until when their notifications are held.

A silence is either one-off (`starts_at` to `ends_at`) or recurring: a five-field crontab read in the
silence's IANA time zone, each firing opening a window of `duration` (elapsed time, so a window that spans
a daylight-saving change still lasts exactly `duration`; only its end on the wall clock moves by an hour).
Alerts are still recorded while silenced; only notifications wait.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from collector.rules.backup_results import due_times
from shared.backup_results import cron_trigger
from shared.signals import rule_matches

# Silences are consulted for every notification; a schedule's parsed trigger never changes.
_trigger = lru_cache(maxsize=256)(cron_trigger)


@dataclass(frozen=True)
class Matchers:
    """What a silence applies to: every field that is set must match the alert; None matches anything."""

    client: str | None = None
    site: str | None = None
    # The device's hostname or its agent id.
    device: str | None = None
    # A signal or a rule name: `updates` matches updates.security and updates.package_index.
    kind: str | None = None
    severity: str | None = None


@dataclass(frozen=True)
class Silence:
    """A one-off silence (starts_at to ends_at) or a recurring maintenance window (cron and duration)."""

    silence_id: int
    matchers: Matchers
    starts_at: datetime
    # One-off: required. Recurring: optional last moment of the schedule.
    ends_at: datetime | None
    cron: str | None = None
    duration: timedelta | None = None
    timezone: str = "UTC"
    comment: str = ""
    created_by: str = ""
    # Set when a technician expires the silence by hand; it holds nothing from then on.
    expired_at: datetime | None = None

    def __post_init__(self) -> None:
        """Refuse a silence that could not be evaluated: naive times, no end, a bad schedule or zone."""
        for name in ("starts_at", "ends_at", "expired_at"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"{name} must be timezone-aware")
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.cron is None:
            if self.ends_at is None or self.duration is not None:
                raise ValueError("a one-off silence needs ends_at and no duration (or give a cron schedule)")
            return
        if self.duration is None or self.duration <= timedelta(0):
            raise ValueError("a recurring silence needs a positive duration")
        _trigger(self.cron, self.timezone)


def _same(wanted: str | None, *actual: str | None) -> bool:
    """True when the matcher is unset or equals one of the alert's values, ignoring case."""
    # Windows reports hostnames in upper case; the technician types them in lower case.
    return wanted is None or any(
        value is not None and value.casefold() == wanted.casefold() for value in actual
    )


def matches(
    silence: Silence,
    *,
    client: str | None,
    site: str | None,
    hostname: str | None,
    agent_id: str | None,
    rule: str | None,
    severity: str | None,
) -> bool:
    """Whether every matcher of `silence` that is set matches the alert (a site-wide alert has no device)."""
    wanted = silence.matchers
    return (
        _same(wanted.client, client)
        and _same(wanted.site, site)
        and _same(wanted.device, hostname, agent_id)
        and (wanted.kind is None or (rule is not None and rule_matches(wanted.kind.casefold(), rule.casefold())))
        and _same(wanted.severity, severity)
    )


def active_window(silence: Silence, now: datetime) -> tuple[datetime, datetime] | None:
    """The window of `silence` that contains `now`, as aware UTC (start, end); None when it is not active.

    A recurring silence's window is the one opened by its latest firing at or before `now` (the one that
    ends last when windows overlap), cut to starts_at..ends_at. Any window is cut short at expired_at.
    """
    ends = [silence.ends_at, silence.expired_at]
    if silence.cron is None:
        start = silence.starts_at
    else:
        fires = due_times(_trigger(silence.cron, silence.timezone), now, 1)
        if not fires:
            return None
        # Elapsed time from the firing, not wall-clock time in the silence's zone (see the module docstring).
        fire = fires[0].astimezone(UTC)
        start = max(fire, silence.starts_at)
        ends.append(fire + silence.duration)
    # In UTC because aware datetimes sharing one tzinfo compare by wall clock, which DST folds make wrong.
    start = start.astimezone(UTC)
    end = min(value.astimezone(UTC) for value in ends if value is not None)
    return (start, end) if start <= now < end else None


def held_until(silences: Iterable[Silence], now: datetime, **alert_fields: str | None) -> datetime | None:
    """Until when the alert's notifications are held: the latest end of its active silences, else None.

    `alert_fields` are the keyword arguments of `matches`. Only windows active at `now` count: when one
    window ends where another begins, ask again at its end.
    """
    ends = [
        window[1]
        for silence in silences
        if matches(silence, **alert_fields)
        and (window := active_window(silence, now)) is not None
    ]
    return max(ends, default=None)
