"""The dashboard's encryption column and the device page's volume table, from reports through the collector."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from shared.encryption import Encryption, Volume
from shared.signals import SIGNALS
from tests.support.agents import REPORTS, heartbeat
from tests.support.clock import Clock
from tests.support.collector import enrolled
from tests.web.conftest import log_in


async def test_the_device_page_lists_the_volumes_and_the_clients_page_the_warning(
    client: TestClient, clock: Clock
) -> None:
    await log_in(client)
    agent = await enrolled(client, "LAPTOP-03")
    volumes = [
        Volume(name="C:", mount_point="C:", system=True, state="suspended", method="XtsAes256",
               percent_encrypted=100, recovery_protector=False),
        Volume(name="D:", mount_point="D:", system=False, state="not_encrypted", percent_encrypted=0),
    ]
    beat = heartbeat("LAPTOP-03", clock.now).model_copy(update={"device_class": "laptop"})
    body = agent.body(agent.envelope([beat, Encryption(collected_at=clock.now, mechanism="bitlocker",
                                                       volumes=volumes, errors=["D: has no key protector"])]))
    assert (await client.post(REPORTS, data=body, headers=agent.headers(body))).status == 200

    page = await (await client.get(f"/devices/{agent.agent_id}")).text()
    section = page.split('<h2 id="encryption">')[1].split("</section>")[0]
    assert section.startswith("Disk encryption, last report (bitlocker)")
    cells = [re.findall(r"<td>([^<]*)</td>", row) for row in section.split("<tr")[2:]]
    assert cells == [["C:", "C:", "yes", "suspended", "XtsAes256", "100 %", "none"],
                     ["D:", "D:", "", "not encrypted", "", "0 %", ""]]
    assert "D: has no key protector" in section

    clients = await (await client.get("/clients")).text()
    row = next(r for r in clients.split("<tr")[2:] if "LAPTOP-03" in r)
    headings = [s.label for s in SIGNALS if s.at_a_glance]
    assert re.findall(r"badge sev-(\w+)", row)[headings.index("Encryption")] == "warning", "the Encryption column"
