"""Billing records: plain frozen dataclasses with caller-supplied ids, easy to store and to compare."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

Id = int | str
DeviceClass = Literal["workstation", "server", "network"]
Classification = Literal["covered", "billable", "non_billable"]
LineKind = Literal["contract", "onboarding", "fee", "time", "parts"]


def _require_decimals(record: object, *names: str) -> None:
    """Refuse floats (or anything but Decimal) for money, so a float never slips in from JSON or a typo."""
    for name in names:
        value = getattr(record, name)
        if value is not None and not isinstance(value, Decimal):
            raise TypeError(f"{type(record).__name__}.{name} must be a Decimal, not {type(value).__name__}")


@dataclass(frozen=True)
class Contract:
    """One effective-dated version of a client's managed-service contract.

    A rate change is a new version with a later `effective_from`; the versions share `start` and the term.
    `effective_to` is the last day in force (inclusive), None while open-ended. Rates are per device a month.
    Onboarding months multiply the monthly rate once, in the month of `start`.
    """

    client: Id
    effective_from: date
    effective_to: date | None
    start: date
    term_months: int
    workstation_rate: Decimal
    server_rate: Decimal
    covers_remote: bool = True
    covers_onsite: bool = False
    covers_after_hours: bool = False
    included_hours: Decimal | None = None
    onboarding_workstation_months: Decimal = Decimal(0)
    onboarding_server_months: Decimal = Decimal(0)
    # A flat fee per month for the client as a whole (not per device), prorated like the device rates.
    monthly_fee: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        _require_decimals(
            self,
            "workstation_rate",
            "server_rate",
            "included_hours",
            "onboarding_workstation_months",
            "onboarding_server_months",
            "monthly_fee",
        )

    @property
    def has_onboarding_fee(self) -> bool:
        """Whether the contract charges an onboarding fee for any class of device."""
        return bool(self.onboarding_workstation_months or self.onboarding_server_months)

    def monthly_rate(self, device_class: DeviceClass) -> Decimal:
        """What one device of the class costs for a full month (network devices are not charged)."""
        return {"workstation": self.workstation_rate, "server": self.server_rate}.get(
            device_class, Decimal(0)
        )

    def onboarding_months(self, device_class: DeviceClass) -> Decimal:
        """How many months' rate the onboarding fee charges for one device of the class."""
        by_class = {
            "workstation": self.onboarding_workstation_months,
            "server": self.onboarding_server_months,
        }
        return by_class.get(device_class, Decimal(0))


@dataclass(frozen=True)
class BreakFixRates:
    """One effective-dated version of the break/fix rate card (time not covered by a contract).

    Minimums apply per visit (an incident's time on one day), then the billed minutes round up to the
    increment. The multiplier applies once when the visit is after hours or an emergency's call-out (not
    twice when both); the agreed emergency minimum applies to that call-out visit only.
    """

    effective_from: date
    effective_to: date | None
    hourly_rate: Decimal
    minimum_minutes: int
    increment_minutes: int
    after_hours_multiplier: Decimal
    onsite_minimum_minutes: int
    emergency_minimum_minutes: int = 0

    def __post_init__(self) -> None:
        _require_decimals(self, "hourly_rate", "after_hours_multiplier")
        if self.increment_minutes < 1:
            raise ValueError("increment_minutes must be at least 1")


@dataclass(frozen=True)
class Device:
    """A device as billing sees it: its class and the days it was under management (both ends inclusive)."""

    device_id: Id
    device_class: DeviceClass
    active_from: date
    active_to: date | None = None

    def active_between(self, first: date, last: date) -> bool:
        """Whether the device was active on any day from `first` to `last`."""
        return self.active_from <= last and (self.active_to is None or self.active_to >= first)


@dataclass(frozen=True)
class Incident:
    """A piece of work for a client, opened from an alert (`alert_id`) or by hand."""

    id: Id
    client: Id
    title: str
    category: str
    opened_at: datetime
    alert_id: Id | None = None
    emergency: bool = False


@dataclass(frozen=True)
class TimeEntry:
    """Time a technician spent on an incident; `override` (with its reason) replaces the automatic class."""

    id: Id
    incident_id: Id
    technician: str
    start: datetime
    minutes: int
    on_site: bool = False
    after_hours: bool = False
    override: Classification | None = None
    override_reason: str | None = None

    def __post_init__(self) -> None:
        if self.minutes < 0:
            raise ValueError("minutes must not be negative")
        if self.override is not None and not (self.override_reason or "").strip():
            raise ValueError("an override needs a reason")


@dataclass(frozen=True)
class Part:
    """Hardware fitted for an incident (e.g. a replacement SSD): what it cost us and what the client pays."""

    id: Id
    incident_id: Id
    day: date
    description: str
    cost: Decimal
    price: Decimal
    quantity: int = 1

    def __post_init__(self) -> None:
        _require_decimals(self, "cost", "price")


@dataclass(frozen=True)
class Charge:
    """A one-off charge (project work, a fixed-price installation), invoiced in the month of its day."""

    id: Id
    client: Id
    day: date
    description: str
    amount: Decimal

    def __post_init__(self) -> None:
        _require_decimals(self, "amount")


@dataclass(frozen=True)
class InvoiceLine:
    """One charged line; `amount` is authoritative, `quantity` and `unit_price` explain it to a reader."""

    kind: LineKind
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    ref: str = ""


@dataclass(frozen=True)
class Totals:
    """An invoice's sums by kind of line, the subtotal, the tax on it and the grand total."""

    currency: str
    contract: Decimal
    onboarding: Decimal
    fee: Decimal
    time: Decimal
    parts: Decimal
    subtotal: Decimal
    tax: Decimal
    total: Decimal


KINDS: tuple[LineKind, ...] = ("contract", "onboarding", "fee", "time", "parts")


@dataclass(frozen=True)
class Tax:
    """The tax an invoice charges: a rate in percent and its name, or an exemption saying why there is none."""

    rate: Decimal = Decimal(0)
    label: str = "VAT"
    exemption: str = ""

    def __post_init__(self) -> None:
        _require_decimals(self, "rate")
        if not Decimal(0) <= self.rate < Decimal(100):
            raise ValueError("a tax rate is a percentage from 0 to below 100")

    @property
    def charged(self) -> Decimal:
        """The rate that applies: none when exempt."""
        return Decimal(0) if self.exemption else self.rate

    @property
    def text(self) -> str:
        """The tax as an invoice names it: "VAT 19%", or the exemption's reason."""
        return self.exemption or f"{self.label} {self.rate.normalize():f}%"


@dataclass(frozen=True)
class Invoice:
    """A client's invoice for one month (`month` is its first day)."""

    client: Id
    month: date
    currency: str
    lines: tuple[InvoiceLine, ...]
    tax: Tax = Tax()

    def totals(self) -> Totals:
        """Sums of the (already quantised) lines by kind; tax on the subtotal, rounded once, half up to cents."""
        by_kind = dict.fromkeys(KINDS, Decimal("0.00"))
        for line in self.lines:
            by_kind[line.kind] += line.amount
        subtotal = sum(by_kind.values(), Decimal("0.00"))
        tax = (subtotal * self.tax.charged / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        return Totals(currency=self.currency, subtotal=subtotal, tax=tax, total=subtotal + tax, **by_kind)
