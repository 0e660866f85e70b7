"""Silences: matching by client, site, device, kind and severity; one-off and recurring windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from collector.alerts.silence import Matchers, Silence, active_window, held_until, matches

H = timedelta(hours=1)
BERLIN = ZoneInfo("Europe/Berlin")
ALERT: dict[str, Any] = {
    "client": "Acme Dental",
    "site": "Main office",
    "hostname": "RECEPTION-01",
    "agent_id": "ag-7f3a",
    "rule": "disk_health",
    "severity": "warning",
}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def one_off(start: datetime, end: datetime, silence_id: int = 1, **fields: Any) -> Silence:
    """A one-off silence matching every alert unless matchers are given."""
    return Silence(silence_id=silence_id, matchers=fields.pop("matchers", Matchers()), starts_at=start,
                   ends_at=end, **fields)


def saturday_night(**fields: Any) -> Silence:
    """Every Saturday 22:00 Berlin time for 4 hours (crontab weekday 6 is Saturday), from January 2024."""
    values: dict[str, Any] = {
        "silence_id": 2, "matchers": Matchers(), "starts_at": utc(2024, 1, 1), "ends_at": None,
        "cron": "0 22 * * 6", "duration": 4 * H, "timezone": "Europe/Berlin",
    }
    return Silence(**(values | fields))


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (Matchers(), True),
        (Matchers(client="Acme Dental"), True),
        (Matchers(client="acme dental"), True),
        (Matchers(client="Bolt Legal"), False),
        (Matchers(site="Main office"), True),
        (Matchers(site="Branch"), False),
        (Matchers(device="reception-01"), True),
        (Matchers(device="ag-7f3a"), True),
        (Matchers(device="RECEPTION-02"), False),
        (Matchers(kind="disk_health"), True),
        (Matchers(kind="backup_results"), False),
        (Matchers(severity="warning"), True),
        (Matchers(severity="critical"), False),
        (Matchers(client="Acme Dental", site="Main office", kind="disk_health"), True),
        (Matchers(client="Acme Dental", kind="backup_results"), False),
        (Matchers(site="Main office", device="ag-7f3a", severity="critical"), False),
        (Matchers(client="Bolt Legal", site="Main office"), False),
    ],
)
def test_it_matches_when_every_set_matcher_matches(wanted: Matchers, expected: bool) -> None:
    silence = one_off(utc(2024, 5, 1), utc(2024, 5, 2), matchers=wanted)
    assert matches(silence, **ALERT) is expected


def test_it_does_not_match_a_site_wide_alert_by_device() -> None:
    site_wide = ALERT | {"hostname": None, "agent_id": None, "rule": "heartbeat.site_offline"}
    by_device = one_off(utc(2024, 5, 1), utc(2024, 5, 2), matchers=Matchers(device="ag-7f3a"))
    by_site = one_off(utc(2024, 5, 1), utc(2024, 5, 2), matchers=Matchers(site="Main office"))
    assert not matches(by_device, **site_wide)
    assert matches(by_site, **site_wide)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2024, 5, 7, 8, 59, 59), None),
        (utc(2024, 5, 7, 9), (utc(2024, 5, 7, 9), utc(2024, 5, 7, 11))),
        (utc(2024, 5, 7, 10, 59, 59), (utc(2024, 5, 7, 9), utc(2024, 5, 7, 11))),
        (utc(2024, 5, 7, 11), None),
        # The same instant written in another zone.
        (datetime(2024, 5, 7, 12, tzinfo=BERLIN), (utc(2024, 5, 7, 9), utc(2024, 5, 7, 11))),
    ],
)
def test_it_holds_a_one_off_silence_from_its_start_until_before_its_end(
    now: datetime, expected: tuple[datetime, datetime] | None
) -> None:
    assert active_window(one_off(utc(2024, 5, 7, 9), utc(2024, 5, 7, 11)), now) == expected


def test_it_reports_windows_in_utc_when_given_in_another_zone() -> None:
    silence = one_off(datetime(2024, 5, 7, 11, tzinfo=BERLIN), datetime(2024, 5, 7, 13, tzinfo=BERLIN))
    window = active_window(silence, utc(2024, 5, 7, 10))
    assert window == (utc(2024, 5, 7, 9), utc(2024, 5, 7, 11))
    assert window is not None and all(edge.tzinfo is UTC for edge in window)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2024, 5, 7, 9, 30), (utc(2024, 5, 7, 9), utc(2024, 5, 7, 10))),
        (utc(2024, 5, 7, 10), None),
        (utc(2024, 5, 7, 10, 30), None),
    ],
)
def test_it_stops_holding_once_a_silence_is_expired_by_hand(
    now: datetime, expected: tuple[datetime, datetime] | None
) -> None:
    silence = one_off(utc(2024, 5, 7, 9), utc(2024, 5, 7, 11), expired_at=utc(2024, 5, 7, 10))
    assert active_window(silence, now) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Summer (CEST, UTC+2): Saturday 11 May 2024 22:00 local is 20:00 UTC.
        (utc(2024, 5, 11, 19, 59, 59), None),
        (utc(2024, 5, 11, 20), (utc(2024, 5, 11, 20), utc(2024, 5, 12, 0))),
        (utc(2024, 5, 11, 23, 59, 59), (utc(2024, 5, 11, 20), utc(2024, 5, 12, 0))),
        (utc(2024, 5, 12, 0), None),
        (utc(2024, 5, 15, 21), None),
        # Friday 22:00 is not Saturday (APScheduler alone would read weekday 6 as Sunday).
        (utc(2024, 5, 10, 21), None),
        (utc(2024, 5, 12, 21), None),
        # Winter (CET, UTC+1): 22:00 local is 21:00 UTC.
        (utc(2024, 1, 13, 20, 30), None),
        (utc(2024, 1, 13, 21, 30), (utc(2024, 1, 13, 21), utc(2024, 1, 14, 1))),
        # Clocks go forward on Sunday 31 March 2024 at 02:00: the window opened at 22:00 CET lasts 4 hours
        # of real time, ending 03:00 CEST; the Saturday after opens at 22:00 CEST.
        (utc(2024, 3, 31, 0, 59, 59), (utc(2024, 3, 30, 21), utc(2024, 3, 31, 1))),
        (utc(2024, 3, 31, 1), None),
        (utc(2024, 4, 6, 20), (utc(2024, 4, 6, 20), utc(2024, 4, 7, 0))),
        # Clocks go back on Sunday 27 October 2024 at 03:00: 22:00 CEST to 01:00 CET.
        (utc(2024, 10, 26, 23, 59, 59), (utc(2024, 10, 26, 20), utc(2024, 10, 27, 0))),
        (utc(2024, 10, 27, 0), None),
    ],
)
def test_it_opens_a_recurring_window_at_each_firing_in_the_silences_zone(
    now: datetime, expected: tuple[datetime, datetime] | None
) -> None:
    assert active_window(saturday_night(), now) == expected


SAT = (utc(2024, 5, 11, 20), utc(2024, 5, 12, 0))


@pytest.mark.parametrize(
    ("bounds", "now", "expected"),
    [
        ({"starts_at": utc(2024, 5, 11, 21)}, utc(2024, 5, 11, 20, 30), None),
        ({"starts_at": utc(2024, 5, 11, 21)}, utc(2024, 5, 11, 21, 30), (utc(2024, 5, 11, 21), SAT[1])),
        ({"ends_at": utc(2024, 5, 11, 22)}, utc(2024, 5, 11, 21), (SAT[0], utc(2024, 5, 11, 22))),
        ({"ends_at": utc(2024, 5, 11, 22)}, utc(2024, 5, 11, 22), None),
        ({"ends_at": utc(2024, 5, 11, 22)}, utc(2024, 5, 18, 21), None),
        ({"expired_at": utc(2024, 5, 11, 21)}, utc(2024, 5, 11, 20, 30), (SAT[0], utc(2024, 5, 11, 21))),
        ({"expired_at": utc(2024, 5, 11, 21)}, utc(2024, 5, 18, 21), None),
    ],
)
def test_it_keeps_a_recurring_window_within_its_start_end_and_expiry(
    bounds: dict[str, datetime], now: datetime, expected: tuple[datetime, datetime] | None
) -> None:
    assert active_window(saturday_night(**bounds), now) == expected


def test_it_measures_a_window_across_a_clock_change_in_elapsed_time() -> None:
    # 22:00 CET on 30 March 2024 plus 6 hours is 03:00 UTC (05:00 CEST), not 04:00 on the wall clock.
    long_night = saturday_night(duration=6 * H)
    assert active_window(long_night, utc(2024, 3, 31, 2, 30)) == (utc(2024, 3, 30, 21), utc(2024, 3, 31, 3))
    assert active_window(long_night, utc(2024, 3, 31, 3)) is None


def test_it_takes_the_latest_firing_when_recurring_windows_overlap() -> None:
    hourly = saturday_night(cron="0 * * * *", duration=3 * H, timezone="UTC")
    assert active_window(hourly, utc(2024, 5, 7, 10, 15)) == (utc(2024, 5, 7, 10), utc(2024, 5, 7, 13))


def test_it_holds_until_the_latest_end_of_the_matching_active_silences() -> None:
    now = utc(2024, 5, 11, 21)
    silences = [
        one_off(utc(2024, 5, 11, 18), utc(2024, 5, 11, 22), silence_id=1),
        saturday_night(matchers=Matchers(client="Acme Dental")),
        # Later ends that must not count: another client, and a silence not yet started.
        one_off(utc(2024, 5, 11, 12), utc(2024, 5, 13), silence_id=3, matchers=Matchers(client="Bolt Legal")),
        one_off(utc(2024, 5, 11, 22), utc(2024, 5, 14), silence_id=4),
    ]
    assert held_until(silences, now, **ALERT) == utc(2024, 5, 12, 0)
    assert held_until(silences[:1], now, **ALERT) == utc(2024, 5, 11, 22)
    assert held_until(silences[2:], now, **ALERT) is None
    assert held_until([], now, **ALERT) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"starts_at": datetime(2024, 5, 7, 9), "ends_at": utc(2024, 5, 7, 11)},
        {"starts_at": utc(2024, 5, 7, 11), "ends_at": utc(2024, 5, 7, 9)},
        {"starts_at": utc(2024, 5, 7, 9), "ends_at": None},
        {"starts_at": utc(2024, 5, 7, 9), "ends_at": utc(2024, 5, 7, 11), "duration": H},
        {"starts_at": utc(2024, 5, 7, 9), "ends_at": None, "cron": "0 22 * * 6"},
        {"starts_at": utc(2024, 5, 7, 9), "ends_at": None, "cron": "0 22 * * 6", "duration": -H},
        {"starts_at": utc(2024, 5, 7, 9), "ends_at": None, "cron": "0 22 * 6", "duration": H},
        {"starts_at": utc(2024, 5, 7, 9), "ends_at": None, "cron": "0 22 * * 6", "duration": H,
         "timezone": "Mars/Base"},
    ],
)
def test_it_refuses_a_silence_it_could_not_evaluate(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Silence(silence_id=9, matchers=Matchers(), **fields)
