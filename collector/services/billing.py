"""Billing: settings (business, currency, zone, tax, terms), clients' tax, devices' classes, a client's ledger,
invoices and the value report."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import Field, field_validator, model_validator

from collector.billing.ledger import (
    BillingSettings,
    Ledger,
    billing_settings,
    load_ledger,
    load_value_report,
    save_billing_settings,
)
from collector.billing.model import Charge, DeviceClass, Invoice, InvoiceLine, Tax
from collector.billing.pricing import month_bounds
from collector.billing.report import ValueReport
from collector.services.base import Service
from collector.services.errors import Conflict, Invalid, NotFound
from collector.services.inputs import TECHNICIAN, Input, zone
from collector.services.views import charge_view, client_tax_view, device_billing_view, invoice_view
from collector.store import Tx
from collector.store.billing_rows import ClientTax, IssuedInvoiceRow

LOGO_MAX_BYTES = 256 * 1024
LOGO_MAX_CHARS = 64 + LOGO_MAX_BYTES * 4 // 3
LOGO_PATTERN = r"^(data:image/(png|jpeg|svg\+xml);base64,[A-Za-z0-9+/]+={0,2})?$"
LOGO_TYPES = {"image/png", "image/jpeg", "image/svg+xml"}


def logo_url(content_type: str, data: bytes) -> str:
    """An uploaded logo as a data: URL, or Invalid when it is not a small PNG, JPEG or SVG."""
    if content_type not in LOGO_TYPES:
        raise Invalid("logo", f"the logo must be a PNG, JPEG or SVG image, not {content_type or 'unknown'}")
    if len(data) > LOGO_MAX_BYTES:
        raise Invalid("logo", f"the logo must be at most {LOGO_MAX_BYTES // 1024} KiB")
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


class SettingsInput(Input):
    """Billing settings to change (those left out stay as they are)."""

    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR, GBP, USD")
    timezone: str | None = Field(None, description="the zone whose days time is billed by, e.g. Europe/Dublin")
    business_name: str | None = Field(None, max_length=200)
    logo: str | None = Field(None, max_length=LOGO_MAX_CHARS, pattern=LOGO_PATTERN,
                             description="a data: URL of a PNG, JPEG or SVG image (\"\": none)")
    business_address: str | None = Field(None, max_length=1000)
    tax_id: str | None = Field(None, max_length=100, description="your VAT or tax number, printed on invoices")
    tax_label: str | None = Field(None, min_length=1, max_length=40, description="e.g. VAT, GST, Sales tax")
    tax_rate: Decimal | None = Field(None, ge=0, lt=100, decimal_places=3, description="default rate, percent")
    payment_terms_days: int | None = Field(None, ge=0, le=365)
    bank_details: str | None = Field(None, max_length=1000)
    invoice_prefix: str | None = Field(None, max_length=20, pattern=r"^[A-Za-z0-9/_-]*$",
                                       description="issued invoices are numbered PREFIX00001, PREFIX00002, ...")
    minimum_term_months: int | None = Field(None, ge=0, le=120, description="0: any term")
    term_with_onboarding_months: int | None = Field(None, ge=0, le=120,
                                                    description="a shorter term allowed with an onboarding fee")
    xero_account_code: str | None = Field(None, min_length=1, max_length=20)
    xero_tax_type: str | None = Field(None, max_length=100, description="as named in Xero, for taxed invoices")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else zone(value)


class ClientTaxInput(Input):
    """A client's own tax: a rate, or an exemption with the reason the invoice prints; neither: the default."""

    tax_rate: Decimal | None = Field(None, ge=0, lt=100, decimal_places=3, description="percent")
    exemption: str = Field("", max_length=200, description='e.g. "Reverse charge: the customer accounts for VAT"')

    @model_validator(mode="after")
    def _one(self) -> ClientTaxInput:
        if self.tax_rate is not None and self.exemption.strip():
            raise ValueError("give a tax rate or an exemption, not both")
        return self


class ChargeInput(Input):
    """A one-off charge: project work, a fixed-price installation."""

    description: str = Field(min_length=1, max_length=200)
    amount: Decimal = Field(gt=0, decimal_places=2)
    day: date | None = Field(None, description="the day it is for (default: today); invoiced in its month")
    technician: str = TECHNICIAN


class IssueInput(Input):
    """Issuing a client's invoice for a month."""

    month: str = Field(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")
    technician: str = TECHNICIAN


class VoidInput(Input):
    """Voiding an issued invoice, saying why (a new one can then be issued for the month)."""

    reason: str = Field(min_length=1, max_length=500)
    technician: str = TECHNICIAN


class DeviceInput(Input):
    """A device's class, contact and managed days."""

    device_class: DeviceClass
    contact: str = Field("", max_length=200)
    active_from: date | None = Field(None, description="first day under management (default: enrolment)")
    active_to: date | None = Field(None, description="last day under management (default: revocation)")


@dataclass(frozen=True)
class Bill:
    """A client's invoice for a month, with the ledger it was priced from."""

    ledger: Ledger
    invoice: Invoice
    issued: IssuedInvoiceRow | None = None


def invoice_from_body(body: dict[str, Any]) -> Invoice:
    """An issued invoice's stored body back as the invoice it was, for the exports to carry the same lines."""
    lines = tuple(
        InvoiceLine(line["kind"], line["description"], Decimal(line["quantity"]), Decimal(line["unit_price"]),
                    Decimal(line["amount"]), line["ref"])
        for line in body["lines"]
    )
    tax = body["tax"]
    return Invoice(body["client"], month_of(body["month"]), body["currency"], lines,
                   Tax(Decimal(tax["rate"]), tax["label"], tax["exemption"]))


# Months and days billing accepts: wide enough for any real invoice, far from the calendar's ends (the pages
# and reports step a month or a day beyond what they show).
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2999, 12, 31)


def month_of(text: str | None) -> date:
    """`YYYY-MM` as the month's first day (between FIRST_DAY and LAST_DAY), or Invalid."""
    try:
        month = datetime.strptime(text or "", "%Y-%m").date()
    except ValueError:
        raise Invalid("month", "the month must be YYYY-MM, e.g. 2026-11") from None
    if not FIRST_DAY <= month <= LAST_DAY:
        raise Invalid("month", f"the month must be from {FIRST_DAY:%Y-%m} to {LAST_DAY:%Y-%m}")
    return month


def quarter_bounds(text: str | None) -> tuple[date, date]:
    """`YYYYQn` (2026Q3) as its first and last day, or Invalid."""
    match = re.fullmatch(r"(\d{4})-?[Qq]([1-4])", (text or "").strip())
    if match is None:
        raise Invalid("quarter", "the quarter must be YYYYQn, e.g. 2026Q3 (July to September 2026)")
    year, number = int(match[1]), int(match[2])
    if not FIRST_DAY.year <= year <= LAST_DAY.year:
        raise Invalid("quarter", f"the quarter must be from {FIRST_DAY.year}Q1 to {LAST_DAY.year}Q4")
    first = date(year, 3 * number - 2, 1)
    return first, month_bounds(date(year, 3 * number, 1))[1]


def period(
    month: str | None, first: str | None, last: str | None, quarter: str | None = None
) -> tuple[date, date]:
    """A report's days: a month, a quarter, or `first` to `last` (both inclusive, both given): exactly one."""
    given = [name for name, value in (("month", month), ("quarter", quarter), ("from/to", first or last)) if value]
    if len(given) > 1:
        raise Invalid(None, f"give one period, not {' and '.join(given)}: month, quarter, or from and to")
    if quarter:
        return quarter_bounds(quarter)
    if not (first or last):
        return month_bounds(month_of(month))
    try:
        begins, ends = date.fromisoformat(first or ""), date.fromisoformat(last or "")
    except ValueError:
        raise Invalid(None, "from and to must both be dates, e.g. from=2026-06-01&to=2026-11-30") from None
    if not FIRST_DAY <= begins <= LAST_DAY or not FIRST_DAY <= ends <= LAST_DAY:
        raise Invalid(None, f"from and to must be days from {FIRST_DAY} to {LAST_DAY}")
    if ends < begins:
        raise Invalid(None, f"to ({ends}) is before from ({begins}): the period runs from the earlier day")
    return begins, ends


async def ledger_of(tx: Tx, client: str) -> Ledger:
    """The client's ledger, or NotFound."""
    ledger = await load_ledger(tx, client)
    if ledger is None:
        raise NotFound(f"there is no client {client!r}")
    return ledger


def not_demo(ledger: Ledger) -> Ledger:
    """The ledger of a client that may be invoiced; Conflict for the demo client, which is never billed."""
    if ledger.record is not None and ledger.record.demo:
        raise Conflict(f"{ledger.client} is the demo client and is kept out of billing: mark it as a real client "
                       "first (on its client page, or PUT /api/v1/clients/NAME/demo with {\"demo\": false})")
    return ledger


class Billing(Service):
    """Billing settings, devices' billing, ledgers, invoices and value reports."""

    async def settings(self) -> BillingSettings:
        """The currency and billing time zone."""
        async with self.store.read() as tx:
            return await billing_settings(tx)

    async def set_settings(self, wanted: SettingsInput) -> BillingSettings:
        """Change the settings given; the others stay as they are."""
        changes = wanted.model_dump(exclude_none=True)
        async with self.store.transaction() as tx:
            settings = replace(await billing_settings(tx), **changes)
            await save_billing_settings(tx, settings)
            await self.publish(tx, "billing.settings", {key: str(value) for key, value in changes.items()})
        return settings

    async def issue(self, client: str, wanted: IssueInput) -> IssuedInvoiceRow:
        """Issue the client's invoice for the month under the next number: from now on it never changes."""
        month = month_of(wanted.month)
        async with self.store.transaction() as tx:
            ledger = not_demo(await ledger_of(tx, client))
            try:
                invoice = ledger.invoice(month)
            except ValueError as exc:
                raise Invalid("month", f"cannot price {month:%Y-%m}: {exc}") from None
            settings = ledger.settings
            issued = self.clock().astimezone(settings.zone).date()
            due = issued + timedelta(days=settings.payment_terms_days)
            body = {**invoice_view(invoice), "issued": issued.isoformat(), "due": due.isoformat(),
                    "period": f"{month:%B %Y}", "seller": {
                        name: getattr(settings, name)
                        for name in ("business_name", "business_address", "tax_id", "bank_details", "logo")}}
            row = await tx.issue_invoice(ledger.client_id, month, settings.invoice_prefix, self.clock(),
                                         wanted.technician, due, body)
            if row is None:
                [live] = [i for i in await tx.issued_invoices(ledger.client_id, month) if i.voided_at is None]
                raise Conflict(f"{client}'s invoice for {month:%Y-%m} is issued already as {live.number}: "
                               "void it to issue a new one")
            await self.publish(tx, "invoice.issued", {"number": row.number, "client": client,
                                                      "month": wanted.month, "total": body["totals"]["total"],
                                                      "by": wanted.technician})
        return row

    async def void(self, number: str, wanted: VoidInput) -> IssuedInvoiceRow:
        """Void an issued invoice: it keeps its number and says VOID; the month can be issued anew."""
        async with self.store.transaction() as tx:
            row = await tx.void_invoice(number, self.clock(), wanted.technician, wanted.reason)
            if row is None:
                known = await tx.issued_invoice(number)
                raise Conflict(f"invoice {number} is void already") if known else NotFound(
                    f"there is no invoice {number}")
            await self.publish(tx, "invoice.voided", {"number": number, "client": row.body["client"],
                                                      "reason": wanted.reason, "by": wanted.technician})
        return row

    async def issued(self, number: str) -> IssuedInvoiceRow:
        """An issued invoice by its number, or NotFound."""
        async with self.store.read() as tx:
            row = await tx.issued_invoice(number)
        if row is None:
            raise NotFound(f"there is no invoice {number}")
        return row

    async def issued_for(self, client: str, month: date | None = None) -> list[IssuedInvoiceRow]:
        """A client's issued invoices (of one month), voided ones too, in issue order."""
        async with self.store.read() as tx:
            return await tx.issued_invoices((await ledger_of(tx, client)).client_id, month)

    async def add_charge(self, client: str, wanted: ChargeInput) -> Charge:
        """A one-off charge on the client's invoice for the month of its day."""
        async with self.store.transaction() as tx:
            ledger = await ledger_of(tx, client)
            day = wanted.day or self.clock().astimezone(ledger.settings.zone).date()
            for issued in await tx.issued_invoices(ledger.client_id, day.replace(day=1)):
                if issued.voided_at is None:
                    raise Conflict(f"{day:%Y-%m} is on invoice {issued.number}, issued already: date the charge in "
                                   "another month, or void that invoice first")
            charge = await tx.add_charge(ledger.client_id, day, " ".join(wanted.description.split()),
                                         wanted.amount, self.clock(), wanted.technician)
            await self.publish(tx, "charge.added", {"client": client, **charge_view(charge),
                                                    "by": wanted.technician})
        return charge

    async def client_taxes(self) -> list[tuple[str, ClientTax | None]]:
        """Every client with its own tax terms (None: the default rate)."""
        async with self.store.read() as tx:
            return [(c.name, await tx.client_tax(c.client_id)) for c in await tx.clients() if c.billable]

    async def set_client_tax(self, client: str, wanted: ClientTaxInput) -> ClientTax:
        """A client's own tax rate or exemption (neither: the default rate applies again)."""
        tax = ClientTax(wanted.tax_rate, wanted.exemption.strip())
        async with self.store.transaction() as tx:
            ledger = await ledger_of(tx, client)
            await tx.set_client_tax(ledger.client_id, tax)
            await self.publish(tx, "billing.client_tax", {"client": client, **client_tax_view(tax)})
        return tax

    async def this_month(self) -> date:
        """The first day of the current month in the billing time zone."""
        settings = await self.settings()
        return self.clock().astimezone(settings.zone).date().replace(day=1)

    async def set_device(self, agent_id: str, wanted: DeviceInput) -> dict[str, Any]:
        """Set a device's class, contact and managed days; returns the device as the ledger sees it."""
        async with self.store.transaction() as tx:
            agent = await tx.agent(agent_id)
            if agent is None or not await tx.set_device_billing(
                agent_id, wanted.device_class, wanted.contact, wanted.active_from, wanted.active_to
            ):
                raise NotFound(f"there is no device {agent_id!r}")
            ledger = await ledger_of(tx, agent.site.client_name)
            view = next(device_billing_view(d, ledger) for d in ledger.devices if d.agent_id == agent_id)
            await self.publish(tx, "device.billing", {**view, "client": ledger.client})
        return view

    async def ledger(self, client: str) -> Ledger:
        """Everything a client is billed from (NotFound for an unknown client)."""
        async with self.store.read() as tx:
            return await ledger_of(tx, client)

    async def invoice(self, client: str, month: date) -> Bill:
        """The client's invoice for a month: as issued when it was, else priced now (Conflict when it cannot be)."""
        ledger = not_demo(await self.ledger(client))
        live = [i for i in await self.issued_for(client, month) if i.voided_at is None]
        if live:
            return Bill(ledger, invoice_from_body(live[0].body), live[0])
        try:
            return Bill(ledger, ledger.invoice(month))
        except ValueError as exc:
            raise Conflict(f"cannot price {month:%Y-%m}: {exc}") from None

    async def value_report(self, client: str, first: date, last: date) -> ValueReport:
        """What was caught and done for a client between two days (both inclusive)."""
        async with self.store.read() as tx:
            try:
                report = await load_value_report(tx, client, first, last, self.clock())
            except ValueError as exc:
                # As with the invoice: a month that cannot be priced (no rates in force) is a 409 saying so.
                raise Conflict(f"cannot price the report from {first} to {last}: {exc}") from None
        if report is None:
            raise NotFound(f"there is no client {client!r}")
        return report
