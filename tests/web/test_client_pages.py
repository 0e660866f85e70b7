"""The dashboard's client page (details, contacts, sites, archive, demo mark) and the push backup jobs page."""

from __future__ import annotations

import html
import re

from aiohttp.test_utils import TestClient

from collector import keys, push
from collector.services.clients import Clients
from tests.support.clock import Clock
from tests.support.collector import TECH, enrolled
from tests.web.conftest import log_in

PUSH_URL = re.compile(r'<code class="token" id="push-url">([^<]+)</code>')


async def post(client: TestClient, path: str, csrf: str, **fields: str) -> str:
    """Send a form, follow its redirect, and return the page it lands on."""
    response = await client.post(path, data={"csrf": csrf, **fields})
    assert response.status == 200, (path, response.status)
    return html.unescape(await response.text())


async def test_a_client_is_created_and_kept_on_its_own_page(client: TestClient, clock: Clock) -> None:
    csrf = await log_in(client)
    page = await post(client, "/clients", csrf, name="  Acme   Tooling ")
    assert "<h1>Acme Tooling" in page and "Client Acme Tooling created." in page
    assert "already" in await post(client, "/clients", csrf, name="Acme Tooling")
    page = await post(client, "/clients/Acme%20Tooling/details", csrf, name="Acme Tooling",
                      billing_email="accounts", billing_address="", notes="")
    assert "Not saved: billing_email" in page and "not an e-mail address" in page
    page = await post(client, "/clients/Acme%20Tooling/details", csrf, name="Acme", billing_email="a@acme.example",
                      billing_address="Hauptstr. 1\r\n10115 Berlin", notes="Key at the front desk")
    assert "<h1>Acme" in page and "Hauptstr. 1\n10115 Berlin</textarea>" in page
    page = await post(client, "/clients/Acme/contacts", csrf, name="Eva Weber", email="eva@acme.example",
                      phone="+49 30 1234", role="owner", billing="true")
    assert 'href="mailto:eva@acme.example"' in page and "Contact added." in page
    page = await post(client, "/clients/Acme/contacts", csrf, name="Jan Koch", role="bookkeeper")
    jan = (await Clients(client.app[keys.STORE], clock).get("Acme")).contacts[1]
    page = await post(client, f"/clients/Acme/contacts/{jan.contact_id}/billing", csrf)
    assert "go to the new billing contact" in page
    page = await post(client, "/clients/Acme/sites", csrf, name="Main office")
    page = await post(client, "/clients/Acme/sites/Main%20office/rename", csrf, name="Head office")
    assert "<strong>Head office</strong>" in page
    page = await post(client, "/clients/Acme/demo", csrf, demo="true")
    assert "demo, not billed" in page
    billing = await (await client.get("/billing")).text()
    assert "Acme" not in billing, "the demo client is kept out of billing"
    await post(client, "/clients/Acme/archive", csrf)
    listing = await (await client.get("/clients")).text()
    assert "Archived clients (1)" in listing and 'href="/clients/Acme"' in listing
    row = await Clients(client.app[keys.STORE], clock).get("Acme")
    assert row.archived_at is not None and row.billing_contact is not None and row.billing_contact.name == "Jan Koch"


async def test_a_push_job_is_created_its_url_shown_once_and_its_pings_listed(client: TestClient) -> None:
    agent = await enrolled(client, "NAS-01")
    csrf = await log_in(client)
    made = await client.post("/backups", data={"csrf": csrf, "device": agent.agent_id, "name": "nas-image",
                                               "schedule": "weekly", "grace_hours": "6"})
    assert made.status == 201
    [url] = PUSH_URL.findall(await made.text())
    path = url[url.index("/api/v1/push/"):]
    assert (await client.post(f"{path}/start")).status == 200
    assert (await client.post(f"{path}/fail", data=b"restic: disk full on NAS")).status == 200
    page = html.unescape(await (await client.get("/backups?client=Acme%20Tooling")).text())
    assert "nas-image" in page and "NAS-01" in page and "6 h grace" in page
    assert ">failed</span>" in page and "restic: disk full on NAS" in page and ">started</span>" in page
    assert url not in page, "the URL is shown only when the job is made"
    again = await client.post("/backups", data={"csrf": csrf, "device": agent.agent_id, "name": "nas-image",
                                                "schedule": "weekly"})
    assert again.status == 409 and "already has a push job named" in html.unescape(await again.text())
    bad = await client.post("/backups", data={"csrf": csrf, "device": agent.agent_id, "name": "x",
                                              "schedule": "every tuesday"})
    assert bad.status == 422
    assert (await client.get("/backups?client=Nobody")).status == 404


async def test_a_push_job_is_paused_resumed_and_deleted_after_a_confirmation_step(
    client: TestClient, clock: Clock
) -> None:
    agent = await enrolled(client, "NAS-01")
    csrf = await log_in(client)
    made = await client.post("/backups", data={"csrf": csrf, "device": agent.agent_id, "name": "nas-image",
                                               "schedule": "daily"})
    [url] = PUSH_URL.findall(await made.text())
    ping = url[url.index("/api/v1/push/"):]
    [job_id] = re.findall(r'href="/backups/(\d+)/pause"', await (await client.get("/backups")).text())

    async def backup_alerts() -> list[str]:
        listed = (await (await client.get("/api/v1/alerts?state=all", headers=TECH)).json())["alerts"]
        return sorted(a["state"] for a in listed if a["rule"] == "backup_results")

    assert (await client.post(f"{ping}/fail", data=b"restic: disk full")).status == 200
    assert await backup_alerts() == ["open"]

    # Each step first says what it does; only the confirmation's button does it.
    confirm = html.unescape(await (await client.get(f"/backups/{job_id}/pause")).text())
    assert "Pause push job nas-image?" in confirm and "no alert when it fails or is late" in confirm
    assert f'action="/backups/{job_id}/pause"' in confirm
    assert await backup_alerts() == ["open"]
    page = await post(client, f"/backups/{job_id}/pause", csrf)
    assert "Push job nas-image paused." in page and ">paused</span>" in page and "Resume…" in page
    assert await backup_alerts() == ["resolved"]
    # Paused: a failed run is kept, not judged, and the sweep leaves it alone however late it is.
    paused = await client.post(f"{ping}/fail", data=b"restic: disk full")
    assert (await paused.json())["status"] == "paused"
    clock.advance(days=3)
    await push.sweep(client.app[keys.STORE], client.app[keys.SETTINGS], clock.now)
    assert await backup_alerts() == ["resolved"]
    assert "Not paused: push job nas-image is paused already" in await post(client, f"/backups/{job_id}/pause", csrf)

    page = await post(client, f"/backups/{job_id}/resume", csrf)
    assert "Push job nas-image resumed." in page and ">paused</span>" not in page
    await push.sweep(client.app[keys.STORE], client.app[keys.SETTINGS], clock.now)
    assert await backup_alerts() == ["open", "resolved"]  # judged again: its last run failed

    confirm = html.unescape(await (await client.get(f"/backups/{job_id}/delete")).text())
    assert "Its URL stops working" in confirm and "This cannot be undone" in confirm
    page = await post(client, f"/backups/{job_id}/delete", csrf)
    assert "Push job nas-image deleted." in page and "No push backup jobs yet." in page
    assert await backup_alerts() == ["resolved", "resolved"]
    assert (await client.post(ping)).status == 404
    assert (await client.get(f"/backups/{job_id}/delete")).status == 404
    assert "Not deleted: there is no push job" in await post(client, f"/backups/{job_id}/delete", csrf)
    async with client.app[keys.STORE].read() as tx:
        recorded = [(e.type, e.data["job"]) for e in await tx.feed_since(0, 1000) if e.type.startswith("push_job.")]
    assert recorded == [("push_job.paused", "nas-image"), ("push_job.resumed", "nas-image"),
                        ("push_job.deleted", "nas-image")]
