"""Disk identity through the real collector: a disk that vanishes is named by its serial, a swapped one is
resolved as replaced (and counted in the value report), an unmounted filesystem is missing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector.app import create_app
from shared.base import Signal
from shared.disk_health import DiskFacts, DiskHealth, FilesystemFacts
from tests.collector.test_disk_health import healthy
from tests.collector.test_incidents import ACME, api, settings_for
from tests.support.agents import REPORTS, SimAgent
from tests.support.clock import Clock
from tests.support.collector import GIB, TECH, enrolled

SYSTEM = healthy("smart-ata.json").model_copy(update={"device": "/dev/sda"})
DATA = healthy("smart-ata2.json").model_copy(update={"device": "/dev/sdb"})
FAILING = healthy("smart-fail2.json")  # /dev/sdc, SMART failed
CLONE = healthy("smart-nvme.json")  # its replacement, cloned onto an NVMe drive


@pytest.fixture
async def client(database: str, clock: Clock) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings_for(database), clock=clock))) as test_client:
        yield test_client


async def send(client: TestClient, agent: SimAgent, signal: Signal) -> None:
    body = agent.body(agent.envelope([signal]))
    response = await client.post(REPORTS, data=body, headers=agent.headers(body))
    assert response.status == 200, await response.text()


async def hourly(client: TestClient, agent: SimAgent, clock: Clock, *disks: DiskFacts, **more: Any) -> None:
    clock.advance(hours=1)
    await send(client, agent, DiskHealth(collected_at=clock.now, disks=list(disks), **more))


async def disk_alerts(client: TestClient, state: str = "open") -> dict[str, dict[str, Any]]:
    alerts = (await api(client, "GET", f"/api/v1/alerts?state={state}"))["alerts"]
    return {a["subject"]: a for a in alerts if a["rule"] == "disk_health"}


async def test_a_disk_that_vanishes_raises_an_alert_naming_its_serial_and_model(
    client: TestClient, clock: Clock
) -> None:
    agent = await enrolled(client)
    await hourly(client, agent, clock, SYSTEM, DATA)
    assert await disk_alerts(client) == {}
    await hourly(client, agent, clock, SYSTEM)  # /dev/sdb dropped off the bus: gone from --scan-open
    alerts = await disk_alerts(client)
    assert list(alerts) == [f"disk:{DATA.serial}"], "its own subject, not disk:/dev/sdb"
    missing = alerts[f"disk:{DATA.serial}"]
    assert missing["severity"] == "critical"
    assert missing["summary"].startswith(f"disk missing: {DATA.model} (serial {DATA.serial}) on RECEPTION-01")
    # The next reading smartctl cannot even open it: still the same alert, not a new disk:/dev/sdb.
    hung = DiskFacts(device="/dev/sdb", source="smartctl", status_read="unknown",
                     read_problems=["smartctl did not answer within 60 s"])
    await hourly(client, agent, clock, SYSTEM, hung)
    assert list(await disk_alerts(client)) == [f"disk:{DATA.serial}"]


async def test_a_disk_swapped_to_another_path_resolves_the_old_alert_as_replaced(
    client: TestClient, clock: Clock
) -> None:
    agent = await enrolled(client)
    await hourly(client, agent, clock, SYSTEM, FAILING)
    (failing,) = (await disk_alerts(client)).values()
    assert (failing["subject"], failing["severity"]) == (f"disk:{FAILING.serial}", "critical")
    await hourly(client, agent, clock, SYSTEM, CLONE)  # the SATA disk out, an NVMe clone in /dev/nvme0
    assert await disk_alerts(client) == {}
    shown = await api(client, "GET", f"/api/v1/alerts/{failing['alert_id']}")
    resolved = shown["history"][-1]
    assert (resolved["what"], resolved["detail"]["resolution"]) == ("resolved", "replaced")
    assert resolved["detail"]["new_serial"] == CLONE.serial
    html = await (await client.get(f"/api/v1/clients/{ACME}/report?from=2026-11-01&to=2026-11-30",
                                   headers=TECH)).text()
    assert re.search(r'<div class="tile"><b>1</b>disks replaced</div>', html)


async def test_a_filesystem_no_longer_mounted_is_missing(client: TestClient, clock: Clock) -> None:
    agent = await enrolled(client)
    data = FilesystemFacts(mount="/srv/data", device="/dev/sdb1", fstype="ext4", total_bytes=100 * GIB,
                           used_bytes=10 * GIB, free_bytes=90 * GIB)
    await hourly(client, agent, clock, SYSTEM, filesystems=[data])
    await hourly(client, agent, clock, SYSTEM)
    alerts = await disk_alerts(client)
    assert alerts["fs:/srv/data"]["severity"] == "warning"
    assert "is no longer mounted" in alerts["fs:/srv/data"]["summary"]
