"""Known disks are stored, not rebuilt from the last ~8 days of reports: a disk missing for longer than the
reports the rule looks back on is still known, and a replacement arriving later resolves its alert."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector.app import create_app
from collector.rules import History, KnownDisk
from collector.rules.disk_health import SPEC, evaluate, known_disks_after
from collector.store import Store
from shared.disk_health import DiskHealth
from tests.collector.test_disk_health import NOW
from tests.collector.test_disk_identity import CLONE, DATA, SYSTEM, disk_alerts, hourly
from tests.collector.test_incidents import api, settings_for
from tests.collector.test_store import T0, enrol
from tests.support.agents import REPORTS
from tests.support.clock import Clock
from tests.support.collector import enrolled

LONG_AGO = NOW - timedelta(days=40)


def stored_history(*disks: KnownDisk) -> History:
    return History(now=NOW, hostname="books-pc", known_disks=disks)


async def test_the_store_keeps_a_devices_disks_and_replaces_them_whole(store: Store) -> None:
    await enrol(store)
    gone = KnownDisk("WD-WCC7K4JXL2NS", "WDC WD40EFRX", "/dev/sdb", T0, missing=True)
    old = KnownDisk("S3Z9NB0K123456", None, "/dev/sda", T0 - timedelta(days=400), replaced_by="S4EVNX0R98765")
    async with store.transaction() as tx:
        assert await tx.known_disks("agent-1") == []
        await tx.save_known_disks("agent-1", [gone, old])
    async with store.transaction() as tx:
        assert await tx.known_disks("agent-1") == [old, gone]
        await tx.save_known_disks("agent-1", [gone])
    async with store.transaction() as tx:
        assert await tx.known_disks("agent-1") == [gone]


def test_a_stored_missing_disk_is_still_missing_with_no_report_showing_it():
    gone = KnownDisk(DATA.serial or "", DATA.model, "/dev/sdb", LONG_AGO, missing=True)
    present = KnownDisk(SYSTEM.serial or "", SYSTEM.model, "/dev/sda", NOW - timedelta(hours=1))
    history = stored_history(present, gone)
    evaluations = {e.subject: e for e in evaluate(DiskHealth(collected_at=NOW, disks=[SYSTEM]), history)}
    missing = evaluations[f"disk:{DATA.serial}"]
    assert (missing.status, "event" in missing.details) == ("critical", False)  # told once, when it went
    assert "last read in /dev/sdb on 1 Oct" in missing.summary
    # A disk never seen before arrives weeks later: the missing one was replaced.
    evaluations = {e.subject: e for e in evaluate(DiskHealth(collected_at=NOW, disks=[SYSTEM, CLONE]), history)}
    replaced = evaluations[f"disk:{DATA.serial}"]
    assert (replaced.status, replaced.gone, replaced.details["new_serial"]) == ("ok", True, CLONE.serial)


def test_the_disks_to_store_after_a_report_remember_the_replaced_one():
    gone = KnownDisk(DATA.serial or "", DATA.model, "/dev/sdb", LONG_AGO, missing=True)
    history = stored_history(gone)
    after = {d.serial: d for d in known_disks_after(DiskHealth(collected_at=NOW, disks=[CLONE]), history)}
    assert after[DATA.serial or ""].replaced_by == CLONE.serial
    assert (after[CLONE.serial or ""].missing, after[CLONE.serial or ""].seen_at) == (False, NOW)
    # A reading that could not look at the disks changes nothing.
    assert known_disks_after(DiskHealth(collected_at=NOW, error="smartctl not found"), history) == (gone,)


def test_where_none_are_stored_yet_the_reports_say_which_disks_the_device_had():
    earlier = DiskHealth(collected_at=NOW - timedelta(hours=1), disks=[SYSTEM, DATA])
    history = History(now=NOW, hostname="books-pc", previous=(earlier,))
    after = {d.serial: d for d in known_disks_after(DiskHealth(collected_at=NOW, disks=[SYSTEM]), history)}
    assert after[DATA.serial or ""].missing and not after[SYSTEM.serial or ""].missing


@pytest.fixture
async def client(database: str, clock: Clock) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings_for(database), clock=clock))) as test_client:
        yield test_client


async def test_a_disk_missing_longer_than_the_reports_looked_back_on_is_resolved_when_replaced(
    client: TestClient, clock: Clock
) -> None:
    agent = await enrolled(client)
    await hourly(client, agent, clock, SYSTEM, DATA)
    # More hourly reports without it than the rule looks back on, uploaded a day at a time.
    for _ in range(SPEC.history // 24 + 1):
        day = []
        for _ in range(24):
            clock.advance(hours=1)
            day.append(agent.envelope([DiskHealth(collected_at=clock.now, disks=[SYSTEM])]))
        body = agent.body(*day)
        assert (await client.post(REPORTS, data=body, headers=agent.headers(body))).status == 200
    alerts = await disk_alerts(client)
    assert list(alerts) == [f"disk:{DATA.serial}"], "still known, still missing"
    await hourly(client, agent, clock, SYSTEM, CLONE)  # its replacement, at last
    assert await disk_alerts(client) == {}
    shown = await api(client, "GET", f"/api/v1/alerts/{alerts[f'disk:{DATA.serial}']['alert_id']}")
    assert shown["history"][-1]["detail"]["resolution"] == "replaced"
