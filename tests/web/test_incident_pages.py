"""Incident and billing pages through their forms: a contract covers time, an override bills it anyway, parts
and notes are kept, a refusal is shown, and every change reaches the live feed as the API's would."""

from __future__ import annotations

import re
from datetime import date, timedelta

from aiohttp.test_utils import TestClient

from collector import keys
from collector.services.incidents import NEEDS_REASON
from tests.support.clock import Clock
from tests.support.collector import TECH
from tests.web.conftest import NAME, critical_alert, log_in

FLASH = re.compile(r'<p class="flash" role="status">([^<]*)</p>')


async def post(test_client: TestClient, path: str, csrf: str, **fields: str) -> str:
    """Send a form and follow its redirect; returns the page it lands on."""
    response = await test_client.post(path, data={"csrf": csrf, **fields})
    assert response.status == 200, await response.text()
    return await response.text()


def flash(html: str) -> str:
    [message] = FLASH.findall(html)
    return message


def rows(html: str, table: str) -> list[str]:
    """The text of each body row of a table, tags and folded-away forms removed, spaces squeezed."""
    body = re.sub(r"<details>.*?</details>", "", html.split(f'id="{table}"')[1].split("</tbody>")[0], flags=re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", "<tr" + row).split()) for row in body.split("<tr")[2:]]


async def feed_types(client: TestClient) -> list[str]:
    async with client.app[keys.STORE].transaction() as tx:
        events = await tx.feed_since(0, 1000)
    billing = ("rates.", "contract.", "incident.", "time.", "part.")
    return [event.type for event in events if event.type.startswith(billing)]


async def test_it_bills_time_a_contract_covers_at_nothing_and_an_override_at_break_fix_rates(
    client: TestClient, clock: Clock
) -> None:
    csrf = await log_in(client)
    await critical_alert(client, clock)
    await post(client, "/billing/rates", csrf, effective_from="2026-11-01", hourly_rate="80.00")
    saved = await post(client, "/billing/contracts", csrf, client="Acme Tooling", start="2026-11-01",
                       term_months="12", workstation_rate="30.00", server_rate="90.00", covers_remote="true")
    assert flash(saved) == "Contract for Acme Tooling saved, in force from 2026-11-01."

    page = await post(client, "/alerts/1/incident", csrf)
    assert flash(page) == "Incident 1 opened."
    again = await post(client, "/alerts/1/incident", csrf)
    assert flash(again) == "This alert belongs to incident 1."
    assert 'href="/incidents/1">incident 1</a>' in await (await client.get("/alerts/1")).text()

    await post(client, "/incidents/1/time", csrf, minutes="30", note="freed space")
    await post(client, "/incidents/1/time", csrf, minutes="20", override="billable",
               override_reason="the client asked for extra work")
    refused = await post(client, "/incidents/1/time", csrf, minutes="20", override="billable")
    assert flash(refused) == "Not done: billing it differently than the contract says needs a reason"
    await post(client, "/incidents/1/parts", csrf, description="USB drive", cost="8.00", price="12.50",
               quantity="2")
    await post(client, "/incidents/1/notes", csrf, text="Old installers removed.")
    closed = await post(client, "/incidents/1/close", csrf, resolution="space freed")
    assert flash(closed) == "Incident 1 closed."

    shown = await (await client.get("/incidents/1")).text()
    assert rows(shown, "time-entries") == [
        f"{NAME} 2026-11-23 08:30 UTC 30 remote covered EUR 0.00 freed space",
        f"{NAME} 2026-11-23 08:40 UTC 20 remote billable (the client asked for extra work) EUR 80.00 —",
    ]
    assert "USB drive" in shown and "Old installers removed." in shown and "space freed" in shown

    # The alert rule's client sentence is the first title; the technician may give it another.
    assert "<h1 id=\"incident-title\">The drive C: on RECEPTION-01 was running out of space.</h1>" in shown
    retitled = await post(client, "/incidents/1/title", csrf, title="  Disk C: full on the reception PC ")
    assert flash(retitled) == "Retitled: Disk C: full on the reception PC."
    month = await (await client.get("/billing/clients/Acme%20Tooling?month=2026-11")).text()
    contract, time, parts = rows(month, "invoice-lines")
    assert contract == "contract Workstation RECEPTION-01, 8/30 days 0.2667 EUR 30.00 EUR 8.00"
    assert time == ("time Disk C: full on the reception PC, 23 Nov 2026, 20 min worked, 60 min billed "
                    "1 EUR 80.00 EUR 80.00")
    assert parts.startswith("parts USB drive") and parts.endswith("2 EUR 12.50 EUR 25.00")
    assert '<td class="num" id="invoice-total">EUR 113.00</td>' in month
    assert "begins with &#39; instead" in month  # the downloads say how formula cells are neutralised
    listed = await (await client.get("/incidents")).text()
    assert 'class="closed" data-incident-id="1"' in listed and "50 min" in listed
    overview = await (await client.get("/billing")).text()
    assert 'href="/billing/clients/Acme%20Tooling?month=2026-11">2026-11 (this month)' in overview
    settings = await (await client.get("/billing/contracts?client=Acme%20Tooling")).text()
    assert rows(settings, "rates") == ["everyone 2026-11-01 to open-ended 80.00 60 min 15 min 1.5 0 min 0 min"]
    assert 'name="workstation_rate" inputmode="decimal" value="30.00"' in settings
    assert await feed_types(client) == ["rates.added", "contract.added", "incident.opened", "time.added",
                                        "time.added", "part.added", "incident.noted", "incident.closed",
                                        "incident.retitled"]


async def test_it_shows_why_time_cannot_be_priced_and_refuses_a_second_timer(
    client: TestClient, clock: Clock
) -> None:
    csrf = await log_in(client)
    await critical_alert(client, clock)
    await post(client, "/alerts/1/incident", csrf)
    await post(client, "/incidents/1/timer/start", csrf, on_site="true")
    twice = await post(client, "/incidents/1/timer/start", csrf)
    assert flash(twice) == f"Not done: {NAME}&#39;s timer on incident 1 is running already"
    clock.advance(minutes=12, seconds=5)
    stopped = await post(client, "/incidents/1/timer/stop", csrf)
    assert flash(stopped) == "Timer stopped: 13 min recorded."
    shown = await (await client.get("/incidents/1")).text()
    assert "cannot price 2026-11: no break/fix rates in force on 2026-11-23" in shown
    assert rows(shown, "time-entries") == [f"{NAME} 2026-11-23 09:00 UTC 13 on site billable — —"]
    month = await client.get("/billing/clients/Acme%20Tooling?month=2026-11")
    assert "no break/fix rates in force" in await month.text()
    missing = await client.get("/billing/clients/Nobody")
    assert missing.status == 404
    bad = await client.post("/billing/contracts",
                            data={"csrf": csrf, "client": "Acme Tooling", "workstation_rate": "30.00"})
    assert bad.status == 422
    assert "a client&#39;s first contract needs start, term_months, server_rate" in await bad.text()
    assert await feed_types(client) == ["incident.opened", "time.started", "time.stopped"]


async def test_an_override_needs_a_reason_and_a_reason_without_an_override_is_not_kept_on_either_path(
    client: TestClient, clock: Clock
) -> None:
    csrf = await log_in(client)
    await critical_alert(client, clock)
    await post(client, "/alerts/1/incident", csrf)
    refused = await post(client, "/incidents/1/time", csrf, minutes="20", override="billable")
    api = await client.post("/api/v1/incidents/1/time", headers=TECH,
                            json={"minutes": 20, "override": "billable", "override_reason": " "})
    assert api.status == 422
    assert flash(refused) == f"Not done: {NEEDS_REASON}"
    assert (await api.json())["problems"] == [{"field": "override_reason", "message": NEEDS_REASON}]

    await post(client, "/incidents/1/time", csrf, minutes="10", override_reason="a stray reason")
    by_api = await client.post("/api/v1/incidents/1/time", headers=TECH,
                               json={"minutes": 10, "override_reason": "a stray reason"})
    assert by_api.status == 201 and (await by_api.json())["override_reason"] is None
    async with client.app[keys.STORE].transaction() as tx:
        entries = await tx.time_entries()
    assert [(e.minutes, e.override, e.override_reason) for e in entries] == [(10, None, None), (10, None, None)]



async def test_a_time_entry_is_corrected_or_deleted_and_the_feed_keeps_what_it_was(
    client: TestClient, clock: Clock
) -> None:
    csrf = await log_in(client)
    await critical_alert(client, clock)
    await post(client, "/billing/rates", csrf, effective_from="2026-11-01", hourly_rate="80.00")
    await post(client, "/alerts/1/incident", csrf)
    await post(client, "/incidents/1/time", csrf, minutes="20", note="first look")
    await post(client, "/incidents/1/time", csrf, minutes="5", note="typed twice")
    # One visit: 20 + 5 = 25 min -> the 60-minute minimum, 80.00, shared by minutes: 64.00 + 16.00.
    shown = await (await client.get("/incidents/1")).text()
    assert rows(shown, "time-entries") == [
        f"{NAME} 2026-11-23 08:40 UTC 20 remote billable EUR 64.00 first look",
        f"{NAME} 2026-11-23 08:55 UTC 5 remote billable EUR 16.00 typed twice",
    ]
    corrected = await post(client, "/incidents/1/time/1", csrf, minutes="95", on_site="true", note="disk swapped")
    assert flash(corrected) == "Time entry 1 corrected."
    deleted = await post(client, "/incidents/1/time/2/delete", csrf)
    assert flash(deleted) == "Time entry 2 deleted."
    # 95 min on site -> 105 min (15-minute increments) x 80.00 = 140.00
    shown = await (await client.get("/incidents/1")).text()
    assert rows(shown, "time-entries") == [f"{NAME} 2026-11-23 08:40 UTC 95 on site billable EUR 140.00 disk swapped"]
    gone = await client.post("/incidents/1/time/2/delete", data={"csrf": csrf})
    assert "Not done: there is no time entry 2" in await gone.text()
    async with client.app[keys.STORE].read() as tx:
        events = {event.type: event.data for event in await tx.feed_since(0, 1000)}
    assert (events["time.edited"]["was"]["minutes"], events["time.edited"]["minutes"]) == (20, 95)
    assert (events["time.edited"]["by"], events["time.deleted"]["by"]) == (NAME, NAME)
    assert events["time.deleted"]["note"] == "typed twice"
    # The API corrects and deletes alike, and a running timer must be stopped first.
    await post(client, "/incidents/1/timer/start", csrf)
    [running] = [e for e in (await (await client.get("/api/v1/incidents/1", headers=TECH)).json())["time"]
                 if e["minutes"] is None]
    refused = await client.post(f"/api/v1/time/{running['entry_id']}", headers=TECH, json={"minutes": 5})
    assert refused.status == 409
    assert "running timer" in (await refused.json())["error"]
    api = await client.delete("/api/v1/time/1?technician=sam", headers=TECH)
    assert (api.status, (await api.json())["minutes"]) == (200, 95)
    # A part recorded in error is deleted (and added again to correct it).
    await post(client, "/incidents/1/parts", csrf, description="USB drive", cost="8.00", price="12.50")
    gone = await post(client, "/incidents/1/parts/1/delete", csrf)
    assert flash(gone) == "Part deleted: USB drive."
    assert "No parts fitted." in await (await client.get("/incidents/1")).text()
    assert (await client.delete("/api/v1/parts/1", headers=TECH)).status == 404


async def test_the_time_saved_by_preparation_is_recorded_corrected_and_removed_on_the_incident_page(
    client: TestClient, clock: Clock
) -> None:
    csrf = await log_in(client)
    await critical_alert(client, clock)
    await post(client, "/alerts/1/incident", csrf)
    await post(client, "/incidents/1/time", csrf, minutes="70")
    refused = await post(client, "/incidents/1/time-saved", csrf, preparation="other", minutes_without="300")
    assert flash(refused).startswith("Not done: ") and "say what the preparation was" in flash(refused)
    page = await post(client, "/incidents/1/time-saved", csrf, preparation="backup_image", minutes_without="300")
    assert flash(page) == "Time saved recorded: 300 min without the preparation."
    shown = " ".join(re.sub(r"<[^>]+>", " ", page.split('id="time-saved"')[1].split("</p>")[0]).split())
    assert shown.startswith(">Without backup image: about 300 min, so 230 min saved (recorded by")
    assert '<option value="backup_image" selected>' in page
    corrected = await post(client, "/incidents/1/time-saved", csrf, preparation="other", minutes_without="240",
                           detail="the spare PC kept set up")
    assert "Without the spare PC kept set up: about 240 min, so 170 min saved" in corrected
    removed = await post(client, "/incidents/1/time-saved/delete", csrf)
    assert flash(removed) == "Time saved removed." and 'id="time-saved"' not in removed
    assert (await feed_types(client))[-3:] == ["incident.time_saved", "incident.time_saved",
                                               "incident.time_saved_cleared"]


async def test_the_clients_billing_page_shows_the_report_schedule_and_a_failed_send_with_its_error(
    client: TestClient, clock: Clock
) -> None:
    await log_in(client)
    await critical_alert(client, clock)
    page = await (await client.get("/billing/clients/Acme%20Tooling?month=2026-11")).text()
    assert "Not e-mailed." in page and 'id="mail-sends"' not in page
    added = await client.post("/api/v1/channels", headers=TECH,
                              json={"name": "mail", "url": "mailto://127.0.0.1:1?from=it@example.com"})
    assert added.status == 201, await added.text()
    schedule = {"frequency": "monthly", "day": 3, "recipients": ["owner@acme.example"]}
    assert (await client.put("/api/v1/clients/Acme%20Tooling/report-schedule", json=schedule,
                             headers=TECH)).status == 200
    async with client.app[keys.STORE].transaction() as tx:
        [row] = await tx.report_schedules()
        claim = await tx.claim_report_send(row.client_id, date(2026, 10, 1), date(2026, 10, 31),
                                           ["owner@acme.example"], clock.now, clock.now)
        assert claim is not None
        await tx.finish_report_send(row.client_id, claim.first_day, clock.now, "Connection refused",
                                    clock.now + timedelta(minutes=5))
    page = await (await client.get("/billing/clients/Acme%20Tooling?month=2026-11")).text()
    assert "The monthly report goes out on day 3 to owner@acme.example." in page
    assert rows(page, "mail-sends") == ["2026-10-01 to 2026-10-31 failed 1 2026-11-23 09:05 UTC Connection refused"]
