"""The device-offline rule: silence past N intervals is offline, except during the collector's grace period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.rules.heartbeat import evaluate_silence

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
UP = NOW - timedelta(hours=1)
MIN = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("silent", "up_since", "expected"),
    [
        (2 * MIN, UP, "ok"),
        (3 * MIN, UP, "critical"),
        (90 * MIN, UP, "critical"),
        (90 * MIN, NOW - MIN, None),  # the collector itself just came back: wait out the grace period
        (90 * MIN, NOW - 2 * MIN, "critical"),
    ],
)
def test_it_declares_offline_after_the_configured_silence(
    silent: timedelta, up_since: datetime, expected: str | None
) -> None:
    verdict = evaluate_silence("PC-07", NOW - silent, NOW, 3 * MIN, up_since, 2 * MIN)
    assert (verdict.status if verdict else None) == expected


def test_its_summary_does_not_change_while_the_device_stays_offline() -> None:
    first = evaluate_silence("PC-07", NOW - 5 * MIN, NOW, 3 * MIN, UP, MIN)
    later = evaluate_silence("PC-07", NOW - 5 * MIN, NOW + 30 * MIN, 3 * MIN, UP, MIN)
    assert first is not None and later is not None
    assert first.summary == later.summary == "PC-07 is offline: last heartbeat 2026-11-23 08:55 UTC"

