"""Rows an older, buggy version stored (an unpadded year, NaN, garbage JSON, a signal the schema refuses)
are skipped, counted and shown: no page fails for anyone, and no later report is refused because of them.

The rows are written straight into the real database, the way such a version left them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector import keys
from collector.app import create_app
from collector.auth import token_hash
from collector.services.technicians import Technicians
from collector.settings import Settings
from shared.disk_health import DiskHealth
from tests.support.agents import REPORTS, SimAgent, heartbeat
from tests.support.clock import Clock
from tests.support.collector import TECH, enrolled, report_free, store_of
from tests.web.conftest import NAME, PASSWORD, log_in
from tests.web.reports import report_week
from tests.web.test_hostile_reports import printers

# What an older version left behind, per backend: (kind of the spoiled row, SET clause). PostgreSQL's own
# types refuse an unpadded year, NaN and malformed JSON, so there the rows are ones the schema refuses.
SPOILED = {
    "sqlite": [
        ("disk_health", "collected_at = '999-06-01T00:00:00.000000Z'"),  # sorts after 2026, cannot be read
        ("backup_results", "payload = '{\"kind\": \"backup_results\", \"collected_at\": NaN, \"jobs\": []}'"),
        ("heartbeat", "payload = '{\"kind\": \"heartb'"),
        ("printer_ip_conflict", "collected_at = '999-06-01T00:00:00.000000Z'"),
    ],
    "postgresql": [
        ("disk_health", "payload = '{\"kind\": \"disk_health\", \"collected_at\": \"2026-11-23T09:00:00Z\", "
                        "\"disks\": \"garbage\"}'"),
        ("backup_results", "payload = '{\"kind\": \"backup_results\", \"collected_at\": \"0999-06-01T00:00:00Z\"}'"),
        ("heartbeat", "payload = '[1, 2]'"),
        ("printer_ip_conflict", "collected_at = '2026-11-23T12:00:00Z', "
                                "payload = '{\"kind\": \"printer_ip_conflict\", \"collected_at\": 1e999}'"),
    ],
}


@pytest.fixture
async def client(database: str, clock: Clock) -> AsyncIterator[TestClient]:
    settings = Settings(db=database, admin_token="tech-secret", clock_skew_seconds=10**9,
                        notify_interval_seconds=0, startup_grace_seconds=0)
    async with TestClient(TestServer(create_app(settings, clock=clock))) as test_client:
        await Technicians(test_client.app[keys.STORE], clock).add(NAME, PASSWORD)
        yield test_client


async def stranger(client: TestClient, clock: Clock) -> SimAgent:
    """A PC of another client (the Bakery's shop), enrolled through the real endpoint."""
    async with store_of(client).transaction() as tx:
        site = await tx.site("Bakery", "Shop")
        await tx.add_enrolment_token(token_hash("bakery"), site, clock.now, None, None)
    agent = SimAgent("BAKERY-01", clock=clock)
    response = await client.post("/api/v1/enrol", json=agent.enrol_body("bakery"))
    assert response.status == 201
    agent.agent_id = (await response.json())["agent_id"]
    return agent


async def post(client: TestClient, agent: SimAgent, signals: list[object]) -> int:
    """Upload one envelope of `signals`; the answer's status."""
    body = agent.body(agent.envelope(signals))
    response = await client.post(REPORTS, data=body, headers=agent.headers(body))
    return response.status


async def spoil(database: str, backend: str, agent_id: str) -> None:
    """Overwrite the device's newest row of each kind with what an older, buggy version wrote."""
    for kind, change in SPOILED[backend]:
        newest = (f"(SELECT max(id) FROM observations WHERE agent_id = '{agent_id}' AND kind = '{kind}')")
        statement = f"UPDATE observations SET {change} WHERE id = {newest}"
        if backend == "sqlite":
            with sqlite3.connect(database) as db:
                assert db.execute(statement).rowcount == 1
        else:
            conn = await asyncpg.connect(database)
            try:
                assert await conn.execute(statement) == "UPDATE 1"
            finally:
                await conn.close()


async def test_unreadable_rows_are_skipped_counted_and_shown_and_break_nothing(
    client: TestClient, clock: Clock, database: str, backend: str
) -> None:
    bad, mate, other = await enrolled(client, "RECEPTION-01"), await enrolled(client, "OFFICE-02"), \
        await stranger(client, clock)
    for agent in (bad, mate):
        agent.clock = clock
    await report_week(client, bad, clock, days=2)
    assert await post(client, bad, [heartbeat(bad.hostname, clock.now), printers(bad)]) == 200

    await spoil(database, backend, bad.agent_id)

    assert await post(client, mate, [heartbeat(mate.hostname, clock.now), printers(mate)]) == 200
    assert await post(client, other, [heartbeat(other.hostname, clock.now)]) == 200

    await log_in(client)
    for page in ["/", "/clients", f"/devices/{bad.agent_id}", f"/devices/{mate.agent_id}",
                 f"/devices/{other.agent_id}"]:
        response = await client.get(page)
        assert response.status == 200, (page, await response.text())
    devices = await client.get("/api/v1/devices", headers=TECH)
    assert devices.status == 200
    clock.advance(minutes=5)
    # The site-mate's printer report reads the spoiled printer row in its site's window; the bad PC's own
    # next reports read its spoiled history. Both are stored.
    assert await post(client, mate, [heartbeat(mate.hostname, clock.now), printers(mate)]) == 200
    assert await post(client, bad, [heartbeat(bad.hostname, clock.now), printers(bad)]) == 200
    await report_free(client, bad, clock, 50)
    assert await post(client, bad, [DiskHealth(collected_at=clock.now)]) == 200

    page = await (await client.get(f"/devices/{bad.agent_id}")).text()
    unreadable = store_of(client).unreadable
    met = unreadable.count(bad.agent_id)
    assert 1 <= met <= len(SPOILED[backend])
    assert f"{met} unreadable record" in page
    # Each row is counted (and logged) once, however often it is met.
    await client.get(f"/devices/{bad.agent_id}")
    await client.get("/clients")
    assert unreadable.count(bad.agent_id) == met
    assert unreadable.count(mate.agent_id) == unreadable.count(other.agent_id) == 0
    assert "unreadable record" not in await (await client.get(f"/devices/{mate.agent_id}")).text()
