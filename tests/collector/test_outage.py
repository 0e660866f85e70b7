"""No device is declared offline because the collector was down (stopped, or its database refusing work):
the collector tells agents how soon to come back, and its grace covers that; the clock is the test's."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector import keys
from collector.app import create_app
from collector.offline import sweep
from collector.settings import Settings, SettingsError, load_settings
from collector.store import sqlite
from shared.http import RECONNECT_HEADER
from tests.support.agents import REPORTS, SimAgent
from tests.support.clock import Clock
from tests.support.collector import TECH, enrolled

DEVICES = 12


def settings_for(database: str) -> Settings:
    return Settings(db=database, admin_token="tech-secret", clock_skew_seconds=10**9, notify_interval_seconds=0,
                    heartbeat_interval_seconds=60, offline_after_missed=3, startup_grace_seconds=120,
                    agent_reconnect_seconds=30)


@asynccontextmanager
async def collector(database: str, clock: Clock) -> AsyncIterator[TestClient]:
    """One run of the collector process, on the test's clock."""
    async with TestClient(TestServer(create_app(settings_for(database), clock=clock))) as client:
        yield client


async def report(client: TestClient, agent: SimAgent) -> int:
    body = agent.body(agent.envelope())
    return (await client.post(REPORTS, data=body, headers=agent.headers(body))).status


async def run_sweep(client: TestClient, clock: Clock) -> None:
    app = client.app
    await sweep(app[keys.STORE], app[keys.SETTINGS], app[keys.AVAILABILITY], clock.now, app[keys.ON_CHANGE])


async def offline(client: TestClient) -> list[str]:
    """The devices ever declared offline (an alert since resolved counts too)."""
    alerts = (await (await client.get("/api/v1/alerts?state=all", headers=TECH)).json())["alerts"]
    return sorted(a["hostname"] for a in alerts if a["rule"] in ("heartbeat.offline", "heartbeat.site_offline"))


async def back_after_outage(client: TestClient, clock: Clock, agents: list[SimAgent], gone: set[str]) -> None:
    """Agents come back spread over the reconnection hint (their longest wait), swept every 15 s meanwhile;
    then ten minutes of normal heartbeats."""
    hint = client.app[keys.SETTINGS].agent_reconnect_seconds
    for second in range(0, hint + 1):
        for n, agent in enumerate(agents):
            if agent.hostname not in gone and second == round(n * hint / (len(agents) - 1)):
                assert await report(client, agent) == 200
        if second % 15 == 0:
            await run_sweep(client, clock)
        clock.advance(seconds=1)
    for _ in range(10):
        for agent in agents:
            if agent.hostname not in gone:
                assert await report(client, agent) == 200
        await run_sweep(client, clock)
        clock.advance(seconds=60)


@pytest.mark.parametrize("outage_minutes", [5, 60])
async def test_a_collector_outage_declares_no_device_offline(
    database: str, clock: Clock, outage_minutes: int
) -> None:
    async with collector(database, clock) as client:
        agents = [await enrolled(client, f"PC-{n:02d}") for n in range(DEVICES)]
        for agent in agents:
            assert await report(client, agent) == 200
        await run_sweep(client, clock)
    clock.advance(minutes=outage_minutes)
    async with collector(database, clock) as client:
        await back_after_outage(client, clock, agents, gone=set())
        assert await offline(client) == []


async def test_a_device_that_does_not_come_back_is_still_declared_offline(database: str, clock: Clock) -> None:
    async with collector(database, clock) as client:
        agents = [await enrolled(client, f"PC-{n:02d}") for n in range(DEVICES)]
        for agent in agents:
            assert await report(client, agent) == 200
    clock.advance(minutes=5)
    async with collector(database, clock) as client:
        await back_after_outage(client, clock, agents, gone={"PC-04"})
        assert await offline(client) == ["PC-04"]


async def test_every_answer_to_a_report_carries_the_reconnection_hint(database: str, clock: Clock) -> None:
    async with collector(database, clock) as client:
        agent = await enrolled(client)
        body = agent.body(agent.envelope())
        ok = await client.post(REPORTS, data=body, headers=agent.headers(body))
        refused = await client.post(REPORTS, data=body, headers={})
        invalid = await client.post(REPORTS, data=b"{}", headers=agent.headers(b"{}"))
        assert [r.status for r in (ok, refused, invalid)] == [200, 401, 422]
        assert {r.headers[RECONNECT_HEADER] for r in (ok, refused, invalid)} == {"30"}


async def test_a_database_outage_while_the_collector_runs_declares_no_device_offline(
    tmp_path: object, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_MS", 100)
    database = str(tmp_path / "collector.db")  # type: ignore[operator]
    async with collector(database, clock) as client:
        agents = [await enrolled(client, f"PC-{n:02d}") for n in range(DEVICES)]
        for agent in agents:
            assert await report(client, agent) == 200
        clock.advance(minutes=10)
        other = sqlite3.connect(database, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            for _ in range(5):  # five minutes of 503s: the agents back off
                assert await report(client, agents[0]) == 503
                clock.advance(minutes=1)
        finally:
            other.close()
        await back_after_outage(client, clock, agents, gone=set())
        assert await offline(client) == []


def test_a_grace_shorter_than_the_agents_reconnection_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"startup_grace_seconds \(60\) must be at least agent_reconnect_seconds"):
        load_settings(None, startup_grace_seconds=60, agent_reconnect_seconds=90)
    assert load_settings(None, startup_grace_seconds=0, agent_reconnect_seconds=90).startup_grace_seconds == 0


@pytest.mark.parametrize("held_seconds", [0.0, 1.5])
async def test_a_sweep_the_database_held_back_declares_no_device_offline(
    tmp_path: object, clock: Clock, held_seconds: float
) -> None:
    # Another process holds the write lock: the sweep waits for it, and so did every report meanwhile.
    database = str(tmp_path / "collector.db")  # type: ignore[operator]
    settings = settings_for(database).model_copy(update={"heartbeat_interval_seconds": 1})
    async with TestClient(TestServer(create_app(settings, clock=clock))) as client:
        agent = await enrolled(client, "PC-01")
        assert await report(client, agent) == 200
        clock.advance(minutes=10)  # past the start-up grace, and the device silent for 10 minutes
        other = sqlite3.connect(database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        # Released by the event loop while the sweep waits on its database thread (a thread's timed wait
        # never ends under libfaketime, which `make test-dates` runs these tests in).
        release = asyncio.get_running_loop().call_later(held_seconds, other.close)
        try:
            await run_sweep(client, clock)
        finally:
            release.cancel()
            other.close()
        # Not held back, the silence is real: the device is offline. Held back, the grace starts again.
        assert await offline(client) == ([] if held_seconds else ["PC-01"])
