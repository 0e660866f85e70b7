"""Recovery-key escrow on the dashboard: the client page's switch (who turned it on, when), the device page's
"recovery key escrowed" lines and its reveals, never the key."""

from __future__ import annotations

import html

from aiohttp.test_utils import TestClient

from collector import keys
from collector.api.wiring import escrow_key_path
from collector.services.escrow import Escrow, EscrowKey
from shared.escrow import public_of, seal
from tests.support.clock import Clock
from tests.support.collector import enrolled
from tests.web.conftest import NAME, log_in

PASSWORD = "-".join(["222222"] * 8)
PROTECTOR = "{4D3E9C2A-6B1F-4E8A-9C7D-2F5B8A1E0C34}"


async def test_the_client_page_turns_escrow_on_and_the_device_page_shows_escrowed_and_revealed_keys(
    client: TestClient, clock: Clock
) -> None:
    csrf = await log_in(client)
    agent = await enrolled(client, "LAPTOP-7")
    page = html.unescape(await (await client.get("/clients/Acme Tooling")).text())
    assert "Escrow is <strong>off</strong>." in page

    response = await client.post("/clients/Acme Tooling/escrow", data={"csrf": csrf, "enabled": "true"})
    page = html.unescape(await response.text())
    assert response.status == 200 and "Recovery-key escrow is on" in page
    state = page.split('<p class="escrow-state">')[1].split("</p>")[0]
    assert state.startswith("Escrow is <strong>on</strong>") and f"(turned on by {NAME}" in state, state

    store = client.app[keys.STORE]
    key = EscrowKey(escrow_key_path(client.app[keys.SETTINGS]))
    async with store.transaction() as tx:
        sealed = seal(public_of(key.private()), agent.agent_id, "C:", PROTECTOR, PASSWORD)
        await tx.save_escrowed_keys(agent.agent_id, [("C:", PROTECTOR, sealed.model_dump_json())], clock.now)
    await Escrow(store, clock, key).reveal(agent.agent_id, "C:", NAME)

    page = html.unescape(await (await client.get(f"/devices/{agent.agent_id}")).text())
    section = page.split('<h2 id="escrow">')[1].split("</section>")[0]
    assert "Recovery key of C: escrowed" in section and PROTECTOR in section
    assert f"Recovery key of C: revealed to {NAME}" in section
    assert "222222" not in page, "the page never shows the key"
