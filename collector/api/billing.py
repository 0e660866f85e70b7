"""Endpoints for billing: the currency and time zone, devices' classes, invoices (JSON and accounting CSVs)
and the value report (HTML and PDF)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from aiohttp import web

from collector.access import Access
from collector.api.errors import parse, query_values, whole_number
from collector.api.technician import Handler, technician
from collector.api.wiring import billing
from collector.billing.export import generic_csv, qbo_csv, xero_csv
from collector.billing.ledger import BillingSettings
from collector.billing.model import Invoice
from collector.billing.pricing import month_bounds
from collector.billing.report import render_html, render_invoice, render_pdf
from collector.services.billing import (
    ChargeInput,
    ClientTaxInput,
    DeviceInput,
    IssueInput,
    SettingsInput,
    VoidInput,
    month_of,
    period,
)
from collector.services.errors import Invalid
from collector.services.views import (
    billing_settings_view,
    charge_view,
    client_tax_view,
    device_billing_view,
    invoice_view,
    issued_view,
)

LONGEST_DAYS_TO_PAY = 365
INVOICE_FORMATS = ("json", "csv", "qbo", "xero")
REPORT_FORMATS = ("html", "pdf")


async def get_settings(request: web.Request) -> web.Response:
    """`GET /api/v1/billing/settings`: who invoices, currency and zone, tax, terms and export accounts."""
    return web.json_response(billing_settings_view(await billing(request).settings()))


async def set_settings(request: web.Request) -> web.Response:
    """`POST /api/v1/billing/settings`: the settings given change, the others stay."""
    settings = await billing(request).set_settings(await parse(request, SettingsInput))
    return web.json_response(billing_settings_view(settings))


async def add_charge(request: web.Request) -> web.Response:
    """`POST /api/v1/clients/{client}/charges` {"description", "amount", "day"?}: a one-off charge."""
    charge = await billing(request).add_charge(request.match_info["client"], await parse(request, ChargeInput))
    return web.json_response(charge_view(charge), status=201)


async def issue_invoice(request: web.Request) -> web.Response:
    """`POST /api/v1/clients/{client}/invoices` {"month": "YYYY-MM"}: issue it under the next number."""
    row = await billing(request).issue(request.match_info["client"], await parse(request, IssueInput))
    return web.json_response(issued_view(row), status=201)


async def list_issued(request: web.Request) -> web.Response:
    """`GET /api/v1/clients/{client}/invoices`: the client's issued invoices, voided ones too."""
    rows = await billing(request).issued_for(request.match_info["client"])
    return web.json_response({"invoices": [issued_view(row) for row in rows]})


async def show_issued(request: web.Request) -> web.Response:
    """`GET /api/v1/invoices/{number}[?format=json|html|pdf]`: an issued invoice exactly as issued."""
    row = await billing(request).issued(request.match_info["number"])
    fmt = chosen(request, "json", ("json", "html", "pdf"))
    if fmt == "json":
        return web.json_response(issued_view(row))
    html = render_invoice(row.body, row.void_reason and f"{row.void_reason} ({row.voided_at:%Y-%m-%d})")
    if fmt == "html":
        return web.Response(text=html, content_type="text/html")
    pdf = await asyncio.to_thread(render_pdf, html)
    return web.Response(body=pdf, content_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{row.number}.pdf"'})


async def void_invoice(request: web.Request) -> web.Response:
    """`POST /api/v1/invoices/{number}/void` {"reason": "..."}: it keeps its number and says VOID."""
    row = await billing(request).void(request.match_info["number"], await parse(request, VoidInput))
    return web.json_response(issued_view(row))


async def set_client_tax(request: web.Request) -> web.Response:
    """`POST /api/v1/clients/{client}/tax`: the client's own rate, an exemption, or neither (the default)."""
    tax = await billing(request).set_client_tax(request.match_info["client"], await parse(request, ClientTaxInput))
    return web.json_response(client_tax_view(tax))


async def set_device(request: web.Request) -> web.Response:
    """`POST /api/v1/devices/{agent_id}/billing`: the device's class, contact and managed days."""
    view = await billing(request).set_device(request.match_info["agent_id"], await parse(request, DeviceInput))
    return web.json_response(view)


async def list_client_devices(request: web.Request) -> web.Response:
    """`GET /api/v1/clients/{client}/devices`: devices with class, contact and managed days."""
    ledger = await billing(request).ledger(request.match_info["client"])
    return web.json_response({"devices": [device_billing_view(d, ledger) for d in ledger.devices]})


def xero_tax_type(invoice: Invoice, settings: BillingSettings) -> str:
    """The Xero tax type for the invoice: "Tax Exempt" when none is due, else the one the settings name."""
    if not invoice.tax.charged:
        return "Tax Exempt"
    if not settings.xero_tax_type:
        raise Invalid("tax_type", f"{invoice.tax.label} {invoice.tax.charged}% is due: name its Xero tax type in the "
                                  "billing settings (xero_tax_type) or pass tax_type")
    return settings.xero_tax_type


def chosen(request: web.Request, default: str, formats: tuple[str, ...]) -> str:
    """The `format` the query asks for, or Invalid."""
    fmt = request.query.get("format", default)
    if fmt not in formats:
        raise Invalid("format", f"the format must be {', '.join(formats[:-1])} or {formats[-1]}")
    return fmt


async def invoice(request: web.Request) -> web.Response:
    """`GET /api/v1/clients/{client}/invoice?month=YYYY-MM[&format=json|csv|qbo|xero]`.

    An issued month is exported as issued (its number, dates and lines); otherwise QuickBooks Online and
    Xero imports also take `number` and `due_days`. Xero takes `account_code` and `tax_type`, as they are
    named in the accounting package.
    """
    with query_values():
        month = month_of(request.query.get("month"))
        fmt = chosen(request, "json", INVOICE_FORMATS)
    bill = await billing(request).invoice(request.match_info["client"], month)
    if fmt == "json":
        return web.json_response(invoice_view(bill.invoice))
    ledger = bill.ledger
    if bill.issued is not None:
        # Issued: the accounting package gets the invoice's own number and dates, and its lines as issued.
        issued, due, number = date.fromisoformat(bill.issued.body["issued"]), bill.issued.due, bill.issued.number
    else:
        issued = month_bounds(month)[1] + timedelta(days=1)
        with query_values():
            days_to_pay = whole_number("due_days", request.query.get("due_days"),
                                       ledger.settings.payment_terms_days, 0, LONGEST_DAYS_TO_PAY)
        due = issued + timedelta(days=days_to_pay)
        number = request.query.get("number", f"FP-{ledger.client_id}-{month:%Y%m}")
    if fmt == "csv":
        text = generic_csv(bill.invoice)
    elif fmt == "qbo":
        text = qbo_csv(bill.invoice, customer=ledger.client, number=number, issued=issued, due=due)
    else:
        text = xero_csv(bill.invoice, customer=ledger.client, number=number, issued=issued, due=due,
                        account_code=request.query.get("account_code", ledger.settings.xero_account_code),
                        tax_type=request.query.get("tax_type", xero_tax_type(bill.invoice, ledger.settings)),
                        email=ledger.billing_email, address=ledger.billing_address)
    name = f"{ledger.client}-{month:%Y-%m}-{fmt}.csv".replace(" ", "-")
    return web.Response(
        text=text, content_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


async def value_report(request: web.Request) -> web.Response:
    """`GET /api/v1/clients/{client}/report?month=YYYY-MM` (or `quarter=YYYYQn`, or `from`/`to`: a trial's
    months) `[&format=html|pdf]`."""
    query = request.query
    with query_values():
        first, last = period(query.get("month"), query.get("from"), query.get("to"), query.get("quarter"))
        fmt = chosen(request, "html", REPORT_FORMATS)
    client = request.match_info["client"]
    html = render_html(await billing(request).value_report(client, first, last))
    if fmt == "html":
        return web.Response(text=html, content_type="text/html")
    # Laying out pages takes a while: off the event loop, so agents' reports keep flowing meanwhile.
    pdf = await asyncio.to_thread(render_pdf, html)
    name = f"{client}-{first}-{last}.pdf".replace(" ", "-")
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


# Changing how the business bills (and issuing or voiding invoices) is the owner's; reading invoices and
# reports is every technician's.
ROUTES: list[tuple[str, str, Handler, Access]] = [
    ("GET", "/api/v1/billing/settings", get_settings, Access.TECHNICIAN),
    ("POST", "/api/v1/billing/settings", set_settings, Access.OWNER),
    ("POST", "/api/v1/clients/{client}/tax", set_client_tax, Access.OWNER),
    ("POST", "/api/v1/clients/{client}/invoices", issue_invoice, Access.OWNER),
    ("POST", "/api/v1/clients/{client}/charges", add_charge, Access.OWNER),
    ("GET", "/api/v1/clients/{client}/invoices", list_issued, Access.TECHNICIAN),
    ("GET", "/api/v1/invoices/{number}", show_issued, Access.TECHNICIAN),
    ("POST", "/api/v1/invoices/{number}/void", void_invoice, Access.OWNER),
    ("POST", "/api/v1/devices/{agent_id}/billing", set_device, Access.OWNER),
    ("GET", "/api/v1/clients/{client}/devices", list_client_devices, Access.TECHNICIAN),
    ("GET", "/api/v1/clients/{client}/invoice", invoice, Access.TECHNICIAN),
    ("GET", "/api/v1/clients/{client}/report", value_report, Access.TECHNICIAN),
]


def setup(app: web.Application) -> None:
    """Register the routes, each for the technician or the owner as ROUTES says."""
    for method, path, handler, need in ROUTES:
        app.router.add_route(method, path, technician(handler, need))
