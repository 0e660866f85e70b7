"""Device classes and business hours: a server's silence is critical at once, a workstation's only a warning
when it misses its client's business hours or stays off for days."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from collector.rules.expectations import BusinessHours, Expectation, format_days, parse_days
from collector.rules.heartbeat import evaluate_silence
from collector.settings import BusinessHoursSettings, SettingsError, load_settings
from collector.store import ClientHours
from shared.device_class import classify

MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
OFFICE = BusinessHours(parse_days("mon-fri"), time(8), time(18), "UTC")
MIN = timedelta(minutes=1)
UP = MONDAY_NOON - timedelta(days=30)


def verdict(device_class: str, last_seen: datetime, now: datetime, hours: BusinessHours = OFFICE) -> str:
    expect = Expectation(device_class, hours, 3)  # type: ignore[arg-type]
    result = evaluate_silence("PC-07", last_seen, now, 3 * MIN, UP, MIN, expect)
    assert result is not None
    return result.status


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of the week of 23 November 2026 (day 0 is Monday)."""
    return datetime(2026, 11, 23 + day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("device_class", "last_seen", "now", "expected"),
    [
        ("server", at(0, 18), at(0, 18, 5), "critical"),  # a server off is an outage, day or night
        ("workstation", at(0, 18), at(0, 18, 5), "ok"),  # switched off at closing time
        ("workstation", at(0, 18), at(1, 7, 59), "ok"),  # the night through
        ("workstation", at(0, 18), at(1, 8, 2), "ok"),  # the day began 2 minutes ago: not late yet
        ("workstation", at(0, 18), at(1, 8, 3), "warning"),  # missed the start of Tuesday's business hours
        ("laptop", at(0, 18), at(1, 9), "warning"),
        ("workstation", at(0, 11), at(0, 15), "ok"),  # it came on today, then went off: nobody is paged
        ("workstation", at(4, 17), at(6, 12), "ok"),  # Friday to Sunday: the weekend is no business day
        ("workstation", at(4, 17), at(7, 8, 30), "warning"),  # ... and Monday is
        ("workstation", at(0, 18), at(3, 18, 1), "warning"),  # off for three days
    ],
)
def test_what_silence_means_depends_on_the_device_class(
    device_class: str, last_seen: datetime, now: datetime, expected: str
) -> None:
    assert verdict(device_class, last_seen, now) == expected


def test_business_hours_are_read_in_the_clients_time_zone() -> None:
    sydney = BusinessHours(parse_days("mon-fri"), time(8), time(18), "Australia/Sydney")
    # 22:00 UTC on Monday is 09:00 on Tuesday in Sydney (UTC+11); noon UTC was 23:00 on Monday there.
    assert verdict("workstation", at(0, 12), at(0, 22), sydney) == "warning"
    assert verdict("workstation", at(0, 12), at(0, 22), OFFICE) == "ok"


def test_a_missed_day_is_one_unchanging_summary_until_the_device_is_back() -> None:
    """The summary names the last heartbeat, never the day or the silence so far: one message, not one a day."""
    expect = Expectation("workstation", OFFICE, 7)
    summaries = {evaluate_silence("PC-07", at(0, 18), now, 3 * MIN, UP, MIN, expect).summary  # type: ignore[union-attr]
                 for now in (at(1, 9), at(1, 23), at(2, 9), at(3, 12))}
    assert len(summaries) == 1
    assert "PC-07 (workstation) did not come on for business hours" in summaries.pop()


@pytest.mark.parametrize(
    ("os_name", "os_version", "battery", "desktop", "expected"),
    [
        ("Windows", "2022Server (10.0.20348)", False, True, "server"),
        ("Windows", "Windows Server 2019 Standard", False, True, "server"),
        ("Windows", "11 (10.0.22631)", True, True, "laptop"),
        ("Windows", "11 (10.0.22631)", False, True, "workstation"),
        ("Linux", "Debian GNU/Linux 12 (bookworm) (kernel 6.1.0)", False, False, "server"),
        ("Linux", "Ubuntu 24.04 LTS (kernel 6.8.0)", False, True, "workstation"),
        ("Darwin", "macOS 14.5", True, True, "laptop"),
    ],
)
def test_the_agent_classifies_its_device(
    os_name: str, os_version: str, battery: bool, desktop: bool, expected: str
) -> None:
    assert classify(os_name, os_version, battery, desktop) == expected


def test_days_read_as_ranges_and_lists() -> None:
    assert format_days(parse_days("Mon-Thu, sat")) == "mon,tue,wed,thu,sat"
    with pytest.raises(ValueError, match="not a day"):
        parse_days("monday-friday")
    with pytest.raises(ValueError, match="backwards"):
        parse_days("fri-mon")


def test_a_client_without_hours_of_its_own_takes_the_collectors_defaults() -> None:
    defaults = BusinessHoursSettings(timezone="Europe/Berlin")
    assert defaults.for_client(ClientHours()) == BusinessHours(parse_days("mon-fri"), time(8), time(18),
                                                               "Europe/Berlin")
    own = defaults.for_client(ClientHours(days="mon,tue,wed,thu,fri,sat", start=time(7)))
    assert own == BusinessHours(parse_days("mon-sat"), time(7), time(18), "Europe/Berlin")


def test_bad_default_business_hours_are_refused_with_the_key_named(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "collector.toml"
    path.write_text('[collector.business_hours]\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(SettingsError, match=r"collector.business_hours.timezone: .*unknown time zone"):
        load_settings(path)
    path.write_text('[collector.business_hours]\nstart = "18:00"\nend = "08:00"\n')
    with pytest.raises(SettingsError, match="start before they end"):
        load_settings(path)
