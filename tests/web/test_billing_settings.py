"""Billing settings and clients' tax through the dashboard, the API and the exports: the invoice a client
reads carries the tax (or the exemption's reason), and Xero is never told "Tax Exempt" for a taxed one."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient

from tests.support.clock import Clock
from tests.support.collector import TECH
from tests.tooling import requires_tool
from tests.web.conftest import critical_alert, log_in
from tests.web.test_incident_pages import flash, post, rows

MONTH = "/billing/clients/Acme%20Tooling?month=2026-11"


def pdf_text(pdf: Path) -> str:
    """The PDF's text as poppler's pdftotext reads it."""
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


async def test_settings_and_a_clients_tax_reach_the_invoice_and_its_exports(client: TestClient, clock: Clock) -> None:
    csrf = await log_in(client)
    await critical_alert(client, clock)
    await post(client, "/billing/rates", csrf, effective_from="2026-11-01", hourly_rate="80.00")
    await post(client, "/alerts/1/incident", csrf)
    await post(client, "/incidents/1/time", csrf, minutes="50")
    page = await (await client.get("/billing/settings")).text()
    assert 'name="currency" pattern="[A-Z]{3}" maxlength="3" required value="EUR"' in page
    assert rows(page, "client-tax")[0].startswith("Acme Tooling VAT 0%")

    saved = await post(client, "/billing/settings", csrf, currency="EUR", timezone="Europe/Berlin",
                       business_name="Kleinert IT", business_address="Hafenstr. 4\n20457 Hamburg",
                       tax_id="DE123456789", tax_label="MwSt", tax_rate="19", payment_terms_days="10",
                       bank_details="", xero_account_code="8400", xero_tax_type="")
    assert flash(saved) == "Billing settings saved."
    # 50 min -> 60 min x 80.00 = 80.00; MwSt 19 % = 15.20; total 95.20
    month = await (await client.get(MONTH)).text()
    assert '<td class="num" id="invoice-tax">EUR 15.20</td>' in month and "MwSt 19%" in month
    assert '<td class="num" id="invoice-total">EUR 95.20</td>' in month
    shown = await (await client.get("/api/v1/billing/settings", headers=TECH)).json()
    assert (shown["business_name"], shown["tax_rate"], shown["payment_terms_days"]) == ("Kleinert IT", "19", 10)

    # Xero must not book a taxed invoice as exempt: without a tax type the export says what to set.
    xero = "/api/v1/clients/Acme%20Tooling/invoice?month=2026-11&format=xero"
    refused = await client.get(xero, headers=TECH)
    assert refused.status == 422
    assert "name its Xero tax type in the billing settings" in (await refused.json())["problems"][0]["message"]
    await client.post("/api/v1/billing/settings", headers=TECH, json={"xero_tax_type": "19% Umsatzsteuer"})
    booked = await (await client.get(xero, headers=TECH)).text()
    assert ",8400,19% Umsatzsteuer," in booked

    exempt = await post(client, "/billing/clients/Acme%20Tooling/tax", csrf, exemption="Reverse charge (§13b UStG)")
    assert flash(exempt) == "Tax for Acme Tooling saved."
    month = await (await client.get(MONTH)).text()
    assert '<td class="num" id="invoice-tax">EUR 0.00</td>' in month and "Reverse charge (§13b UStG)" in month
    assert ",8400,Tax Exempt," in await (await client.get(xero, headers=TECH)).text()
    both = await client.post("/api/v1/clients/Acme%20Tooling/tax", headers=TECH,
                             json={"tax_rate": "7", "exemption": "charity"})
    assert both.status == 422
    bad = await client.post("/billing/settings", data={"csrf": csrf, "tax_rate": "120", "timezone": "Mars/Olympus"})
    assert bad.status == 422
    text = await bad.text()
    assert "unknown time zone" in text and "tax_rate" in text


@requires_tool("pdftotext")
async def test_an_issued_invoice_is_numbered_locked_and_reissued_only_after_it_is_voided(
    client: TestClient, clock: Clock, tmp_path: Path
) -> None:
    csrf = await log_in(client)
    await critical_alert(client, clock)
    await post(client, "/billing/rates", csrf, effective_from="2026-11-01", hourly_rate="80.00")
    await post(client, "/billing/settings", csrf, currency="EUR", timezone="UTC", business_name="Kleinert IT",
               business_address="Hafenstr. 4", tax_id="DE123456789", tax_label="MwSt", tax_rate="19",
               payment_terms_days="10", bank_details="IBAN DE02 1203 0000 0000 2020 51", invoice_prefix="KIT-",
               xero_account_code="8400", xero_tax_type="")
    await post(client, "/alerts/1/incident", csrf)
    await post(client, "/incidents/1/title", csrf, title="Disk C: full on the reception PC")
    await post(client, "/incidents/1/time", csrf, minutes="50")
    clock.advance(days=8)  # 1 December: November is invoiced

    issued = await post(client, "/billing/clients/Acme%20Tooling/invoices", csrf, month="2026-11")
    assert flash(issued) == "Invoice KIT-00001 issued, due 2026-12-11."
    again = await post(client, "/billing/clients/Acme%20Tooling/invoices", csrf, month="2026-11")
    assert flash(again) == ("Not issued: Acme Tooling&#39;s invoice for 2026-11 is issued already as KIT-00001: "
                            "void it to issue a new one")
    # The invoice as issued: seller, buyer, the incident's title and day, 19 % on the subtotal, where to pay.
    pdf = tmp_path / "KIT-00001.pdf"
    download = await client.get("/billing/invoices/KIT-00001?format=pdf")
    assert (download.status, download.headers["Content-Type"]) == (200, "application/pdf")
    pdf.write_bytes(await download.read())
    text = " ".join(pdf_text(pdf).split())
    for expected in ("Kleinert IT", "Tax number: DE123456789", "Bill to Acme Tooling", "Invoice KIT-00001",
                     "Disk C: full on the reception PC, 23 Nov 2026, 50 min worked",
                     "Subtotal EUR 80.00", "MwSt 19% EUR 15.20", "Total EUR 95.20", "Due 2026-12-11",
                     "quoting KIT-00001. IBAN DE02 1203 0000 0000 2020 51"):
        assert expected in text, text

    # Issued means locked: the time it bills cannot change, and changed rates do not change it.
    locked = await post(client, "/incidents/1/time/1", csrf, minutes="20")
    assert flash(locked) == ("Not done: time entry 1 is billed on invoice KIT-00001, issued already: "
                             "void that invoice to change it")
    late_part = await post(client, "/incidents/1/parts", csrf, description="Cable", cost="1.00", price="2.00",
                           day="2026-11-30")
    assert flash(late_part) == ("Not done: the part &#39;Cable&#39; of 2026-11-30 is billed on invoice KIT-00001, "
                                "issued already: void that invoice to change it")
    await post(client, "/billing/rates", csrf, effective_from="2026-11-02", hourly_rate="95.00")
    kept = await (await client.get("/api/v1/invoices/KIT-00001", headers=TECH)).json()
    assert (kept["totals"]["total"], kept["voided_at"]) == ("95.20", None)
    # The accounting exports carry the invoice as issued: its number, dates and lines, not today's prices.
    await client.post("/api/v1/billing/settings", headers=TECH, json={"xero_tax_type": "19% Umsatzsteuer"})
    xero = await (await client.get("/api/v1/clients/Acme%20Tooling/invoice?month=2026-11&format=xero",
                                   headers=TECH)).text()
    assert ",KIT-00001,2026-11,01/12/2026,11/12/2026," in xero and ",80.00,,8400,19% Umsatzsteuer," in xero
    exported = await (await client.get("/api/v1/clients/Acme%20Tooling/invoice?month=2026-11",
                                       headers=TECH)).json()
    assert exported["totals"]["total"] == "95.20"
    month = await (await client.get(MONTH)).text()
    assert "now comes to EUR 113.05: void KIT-00001 and issue a new invoice" in month

    voided = await post(client, "/billing/invoices/KIT-00001/void", csrf, reason="rates changed")
    assert flash(voided) == "Invoice KIT-00001 voided."
    assert "VOID: rates changed" in await (await client.get("/billing/invoices/KIT-00001?format=html")).text()
    reissued = await post(client, "/billing/clients/Acme%20Tooling/invoices", csrf, month="2026-11")
    # 60 min x 95.00 = 95.00; 19 % = 18.05; total 113.05, under the next number.
    assert flash(reissued) == "Invoice KIT-00002 issued, due 2026-12-11."
    listed = (await (await client.get("/api/v1/clients/Acme%20Tooling/invoices", headers=TECH)).json())["invoices"]
    assert [(i["number"], i["totals"]["total"], i["void_reason"]) for i in listed] == [
        ("KIT-00001", "95.20", "rates changed"), ("KIT-00002", "113.05", None)]


async def test_term_rules_a_flat_fee_and_a_one_off_charge_through_the_dashboard(
    client: TestClient, clock: Clock
) -> None:
    csrf = await log_in(client)
    await critical_alert(client, clock)
    await client.post("/api/v1/billing/settings", headers=TECH,
                      json={"minimum_term_months": 36, "term_with_onboarding_months": 12})
    contract = {"client": "Acme Tooling", "start": "2026-11-01", "term_months": "12", "workstation_rate": "0.00",
                "server_rate": "0.00", "monthly_fee": "250.00", "covers_remote": "true"}
    short = await client.post("/billing/contracts", data={"csrf": csrf, **contract})
    assert short.status == 422
    assert "the minimum term is 36 months; 12 months with an onboarding fee" in await short.text()
    saved = await post(client, "/billing/contracts", csrf, **{**contract, "onboarding_workstation_months": "2"})
    assert flash(saved) == "Contract for Acme Tooling saved, in force from 2026-11-01."
    charged = await post(client, "/billing/clients/Acme%20Tooling/charges", csrf, month="2026-11",
                         description="Server migration,\n fixed price", amount="1200.00", day="2026-11-20")
    assert flash(charged) == "Charge added: Server migration, fixed price, 1200.00."
    month = await (await client.get(MONTH)).text()
    # 250.00 flat for the month; onboarding 2 months x 0.00 per workstation adds nothing; 1200.00: 1450.00
    assert "Monthly service fee, November 2026" in month and "Server migration, fixed price, 20 Nov 2026" in month
    assert '<td class="num" id="invoice-total">EUR 1,450.00</td>' in month
    clock.advance(days=8)
    await post(client, "/billing/clients/Acme%20Tooling/invoices", csrf, month="2026-11")
    late = await client.post("/api/v1/clients/Acme%20Tooling/charges", headers=TECH,
                             json={"description": "Forgotten cable", "amount": "12.00", "day": "2026-11-30"})
    assert late.status == 409
    assert "is on invoice INV-00001, issued already" in (await late.json())["error"]


async def test_a_logo_uploaded_in_the_settings_brands_invoices_and_value_reports(
    client: TestClient, clock: Clock
) -> None:
    csrf = await log_in(client)
    await critical_alert(client, clock)
    # A real 1x1 PNG.
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360f8cf000000020101" "00a6d3e7a70000000049454e44ae426082")
    form = aiohttp.FormData({"csrf": csrf, "business_name": "Kleinert IT", "bank_details": ""})
    form.add_field("logo_file", png, filename="logo.png", content_type="image/png")
    saved = await client.post("/billing/settings", data=form)
    assert flash(await saved.text()) == "Billing settings saved."
    logo = "data:image/png;base64," + base64.b64encode(png).decode()
    assert (await (await client.get("/api/v1/billing/settings", headers=TECH)).json())["logo"] == logo
    report = await (await client.get("/billing/clients/Acme%20Tooling/report?month=2026-11")).text()
    assert f'<img class="logo" src="{logo}"' in report and "by Kleinert IT" in report
    clock.advance(days=8)
    await post(client, "/billing/rates", csrf, effective_from="2026-11-01", hourly_rate="80.00")
    await post(client, "/alerts/1/incident", csrf)
    await post(client, "/incidents/1/time", csrf, minutes="30", start="2026-11-23T10:00:00+00:00")
    await post(client, "/billing/clients/Acme%20Tooling/invoices", csrf, month="2026-11")
    invoice = await (await client.get("/billing/invoices/INV-00001?format=html")).text()
    assert f'<img class="logo" src="{logo}"' in invoice

    bad = aiohttp.FormData({"csrf": csrf})
    bad.add_field("logo_file", b"MZ\x90\x00", filename="logo.exe", content_type="application/octet-stream")
    refused = await client.post("/billing/settings", data=bad)
    assert refused.status == 422
    assert "the logo must be a PNG, JPEG or SVG image" in await refused.text()
    cleared = aiohttp.FormData({"csrf": csrf, "remove_logo": "yes", "business_name": ""})
    await client.post("/billing/settings", data=cleared)
    shown = await (await client.get("/api/v1/billing/settings", headers=TECH)).json()
    assert (shown["logo"], shown["business_name"]) == ("", "")
