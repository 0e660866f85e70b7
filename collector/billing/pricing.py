"""Pricing: which contract and rates are in force, how time is classified and priced, and the monthly invoice.

Money rule: every amount is a `Decimal`; a line's amount is computed from unrounded inputs (rate x multiplier
x minutes / 60, rate x days / days in month, ...) and quantised once, to cents with ROUND_HALF_UP. Totals are
sums of quantised lines, so a printed invoice always adds up. Quantities shown beside an amount (hours,
fractions of a month) are rounded to 4 places for display only.

Days are taken from datetimes as given (`entry.start.date()`): pass local times to bill by local day.
"""

from __future__ import annotations

import calendar
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol, TypeVar

from collector.billing.model import (
    BreakFixRates,
    Classification,
    Contract,
    Device,
    DeviceClass,
    Id,
    Incident,
    Invoice,
    InvoiceLine,
    Part,
    TimeEntry,
)

CENT = Decimal("0.01")
QUANTITY = Decimal("0.0001")
# Time on these incident categories is never charged: our own housekeeping, or redoing our own work.
NON_BILLABLE_CATEGORIES = frozenset({"internal", "rework"})
CHARGED_CLASSES: tuple[DeviceClass, ...] = ("workstation", "server")


class EffectiveDated(Protocol):
    """Anything in force from `effective_from` to `effective_to` (inclusive; None is open-ended)."""

    @property
    def effective_from(self) -> date: ...

    @property
    def effective_to(self) -> date | None: ...


Dated = TypeVar("Dated", bound=EffectiveDated)


def cents(amount: Decimal) -> Decimal:
    """An amount quantised to cents, halves rounded away from zero (ROUND_HALF_UP)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def month_bounds(month: date) -> tuple[date, date]:
    """The first and last day of the month containing `month`."""
    days = calendar.monthrange(month.year, month.month)[1]
    return month.replace(day=1), month.replace(day=days)


def in_force(records: Iterable[Dated], day: date) -> Dated | None:
    """The contract or rate card in force on `day`: of those covering the day, the latest `effective_from`.

    A January rate change is a new version from 1 January: December's days are still covered only by the
    old version, so December's invoice does not change. Two versions starting the same day are an error.
    """
    covering = [
        r for r in records if r.effective_from <= day and (r.effective_to is None or day <= r.effective_to)
    ]
    if not covering:
        return None
    latest = max(covering, key=lambda r: r.effective_from)
    if sum(r.effective_from == latest.effective_from for r in covering) > 1:
        raise ValueError(f"two versions take effect on {latest.effective_from}; end or remove one")
    return latest


def classify(entry: TimeEntry, incident: Incident, contract: Contract | None) -> Classification:
    """Covered by the contract in force, billable at break/fix rates, or non-billable; an override wins."""
    if entry.override is not None:
        return entry.override
    if incident.category in NON_BILLABLE_CATEGORIES:
        return "non_billable"
    if contract is None:
        return "billable"
    in_scope = contract.covers_onsite if entry.on_site else contract.covers_remote
    if entry.after_hours and not contract.covers_after_hours:
        in_scope = False
    return "covered" if in_scope else "billable"


def billed_minutes(entry: TimeEntry, rates: BreakFixRates) -> int:
    """The entry's minutes raised to the minimum (and on-site call-out minimum), rounded up by increment."""
    onsite = rates.onsite_minimum_minutes if entry.on_site else 0
    minutes = max(entry.minutes, rates.minimum_minutes, onsite)
    return -(-minutes // rates.increment_minutes) * rates.increment_minutes


def price_entry(entry: TimeEntry, incident: Incident, rates: BreakFixRates) -> InvoiceLine:
    """The entry priced at break/fix rates: minimums, increment, then the after-hours/emergency multiplier."""
    minutes = billed_minutes(entry, rates)
    surcharged = entry.after_hours or incident.emergency
    hourly = rates.hourly_rate * (rates.after_hours_multiplier if surcharged else 1)
    notes = [
        f"{incident.title}: {entry.technician} on {entry.start:%Y-%m-%d}",
        f"{entry.minutes} min worked, {minutes} min billed",
        *(["on-site"] if entry.on_site else []),
        *(["after hours"] if entry.after_hours else []),
        *(["emergency"] if incident.emergency else []),
        *([f"x{rates.after_hours_multiplier.normalize()}"] if surcharged else []),
    ]
    return InvoiceLine(
        kind="time",
        description=", ".join(notes),
        quantity=(Decimal(minutes) / 60).quantize(QUANTITY, rounding=ROUND_HALF_UP),
        unit_price=cents(hourly),
        amount=cents(hourly * minutes / 60),
        ref=f"entry:{entry.id}",
    )


def _rates_on(rates: Sequence[BreakFixRates], day: date) -> BreakFixRates:
    """The rate card in force on `day`; billable time without one is a configuration error."""
    card = in_force(rates, day)
    if card is None:
        raise ValueError(f"no break/fix rates in force on {day}")
    return card


def breakfix_equivalent(
    incidents: Iterable[Incident], entries: Iterable[TimeEntry], rates: Sequence[BreakFixRates]
) -> Decimal:
    """What the entries would cost without a contract: `price_entry` summed over all but non-billable ones."""
    by_id = {incident.id: incident for incident in incidents}
    total = Decimal("0.00")
    for entry in entries:
        incident = by_id[entry.incident_id]
        if classify(entry, incident, None) != "non_billable":
            total += price_entry(entry, incident, _rates_on(rates, entry.start.date())).amount
    return total


def _contract_lines(
    contracts: Sequence[Contract], devices: Iterable[Device], first: date, last: date
) -> list[InvoiceLine]:
    """Devices x monthly rate; a device not under contract all month pays (its days / days in month)."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    full: Counter[tuple[Contract, DeviceClass]] = Counter()
    prorated: list[InvoiceLine] = []
    for device in sorted(devices, key=lambda d: str(d.device_id)):
        if device.device_class not in CHARGED_CLASSES:
            continue
        days_under: Counter[Contract] = Counter()
        for day in days:
            contract = in_force(contracts, day) if device.active_between(day, day) else None
            if contract is not None:
                days_under[contract] += 1
        for contract, count in days_under.items():
            if count == len(days):
                full[contract, device.device_class] += 1
                continue
            rate = contract.monthly_rate(device.device_class)
            prorated.append(
                InvoiceLine(
                    kind="contract",
                    description=f"{device.device_class.capitalize()} {device.device_id}, "
                    f"{count}/{len(days)} days",
                    quantity=(Decimal(count) / len(days)).quantize(QUANTITY, rounding=ROUND_HALF_UP),
                    unit_price=rate,
                    amount=cents(rate * count / len(days)),
                    ref=f"device:{device.device_id}",
                )
            )
    ordered = sorted(
        full.items(), key=lambda item: (item[0][0].effective_from, CHARGED_CLASSES.index(item[0][1]))
    )
    whole = [
        InvoiceLine(
            kind="contract",
            description=f"{device_class.capitalize()}s under contract, {first:%B %Y}",
            quantity=Decimal(count),
            unit_price=contract.monthly_rate(device_class),
            amount=cents(contract.monthly_rate(device_class) * count),
        )
        for (contract, device_class), count in ordered
    ]
    return whole + prorated


def _onboarding_lines(
    contracts: Sequence[Contract], devices: Sequence[Device], first: date, last: date
) -> list[InvoiceLine]:
    """In a contract's first month: months' rate x every device of the class under management that month."""
    lines = []
    for start in sorted({c.start for c in contracts if first <= c.start <= last}):
        contract = in_force(contracts, start)
        if contract is None or contract.start != start:
            continue
        for device_class in CHARGED_CLASSES:
            months = contract.onboarding_months(device_class)
            count = sum(d.device_class == device_class and d.active_between(start, last) for d in devices)
            if months and count:
                per_device = months * contract.monthly_rate(device_class)
                lines.append(
                    InvoiceLine(
                        kind="onboarding",
                        description=f"Onboarding, {device_class}s: {months.normalize()} months' rate each",
                        quantity=Decimal(count),
                        unit_price=cents(per_device),
                        amount=cents(per_device * count),
                    )
                )
    return lines


def _time_lines(
    contracts: Sequence[Contract],
    rates: Sequence[BreakFixRates],
    incidents: dict[Id, Incident],
    entries: Iterable[TimeEntry],
    first: date,
    last: date,
) -> list[InvoiceLine]:
    """Billable entries priced; covered time beyond the contract's included hours priced for its excess."""
    mine = [e for e in entries if e.incident_id in incidents and first <= e.start.date() <= last]
    covered_minutes = 0
    lines = []
    for entry in sorted(mine, key=lambda e: (e.start, str(e.id))):
        incident, day = incidents[entry.incident_id], entry.start.date()
        contract = in_force(contracts, day)
        classification = classify(entry, incident, contract)
        if classification == "billable":
            lines.append(price_entry(entry, incident, _rates_on(rates, day)))
        elif classification == "covered" and contract is not None and contract.included_hours is not None:
            # Included hours are consumed in time order; the part of an entry past them is break/fix work.
            left = max(int(contract.included_hours * 60) - covered_minutes, 0)
            covered_minutes += min(entry.minutes, left)
            if entry.minutes > left:
                line = price_entry(
                    replace(entry, minutes=entry.minutes - left), incident, _rates_on(rates, day)
                )
                lines.append(replace(line, description=f"{line.description}, beyond included hours"))
    return lines


def _part_lines(
    parts: Iterable[Part], incidents: dict[Id, Incident], first: date, last: date
) -> list[InvoiceLine]:
    """Parts fitted this month at their price; hardware is charged whether or not the labour is covered."""
    mine = [p for p in parts if p.incident_id in incidents and first <= p.day <= last]
    return [
        InvoiceLine(
            kind="parts",
            description=f"{part.description} ({incidents[part.incident_id].title})",
            quantity=Decimal(part.quantity),
            unit_price=part.price,
            amount=cents(part.price * part.quantity),
            ref=f"part:{part.id}",
        )
        for part in sorted(mine, key=lambda p: (p.day, str(p.id)))
    ]


def monthly_invoice(
    client: Id,
    month: date,
    contracts: Iterable[Contract],
    rates: Sequence[BreakFixRates],
    devices: Sequence[Device],
    incidents: Iterable[Incident],
    entries: Iterable[TimeEntry],
    parts: Iterable[Part],
    *,
    currency: str,
) -> Invoice:
    """The client's invoice for the month containing `month`: contract fees, onboarding, billable time, parts.

    `devices` are the client's devices; contracts and incidents of other clients are ignored, and entries
    and parts count when their incident is this client's and they fall in the month.
    """
    first, last = month_bounds(month)
    own_contracts = [c for c in contracts if c.client == client]
    own_incidents = {i.id: i for i in incidents if i.client == client}
    lines = [
        *_contract_lines(own_contracts, devices, first, last),
        *_onboarding_lines(own_contracts, devices, first, last),
        *_time_lines(own_contracts, rates, own_incidents, entries, first, last),
        *_part_lines(parts, own_incidents, first, last),
    ]
    return Invoice(client=client, month=first, currency=currency, lines=tuple(lines))
