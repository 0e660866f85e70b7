"""The site's network devices page: declared through its form, each device's state from every PC with latency
and loss, and removed again; the clients page links to it."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from shared.printer_ip_conflict import NeighbourEntry, PrinterIpConflict
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


async def test_a_camera_in_the_neighbour_tables_is_offered_and_adopted_with_one_click(
    client: TestClient, clock: Clock
) -> None:
    csrf = await log_in(client)
    agent = await enrolled(client, "RECEPTION-PC")
    neighbours = [NeighbourEntry(ip="192.0.2.31", mac="44:19:b6:12:34:56"),  # Hikvision
                  NeighbourEntry(ip="192.0.2.40", mac="00:11:32:aa:bb:cc"),  # Synology
                  NeighbourEntry(ip="192.0.2.77", mac="02:11:22:33:44:55")]  # a laptop: no known maker
    body = agent.body(agent.envelope([PrinterIpConflict(collected_at=clock.now, neighbours=neighbours)]))
    assert (await client.post(REPORTS, data=body, headers=agent.headers(body))).status == 200

    page = await (await client.get(PAGE)).text()
    offered = page.split('<table class="candidates">')[1].split("</table>")[0]
    assert re.findall(r'<th scope="row" data-label="Address">([^<]+)</th>', offered) == ["192.0.2.31", "192.0.2.40"]
    assert "Adopt as camera" in offered and "Adopt as nas" in offered and "RECEPTION-PC" in offered
    adopted = await client.post(PAGE, data={"csrf": csrf, "name": "Hikvision 192.0.2.31", "address": "192.0.2.31",
                                            "kind": "camera", "probe": "icmp"})
    assert "Hikvision 192.0.2.31 is probed by the site" in await adopted.text()
    page = await (await client.get(PAGE)).text()
    offered = page.split('<table class="candidates">')[1].split("</table>")[0]
    assert "192.0.2.31" not in offered and "192.0.2.40" in offered
    assert 'action="/sites/Acme%20Tooling/Main%20office/network-devices/candidates/00%3A11%3A32%3Aaa%3Abb%3Acc/' \
           'dismiss"' in offered
    dismissed = await client.post(f"{PAGE}/candidates/00:11:32:aa:bb:cc/dismiss", data={"csrf": csrf})
    page = await dismissed.text()
    assert "Synology 192.0.2.40 is no longer offered." in page and '<table class="candidates">' not in page
    again = await client.post(f"{PAGE}/candidates/00:11:32:aa:bb:cc/dismiss", data={"csrf": csrf})
    assert "Not dismissed: &#39;00:11:32:aa:bb:cc&#39; is not among the devices" in await again.text()
