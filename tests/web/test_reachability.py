"""The site's network devices page: declared through its form, each device's state from every PC with latency
and loss, and removed again; the clients page links to it."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from shared.reachability import ProbeResult, Reachability, Target
from tests.support.agents import REPORTS
from tests.support.clock import Clock
from tests.support.collector import enrolled
from tests.web.conftest import log_in

PAGE = "/sites/Acme%20Tooling/Main%20office/network-devices"


async def test_a_device_is_declared_seen_from_each_pc_and_removed_from_the_page(
    client: TestClient, clock: Clock
) -> None:
    csrf = await log_in(client)
    pcs = [await enrolled(client, name) for name in ("RECEPTION-PC", "OFFICE-PC")]
    assert PAGE in await (await client.get("/clients")).text()

    refused = await client.post(PAGE, data={"csrf": csrf, "name": "Recorder", "address": "192.0.2.20",
                                            "kind": "camera_recorder", "probe": "tcp"})
    text = await refused.text()
    assert "Not added:" in text and "a tcp probe needs a port" in text
    added = await client.post(PAGE, data={"csrf": csrf, "name": "Recorder", "address": "192.0.2.20",
                                          "kind": "camera_recorder", "probe": "tcp", "port": "554", "url": ""})
    assert "Recorder is probed by the site" in await added.text()
    assert "Not probed yet" in await (await client.get(PAGE)).text()

    recorder = Target(name="Recorder", address="192.0.2.20", kind="camera_recorder", probe="tcp", port=554)
    for minutes, latencies in ((0, (1.2, None)), (5, (1.4, 2.5))):
        clock.advance(minutes=minutes)
        for pc, latency in zip(pcs, latencies, strict=True):
            result = ProbeResult(target=recorder, how="tcp:554", state="up" if latency else "down", sent=3,
                                 received=3 if latency else 0, latency_ms=latency,
                                 error=None if latency else "no answer on tcp port 554 within 2 s")
            body = pc.body(pc.envelope([Reachability(collected_at=clock.now, config_version=1, results=[result])]))
            assert (await client.post(REPORTS, data=body, headers=pc.headers(body))).status == 200

    page = await (await client.get(PAGE)).text()
    section = page.split('<table class="reachability">')[1].split("</table>")[0]
    rows = [re.sub(r"<[^>]+>", "|", row) for row in section.split("<tr")[2:]]
    assert ["OFFICE-PC" in rows[0], "1.4 ms" in rows[1], "0 %" in rows[1]] == [True, True, True]
    assert "2.5 ms" in rows[0] and "RECEPTION-PC" in rows[1]
    assert "Latency per PC (ms)" in page and "<svg" in page
    assert "Every report of the last day (4)" in page and "no answer on tcp port 554" not in section

    removed = await client.post(f"{PAGE}/Recorder/remove", data={"csrf": csrf})
    assert "Recorder is no longer probed." in await removed.text()
    assert "No devices declared for this site yet." in await (await client.get(PAGE)).text()
