"""Values to and from the database: moments, days, times of day, money and JSON, one codec per backend.

PostgreSQL has a native type for each (timestamptz, date, time, numeric, json); SQLite keeps them as text
that sorts and reads back: moments as zero-padded ISO 8601 in UTC with microseconds and a `Z`, days as
ISO dates, times of day as HH:MM, money as the Decimal's exact text (never through a float).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

NUL_STAND_IN = "\u2400"  # SYMBOL FOR NULL


def utc(value: datetime) -> datetime:
    """A moment in UTC; a naive one is refused, never guessed."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()}: the store keeps timezone-aware UTC times only")
    return value.astimezone(UTC)


def iso_text(value: datetime) -> str:
    """A moment as sortable ISO 8601 UTC text (always with microseconds, so equal lengths compare right)."""
    # isoformat pads the year to four digits (strftime's %Y does not on glibc) and is several times faster.
    return utc(value).isoformat(timespec="microseconds")[:-6] + "Z"


def seconds(value: timedelta) -> int:
    """A duration as whole seconds, as the `*_seconds` integer columns keep it."""
    return round(value.total_seconds())


def to_json(value: Any) -> str:
    """A value as JSON text (both backends keep JSON as written, so keys stay in their order)."""
    return json.dumps(value)


def from_json(value: str) -> Any:
    """JSON text back to a value."""
    return json.loads(value)


class Codec:
    """PostgreSQL's codec: asyncpg passes the native types through, so only moments and times are shaped."""

    def param(self, value: Any) -> Any:
        """A Python value as a query parameter."""
        if isinstance(value, str) and "\x00" in value:
            # PostgreSQL's text cannot hold NUL: an alert's subject or summary quoting a reported string keeps
            # a visible stand-in (the same each time, so fingerprints still match). JSON escapes NUL itself.
            return value.replace("\x00", NUL_STAND_IN)
        if isinstance(value, datetime):
            return utc(value)
        if isinstance(value, time):
            # Channels keep times of day to the minute.
            return value.replace(second=0, microsecond=0)
        return value

    def moment(self, value: Any) -> datetime | None:
        """A stored moment (None stays None)."""
        return value

    def day(self, value: Any) -> date | None:
        """A stored day (None stays None)."""
        return value

    def time_of_day(self, value: Any) -> time | None:
        """A stored time of day (None stays None)."""
        return value

    def money(self, value: Any) -> Decimal | None:
        """A stored amount (None stays None)."""
        return value


class SqliteCodec(Codec):
    """SQLite's codec: every richer type is text that sorts the way the value does."""

    def param(self, value: Any) -> Any:
        """A Python value as a query parameter (lists become JSON arrays for `json_each`)."""
        if isinstance(value, datetime):
            return iso_text(value)
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, time):
            return value.strftime("%H:%M")
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, list):
            return json.dumps(value)
        return value

    def moment(self, value: Any) -> datetime | None:
        """Stored ISO text back to a timezone-aware UTC datetime."""
        return None if value is None else datetime.fromisoformat(value)

    def day(self, value: Any) -> date | None:
        """ISO text back to a day."""
        return None if value is None else date.fromisoformat(value)

    def time_of_day(self, value: Any) -> time | None:
        """HH:MM back to a time of day."""
        return time.fromisoformat(value) if value else None

    def money(self, value: Any) -> Decimal | None:
        """Exact text back to a Decimal."""
        return None if value is None else Decimal(value)
