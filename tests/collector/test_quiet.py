"""Quiet hours: periods crossing midnight, time zones and DST nights; criticals notify, the rest waits."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from collector.alerts.quiet import QuietHours, in_quiet_hours, notify_now, quiet_ends

# 22:00-07:00 in Berlin: 20:00-05:00 UTC in summer (CEST), 21:00-06:00 UTC in winter (CET).
NIGHT_BERLIN = QuietHours(time(22), time(7), "Europe/Berlin")
LUNCH_NEW_YORK = QuietHours(time(12), time(13, 30), "America/New_York")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("q", "now", "ends"),
    [
        (NIGHT_BERLIN, utc(2024, 7, 10, 19, 59, 59), None),
        (NIGHT_BERLIN, utc(2024, 7, 10, 20), utc(2024, 7, 11, 5)),
        (NIGHT_BERLIN, utc(2024, 7, 10, 22, 30), utc(2024, 7, 11, 5)),
        (NIGHT_BERLIN, utc(2024, 7, 11, 1), utc(2024, 7, 11, 5)),
        (NIGHT_BERLIN, utc(2024, 7, 11, 4, 59, 59), utc(2024, 7, 11, 5)),
        (NIGHT_BERLIN, utc(2024, 7, 11, 5), None),
        (NIGHT_BERLIN, utc(2024, 7, 11, 12), None),
        (NIGHT_BERLIN, utc(2024, 1, 10, 20, 30), None),
        (NIGHT_BERLIN, utc(2024, 1, 10, 21), utc(2024, 1, 11, 6)),
        (NIGHT_BERLIN, utc(2024, 1, 11, 5, 30), utc(2024, 1, 11, 6)),
        # Clocks go forward on 31 March 2024: the night runs 21:00 to 05:00 UTC, an hour shorter.
        (NIGHT_BERLIN, utc(2024, 3, 30, 21), utc(2024, 3, 31, 5)),
        (NIGHT_BERLIN, utc(2024, 3, 31, 5), None),
        # Clocks go back on 27 October 2024: 20:00 to 06:00 UTC, an hour longer.
        (NIGHT_BERLIN, utc(2024, 10, 26, 20), utc(2024, 10, 27, 6)),
        (NIGHT_BERLIN, utc(2024, 10, 27, 5, 30), utc(2024, 10, 27, 6)),
        # Not crossing midnight; New York is UTC-4 in summer.
        (LUNCH_NEW_YORK, utc(2024, 7, 10, 15, 59), None),
        (LUNCH_NEW_YORK, utc(2024, 7, 10, 16), utc(2024, 7, 10, 17, 30)),
        (LUNCH_NEW_YORK, utc(2024, 7, 10, 17, 30), None),
        (LUNCH_NEW_YORK, utc(2024, 7, 11, 3), None),
    ],
)
def test_it_knows_when_quiet_hours_hold_and_when_they_end(
    q: QuietHours, now: datetime, ends: datetime | None
) -> None:
    assert in_quiet_hours(q, now) is (ends is not None)
    assert quiet_ends(q, now) == (ends or now)


def test_it_ends_quiet_hours_in_utc() -> None:
    assert quiet_ends(NIGHT_BERLIN, utc(2024, 7, 10, 22)).tzinfo is UTC


@pytest.mark.parametrize(
    ("severity", "q", "now", "expected"),
    [
        # 03:00 Berlin in summer is 01:00 UTC.
        ("critical", NIGHT_BERLIN, utc(2024, 7, 11, 1), True),
        ("warning", NIGHT_BERLIN, utc(2024, 7, 11, 1), False),
        ("unknown", NIGHT_BERLIN, utc(2024, 7, 11, 1), False),
        ("warning", NIGHT_BERLIN, utc(2024, 7, 11, 8), True),
        ("unknown", NIGHT_BERLIN, utc(2024, 7, 11, 8), True),
        ("warning", None, utc(2024, 7, 11, 1), True),
    ],
)
def test_it_lets_only_criticals_notify_during_quiet_hours(
    severity: str, q: QuietHours | None, now: datetime, expected: bool
) -> None:
    assert notify_now(severity, q, now) is expected


@pytest.mark.parametrize(
    ("start", "end", "zone"),
    [(time(22), time(22), "Europe/Berlin"), (time(22), time(7), "Europe/Nowhere")],
)
def test_it_refuses_quiet_hours_it_could_not_apply(start: time, end: time, zone: str) -> None:
    with pytest.raises(ValueError):
        QuietHours(start, end, zone)
