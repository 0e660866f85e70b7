"""Credentials changed by the admin CLI take effect at once in every collector process running on the database:
a rotated technician token and a revoked device are refused from the next request on, on either backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector.app import create_app
from collector.cli import main
from collector.settings import Settings
from tests.support.agents import REPORTS, SimAgent
from tests.support.clock import Clock
from tests.support.collector import enrolled


@pytest.fixture
async def collectors(database: str) -> AsyncIterator[list[TestClient]]:
    """Two running collectors on one database (think: two processes behind a load balancer)."""
    settings = Settings(db=database, clock_skew_seconds=10**9, notify_interval_seconds=0, startup_grace_seconds=0)
    clock = Clock()
    async with TestClient(TestServer(create_app(settings, clock=clock))) as first, \
            TestClient(TestServer(create_app(settings, clock=clock))) as second:
        yield [first, second]


async def cli(capsys: pytest.CaptureFixture[str], database: str, *argv: str) -> str:
    """Run the admin CLI on the database (its own store and event loop, as a separate process would)."""
    code = await asyncio.to_thread(main, ["--db", database, *argv], Clock())
    out, err = capsys.readouterr()
    assert code == 0, err
    return out.strip()


async def statuses(collectors: list[TestClient], token: str) -> list[int]:
    """What each collector answers the technician API with this token."""
    return [(await c.get("/api/v1/devices", headers={"Authorization": f"Bearer {token}"})).status
            for c in collectors]


async def report(collector: TestClient, agent: SimAgent) -> int:
    """The status of one signed heartbeat upload."""
    body = agent.body(agent.envelope())
    return (await collector.post(REPORTS, data=body, headers=agent.headers(body))).status


async def test_a_rotated_technician_token_is_refused_and_the_new_one_taken_at_once_everywhere(
    collectors: list[TestClient], database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    old = await cli(capsys, database, "admin-token")
    assert old.startswith("fp_tech_")
    assert await statuses(collectors, old) == [200, 200]
    new = await cli(capsys, database, "admin-token")
    assert new != old
    assert await statuses(collectors, old) == [401, 401]
    assert await statuses(collectors, new) == [200, 200]


async def test_admin_token_refuses_to_rotate_a_token_fixed_in_the_settings(
    database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIELDPOST_COLLECTOR_ADMIN_TOKEN", "tech-secret")
    code = await asyncio.to_thread(main, ["--db", database, "admin-token"], Clock())
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert "set in the settings (admin_token)" in err


async def test_a_revoked_device_is_refused_at_once_by_every_collector(
    collectors: list[TestClient], database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = await enrolled(collectors[0])
    assert [await report(c, agent) for c in collectors] == [200, 200]
    await cli(capsys, database, "revoke", agent.agent_id)
    for collector in collectors:
        body = agent.body(agent.envelope())
        refused = await collector.post(REPORTS, data=body, headers=agent.headers(body))
        assert refused.status == 401
        assert "was revoked" in (await refused.json())["error"]
