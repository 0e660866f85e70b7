"""Billing pages: a client's month (invoice, time and how it is billed, CSV exports, the value report) and the
contracts and break/fix rates that price it.

The numbers come from the same services the API calls (`collector.services.billing`, `.contracts`), and the
downloads are the API's own handlers called in-process, so the dashboard and the API can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from aiohttp import web

from collector import keys
from collector.api import billing as api
from collector.api.errors import query_values, status_of
from collector.api.wiring import billing, clients, contracts, report_mail
from collector.billing.ledger import Ledger
from collector.billing.model import Classification
from collector.billing.pricing import month_bounds
from collector.services.billing import (
    ChargeInput,
    ClientTaxInput,
    IssueInput,
    SettingsInput,
    VoidInput,
    logo_url,
    month_of,
)
from collector.services.contracts import ContractInput, RatesInput
from collector.services.errors import DomainError
from collector.services.inputs import validated
from collector.services.views import client_tax_view, contract_view, rates_view
from collector.store.billing_rows import ClientTax, TimeEntryRow
from collector.web.admin import fields_of
from collector.web.render import reasons, refused, refused_page, render, see_other
from collector.web.sessions import owner_form, owner_page, page, technician
from shared.spreadsheet import EXPORT_NOTE

EXPORTS = {"csv": "CSV", "qbo": "QuickBooks Online CSV", "xero": "Xero CSV"}
# Words for how time is billed, as the pages say it.
BILLED_AS = {"covered": "covered", "billable": "billable", "non_billable": "non-billable"}
# A contract version's fields as the form shows them (coverage flags are yes/no boxes).
CONTRACT_FIELDS = ("effective_from", "start", "term_months", "workstation_rate", "server_rate",
                   "included_hours", "onboarding_workstation_months", "onboarding_server_months", "monthly_fee")
COVERAGE = {"covers_remote": "remote work", "covers_onsite": "on-site work",
            "covers_after_hours": "after hours"}


@dataclass(frozen=True)
class PricedEntry:
    """A time entry with how it is billed and what it adds to its month's invoice (None: running)."""

    entry: TimeEntryRow
    classification: Classification | None
    amount: Decimal | None

    @property
    def billed_as(self) -> str:
        """How the entry is billed, in words (covered time charged for is past the included hours)."""
        if self.classification == "covered" and self.amount:
            return "beyond included hours"
        return BILLED_AS[self.classification] if self.classification else "running"


def priced(ledger: Ledger, entries: Iterable[TimeEntryRow]) -> tuple[list[PricedEntry], str | None]:
    """Entries with their classification and what their month's invoice charges for each (0 when covered
    within the included hours, or non-billable; None when its month cannot be priced), and why it cannot."""
    entries = list(entries)
    charged, unpriced = ledger.entry_charges(entries)
    result = [PricedEntry(e, ledger.classification(e), charged.get(e.entry_id)) for e in entries]
    return result, "; ".join(unpriced.values()) or None


def client_path(client: str) -> str:
    """The billing pages' path of a client."""
    return f"/billing/clients/{quote(client, safe='')}"


def month_text(month: date) -> str:
    """A month as the pages and the API name it (`2026-11`)."""
    return f"{month:%Y-%m}"


@page
async def billing_page(request: web.Request) -> web.Response:
    """`GET /billing`: each client with links to this month's and last month's billing."""
    month = await billing(request).this_month()
    previous = (month - timedelta(days=1)).replace(day=1)
    listed = await clients(request).billable()
    return render(request, "billing.html", clients=[(c.name, client_path(c.name)) for c in listed],
                  month=month_text(month), previous=month_text(previous))


@page
async def client_month_page(request: web.Request) -> web.Response:
    """`GET /billing/clients/{client}?month=YYYY-MM`: the month's invoice, its time and how each entry is
    billed, the CSV downloads and the value report."""
    client = request.match_info["client"]
    try:
        wanted = request.query.get("month")
        with query_values():
            month = month_of(wanted) if wanted else await billing(request).this_month()
        ledger = await billing(request).ledger(client)
    except DomainError as exc:
        return refused_page(request, exc)
    first, last = month_bounds(month)
    zone = ledger.settings.zone
    in_month = [e for e in ledger.entries if first <= e.started_at.astimezone(zone).date() <= last]
    entries, problem = priced(ledger, in_month)
    try:
        bill = ledger.invoice(month)
    except ValueError as exc:
        bill, problem = None, f"cannot price {month:%Y-%m}: {exc}"
    titles = {i.incident_id: i.title for i in ledger.incidents}
    query = f"month={month_text(month)}"
    issued = await billing(request).issued_for(client, first)
    mailing = await report_mail(request).state(client)
    return render(request, "billing_month.html", client=client, month=month_text(month), bill=bill,
                  mailing=mailing,
                  totals=bill.totals() if bill else None, currency=ledger.settings.currency, entries=entries,
                  tax_text=bill.tax.text if bill else "", issued=issued,
                  live=next((i for i in issued if i.voided_at is None), None),
                  titles=titles, problem=problem, base=client_path(client), query=query, exports=EXPORTS,
                  export_note=EXPORT_NOTE,
                  previous=month_text((first - timedelta(days=1)).replace(day=1)),
                  next=month_text(last + timedelta(days=1)),
                  quarter=f"{first.year}Q{(first.month - 1) // 3 + 1}",
                  # The form starts at the six months to this one: a trial's length.
                  trial_from=first.replace(year=first.year - (first.month <= 5), month=(first.month - 6) % 12 + 1),
                  trial_to=last)


async def _from_api(request: web.Request, handler: Any) -> web.StreamResponse:
    """An API handler's answer to this request, its refusal shown as a page."""
    try:
        return await handler(request)
    except DomainError as exc:
        return refused_page(request, exc)


@page
async def export(request: web.Request) -> web.StreamResponse:
    """`GET /billing/clients/{client}/invoice?month=YYYY-MM&format=csv|qbo|xero`: the API's CSV download."""
    return await _from_api(request, api.invoice)


@page
async def value_report(request: web.Request) -> web.StreamResponse:
    """`GET /billing/clients/{client}/report?month=YYYY-MM&format=html|pdf`: the API's value report (its
    locked-down CSP comes with every HTML answer that sets none, see `collector.headers`)."""
    return await _from_api(request, api.value_report)


@owner_form
async def issue(request: web.Request) -> web.Response:
    """`POST /billing/clients/{client}/invoices`: issue the month's invoice (it never changes afterwards)."""
    client = request.match_info["client"]
    fields = await fields_of(request)
    back = f"{client_path(client)}?month={fields.get('month', '')}"
    try:
        row = await billing(request).issue(client, validated(IssueInput, {**fields, "technician": technician(request)}))
    except DomainError as exc:
        return refused(exc, back, "issued")
    return see_other(back, flash=f"Invoice {row.number} issued, due {row.due}.")


@owner_form
async def add_charge(request: web.Request) -> web.Response:
    """`POST /billing/clients/{client}/charges`: a one-off charge (project work) on the month's invoice."""
    client = request.match_info["client"]
    fields = {key: value for key, value in (await fields_of(request)).items() if value}
    back = f"{client_path(client)}?month={fields.pop('month', '')}"
    try:
        charge = await billing(request).add_charge(
            client, validated(ChargeInput, {**fields, "technician": technician(request)}))
    except DomainError as exc:
        return refused(exc, back, "charged")
    return see_other(back, flash=f"Charge added: {charge.description}, {charge.amount}.")


@owner_form
async def void(request: web.Request) -> web.Response:
    """`POST /billing/invoices/{number}/void`: void it, saying why; the month can then be issued anew."""
    fields = await fields_of(request)
    try:
        row = await billing(request).void(request.match_info["number"],
                                          validated(VoidInput, {**fields, "technician": technician(request)}))
    except DomainError as exc:
        return refused(exc, "/billing", "voided")
    back = f"{client_path(row.body['client'])}?month={row.month:%Y-%m}"
    return see_other(back, flash=f"Invoice {row.number} voided.")


@page
async def issued_invoice(request: web.Request) -> web.StreamResponse:
    """`GET /billing/invoices/{number}?format=html|pdf`: the API's issued invoice, as issued (with the
    locked-down CSP every HTML answer that sets none gets, see `collector.headers`)."""
    return await _from_api(request, api.show_issued)


# Contracts and rates ---------------------------------------------------------------------------------------

async def show_contracts(request: web.Request, client: str | None = None, status: int = 200,
                         errors: list[str] | None = None,
                         filled: dict[str, Any] | None = None) -> web.Response:
    """The contracts and rates page: every client's contract versions and every rate card, a form for a
    client's contract (filled in with its latest version) and one for rates."""
    service = contracts(request)
    by_client = {name: [contract_view(r) for r in rows] for name, rows in (await service.by_client()).items()}
    cards = await service.rate_cards()
    names = list(by_client)
    # Only a client chosen on purpose: a form that quietly targeted the first client saved contracts on it.
    chosen = client or request.query.get("client") or ""
    latest = by_client[chosen][-1] if by_client.get(chosen) else {}
    contract_form = {name: latest.get(name) or "" for name in CONTRACT_FIELDS if name != "effective_from"}
    contract_form |= {name: latest.get(name, name == "covers_remote") for name in COVERAGE}
    return render(request, "contracts.html", status=status, clients=names, contracts=by_client,
                  rates=[rates_view(c.row, c.client) for c in cards], chosen=chosen, first=not latest,
                  contract_form=contract_form | (filled or {}), coverage=COVERAGE, errors=errors or [],
                  today=request.app[keys.CLOCK]().date().isoformat())


@owner_page
async def contracts_page(request: web.Request) -> web.Response:
    """`GET /billing/contracts[?client=NAME]`: contracts and break/fix rates."""
    return await show_contracts(request)


@owner_form
async def set_contract(request: web.Request) -> web.Response:
    """`POST /billing/contracts`: a client's contract, or a new version of it from `effective_from`."""
    filled = await fields_of(request)
    client = filled.pop("client", "")
    try:
        row = await contracts(request).add(client, validated(ContractInput, filled))
    except DomainError as exc:
        return await show_contracts(request, client, status_of(exc), reasons(exc), filled)
    return see_other(f"/billing/contracts?client={quote(client)}",
                     flash=f"Contract for {client} saved, in force from {row.contract.effective_from}.")


@owner_form
async def set_rates(request: web.Request) -> web.Response:
    """`POST /billing/rates`: a break/fix rate card version for one client, or for everyone."""
    try:
        card = await contracts(request).add_rates(validated(RatesInput, await fields_of(request)))
    except DomainError as exc:
        return await show_contracts(request, None, status_of(exc), reasons(exc))
    who = card.client or "every client"
    return see_other("/billing/contracts",
                     flash=f"Break/fix rates for {who} saved, from {card.row.rates.effective_from}.")


# Settings ----------------------------------------------------------------------------------------------------

# Free text a technician may clear; every other setting left empty in the form stays as it is.
CLEARABLE = ("business_name", "business_address", "tax_id", "bank_details", "xero_tax_type")


async def show_settings(request: web.Request, status: int = 200, errors: list[str] | None = None) -> web.Response:
    """The billing settings form and each client's tax."""
    settings = await billing(request).settings()
    rows = []
    for name, tax in await billing(request).client_taxes():
        rows.append({"name": name, "charged": settings.tax_for(tax).text, **client_tax_view(tax or ClientTax())})
    return render(request, "billing_settings.html", status=status, settings=settings, clients=rows,
                  errors=errors or [])


@owner_page
async def settings_page(request: web.Request) -> web.Response:
    """`GET /billing/settings`: business, currency and zone, tax, terms, exports; each client's tax."""
    return await show_settings(request)


@owner_form
async def save_settings(request: web.Request) -> web.Response:
    """`POST /billing/settings`."""
    posted = await request.post()
    filled = await fields_of(request)
    # fields_of leaves blank fields out; a blanked free-text field means "clear it".
    filled |= {key: "" for key in CLEARABLE if key in posted and key not in filled}
    upload = posted.get("logo_file")
    try:
        if isinstance(upload, web.FileField) and upload.filename:
            filled["logo"] = logo_url(upload.content_type, upload.file.read())
        if posted.get("remove_logo"):
            filled["logo"] = ""
        filled.pop("remove_logo", None)
        await billing(request).set_settings(validated(SettingsInput, filled))
    except DomainError as exc:
        return await show_settings(request, status_of(exc), reasons(exc))
    return see_other("/billing/settings", flash="Billing settings saved.")


@owner_form
async def save_client_tax(request: web.Request) -> web.Response:
    """`POST /billing/clients/{client}/tax`: a rate, an exemption, or neither (the default rate)."""
    filled = {key: value for key, value in (await fields_of(request)).items() if value}
    client = request.match_info["client"]
    try:
        await billing(request).set_client_tax(client, validated(ClientTaxInput, filled))
    except DomainError as exc:
        return await show_settings(request, status_of(exc), reasons(exc))
    return see_other("/billing/settings", flash=f"Tax for {client} saved.")


def setup(app: web.Application) -> None:
    """Register the billing pages."""
    app.router.add_post("/billing/clients/{client}/invoices", issue)
    app.router.add_post("/billing/clients/{client}/charges", add_charge)
    app.router.add_post("/billing/invoices/{number}/void", void)
    app.router.add_get("/billing/invoices/{number}", issued_invoice)
    app.router.add_get("/billing/settings", settings_page)
    app.router.add_post("/billing/settings", save_settings)
    app.router.add_post("/billing/clients/{client}/tax", save_client_tax)
    app.router.add_get("/billing", billing_page)
    app.router.add_get("/billing/contracts", contracts_page)
    app.router.add_post("/billing/contracts", set_contract)
    app.router.add_post("/billing/rates", set_rates)
    app.router.add_get("/billing/clients/{client}", client_month_page)
    app.router.add_get("/billing/clients/{client}/invoice", export)
    app.router.add_get("/billing/clients/{client}/report", value_report)
