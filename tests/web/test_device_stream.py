"""The device page shows what the collector knows of the agent's report stream: outbox resets and requests
refused for the PC's clock (issue 23)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.support.agents import REPORTS
from tests.support.clock import Clock
from tests.support.collector import enrolled, store_of
from tests.web.conftest import log_in


async def test_the_device_page_shows_each_reset_of_the_agents_outbox(client: TestClient) -> None:
    await log_in(client)
    device = await enrolled(client)
    for epoch in ("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"):
        body = device.body({**device.envelope(seq=1), "epoch": epoch})
        assert (await client.post(REPORTS, data=body, headers=device.headers(body))).status == 200
    page = await (await client.get(f"/devices/{device.agent_id}")).text()
    assert "outbox was started anew 1 time(s)" in page
    assert "<code>bbbbbbbbbbbbbbbb</code> from report 1" in page


async def test_the_device_page_shows_requests_refused_for_the_pcs_clock(client: TestClient, clock: Clock) -> None:
    await log_in(client)
    device = await enrolled(client)
    async with store_of(client).transaction() as tx:
        await tx.note_skew(device.agent_id, clock.now, -1814400)
        await tx.note_skew(device.agent_id, clock.now, -1814400)
    page = await (await client.get(f"/devices/{device.agent_id}")).text()
    assert "2 request(s) refused because the PC's clock was off" in page
    assert "(-1814400 s from the collector's clock)" in page
