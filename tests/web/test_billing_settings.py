"""Billing settings and clients' tax through the dashboard, the API and the exports: the invoice a client
reads carries the tax (or the exemption's reason), and Xero is never told "Tax Exempt" for a taxed one."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.support.clock import Clock
from tests.support.collector import TECH
from tests.web.conftest import critical_alert, log_in
from tests.web.test_incident_pages import flash, post, rows

MONTH = "/billing/clients/Acme%20Tooling?month=2026-11"


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
