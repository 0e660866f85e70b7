"""Never silent: through the real collector, with its clock in the test's hands, a check that has produced no
usable result for three of its intervals is a warning (which check, since when, the last error), and an
unknown verdict that persists is escalated to a warning and stays one until a usable result."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.checks import Check, CheckContext
from collector import keys, stale
from collector.app import create_app
from shared.backup_results import BackupResults
from shared.base import Signal
from shared.disk_health import DiskHealth
from shared.wire import Unknown
from tests.collector.test_disk_health import healthy
from tests.collector.test_incidents import api, settings_for
from tests.support.agents import REPORTS, SimAgent, heartbeat
from tests.support.clock import Clock
from tests.support.collector import enrolled

UNREADABLE = healthy("smart-raid.json")  # a RAID volume without SMART data: unknown


@pytest.fixture
async def client(database: str, clock: Clock) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings_for(database), clock=clock))) as test_client:
        yield test_client


async def send(client: TestClient, agent: SimAgent, *signals: Signal) -> None:
    body = agent.body(agent.envelope(list(signals)))
    response = await client.post(REPORTS, data=body, headers=agent.headers(body))
    assert response.status == 200, await response.text()


async def sweep_at(client: TestClient, agent: SimAgent, clock: Clock) -> int:
    """The device is online (a heartbeat now); then one never-silent sweep."""
    await send(client, agent, heartbeat(agent.hostname, clock.now))
    return await stale.sweep(client.app[keys.STORE], client.app[keys.SETTINGS], clock.now)


async def open_alerts(client: TestClient) -> dict[tuple[str, str], dict[str, Any]]:
    alerts = (await api(client, "GET", "/api/v1/alerts?state=open"))["alerts"]
    return {(a["rule"], a["subject"]): a for a in alerts}


async def test_a_check_that_stops_producing_results_becomes_a_warning_with_its_last_error(
    client: TestClient, clock: Clock
) -> None:
    agent = await enrolled(client)
    start = clock.now
    for hour in range(3):  # disk_health runs hourly
        clock.now = start + timedelta(hours=hour)
        await send(client, agent, DiskHealth(collected_at=clock.now))
    clock.now = start + timedelta(hours=3)
    await send(client, agent, Unknown(collected_at=clock.now, check="disk_health", error="timed out after 300 s"))
    assert (await open_alerts(client))[("unknown", "disk_health")]["severity"] == "unknown"
    clock.now = start + timedelta(hours=4, minutes=50)  # 2 h 50 min without a result: not yet
    assert await sweep_at(client, agent, clock) == 0
    clock.now = start + timedelta(hours=5, minutes=1)
    assert await sweep_at(client, agent, clock) > 0
    warning = (await open_alerts(client))[("unknown", "disk_health")]
    assert warning["severity"] == "warning"
    assert warning["summary"] == (
        f"disk_health has produced no usable result on RECEPTION-01 since {start + timedelta(hours=2):%Y-%m-%d %H:%M}"
        " UTC (it runs every 1 h); last error: timed out after 300 s"
    )
    assert await sweep_at(client, agent, clock) == 0, "judged once, not again every sweep"
    # The check keeps failing: the warning stays a warning, in the same words.
    clock.advance(minutes=10)
    await send(client, agent, Unknown(collected_at=clock.now, check="disk_health", error="timed out after 300 s"))
    assert (await open_alerts(client))[("unknown", "disk_health")]["summary"] == warning["summary"]
    # A usable result resolves it.
    clock.advance(minutes=10)
    await send(client, agent, DiskHealth(collected_at=clock.now))
    assert ("unknown", "disk_health") not in await open_alerts(client)


async def test_a_stuck_check_that_sends_nothing_at_all_becomes_a_warning(client: TestClient, clock: Clock) -> None:
    agent = await enrolled(client)
    start = clock.now
    for hour in range(3):
        clock.now = start + timedelta(hours=hour)
        await send(client, agent, DiskHealth(collected_at=clock.now))
    clock.now = start + timedelta(hours=5, minutes=1)
    await sweep_at(client, agent, clock)
    warning = (await open_alerts(client))[("unknown", "disk_health")]
    assert warning["severity"] == "warning"
    assert warning["summary"].endswith("no error was reported: the check may be stuck")


async def test_a_persisting_unknown_is_escalated_and_stays_escalated(client: TestClient, clock: Clock) -> None:
    agent = await enrolled(client)
    subject = ("disk_health", f"disk:{UNREADABLE.serial}")
    start = clock.now
    for hour in range(3):
        clock.now = start + timedelta(hours=hour)
        await send(client, agent, DiskHealth(collected_at=clock.now, disks=[UNREADABLE]))
    assert (await open_alerts(client))[subject]["severity"] == "unknown"
    assert await sweep_at(client, agent, clock) == 0, "open for 2 h of a 1 h check: not yet"
    clock.now = start + timedelta(hours=3)
    await send(client, agent, DiskHealth(collected_at=clock.now, disks=[UNREADABLE]))
    await sweep_at(client, agent, clock)
    escalated = (await open_alerts(client))[subject]
    assert escalated["severity"] == "warning"
    assert escalated["summary"].startswith(f"still unknown since {start:%Y-%m-%d %H:%M} UTC: ")
    clock.advance(hours=1)
    await send(client, agent, DiskHealth(collected_at=clock.now, disks=[UNREADABLE]))
    shown = await api(client, "GET", f"/api/v1/alerts/{escalated['alert_id']}")
    assert shown["severity"] == "warning", "the next unknown report does not hide it again"
    assert [h["what"] for h in shown["history"]] == ["opened", "changed"]


async def test_an_offline_device_is_left_to_the_offline_alert(client: TestClient, clock: Clock) -> None:
    agent = await enrolled(client)
    start = clock.now
    for hour in range(3):
        clock.now = start + timedelta(hours=hour)
        await send(client, agent, DiskHealth(collected_at=clock.now))
    clock.now = start + timedelta(hours=6)
    assert await stale.sweep(client.app[keys.STORE], client.app[keys.SETTINGS], clock.now) == 0


def test_the_interval_is_the_median_gap_of_the_latest_runs_results_and_failures() -> None:
    at = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    runs = [at + timedelta(minutes=m) for m in (0, 61, 119, 240)]  # jitter, and one run missed
    record = stale.CheckRecord("updates", tuple(runs[:3]), ((runs[3], "apt-get locked"),))
    assert record.interval() == timedelta(minutes=61)
    assert stale.CheckRecord("updates", (at,), ()).interval() is None, "one run says nothing about the interval"


async def test_a_silence_the_technician_resolved_is_not_raised_again_until_the_check_returns(
    client: TestClient, clock: Clock
) -> None:
    agent = await enrolled(client)
    start = clock.now
    for hour in range(3):
        clock.now = start + timedelta(hours=hour)
        await send(client, agent, DiskHealth(collected_at=clock.now))
    clock.now = start + timedelta(hours=6)
    await sweep_at(client, agent, clock)
    silent = (await open_alerts(client))[("unknown", "disk_health")]
    # The check was taken out of this PC's configuration: the technician says so.
    await api(client, "POST", f"/api/v1/alerts/{silent['alert_id']}/resolve", {"note": "check disabled"})
    clock.advance(hours=1)
    assert await sweep_at(client, agent, clock) == 0
    assert ("unknown", "disk_health") not in await open_alerts(client)
    # Enabled again, it reports for a while, then falls silent: that is news again.
    for _ in range(3):
        clock.advance(hours=1)
        await send(client, agent, DiskHealth(collected_at=clock.now))
    clock.advance(hours=4)
    await sweep_at(client, agent, clock)
    assert (await open_alerts(client))[("unknown", "disk_health")]["severity"] == "warning"


class ImageShare(Check):
    """A backup check reading a NAS share; from `hang_from` on, the mount hangs (a blocked read no one can kill)."""

    kind = "backup_results"
    timeout = 0.3

    def __init__(self, clock: Clock, hang_from: int) -> None:
        super().__init__(CheckContext(clock=clock))
        self.runs, self.hang_from, self.mount = 0, hang_from, threading.Event()

    def collect(self) -> list[Signal]:
        self.runs += 1
        if self.runs > self.hang_from:
            self.mount.wait(30)
        return [BackupResults(collected_at=self.context.clock())]


class Disks(Check):
    """The disk check, which keeps working."""

    kind = "disk_health"

    def collect(self) -> list[Signal]:
        return [DiskHealth(collected_at=self.context.clock())]


async def test_a_hung_mount_the_other_checks_keep_reporting_and_the_stuck_one_becomes_a_warning(
    client: TestClient, clock: Clock
) -> None:
    agent = await enrolled(client)
    share, disks = ImageShare(clock, hang_from=3), Disks(CheckContext(clock=clock))
    start = clock.now
    try:
        for hour in range(7):  # both checks run hourly; the share hangs from the fourth run on
            clock.now = start + timedelta(hours=hour)
            signals = [s for found in await asyncio.gather(share.run(), disks.run()) for s in found]
            assert [s.kind for s in signals] == ["backup_results" if hour < 3 else "unknown", "disk_health"]
            await send(client, agent, *signals)
        assert await sweep_at(client, agent, clock) > 0
    finally:
        share.mount.set()
    alerts = await open_alerts(client)
    stuck = alerts[("unknown", "backup_results")]
    assert stuck["severity"] == "warning"
    assert "backup_results has produced no usable result on RECEPTION-01 since" in stuck["summary"]
    assert "last error: still stuck in the run that timed out after 0.3 s" in stuck["summary"]
    assert ("unknown", "disk_health") not in alerts, "the disk check kept reporting"


async def test_a_pc_uploading_its_weekend_backlog_has_not_gone_silent(client: TestClient, clock: Clock) -> None:
    agent = await enrolled(client)
    friday = clock.now
    for hour in range(3):
        clock.now = friday + timedelta(hours=hour)
        await send(client, agent, DiskHealth(collected_at=clock.now))
    # Monday: the PC is back and its outbox has delivered Friday's heartbeat so far, not the rest yet.
    clock.now = friday + timedelta(days=3)
    await send(client, agent, heartbeat(agent.hostname, friday + timedelta(hours=2, minutes=30)))
    assert await stale.sweep(client.app[keys.STORE], client.app[keys.SETTINGS], clock.now) == 0
    assert ("unknown", "disk_health") not in await open_alerts(client)
