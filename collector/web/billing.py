"""Billing pages: a client's month (invoice, time and how it is billed, CSV exports, the value report) and the
contracts and break/fix rates that price it.

The numbers come from the same functions the API uses (`load_ledger`, `Ledger.invoice`), and the downloads are
the API's own handlers called in-process, so the dashboard and the API can never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from aiohttp import web

from collector import keys
from collector.api import billing as api
from collector.api.billing import (
    ContractBody,
    RatesBody,
    Refused,
    contract_view,
    new_version,
    publish,
    rates_view,
)
from collector.billing.ledger import Ledger, billing_settings, load_ledger
from collector.billing.model import BreakFixRates, Classification
from collector.billing.pricing import month_bounds
from collector.store.billing_rows import TimeEntryRow
from collector.web.admin import fields_of, parse
from collector.web.render import render, see_other
from collector.web.sessions import form, page

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


def refusal_text(exc: Refused) -> str:
    """What an API refusal says, in one line (with each bad field when there are some)."""
    body = json.loads(exc.response.text or "{}")
    problems = [f"{p['field']}: {p['message']}" for p in body.get("problems", [])]
    return "; ".join(problems) or body.get("error", "refused")


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


async def this_month(request: web.Request) -> date:
    """The first day of the current month in the billing time zone."""
    async with request.app[keys.STORE].transaction() as tx:
        settings = await billing_settings(tx)
    return request.app[keys.CLOCK]().astimezone(settings.zone).date().replace(day=1)


@page
async def billing_page(request: web.Request) -> web.Response:
    """`GET /billing`: each client with links to this month's and last month's billing."""
    month = await this_month(request)
    previous = (month - timedelta(days=1)).replace(day=1)
    async with request.app[keys.STORE].transaction() as tx:
        clients = await tx.clients()
    return render(request, "billing.html", clients=[(c.name, client_path(c.name)) for c in clients],
                  month=month_text(month), previous=month_text(previous))


@page
async def client_month_page(request: web.Request) -> web.Response:
    """`GET /billing/clients/{client}?month=YYYY-MM`: the month's invoice, its time and how each entry is
    billed, the CSV downloads and the value report."""
    client = request.match_info["client"]
    try:
        wanted = request.query.get("month")
        month = api.month_of(wanted) if wanted else await this_month(request)
    except Refused as exc:
        return render(request, "missing.html", status=422, what=refusal_text(exc))
    async with request.app[keys.STORE].transaction() as tx:
        ledger = await load_ledger(tx, client)
    if ledger is None:
        return render(request, "missing.html", status=404, what=f"There is no client {client!r}.")
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
                  previous=month_text((first - timedelta(days=1)).replace(day=1)),
                  next=month_text(last + timedelta(days=1)))


async def _from_api(request: web.Request, handler: Any) -> web.StreamResponse:
    """An API handler's answer to this request, its refusal shown as a page."""
    try:
        return await handler(request)
    except Refused as exc:
        return render(request, "missing.html", status=exc.response.status, what=refusal_text(exc))


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
    async with request.app[keys.STORE].transaction() as tx:
        clients = await tx.clients()
        contracts = {c.name: [contract_view(r) for r in await tx.contracts(c.client_id)] for c in clients}
        cards = await tx.rate_cards()
    names = {c.client_id: c.name for c in clients}
    chosen = client or request.query.get("client") or (clients[0].name if clients else "")
    latest = contracts[chosen][-1] if contracts.get(chosen) else {}
    contract_form = {name: latest.get(name) or "" for name in CONTRACT_FIELDS if name != "effective_from"}
    contract_form |= {name: latest.get(name, name == "covers_remote") for name in COVERAGE}
    return render(request, "contracts.html", status=status, clients=[c.name for c in clients],
                  contracts=contracts, rates=[rates_view(r, names.get(r.client_id or 0)) for r in cards],
                  chosen=chosen, first=not latest, contract_form=contract_form | (filled or {}),
                  coverage=COVERAGE, errors=errors or [], today=request.app[keys.CLOCK]().date().isoformat())


@page
async def contracts_page(request: web.Request) -> web.Response:
    """`GET /billing/contracts[?client=NAME]`: contracts and break/fix rates."""
    return await show_contracts(request)


@form
async def set_contract(request: web.Request) -> web.Response:
    """`POST /billing/contracts`: a client's contract, or a new version of it from `effective_from`."""
    filled = await fields_of(request)
    client = filled.pop("client", "")
    body = parse(ContractBody, filled)
    if isinstance(body, list):
        return await show_contracts(request, client, 422, body, filled)
    try:
        async with request.app[keys.STORE].transaction() as tx:
            ledger = await api.ledger_of(tx, client)
            previous = max(ledger.contracts, key=lambda c: c.effective_from, default=None)
            contract = new_version(body, ledger.client_id, previous)
            row = await tx.add_contract(ledger.client_id, contract, request.app[keys.CLOCK]())
            await publish(request, tx, "contract.added", {"client": client, **contract_view(row)})
    except Refused as exc:
        return await show_contracts(request, client, exc.response.status, [refusal_text(exc)], filled)
    except ValueError as exc:
        return await show_contracts(request, client, 409, [str(exc)], filled)
    request.app[keys.FEED].notify()
    return see_other(f"/billing/contracts?client={quote(client)}",
                     flash=f"Contract for {client} saved, in force from {row.contract.effective_from}.")


@form
async def set_rates(request: web.Request) -> web.Response:
    """`POST /billing/rates`: a break/fix rate card version for one client, or for everyone."""
    filled = await fields_of(request)
    body = parse(RatesBody, filled)
    if isinstance(body, list):
        return await show_contracts(request, None, 422, body)
    try:
        async with request.app[keys.STORE].transaction() as tx:
            client_id = (await api.ledger_of(tx, body.client)).client_id if body.client else None
            rates = BreakFixRates(**body.model_dump(exclude={"client"}))
            row = await tx.add_rates(client_id, rates, request.app[keys.CLOCK]())
            await publish(request, tx, "rates.added", rates_view(row, body.client))
    except Refused as exc:
        return await show_contracts(request, None, exc.response.status, [refusal_text(exc)])
    except ValueError as exc:
        return await show_contracts(request, None, 409, [str(exc)])
    request.app[keys.FEED].notify()
    who = body.client or "every client"
    return see_other("/billing/contracts",
                     flash=f"Break/fix rates for {who} saved, from {body.effective_from}.")


def setup(app: web.Application) -> None:
    """Register the billing pages."""
    app.router.add_get("/billing", billing_page)
    app.router.add_get("/billing/contracts", contracts_page)
    app.router.add_post("/billing/contracts", set_contract)
    app.router.add_post("/billing/rates", set_rates)
    app.router.add_get("/billing/clients/{client}", client_month_page)
    app.router.add_get("/billing/clients/{client}/invoice", export)
    app.router.add_get("/billing/clients/{client}/report", value_report)
