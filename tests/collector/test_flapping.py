"""Flapping: enough state changes within the window start it; a quiet spell ends it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from collector.alerts.flapping import is_flapping, stopped_flapping

NOW = datetime(2024, 5, 7, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def every(minutes: int, count: int, last: datetime = NOW) -> list[datetime]:
    """`count` state changes `minutes` apart, the newest at `last`."""
    return [last - i * minutes * M for i in range(count)]


@pytest.mark.parametrize(
    ("changes", "kwargs", "expected"),
    [
        ([], {}, False),
        # A disk toggling ok/warning every 5 minutes: 12 changes an hour.
        (every(5, 12), {}, True),
        # Half an hour of it is enough.
        (every(5, 6), {}, True),
        (every(5, 5), {}, False),
        # Opened, resolved, reopened: a real problem coming back, not flapping.
        (every(20, 3), {}, False),
        # The window is (now - 1 h, now]: a change exactly an hour ago no longer counts.
        (every(12, 6), {}, False),
        (every(11, 6), {}, True),
        # Changes after `now` (clock skew between collectors) are not counted.
        (every(5, 6, last=NOW + 5 * M), {}, False),
        (every(5, 3), {"threshold": 3}, True),
        (every(20, 6), {"window": timedelta(hours=2)}, True),
    ],
)
def test_it_calls_an_alert_flapping_at_threshold_changes_in_the_window(
    changes: list[datetime], kwargs: dict[str, Any], expected: bool
) -> None:
    assert is_flapping(changes, NOW, **kwargs) is expected


@pytest.mark.parametrize("kwargs", [{"threshold": 0}, {"window": timedelta(0)}])
def test_it_refuses_a_threshold_or_window_that_would_flag_everything(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        is_flapping(every(5, 12), NOW, **kwargs)


@pytest.mark.parametrize(
    ("changes", "quiet_for", "expected"),
    [
        ([], timedelta(hours=1), True),
        (every(5, 12, last=NOW - 59 * M), timedelta(hours=1), False),
        (every(5, 12, last=NOW - 60 * M), timedelta(hours=1), True),
        (every(5, 12, last=NOW - 20 * M), timedelta(minutes=15), True),
        (every(5, 12), timedelta(minutes=15), False),
    ],
)
def test_it_ends_flapping_after_a_quiet_spell(
    changes: list[datetime], quiet_for: timedelta, expected: bool
) -> None:
    assert stopped_flapping(changes, NOW, quiet_for) is expected


def test_it_agrees_flapping_is_over_once_it_stopped() -> None:
    changes = every(5, 12, last=NOW - 60 * M)
    assert stopped_flapping(changes, NOW)
    assert not is_flapping(changes, NOW)
