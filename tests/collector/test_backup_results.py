"""The backup_results rule: failures, staleness by daily/weekly/cron schedule and grace, content checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector.app import create_app
from collector.rules import Evaluation, History
from collector.rules.backup_results import evaluate
from collector.settings import Settings
from shared.backup_results import BackupJob, BackupResults
from tests.support.agents import REPORTS
from tests.support.clock import Clock
from tests.support.collector import TECH, enrolled

H = timedelta(hours=1)
D = timedelta(days=1)
TUESDAY = datetime(2024, 5, 7, 10, 0, tzinfo=UTC)
SUNDAY_2205 = datetime(2024, 5, 5, 22, 5, tzinfo=UTC)
GIB = 2**30


def job(ran: datetime | None = None, **fields: Any) -> BackupJob:
    """A job entry; by default a successful run at `ran` with plenty of free space."""
    values: dict[str, Any] = {
        "name": "bookkeeping",
        "tool": "restic",
        "schedule": "daily",
        "last_result": "success",
        "destination_free_bytes": 500 * GIB,
    }
    if ran is not None:
        values |= {"last_run_started_at": ran, "last_success_at": ran}
    return BackupJob(**(values | fields))


def signal(*jobs: BackupJob, at: datetime = TUESDAY) -> BackupResults:
    return BackupResults(collected_at=at, jobs=list(jobs))


def verdict(
    entry: BackupJob, *previous: BackupResults, now: datetime = TUESDAY, **settings: Any
) -> Evaluation:
    """The rule's one evaluation of `entry`, collected at `now`."""
    history = History(
        now=now,
        hostname="PC-07",
        previous=previous,
        settings={"backup_results": settings} if settings else {},
    )
    [found] = evaluate(signal(entry, at=now), history)
    return found


def status(entry: BackupJob, *previous: BackupResults, now: datetime = TUESDAY, **settings: Any) -> str:
    return verdict(entry, *previous, now=now, **settings).status


# --- daily and weekly periods -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (20 * H, "ok"),
        (29 * H, "ok"),
        (30 * H - timedelta(minutes=1), "ok"),
        (31 * H, "warning"),
        (77 * H, "warning"),
        (79 * H, "critical"),
    ],
)
def test_a_daily_job_is_late_after_24_h_plus_6_h_and_critical_after_3_days(age, expected) -> None:
    assert status(job(TUESDAY - age)) == expected


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (7 * D, "ok"),
        (7 * D + 23 * H, "ok"),
        (8 * D + H, "warning"),
        (21 * D + 23 * H, "warning"),
        (22 * D + H, "critical"),
    ],
)
def test_a_weekly_job_is_late_after_7_days_plus_1_day(age, expected) -> None:
    assert status(job(TUESDAY - age, schedule="weekly")) == expected


def test_the_jobs_own_grace_overrides_the_default() -> None:
    assert status(job(TUESDAY - 26 * H, grace_seconds=3600)) == "warning"
    assert status(job(TUESDAY - 26 * H)) == "ok"


def test_grace_comes_from_the_collector_settings() -> None:
    assert status(job(TUESDAY - 33 * H), daily_grace_hours=12) == "ok"
    assert status(job(TUESDAY - 33 * H)) == "warning"


def test_a_late_job_says_how_long_ago_it_last_ran() -> None:
    found = verdict(job(TUESDAY - 50 * H))
    assert found.summary == "bookkeeping (restic): late: last run 2 days ago"
    assert found.subject == "backup:bookkeeping"


# --- cron schedules -----------------------------------------------------------------------------------------


SUNDAYS = "0 22 * * 0"


def test_a_sunday_only_job_is_not_late_on_tuesday() -> None:
    assert status(job(SUNDAY_2205, schedule=SUNDAYS)) == "ok"


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2024, 5, 12, 21, 0, tzinfo=UTC), "ok"),  # next Sunday, before the run
        (datetime(2024, 5, 13, 3, 59, tzinfo=UTC), "ok"),  # Sunday's run missed, grace of 6 h not over
        (datetime(2024, 5, 13, 4, 1, tzinfo=UTC), "warning"),  # grace over: late
        (datetime(2024, 5, 26, 4, 1, tzinfo=UTC), "warning"),  # two Sundays missed
        (datetime(2024, 5, 27, 4, 1, tzinfo=UTC), "critical"),  # three Sundays without a success
    ],
)
def test_a_sunday_only_job_is_late_only_once_sunday_and_the_grace_have_passed(now, expected) -> None:
    assert status(job(SUNDAY_2205, schedule=SUNDAYS), now=now) == expected


def test_a_cron_job_that_ran_on_time_is_not_late_on_the_due_day() -> None:
    monday = datetime(2024, 5, 13, 9, 0, tzinfo=UTC)
    assert status(job(datetime(2024, 5, 12, 22, 0, 4, tzinfo=UTC), schedule=SUNDAYS), now=monday) == "ok"


def test_cron_schedules_are_read_in_the_devices_time_zone() -> None:
    # 22:00 in Berlin is 20:00 UTC: a run at 20:05 UTC is on time there, but early for 22:00 UTC.
    ran = datetime(2024, 5, 12, 20, 5, tzinfo=UTC)
    monday = datetime(2024, 5, 13, 5, 0, tzinfo=UTC)
    assert status(job(ran, schedule=SUNDAYS, timezone="Europe/Berlin"), now=monday) == "ok"
    assert status(job(ran, schedule=SUNDAYS), now=monday) == "warning"


def test_a_weekday_cron_job_is_not_late_over_the_weekend() -> None:
    friday_night = datetime(2024, 5, 10, 23, 10, tzinfo=UTC)
    monday_morning = datetime(2024, 5, 13, 8, 0, tzinfo=UTC)
    assert status(job(friday_night, schedule="0 23 * * 1-5"), now=monday_morning) == "ok"


def test_cron_grace_comes_from_the_settings() -> None:
    now = datetime(2024, 5, 13, 4, 1, tzinfo=UTC)
    assert status(job(SUNDAY_2205, schedule=SUNDAYS), now=now, cron_grace_hours=12) == "ok"


# --- results of the last run --------------------------------------------------------------------------------


def test_a_failed_run_is_critical_and_says_why() -> None:
    failed = job(
        last_result="failed",
        last_run_ended_at=TUESDAY - 8 * H,
        last_success_at=TUESDAY - 32 * H,
        error="wrong password for the repository /mnt/nas/restic",
    )
    found = verdict(failed)
    assert found.status == "critical"
    assert "last run failed: wrong password for the repository /mnt/nas/restic" in found.summary


def test_the_next_good_run_resolves_a_failure() -> None:
    failed = job(last_result="failed", last_run_ended_at=TUESDAY - 25 * H, error="VSS failed")
    assert status(job(TUESDAY - H), signal(failed, at=TUESDAY - 2 * H)) == "ok"


def test_a_run_with_warnings_is_a_warning() -> None:
    found = verdict(job(TUESDAY - 8 * H, last_result="warning", error="1 files not read: D:\\Mai.xlsx"))
    assert (found.status, found.summary) == (
        "warning",
        "bookkeeping (restic): last run finished with warnings: 1 files not read: D:\\Mai.xlsx",
    )


def test_a_good_recent_run_is_ok_and_says_when() -> None:
    found = verdict(job(TUESDAY - 8 * H))
    assert (found.status, found.summary) == ("ok", "bookkeeping (restic): last good backup 8 h ago")


# --- never reported: nothing until due, then late ---------------------------------------------------------------------


def silent(at: datetime) -> BackupResults:
    return signal(job(last_result="unknown", error="no snapshot in the repository yet"), at=at)


def test_a_job_that_never_ran_is_no_alert_while_its_first_run_is_not_due() -> None:
    previous = [silent(TUESDAY - n * H) for n in range(1, 10)]
    found = verdict(job(last_result="unknown", error="no snapshot in the repository yet"), *previous)
    assert (found.status, found.summary) == ("ok", "bookkeeping (restic): first run not due yet")


def test_a_failed_runs_summary_is_the_last_line_of_its_log_and_the_details_keep_all_of_it() -> None:
    log = "repository opened\n  Fatal:   unable to save snapshot:\tdisk full  \n\n"
    found = verdict(job(last_result="failed", error=log))
    assert "\n" not in found.summary
    assert found.summary.endswith("last run failed: Fatal: unable to save snapshot: disk full")
    assert found.details["error"] == log


def test_a_job_that_never_ran_is_late_once_a_run_was_due() -> None:
    previous = [silent(TUESDAY - n * H) for n in range(1, 32)]
    found = verdict(job(last_result="unknown"), *previous)
    assert (found.status, found.summary) == (
        "warning",
        "bookkeeping (restic): late: no run reported since it was configured",
    )


def test_an_unknown_result_keeps_the_last_run_known_from_history() -> None:
    # Time Machine with the disk unplugged: unknown now, but the last good backup is known from before.
    earlier = signal(job(TUESDAY - 40 * H, tool="timemachine"), at=TUESDAY - 20 * H)
    found = verdict(
        job(tool="timemachine", last_result="unknown", error="the backup disk is not connected"), earlier
    )
    assert found.status == "warning"
    assert found.details["last_success_known"] == (TUESDAY - 40 * H).isoformat()


# --- content: nothing added, size drops, free space ---------------------------------------------------------


def daily_runs(added: list[int], total: int = 10 * GIB) -> list[BackupResults]:
    """Earlier signals, newest first, one run per day, each adding `added[n]` bytes."""
    return [
        signal(job(TUESDAY - (n + 1) * D, bytes_added=size, bytes_total=total), at=TUESDAY - (n + 1) * D + H)
        for n, size in enumerate(added)
    ]


def test_it_warns_when_several_runs_added_nothing_where_data_usually_changes() -> None:
    found = verdict(
        job(TUESDAY - H, bytes_added=0, bytes_total=10 * GIB), *daily_runs([0, 0, 4_000_000, 3_000_000])
    )
    assert found.status == "warning"
    assert "the last 3 runs added nothing" in found.summary


def test_a_source_that_never_changes_is_not_an_anomaly() -> None:
    assert status(job(TUESDAY - H, bytes_added=0, bytes_total=10 * GIB), *daily_runs([0, 0, 0, 0])) == "ok"


def test_repeated_signals_of_the_same_run_count_as_one_run() -> None:
    same_run = [
        signal(job(TUESDAY - D, bytes_added=0, bytes_total=GIB), at=TUESDAY - D + n * H) for n in range(5)
    ]
    older = daily_runs([0, 0, 5_000_000], total=GIB)[1:]
    assert status(job(TUESDAY - D, bytes_added=0, bytes_total=GIB), *same_run, *older) == "ok"


@pytest.mark.parametrize(("now_total", "expected"), [(8 * GIB, "ok"), (6 * GIB, "warning")])
def test_it_warns_when_the_total_size_drops_by_more_than_30_percent(now_total, expected) -> None:
    entry = job(TUESDAY - H, bytes_added=1000, bytes_total=now_total)
    assert status(entry, *daily_runs([1000], total=10 * GIB)) == expected


def test_the_size_drop_threshold_comes_from_the_settings() -> None:
    entry = job(TUESDAY - H, bytes_added=1000, bytes_total=8 * GIB)
    assert status(entry, *daily_runs([1000], total=10 * GIB), size_drop_percent=10) == "warning"


def test_a_smaller_image_than_the_one_before_is_a_warning_without_history() -> None:
    image = job(
        TUESDAY - D,
        tool="imagefiles",
        schedule="weekly",
        bytes_total=40 * GIB,
        previous_bytes_total=120 * GIB,
    )
    found = verdict(image)
    assert found.status == "warning"
    assert "total size dropped 67 %" in found.summary


def test_the_first_incremental_image_after_a_full_one_is_not_a_size_drop() -> None:
    full = job(TUESDAY - 2 * D, tool="imagefiles", schedule="daily", bytes_total=120 * GIB,
               detail={"file": "PC-07/5A3C3E1F4A6B12D0-00-00.mrimg", "kind": "full"})
    incremental = job(TUESDAY - D, tool="imagefiles", schedule="daily", bytes_total=3 * GIB,
                      detail={"file": "PC-07/5A3C3E1F4A6B12D0-01-01.mrimg", "kind": "incremental"})
    assert status(incremental, signal(full, at=TUESDAY - 2 * D + H)) == "ok"
    # A full image that did shrink against the full one before is still told.
    smaller = full.model_copy(update={"bytes_total": 40 * GIB, "last_success_at": TUESDAY - D,
                                      "last_run_started_at": TUESDAY - D})
    assert status(smaller, signal(full, at=TUESDAY - 2 * D + H)) == "warning"


@pytest.mark.parametrize(("free_gib", "expected"), [(12, "ok"), (9, "warning")])
def test_it_warns_when_the_destination_runs_out_of_space(free_gib, expected) -> None:
    assert status(job(TUESDAY - H, destination_free_bytes=free_gib * GIB)) == expected


def test_the_free_space_threshold_comes_from_the_settings() -> None:
    assert status(job(TUESDAY - H, destination_free_bytes=40 * GIB), min_free_gib=50) == "warning"


# --- shape of the answer ------------------------------------------------------------------------------------


def test_each_job_gets_its_own_subject_and_the_worst_finding_wins() -> None:
    failed_and_full = job(
        name="server",
        tool="borg",
        last_result="failed",
        error="rc 2",
        last_run_ended_at=TUESDAY - H,
        destination_free_bytes=GIB,
    )
    found = evaluate(signal(job(TUESDAY - H), failed_and_full), History(now=TUESDAY, hostname="PC-07"))
    assert [(e.subject, e.status) for e in found] == [
        ("backup:bookkeeping", "ok"),
        ("backup:server", "critical"),
    ]
    assert found[1].details["findings"] == ["last run failed: rc 2", "only 1.0 GiB free at the destination"]


# --- judged when it happened ---------------------------------------------------------------------------------


async def test_a_friday_report_uploaded_on_monday_is_judged_on_friday_not_late(database: str, clock: Clock) -> None:
    settings = Settings(db=database, admin_token="tech-secret", clock_skew_seconds=10**9)
    async with TestClient(TestServer(create_app(settings, clock=clock))) as client:
        agent = await enrolled(client)
        friday = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
        report = signal(job(friday - 16 * H), at=friday)  # the nightly run at 02:00, collected at 18:00
        clock.now = friday + 2 * D + 15 * H  # the PC was off all weekend: the outbox sends it on Monday 09:00
        body = agent.body(agent.envelope([report]))
        response = await client.post(REPORTS, data=body, headers=agent.headers(body))
        assert response.status == 200, await response.text()
        alerts = await (await client.get("/api/v1/alerts", headers=TECH)).json()
        assert [a for a in alerts["alerts"] if a["rule"].startswith("backup_results")] == []


def test_a_damaged_repository_is_critical_though_its_last_run_succeeded() -> None:
    damaged = job(TUESDAY - H, integrity_checked_at=TUESDAY - 2 * H, integrity_error="pack 6167a068: does not exist")
    found = verdict(damaged)
    assert found.status == "critical"
    assert found.summary == "bookkeeping (restic): repository damaged: pack 6167a068: does not exist"
    assert found.details["integrity_checked_at"] == (TUESDAY - 2 * H).isoformat().replace("+00:00", "Z")
    assert status(job(TUESDAY - H, integrity_checked_at=TUESDAY - 2 * H)) == "ok"
