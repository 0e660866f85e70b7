"""The updates rule: security updates waiting too long, and a package index that stopped refreshing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.rules import History
from collector.rules.updates import INDEX_DAYS, SECURITY_DAYS, evaluate
from shared.updates import AvailableUpdate, Updates

NOW = datetime(2024, 11, 20, 3, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def updates(*security: str, other: int = 0, at: datetime = NOW, refreshed: datetime | None = NOW) -> Updates:
    items = [
        AvailableUpdate(name=name, version="1", security=True, origin="Debian-Security:12/stable-security")
        for name in security
    ]
    items += [AvailableUpdate(name=f"other{n}", security=False) for n in range(other)]
    return Updates(
        collected_at=at,
        manager="apt",
        security_count=len(security),
        other_count=other,
        items=items,
        index_refreshed_at=refreshed,
    )


def verdicts(signal: Updates, *previous: Updates, **settings: int) -> dict[str, tuple[str, str]]:
    found = evaluate(signal, History(now=NOW, hostname="PC-07", previous=previous, settings={"updates": settings}))
    return {v.subject: (v.status, v.summary) for v in found}


def test_it_is_quiet_with_no_security_updates_and_a_fresh_index() -> None:
    assert {subject: status for subject, (status, _) in verdicts(updates(other=12)).items()} == {
        "security-updates": "ok",
        "package-index": "ok",
    }


@pytest.mark.parametrize(("days", "status"), [(6, "ok"), (7, "ok"), (8, "warning")])
def test_it_warns_when_security_updates_wait_longer_than_seven_days(days: int, status: str) -> None:
    previous = [updates("libssl3", "openssl", at=NOW - n * DAY) for n in range(1, days + 1)]
    assert verdicts(updates("libssl3", "openssl"), *previous)["security-updates"][0] == status


def test_its_summary_counts_and_names_the_updates() -> None:
    previous = [updates("libssl3", "openssl", at=NOW - n * DAY) for n in range(1, 10)]
    status, summary = verdicts(updates("libssl3", "openssl", other=3), *previous)["security-updates"]
    assert (status, summary) == ("warning", "2 security updates available for 9 days (libssl3, openssl)")


def test_installed_updates_followed_by_new_ones_do_not_age() -> None:
    # Every night yesterday's fix is installed and a new one appears: each waits one day only.
    previous = [updates(f"fix{n}", at=NOW - n * DAY) for n in range(1, 20)]
    assert verdicts(updates("fix0"), *previous)["security-updates"][0] == "ok"


def test_the_oldest_still_waiting_update_sets_the_age() -> None:
    previous = [updates("libssl3", "curl", at=NOW - DAY)] + [
        updates("libssl3", at=NOW - n * DAY) for n in range(2, 12)
    ]
    status, summary = verdicts(updates("libssl3", "curl"), *previous)["security-updates"]
    assert (status, summary) == ("warning", "2 security updates available for 11 days (curl, libssl3)")


def test_it_takes_the_security_threshold_from_settings() -> None:
    previous = [updates("libssl3", at=NOW - 2 * DAY)]
    assert verdicts(updates("libssl3"), *previous, **{SECURITY_DAYS: 1})["security-updates"][0] == "warning"


@pytest.mark.parametrize(("age", "status"), [(6 * DAY, "ok"), (8 * DAY, "warning")])
def test_it_warns_when_the_package_index_stops_refreshing(age: timedelta, status: str) -> None:
    got, summary = verdicts(updates(refreshed=NOW - age))["package-index"]
    assert got == status
    if status == "warning":
        assert (
            summary == "apt package index last refreshed 8 days ago: the update mechanism itself looks broken"
        )


def test_it_takes_the_index_threshold_from_settings() -> None:
    assert verdicts(updates(refreshed=NOW - 2 * DAY), **{INDEX_DAYS: 1})["package-index"][0] == "warning"


def test_it_says_nothing_about_an_index_the_os_does_not_date() -> None:
    assert "package-index" not in verdicts(updates(refreshed=None))
