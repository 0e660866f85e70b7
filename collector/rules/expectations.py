"""What a device is expected to do: its class (server, workstation, laptop) and its client's business hours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.device_class import DeviceClass

# A device whose agent names no class (an agent older than classes) is judged as a server: never hide an outage.
UNKNOWN_CLASS: DeviceClass = "server"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_days(text: str) -> frozenset[int]:
    """Working days from `mon-fri`, `mon,wed,fri` or `mon-thu,sat` (Monday is 0); ValueError naming the bad part."""
    days: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"{part!r} is not a day or a range of days (mon, tue, ... sun; e.g. mon-fri)")
        start, end = DAYS.index(first), DAYS.index(last or first)
        if end < start:
            raise ValueError(f"{part!r} runs backwards (write e.g. mon-fri)")
        days.update(range(start, end + 1))
    return frozenset(days)


def known_zone(value: str) -> str:
    """An IANA time zone name; ValueError with an example otherwise."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (e.g. Europe/Berlin)") from None
    return value


def format_days(days: frozenset[int]) -> str:
    """Working days as the canonical comma list parse_days reads back (`mon,tue,wed,thu,fri`)."""
    return ",".join(DAYS[d] for d in sorted(days))


@dataclass(frozen=True)
class BusinessHours:
    """A client's business hours: on `days` (Monday is 0) from `start` to `end`, local to `timezone`."""

    days: frozenset[int]
    start: time
    end: time
    timezone: str

    def latest_start(self, now: datetime) -> datetime | None:
        """When the most recent business day began (at or before `now`), or None when no day is a working day."""
        local = now.astimezone(ZoneInfo(self.timezone))
        for back in range(8):
            day = local.date() - timedelta(days=back)
            if day.weekday() in self.days:
                begins = datetime.combine(day, self.start, local.tzinfo)
                if begins <= local:
                    return begins
        return None

    def open_at(self, now: datetime) -> bool:
        """True on a working day between start and end (local time)."""
        local = now.astimezone(ZoneInfo(self.timezone))
        return local.weekday() in self.days and self.start <= local.time() < self.end


@dataclass(frozen=True)
class Expectation:
    """What one device is expected to do: its class, its client's business hours, and after how many days
    off a workstation or laptop is worth a warning."""

    device_class: DeviceClass
    hours: BusinessHours
    off_days: int

    def always_on(self) -> bool:
        """A server is expected to report at every hour; the others only during business hours."""
        return self.device_class == "server"

    def expected_up(self, now: datetime) -> bool:
        """Whether the device should be reporting now (a site's outage counts only these)."""
        return self.always_on() or self.hours.open_at(now)

