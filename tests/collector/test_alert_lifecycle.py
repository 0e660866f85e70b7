"""The alert lifecycle through the real app, with the collector's clock in the test's hands."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector.app import create_app
from collector.settings import Settings
from tests.support.clock import START, Clock
from tests.support.collector import TECH, enrolled, report_free


@pytest.fixture
async def client(database: str, clock: Clock) -> AsyncIterator[TestClient]:
    settings = Settings(db=database, admin_token="tech-secret", clock_skew_seconds=10**9)
    async with TestClient(TestServer(create_app(settings, clock=clock))) as test_client:
        yield test_client


async def volume_alerts(client: TestClient) -> list[dict[str, Any]]:
    body = await (await client.get("/api/v1/alerts?state=all", headers=TECH)).json()
    return [a for a in body["alerts"] if a["subject"] == "fs:C:"]


async def history(client: TestClient, alert_id: int) -> list[tuple[str, str]]:
    detail = await (await client.get(f"/api/v1/alerts/{alert_id}", headers=TECH)).json()
    return [(entry["what"], entry["by"]) for entry in detail["history"]]


async def test_an_alert_resolves_only_after_two_good_reports(client: TestClient, clock: Clock) -> None:
    agent = await enrolled(client)
    await report_free(client, agent, clock, 5)
    clock.advance(minutes=1)
    await report_free(client, agent, clock, 50)
    assert [a["state"] for a in await volume_alerts(client)] == ["open"], "one good report is not enough"
    clock.advance(minutes=1)
    await report_free(client, agent, clock, 50)
    [alert] = await volume_alerts(client)
    assert alert["state"] == "resolved"


async def test_a_number_moving_in_the_text_is_an_update_and_a_new_severity_a_change(
    client: TestClient, clock: Clock
) -> None:
    agent = await enrolled(client)
    for free in (8, 7, 6, 2):  # a warning, a GiB less (and a forecast), a GiB less (same words), then critical
        await report_free(client, agent, clock, free)
        clock.advance(minutes=5)
    [alert] = await volume_alerts(client)
    whats = [what for what, _ in await history(client, alert["alert_id"])]
    assert whats == ["opened", "changed", "updated", "changed"]
    assert alert["severity"] == "critical"


async def test_a_problem_that_comes_back_soon_reopens_the_same_alert(client: TestClient, clock: Clock) -> None:
    agent = await enrolled(client)
    for free in (5, 50, 50):
        await report_free(client, agent, clock, free)
        clock.advance(minutes=5)
    await report_free(client, agent, clock, 5)
    [alert] = await volume_alerts(client)
    assert (alert["state"], alert["occurrences"]) == ("open", 2)
    assert [what for what, _ in await history(client, alert["alert_id"])] == ["opened", "resolved", "reopened"]
    for free in (50, 50):
        clock.advance(minutes=5)
        await report_free(client, agent, clock, free)
    clock.advance(hours=2)
    await report_free(client, agent, clock, 5)
    assert [a["state"] for a in await volume_alerts(client)] == ["open", "resolved"], "much later: a new alert"


async def test_an_alert_that_keeps_changing_is_marked_flapping_once(client: TestClient, clock: Clock) -> None:
    agent = await enrolled(client)
    for _ in range(4):
        for free in (5, 50, 50):
            await report_free(client, agent, clock, free)
            clock.advance(minutes=3)
    [alert] = await volume_alerts(client)
    assert alert["flapping"] is True
    events = [what for what, _ in await history(client, alert["alert_id"])]
    assert events.count("flapping") == 1
    assert events.count("reopened") == 3


async def test_the_technician_acknowledges_snoozes_and_resolves_with_notes(client: TestClient, clock: Clock) -> None:
    agent = await enrolled(client)
    await report_free(client, agent, clock, 5)
    [alert] = await volume_alerts(client)
    path = f"/api/v1/alerts/{alert['alert_id']}"
    acked = await client.post(f"{path}/acknowledge", json={"note": "on it"}, headers=TECH)
    assert (await acked.json())["acknowledged_by"] == "technician"
    again = await client.post(f"{path}/acknowledge", json={}, headers=TECH)
    assert again.status == 409
    snoozed = await (await client.post(f"{path}/snooze", json={"minutes": 120}, headers=TECH)).json()
    assert snoozed["snoozed_until"] == (START + timedelta(hours=2)).isoformat()
    resolved = await client.post(f"{path}/resolve", json={"note": "moved the archive to the NAS"}, headers=TECH)
    assert (await resolved.json())["state"] == "resolved"
    assert await history(client, alert["alert_id"]) == [
        ("opened", "rule"), ("acknowledged", "technician"), ("snoozed", "technician"), ("resolved", "technician"),
    ]
    assert (await client.post(f"{path}/resolve", json={}, headers=TECH)).status == 409
    assert (await client.post("/api/v1/alerts/999/acknowledge", json={}, headers=TECH)).status == 409
    assert (await client.post(f"{path}/resolve", headers={"Authorization": "Bearer nope"})).status == 401


@pytest.mark.slow
async def test_the_cli_acts_on_an_alert(client: TestClient, clock: Clock) -> None:
    agent = await enrolled(client)
    await report_free(client, agent, clock, 5)
    [alert] = await volume_alerts(client)
    url = str(client.make_url("")).rstrip("/")
    cli = [sys.executable, "-m", "technician", "--url", url, "--token", "tech-secret", "alerts"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args], capture_output=True, text=True, check=False)

    acked = await asyncio.to_thread(run, "ack", str(alert["alert_id"]), "--note", "calling the client")
    assert acked.returncode == 0, acked.stderr
    assert acked.stdout.startswith(f"#{alert['alert_id']} acknowledged: ")
    shown = await asyncio.to_thread(run, "show", str(alert["alert_id"]))
    assert "acknowledged technician calling the client" in " ".join(shown.stdout.split())
    twice = await asyncio.to_thread(run, "ack", str(alert["alert_id"]))
    assert twice.returncode == 1
    assert "was acknowledged by technician before" in twice.stderr
