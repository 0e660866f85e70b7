"""The audit log: who changed what, when and from where, logins and failed logins included, shown to the owner
and exported as CSV; it outlives what it names, and keeps no secrets."""

from __future__ import annotations

import csv
import io

from aiohttp.test_utils import TestClient

from collector import keys
from collector.services.technicians import Technicians
from tests.support.clock import Clock
from tests.support.collector import TECH
from tests.web.conftest import LOGIN_CSRF, NAME, critical_alert, log_in
from tests.web.test_incident_pages import flash, post


async def audit(client: TestClient) -> list[dict]:
    """The audit log through the API, oldest first."""
    response = await client.get("/api/v1/audit", headers=TECH)
    assert response.status == 200, await response.text()
    return list(reversed((await response.json())["entries"]))


async def test_every_change_and_login_attempt_is_recorded_with_who_when_and_where(
    client: TestClient, clock: Clock
) -> None:
    form = await client.get("/login")
    [token] = LOGIN_CSRF.findall(await form.text())
    wrong = await client.post("/login", data={"csrf": token, "name": NAME, "password": "not it"})
    assert wrong.status == 401
    csrf = await log_in(client)
    await critical_alert(client, clock)
    await client.get("/clients")  # reads are not changes
    await post(client, "/alerts/1/incident", csrf)
    await post(client, "/incidents/1/time", csrf, minutes="20", note="=HYPERLINK(\"http://evil\")")
    deleted = await post(client, "/incidents/1/time/1/delete", csrf)
    assert flash(deleted) == "Time entry 1 deleted."
    created = await client.post("/api/v1/channels", headers=TECH,
                                json={"name": "phone", "url": "ntfy://user:s3cret@ntfy.example.net/acme"})
    assert created.status == 201

    entries = await audit(client)
    assert [(e["actor"], e["action"], e["target"]) for e in entries] == [
        (NAME, "failed login", ""),
        (NAME, "login", ""),
        (NAME, "POST /settings/two-factor/setup", ""),  # the owner's first login sets two-factor up
        (NAME, "two-factor turned on", ""),
        (NAME, "POST /alerts/{alert_id}/incident", "alert_id=1"),
        (NAME, "POST /incidents/{incident_id}/time", "incident_id=1"),
        (NAME, "POST /incidents/{incident_id}/time/{entry_id}/delete", "incident_id=1, entry_id=1"),
        ("API token", "POST /api/v1/channels", ""),
    ]
    assert all(e["address"] == "127.0.0.1" and e["at"] for e in entries)
    assert entries[0]["status"] == 401 and entries[1]["detail"] == {}, "no password, not even a wrong one"
    assert entries[3]["detail"] == {}, "the code that turned two-factor on is not kept"
    assert entries[5]["detail"] == {"minutes": "20", "note": "=HYPERLINK(\"http://evil\")"}
    # The entry deleted is gone; what was done to it is not. The channel's URL (a password inside) is not kept.
    assert entries[7]["detail"] == {"name": "phone"}
    assert "s3cret" not in await (await client.get("/api/v1/audit", headers=TECH)).text()

    page = await (await client.get("/settings/audit")).text()
    assert "POST /incidents/{incident_id}/time/{entry_id}/delete" in page and "failed login" in page
    exported = await (await client.get("/api/v1/audit?format=csv", headers=TECH)).text()
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert len(rows) == 8
    [note] = [r["detail"] for r in rows if r["action"] == "POST /incidents/{incident_id}/time"]
    assert note == 'minutes=20; note==HYPERLINK("http://evil")'
    # A cell a spreadsheet would run as a formula is neutralised in the export.
    [line] = [r for r in rows if r["actor"] == "API token"]
    assert line["detail"] == "name=phone"
    assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row.values())


async def test_the_audit_log_is_the_owners(client: TestClient) -> None:
    await Technicians(client.app[keys.STORE], client.app[keys.CLOCK]).add("tom", "tom's password 1",
                                                                          role="technician")
    await log_in(client, "tom", "tom's password 1")
    assert (await client.get("/api/v1/audit")).status == 403
    page = await client.get("/settings/audit")
    assert page.status == 403
    nav = await (await client.get("/settings/silences")).text()
    assert "Audit log" not in nav
    logins = [(e["actor"], e["action"]) for e in await audit(client)]
    assert ("tom", "login") in logins
