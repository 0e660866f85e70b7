"""Notification channels over their life: edited, switched off and on, deleted; a dead one is marked broken
within minutes, backing off between tries, and the other channels hear of it (real receivers on loopback)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from itertools import pairwise

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector import keys
from collector.app import create_app
from tests.collector.test_notifications import channel, settings_for
from tests.notify_receivers import WebhookReceiver
from tests.support.clock import Clock
from tests.support.collector import TECH, enrolled, report_free


@pytest.fixture
async def client(database: str, clock: Clock) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings_for(database), clock=clock))) as test_client:
        yield test_client


async def channels(client: TestClient) -> dict[str, dict]:  # type: ignore[type-arg]
    listed = await (await client.get("/api/v1/channels", headers=TECH)).json()
    return {c["name"]: c for c in listed["channels"]}


async def run_for(client: TestClient, clock: Clock, seconds: int, step: int = 5) -> None:
    """Dispatch rounds every `step` seconds for `seconds`."""
    for _ in range(seconds // step):
        clock.advance(seconds=step)
        await client.app[keys.NOTIFIER].dispatch(clock.now)


async def test_a_channel_is_edited_switched_off_and_on_and_deleted(client: TestClient, clock: Clock) -> None:
    async with WebhookReceiver() as old, WebhookReceiver() as new:
        await channel(client, old.apprise_url(), name="phone")
        await channel(client, old.apprise_url(), name="spare")
        edited = await client.patch("/api/v1/channels/phone", headers=TECH,
                                    json={"url": new.apprise_url(), "min_severity": "critical"})
        assert edited.status == 200, await edited.text()
        assert (await edited.json())["min_severity"] == "critical"
        bad = await client.patch("/api/v1/channels/phone", headers=TECH, json={"url": "nothing://x"})
        assert bad.status == 422
        taken = await client.patch("/api/v1/channels/phone", headers=TECH, json={"name": "spare"})
        assert taken.status == 409 and "already" in await taken.text()
        assert (await client.patch("/api/v1/channels/nobody", headers=TECH, json={})).status == 404
        assert (await client.post("/api/v1/channels/spare/disable", headers=TECH)).status == 200
        assert (await channels(client))["spare"]["disabled"]

        desk = await enrolled(client, "DESK-01")
        await report_free(client, desk, clock, 2)  # a critical
        await run_for(client, clock, 60)
        assert len(new.bodies) == 1 and old.bodies == [], "the edited URL is used; the switched-off one is not"

        assert (await client.post("/api/v1/channels/spare/enable", headers=TECH)).status == 200
        other = await enrolled(client, "DESK-02")
        await report_free(client, other, clock, 2)
        await run_for(client, clock, 120)
        assert len(old.bodies) == 1 and "DESK-02" in old.bodies[0]["title"], "on again: only what came since"

        deleted = await client.delete("/api/v1/channels/spare", headers=TECH)
        assert deleted.status == 200
        assert set(await channels(client)) == {"phone"}
        assert (await client.delete("/api/v1/channels/spare", headers=TECH)).status == 404


async def test_a_dead_channel_is_broken_within_minutes_backing_off_and_the_others_hear_of_it(
    client: TestClient, clock: Clock
) -> None:
    async with WebhookReceiver(statuses=(503,)) as dead, WebhookReceiver() as phone:
        await channel(client, dead.apprise_url(), name="dead")
        await channel(client, phone.apprise_url(), name="phone")
        await report_free(client, await enrolled(client), clock, 2)
        start = clock.now
        tried_at = []
        for _ in range(6 * 60 // 5):  # six minutes of dispatch rounds, every 5 s
            clock.advance(seconds=5)
            before = len(dead.requests)
            await client.app[keys.NOTIFIER].dispatch(clock.now)
            if len(dead.requests) > before:
                tried_at.append(clock.now)
        gaps = [(b - a).total_seconds() for a, b in pairwise(tried_at)]
        assert gaps == [15, 30, 60, 120], "a first try and four retries, each wait twice the one before"
        broken = (await channels(client))["dead"]
        assert broken["broken"] and "503" in broken["broken"]
        assert tried_at[-1] - start <= timedelta(minutes=5), "broken within minutes"
        titles = [body["title"] for body in phone.bodies]
        assert any("notification channel dead is broken" in t for t in titles), titles
        # Fixed: the edit makes it a working channel again.
        async with WebhookReceiver() as fixed:
            await client.patch("/api/v1/channels/dead", headers=TECH, json={"url": fixed.apprise_url()})
            assert (await channels(client))["dead"]["broken"] is None
