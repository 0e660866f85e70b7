"""`fieldpost alerts --follow` renders every event the collector puts in its feed: one line each, none of
them "? / ? / ?" (the events come from a real collector doing real work)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector import keys
from collector.app import create_app
from collector.offline import ALIVE, announce_downtime
from collector.settings import Settings
from technician.alerts import feed_line
from tests.notify_receivers import WebhookReceiver
from tests.support.clock import Clock
from tests.support.collector import TECH, enrolled, report_free


@pytest.fixture
async def client(tmp_path, clock: Clock) -> AsyncIterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = Settings(db=str(tmp_path / "collector.db"), admin_token="tech-secret", clock_skew_seconds=10**9,
                        notify_interval_seconds=0, startup_grace_seconds=0)
    async with TestClient(TestServer(create_app(settings, clock=clock))) as test_client:
        yield test_client


async def test_every_event_type_in_the_feed_is_one_readable_line(client: TestClient, clock: Clock) -> None:
    async def ok(method: str, path: str, body: dict | None = None) -> dict:  # type: ignore[type-arg]
        response = await client.request(method, path, json=body, headers=TECH)
        assert response.status in (200, 201), await response.text()
        return await response.json()

    async with WebhookReceiver() as hook:
        await ok("POST", "/api/v1/channels", {"name": "phone", "url": hook.apprise_url()})
        await ok("PATCH", "/api/v1/channels/phone", {"min_severity": "critical"})
        await ok("POST", "/api/v1/channels/phone/disable")
        await ok("POST", "/api/v1/channels/phone/enable")
    silence = await ok("POST", "/api/v1/silences", {"client": "Acme Tooling", "minutes": 30, "comment": "move"})
    await ok("POST", f"/api/v1/silences/{silence['silence_id']}/expire")
    desk = await enrolled(client, "DESK-01")
    await report_free(client, desk, clock, 2)
    [alert] = (await ok("GET", "/api/v1/alerts"))["alerts"]
    incident = await ok("POST", "/api/v1/incidents", {"alert_id": alert["alert_id"]})
    number = incident["incident_id"]
    await ok("POST", f"/api/v1/incidents/{number}/notes", {"text": "ordered a new disk"})
    await ok("POST", f"/api/v1/incidents/{number}/timer/start")
    clock.advance(minutes=20)
    await ok("POST", f"/api/v1/incidents/{number}/timer/stop")
    await ok("POST", f"/api/v1/incidents/{number}/time", {"minutes": 15})
    await ok("POST", f"/api/v1/incidents/{number}/close", {"resolution": "disk replaced"})
    await ok("DELETE", "/api/v1/channels/phone")
    store = client.app[keys.STORE]
    async with store.transaction() as tx:
        await tx.set_meta(ALIVE, (clock.now - timedelta(hours=2)).isoformat())
    await announce_downtime(store, client.app[keys.SETTINGS], clock.now)
    async with store.read() as tx:
        events = await tx.feed_since(0, 1000)

    types = {event.type for event in events}
    assert {"channel.created", "channel.changed", "channel.disabled", "channel.enabled", "channel.deleted",
            "silence.created", "silence.expired", "device.enrolled", "device.online", "alert.opened",
            "incident.opened", "incident.noted", "incident.closed", "collector.down"} <= types, types
    for event in events:
        line = feed_line(event.type, {"at": event.at.isoformat(), **event.data})
        assert "?" not in line and "\n" not in line, (event.type, line)
        assert len(line.split(maxsplit=3)) == 4, line
    lines = {event.type: feed_line(event.type, {"at": event.at.isoformat(), **event.data}) for event in events}
    assert "DOWN" in lines["collector.down"] and "the collector was down from" in lines["collector.down"]
    assert "Acme Tooling / Main office / DESK-01" in lines["device.online"]
    assert f"#{number}" in lines["incident.noted"] and "ordered a new disk" in lines["incident.noted"]
    assert "channel phone" in lines["channel.disabled"]
