"""A PC whose clock was weeks behind: its requests are refused and counted on the device, its reports wait in
the outbox, and once the clock is set right every one of them is stored (issue 23), on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.identity import Identity
from agent.outbox import OUTBOX_FILE, Outbox
from agent.uploader import Uploader
from collector.app import create_app
from collector.settings import Settings
from tests.support.agents import REPORTS, heartbeat
from tests.support.clock import START, Clock
from tests.support.collector import TECH, enrolled, store_of

BEHIND = timedelta(weeks=3)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(database: str, clock: Clock) -> AsyncIterator[TestClient]:
    settings = Settings(db=database, admin_token="tech-secret")
    async with TestClient(TestServer(create_app(settings, clock=clock))) as test_client:
        yield test_client


async def test_a_clock_weeks_behind_is_counted_on_the_device_and_loses_no_report_once_corrected(
    client: TestClient, clock: Clock, tmp_path: Path
) -> None:
    device = await enrolled(client)
    identity = Identity(device.agent_id, str(client.make_url("")), "Acme Tooling", "Main office", START, device.key)
    pc_clock = Clock(clock.now - BEHIND)
    ticks = [0.0]
    outbox = Outbox(tmp_path / OUTBOX_FILE, identity.agent_id, "boot-1", clock=pc_clock,
                    monotonic=lambda: ticks[0])
    # Every ten minutes, past the uploader's backoff after a refusal (at most 300 s), it tries again.
    uploader = Uploader(outbox, identity, identity.collector_url, clock=pc_clock, rand=lambda: 0.0,
                        monotonic=lambda: ticks[0])
    for _ in range(124):
        pc_clock.advance(minutes=10)
        clock.advance(minutes=10)
        ticks[0] += 600
        outbox.put([heartbeat("RECEPTION-01", pc_clock())])
        await uploader.upload_once()
    assert outbox.stats().pending == 124, "refused for the clock, every report waits"
    async with store_of(client).read() as tx:
        agent = await tx.agent(identity.agent_id)
    assert agent is not None
    assert (agent.skew_refusals, agent.last_skew_at, agent.last_skew_seconds) == (
        124, clock.now, -int(BEHIND.total_seconds())), "each refused upload is counted on the device"

    pc_clock.now = clock.now  # NTP sets the PC's clock right
    ticks[0] += 600
    outbox.put([heartbeat("RECEPTION-01", pc_clock())])
    await uploader.upload_once()
    await uploader.close()
    assert outbox.stats().pending == 0
    async with store_of(client).read() as tx:
        stored = len(await tx.observations(identity.agent_id, "heartbeat", 1000))
    assert stored == 125, "the 124 reports queued under the wrong clock are all stored, and the new one"


async def test_only_a_rightly_signed_request_counts_as_a_clock_refusal(client: TestClient, clock: Clock) -> None:
    device = await enrolled(client)
    body = device.body(device.envelope())
    stale = int((clock.now - BEHIND).timestamp())
    forged = {**device.headers(body, timestamp=stale), "X-Fieldpost-Signature": "AAAA"}
    for headers in (forged, device.headers(body, timestamp=stale)):
        response = await client.post(REPORTS, data=body, headers=headers)
        assert response.status == 401
    assert "check the PC's clock" in (await response.json())["error"]
    [listed] = (await (await client.get("/api/v1/devices", headers=TECH)).json())["devices"]
    assert (listed["clock_refusals"], listed["last_clock_offset_seconds"]) == (1, -int(BEHIND.total_seconds()))
    async with store_of(client).read() as tx:
        agent = await tx.agent(device.agent_id)
    assert agent is not None
    assert (agent.skew_refusals, agent.last_skew_at, agent.last_skew_seconds) == (
        1, clock.now, -int(BEHIND.total_seconds()))


async def clock_events(client: TestClient) -> list[int]:
    async with store_of(client).read() as tx:
        return [e.data["offset_seconds"] for e in await tx.feed_since(0, 1000) if e.type == "device.clock_skew"]


async def test_the_feed_is_told_once_per_spell_even_for_a_device_refused_from_its_first_report(
    client: TestClient, clock: Clock
) -> None:
    device = await enrolled(client)
    stale = int((clock.now - BEHIND).timestamp())

    async def send(timestamp: int | None) -> int:
        body = device.body(device.envelope())
        return (await client.post(REPORTS, data=body, headers=device.headers(body, timestamp=timestamp))).status

    assert [await send(stale), await send(stale)] == [401, 401]
    assert await clock_events(client) == [-int(BEHIND.total_seconds())], "flagged at its first refusal, once"
    clock.advance(minutes=1)
    assert await send(None) == 200
    assert await send(int(clock.now.timestamp()) + 3600) == 401
    assert await clock_events(client) == [-int(BEHIND.total_seconds()), 3600], "a new spell after contact"
