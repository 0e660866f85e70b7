"""A clock the test moves by hand: the collector's or the agent's one clock, in a test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class Clock:
    """The time a collector or agent under test takes as "now"; it moves only when the test says so."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move on by a timedelta's worth (`minutes=70`, `days=1`)."""
        self.now += timedelta(**delta)


class Ticks:
    """A monotonic clock (seconds) the test moves by hand, for waits that must not follow the wall clock."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move on by `seconds`."""
        self.now += seconds
