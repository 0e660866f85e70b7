"""A client's billing records read from the store in one transaction, ready for `pricing` and the report.

This is the one billing module that touches the store; what it returns is priced by the pure code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from collector.billing.model import (
    BreakFixRates,
    Charge,
    Classification,
    Contract,
    Incident,
    Invoice,
    Part,
    Tax,
    TimeEntry,
)
from collector.billing.pricing import classify, entry_shares, in_force, monthly_invoice
from collector.billing.report import DISK_REPLACED, MALWARE_BLOCKED, ValueReport, build_value_report
from collector.store import ClientRow, Tx
from collector.store.billing_rows import ClientTax, DeviceBillingRow, IncidentRow, RatesRow, TimeEntryRow
from shared.encryption import Encryption

SETTINGS_META = "billing."


@dataclass(frozen=True)
class BillingSettings:
    """Who invoices, in which currency and zone, with which tax and terms, and how exports book the lines."""

    currency: str = "EUR"
    timezone: str = "UTC"
    business_name: str = ""
    # The business's logo as a data: URL (PNG, JPEG or SVG), shown on invoices and value reports.
    logo: str = ""
    business_address: str = ""
    tax_id: str = ""
    tax_label: str = "VAT"
    tax_rate: Decimal = Decimal(0)
    payment_terms_days: int = 14
    bank_details: str = ""
    # Issued invoices are numbered this prefix and a sequence without gaps: INV-00001, INV-00002, ...
    invoice_prefix: str = "INV-"
    # Contract terms the business offers: at least this many months (0: any), or at least the shorter
    # term when the contract charges an onboarding fee (0: no shorter term).
    minimum_term_months: int = 0
    term_with_onboarding_months: int = 0

    def check_term(self, contract: Contract) -> str | None:
        """Why the contract's term is not one the business offers, or None."""
        if not self.minimum_term_months or contract.term_months >= self.minimum_term_months:
            return None
        shorter = self.term_with_onboarding_months
        if shorter and contract.term_months >= shorter and contract.has_onboarding_fee:
            return None
        also = f"; {shorter} months with an onboarding fee" if shorter else ""
        return f"the minimum term is {self.minimum_term_months} months{also}"
    # Xero books every line to this account with this tax type ("" : Xero's "Tax Exempt" when no tax is due).
    xero_account_code: str = "200"
    xero_tax_type: str = ""

    def tax_for(self, client: ClientTax | None) -> Tax:
        """The tax a client's invoices charge: its own rate or exemption, else the default rate."""
        if client is not None and client.exemption:
            return Tax(Decimal(0), self.tax_label, client.exemption)
        rate = client.tax_rate if client is not None and client.tax_rate is not None else self.tax_rate
        return Tax(rate, self.tax_label)

    @property
    def zone(self) -> ZoneInfo:
        """The billing time zone."""
        return ZoneInfo(self.timezone)

    def start_of(self, day: date) -> datetime:
        """The UTC moment the local day begins."""
        return datetime.combine(day, time(), self.zone).astimezone(UTC)


async def billing_settings(tx: Tx) -> BillingSettings:
    """The stored billing settings (the defaults for what was never set)."""
    given: dict[str, Any] = {}
    for field in fields(BillingSettings):
        text = await tx.get_meta(SETTINGS_META + field.name)
        if text is not None:
            kind = type(getattr(BillingSettings, field.name))
            given[field.name] = kind(text)
    return BillingSettings(**given)


async def save_billing_settings(tx: Tx, settings: BillingSettings) -> None:
    """Store the billing settings."""
    for field in fields(BillingSettings):
        await tx.set_meta(SETTINGS_META + field.name, str(getattr(settings, field.name)))


def rates_for(cards: list[RatesRow], client_id: int) -> list[BreakFixRates]:
    """The rate card versions that apply to a client: its own when it has any, else everyone's."""
    own = [c.rates for c in cards if c.client_id == client_id]
    return own or [c.rates for c in cards if c.client_id is None]


@dataclass(frozen=True)
class Ledger:
    """Everything billing knows about one client."""

    client_id: int
    client: str
    settings: BillingSettings
    contracts: list[Contract]
    rates: list[BreakFixRates]
    devices: list[DeviceBillingRow]
    incidents: list[IncidentRow]
    entries: list[TimeEntryRow]
    parts: list[Part]
    tax: ClientTax | None = None
    charges: tuple[Charge, ...] = ()
    # The client's record (billing contact, e-mail, address; whether it is the demo client).
    record: ClientRow | None = None

    @property
    def billing_email(self) -> str | None:
        """Where invoices go: the client's billing e-mail, else its billing contact's."""
        if self.record is None:
            return None
        contact = self.record.billing_contact
        return self.record.details.billing_email or (contact.email if contact else None)

    @property
    def billing_address(self) -> list[str]:
        """The client's billing address, line by line (none: an empty list)."""
        address = self.record.details.billing_address if self.record else None
        return address.splitlines() if address else []

    def incident_models(self) -> list[Incident]:
        """The incidents as pricing sees them."""
        return [incident.model() for incident in self.incidents]

    def entry_models(self, first: date | None = None, last: date | None = None) -> list[TimeEntry]:
        """Finished time entries (on local days from `first` to `last` when given) as pricing sees them."""
        models = [e.model(self.settings.zone) for e in self.entries if not e.running]
        return [m for m in models if (first or date.min) <= m.start.date() <= (last or date.max)]

    def classification(self, entry: TimeEntryRow) -> Classification | None:
        """Covered, billable or non-billable under the contract in force that day; None while running."""
        if entry.running:
            return None
        model = entry.model(self.settings.zone)
        incident = next(i for i in self.incidents if i.incident_id == entry.incident_id)
        return classify(model, incident.model(), in_force(self.contracts, model.start.date()))

    def entry_charges(self, entries: Iterable[TimeEntryRow]) -> tuple[dict[int, Decimal], dict[date, str]]:
        """What each finished entry adds to its month's invoice (0 when covered within the included hours or
        not billed; absent when its month cannot be priced), and why each such month cannot be priced."""
        zone = self.settings.zone
        done = [e for e in entries if not e.running]
        minutes = {str(e.entry_id): e.minutes or 0 for e in self.entries}
        shares: dict[str, Decimal] = {}
        unpriced: dict[date, str] = {}
        for month in sorted({e.started_at.astimezone(zone).date().replace(day=1) for e in done}):
            try:
                bill = self.invoice(month)
            except ValueError as exc:
                unpriced[month] = f"cannot price {month:%Y-%m}: {exc}"
                continue
            for line in bill.lines:
                shares.update(entry_shares(line, minutes))
        charged = {
            e.entry_id: shares.get(str(e.entry_id), Decimal("0.00"))
            for e in done
            if e.started_at.astimezone(zone).date().replace(day=1) not in unpriced
        }
        return charged, unpriced

    def invoice(self, month: date) -> Invoice:
        """The client's invoice for the month containing `month`, the client named rather than numbered."""
        invoice = monthly_invoice(
            self.client_id,
            month,
            self.contracts,
            self.rates,
            [d.model(self.settings.zone) for d in self.devices],
            self.incident_models(),
            self.entry_models(),
            self.parts,
            currency=self.settings.currency,
            tax=self.settings.tax_for(self.tax),
            charges=self.charges,
        )
        return replace(invoice, client=self.client)


async def load_ledger(tx: Tx, client: str) -> Ledger | None:
    """The client's billing records, or None when there is no such client."""
    client_id = await tx.client_id(client)
    if client_id is None:
        return None
    return Ledger(
        client_id=client_id,
        client=client,
        settings=await billing_settings(tx),
        contracts=[row.contract for row in await tx.contracts(client_id)],
        rates=rates_for(await tx.rate_cards(), client_id),
        devices=await tx.billing_devices(client_id),
        incidents=await tx.incidents(client_id, None),
        entries=await tx.time_entries(client_id=client_id),
        parts=await tx.parts(client_id=client_id),
        tax=await tx.client_tax(client_id),
        charges=tuple(await tx.charges(client_id)),
        record=await tx.client(client_id),
    )


async def load_value_report(
    tx: Tx, client: str, first: date, last: date, now: datetime
) -> ValueReport | None:
    """A client's report for the local days `first` to `last`; None when there is no such client."""
    ledger = await load_ledger(tx, client)
    if ledger is None:
        return None
    since, until = ledger.settings.start_of(first), ledger.settings.start_of(last + timedelta(days=1))
    caught_by = {}
    for incident in ledger.incidents:
        alert = await tx.alert(incident.alert_id) if incident.alert_id is not None else None
        if alert is not None:
            caught_by[incident.incident_id] = (alert, await tx.alert_events(alert.alert_id))
    return build_value_report(
        ledger,
        first,
        last,
        now.astimezone(ledger.settings.zone),
        # Events after the period still tell how long its alerts took to resolve.
        alert_events=await tx.alert_events_since(since),
        caught_by=caught_by,
        notes={i.incident_id: await tx.incident_notes(i.incident_id) for i in ledger.incidents},
        backups_verified=await tx.backups_verified(ledger.client_id, since, until),
        disks_replaced=await tx.client_feed_events(client, [DISK_REPLACED], since, until),
        laptops=await laptops_encrypted(tx, client),
        malware_blocked=await tx.client_feed_events(client, [MALWARE_BLOCKED], since, until),
        time_saved={saved.incident_id: saved for saved in await tx.time_saved(ledger.client_id)},
    )


async def laptops_encrypted(tx: Tx, client: str) -> tuple[int, int]:
    """(encrypted, all) of the client's enrolled laptops, by each one's last encryption report: a laptop that
    never reported, or whose system volume is anything but fully encrypted, is counted as not encrypted."""
    laptops = [a for a in await tx.agents()
               if a.site.client_name == client and not a.revoked and a.device_class == "laptop"]
    encrypted = 0
    for laptop in laptops:
        for row in tx.unreadable.readable(await tx.observations(laptop.agent_id, "encryption", 1)):
            volume = Encryption.model_validate(row.payload).system_volume()
            encrypted += volume is not None and volume.state == "encrypted"
    return encrypted, len(laptops)
