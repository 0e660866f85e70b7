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
from collector.api.errors import status_of
from collector.api.wiring import billing, clients, contracts
from collector.billing.ledger import Ledger
from collector.billing.model import Classification
from collector.billing.pricing import month_bounds
from collector.services.billing import month_of
from collector.services.contracts import ContractInput, RatesInput
from collector.services.errors import DomainError
from collector.services.inputs import validated
from collector.services.views import contract_view, rates_view
from collector.store.billing_rows import TimeEntryRow
from collector.web.admin import fields_of
from collector.web.render import reasons, refused_page, render, see_other
from collector.web.sessions import form, page
from shared.spreadsheet import EXPORT_NOTE

EXPORTS = {"csv": "CSV", "qbo": "QuickBooks Online CSV", "xero": "Xero CSV"}
# Words for how time is billed, as the pages say it.
BILLED_AS = {"covered": "covered", "billable": "billable", "non_billable": "non-billable"}
# A contract version's fields as the form shows them (coverage flags are yes/no boxes).
CONTRACT_FIELDS = ("effective_from", "start", "term_months", "workstation_rate", "server_rate",
                   "included_hours", "onboarding_workstation_months", "onboarding_server_months")
COVERAGE = {"covers_remote": "remote work", "covers_onsite": "on-site work",
            "covers_after_hours": "after hours"}
# The report's own page (with its inline styles) may not run scripts or load anything.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


@dataclass(frozen=True)
class PricedEntry:
    """A time entry with how it is billed and what it adds to its month's invoice (None: running)."""

    entry: TimeEntryRow
    classification: Classification | None
    amount: Decimal | None

    @property
    def billed_as(self) -> str:
        """How the entry is billed, in words."""
        return BILLED_AS[self.classification] if self.classification else "running"


def priced(ledger: Ledger, entries: Iterable[TimeEntryRow]) -> tuple[list[PricedEntry], str | None]:
    """Entries with their classification and what their month's invoice charges for each (0 when covered
    within the included hours, or non-billable; None when its month cannot be priced), and why it cannot."""
    zone = ledger.settings.zone

    def month(entry: TimeEntryRow) -> date:
        return entry.started_at.astimezone(zone).date().replace(day=1)

    entries = list(entries)
    charged: dict[str, Decimal] = {}
    unpriced: dict[date, str] = {}
    for first in sorted({month(e) for e in entries if not e.running}):
        try:
            bill = ledger.invoice(first)
        except ValueError as exc:
            unpriced[first] = f"cannot price {first:%Y-%m}: {exc}"
            continue
        for line in bill.lines:
            if line.kind == "time":
                charged[line.ref] = charged.get(line.ref, Decimal("0.00")) + line.amount
    result = []
    for entry in entries:
        known = not entry.running and month(entry) not in unpriced
        amount = charged.get(f"entry:{entry.entry_id}", Decimal("0.00")) if known else None
        result.append(PricedEntry(entry, ledger.classification(entry), amount))
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
    listed = await clients(request).list()
    return render(request, "billing.html", clients=[(c.name, client_path(c.name)) for c in listed],
                  month=month_text(month), previous=month_text(previous))


@page
async def client_month_page(request: web.Request) -> web.Response:
    """`GET /billing/clients/{client}?month=YYYY-MM`: the month's invoice, its time and how each entry is
    billed, the CSV downloads and the value report."""
    client = request.match_info["client"]
    try:
        wanted = request.query.get("month")
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
    return render(request, "billing_month.html", client=client, month=month_text(month), bill=bill,
                  totals=bill.totals() if bill else None, currency=ledger.settings.currency, entries=entries,
                  titles=titles, problem=problem, base=client_path(client), query=query, exports=EXPORTS,
                  export_note=EXPORT_NOTE,
                  previous=month_text((first - timedelta(days=1)).replace(day=1)),
                  next=month_text(last + timedelta(days=1)))


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
    """`GET /billing/clients/{client}/report?month=YYYY-MM&format=html|pdf`: the API's value report."""
    response = await _from_api(request, api.value_report)
    response.headers.setdefault("Content-Security-Policy", REPORT_CSP)
    return response


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
    chosen = client or request.query.get("client") or (names[0] if names else "")
    latest = by_client[chosen][-1] if by_client.get(chosen) else {}
    contract_form = {name: latest.get(name) or "" for name in CONTRACT_FIELDS if name != "effective_from"}
    contract_form |= {name: latest.get(name, name == "covers_remote") for name in COVERAGE}
    return render(request, "contracts.html", status=status, clients=names, contracts=by_client,
                  rates=[rates_view(c.row, c.client) for c in cards], chosen=chosen, first=not latest,
                  contract_form=contract_form | (filled or {}), coverage=COVERAGE, errors=errors or [],
                  today=request.app[keys.CLOCK]().date().isoformat())


@page
async def contracts_page(request: web.Request) -> web.Response:
    """`GET /billing/contracts[?client=NAME]`: contracts and break/fix rates."""
    return await show_contracts(request)


@form
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


@form
async def set_rates(request: web.Request) -> web.Response:
    """`POST /billing/rates`: a break/fix rate card version for one client, or for everyone."""
    try:
        card = await contracts(request).add_rates(validated(RatesInput, await fields_of(request)))
    except DomainError as exc:
        return await show_contracts(request, None, status_of(exc), reasons(exc))
    who = card.client or "every client"
    return see_other("/billing/contracts",
                     flash=f"Break/fix rates for {who} saved, from {card.row.rates.effective_from}.")


def setup(app: web.Application) -> None:
    """Register the billing pages."""
    app.router.add_get("/billing", billing_page)
    app.router.add_get("/billing/contracts", contracts_page)
    app.router.add_post("/billing/contracts", set_contract)
    app.router.add_post("/billing/rates", set_rates)
    app.router.add_get("/billing/clients/{client}", client_month_page)
    app.router.add_get("/billing/clients/{client}/invoice", export)
    app.router.add_get("/billing/clients/{client}/report", value_report)
