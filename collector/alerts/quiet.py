"""Quiet hours: at night only criticals notify; warnings and unknowns wait for the morning digest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True)
class QuietHours:
    """A daily quiet period from `start` to `end`, local time in `timezone`; it may cross midnight."""

    start: time
    end: time
    timezone: str

    def __post_init__(self) -> None:
        """Refuse an unknown zone and an empty period (start == end could mean never or always)."""
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        if self.start == self.end:
            raise ValueError("quiet hours need different start and end times")


def _period(q: QuietHours, now: datetime) -> tuple[datetime, datetime] | None:
    """The quiet period containing `now`, as aware UTC (start, end); None outside quiet hours."""
    zone = ZoneInfo(q.timezone)
    today = now.astimezone(zone).date()
    crosses_midnight = q.end < q.start
    # A period that contains `now` began today or, crossing midnight, yesterday. Built from the local
    # dates so that on a daylight-saving night the period is an hour shorter or longer, as the clock says.
    for day in (today - timedelta(days=1), today):
        start = datetime.combine(day, q.start, zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=crosses_midnight), q.end, zone).astimezone(UTC)
        if start <= now < end:
            return start, end
    return None


def in_quiet_hours(q: QuietHours, now: datetime) -> bool:
    """Whether `now` (aware) falls in the quiet hours; start inclusive, end exclusive."""
    return _period(q, now) is not None


def quiet_ends(q: QuietHours, now: datetime) -> datetime:
    """When the current quiet period ends, as aware UTC; `now` itself when it is not quiet now."""
    period = _period(q, now)
    return period[1] if period else now


def notify_now(severity: str, q: QuietHours | None, now: datetime) -> bool:
    """Whether an alert of `severity` may notify at `now`: criticals always, others not during quiet hours."""
    return severity == "critical" or q is None or not in_quiet_hours(q, now)
