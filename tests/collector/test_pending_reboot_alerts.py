"""pending_reboot through the real collector (both stores): the stuck-reason alert, and no hourly churn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector.app import create_app
from collector.settings import Settings
from shared.pending_reboot import InteractiveSession, PendingReboot, PolicyReboot, RebootReason
from tests.support.agents import REPORTS, SimAgent
from tests.support.clock import Clock
from tests.support.collector import TECH, enrolled

PINNED = RebootReason(
    source="newer-kernel", confidence="high", detail="running kernel 6.1.0-9-amd64, newest installed 6.1.0-13-amd64"
)


@pytest.fixture
async def client(database: str, clock: Clock) -> AsyncIterator[TestClient]:
    settings = Settings(db=database, admin_token="tech-secret", clock_skew_seconds=10**9)
    async with TestClient(TestServer(create_app(settings, clock=clock))) as test_client:
        yield test_client


async def report(client: TestClient, agent: SimAgent, signal: PendingReboot) -> None:
    body = agent.body(agent.envelope([signal]))
    response = await client.post(REPORTS, data=body, headers=agent.headers(body))
    assert response.status == 200, await response.text()


async def alerts(client: TestClient) -> list[dict[str, Any]]:
    body = await (await client.get("/api/v1/alerts?state=all", headers=TECH)).json()
    return body["alerts"]


async def events(client: TestClient, alert_id: int) -> list[str]:
    detail = await (await client.get(f"/api/v1/alerts/{alert_id}", headers=TECH)).json()
    return [entry["what"] for entry in detail["history"]]


async def test_a_reason_the_policys_reboot_did_not_clear_opens_an_alert_that_stays_quiet_hour_after_hour(
    client: TestClient, clock: Clock
) -> None:
    agent = await enrolled(client, "WS-07")
    booted = clock.now - timedelta(days=5)
    for hour in range(6):
        # The user's idle time grows every hour; nothing the technician needs to hear about changes.
        user = InteractiveSession(user="reception", terminal="console", idle_seconds=190 + hour * 3600.0)
        await report(client, agent, PendingReboot(
            collected_at=clock.now, pending=True, reasons=[PINNED], pending_since=clock.now - timedelta(days=4),
            boot_time=booted, boot_id="after-policy-reboot", sessions=[user],
            policy_reboot=PolicyReboot(rebooted_at=booted - timedelta(minutes=2), not_cleared=[PINNED]),
        ))
        clock.advance(hours=1)

    by_rule = {alert["rule"]: alert for alert in await alerts(client)}
    stuck = by_rule["pending_reboot.not_cleared"]
    assert (stuck["state"], stuck["severity"]) == ("open", "warning")
    assert stuck["summary"].startswith(f"reboot did not clear {PINNED.detail} (rebooted by the policy ")
    pending = by_rule["pending_reboot"]
    assert pending["summary"] == f"reboot pending since 2026-11-19 ({PINNED.detail}); reception logged on"
    assert await events(client, pending["alert_id"]) == ["opened"], "no 'changed' message every hour"
    assert await events(client, stuck["alert_id"]) == ["opened"]
