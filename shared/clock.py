"""One clock per process: the wall clock is read here, and everything that decides by time is handed a Clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The wall clock, timezone-aware in UTC: the default Clock of the collector, the agent and the CLIs."""
    return datetime.now(UTC)
