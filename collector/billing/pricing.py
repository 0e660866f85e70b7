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
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol, TypeVar

from collector.billing.model import (
    BreakFixRates,
    Charge,
    Classification,
    Contract,
    Device,
    DeviceClass,
    Id,
    Incident,
    Invoice,
    InvoiceLine,
    Part,
    Tax,
    TimeEntry,
)

CENT = Decimal("0.01")
QUANTITY = Decimal("0.0001")
# Time on these incident categories is never charged: our own housekeeping, or redoing our own work.
NON_BILLABLE_CATEGORIES = frozenset({"internal", "rework"})
CHARGED_CLASSES: tuple[DeviceClass, ...] = ("workstation", "server")
NO_TAX = Tax()
# A time line's `ref`: this prefix, then the ids of the visit's entries joined by commas.
VISIT_REF = "entries:"


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


@dataclass(frozen=True)
class Visit:
    """Time on one incident on one local day, priced as one: minimums and rounding apply once per visit.

    After-hours work and time beyond a contract's included hours are visits of their own, so their
    multiplier or missing minimum never spreads to the rest of the day. `callout` marks an emergency
    incident's first visit: the only one its emergency minimum and surcharge apply to.
    """

    incident: Incident
    day: date
    entries: tuple[TimeEntry, ...]
    after_hours: bool = False
    callout: bool = False
    beyond_included: bool = False

    @property
    def worked(self) -> int:
        """Minutes worked on the visit."""
        return sum(e.minutes for e in self.entries)

    @property
    def on_site(self) -> bool:
        """Whether any of it was on site (the on-site minimum then applies to the visit)."""
        return any(e.on_site for e in self.entries)


def callout_days(incidents: Iterable[Incident], entries: Iterable[TimeEntry]) -> dict[Id, date]:
    """Each emergency incident's call-out day: the first day anyone recorded time on it."""
    emergencies = {i.id for i in incidents if i.emergency}
    days: dict[Id, date] = {}
    for entry in entries:
        if entry.incident_id in emergencies:
            day = entry.start.date()
            days[entry.incident_id] = min(day, days.get(entry.incident_id, day))
    return days


def visits(
    entries: Iterable[TimeEntry],
    incidents: dict[Id, Incident],
    callouts: dict[Id, date],
    beyond_included: bool = False,
) -> list[Visit]:
    """The entries grouped into visits (incident, day, after hours), in time order."""
    grouped: dict[tuple[Id, date, bool], list[TimeEntry]] = {}
    for entry in sorted(entries, key=lambda e: (e.start, str(e.id))):
        grouped.setdefault((entry.incident_id, entry.start.date(), entry.after_hours), []).append(entry)
    return [
        Visit(
            incidents[incident_id],
            day,
            tuple(group),
            after_hours,
            callout=callouts.get(incident_id) == day,
            beyond_included=beyond_included,
        )
        for (incident_id, day, after_hours), group in grouped.items()
    ]


def billed_minutes(visit: Visit, rates: BreakFixRates) -> int:
    """The visit's minutes raised to its minimum (call-out, on-site, emergency), rounded up by increment.

    Time beyond included hours has no minimum: the contract already pays for the technician's coming.
    """
    minimums = [] if visit.beyond_included else [rates.minimum_minutes]
    if visit.on_site and not visit.beyond_included:
        minimums.append(rates.onsite_minimum_minutes)
    if visit.callout:
        minimums.append(rates.emergency_minimum_minutes)
    minutes = max(visit.worked, *minimums) if minimums else visit.worked
    return -(-minutes // rates.increment_minutes) * rates.increment_minutes


def price_visit(visit: Visit, rates: BreakFixRates) -> InvoiceLine:
    """The visit priced at break/fix rates: minimums, increment, then the after-hours/emergency multiplier.

    The description is what the client reads: the incident's title and the day, then how the time was billed.
    """
    minutes = billed_minutes(visit, rates)
    surcharged = visit.after_hours or visit.callout
    hourly = rates.hourly_rate * (rates.after_hours_multiplier if surcharged else 1)
    count = len(visit.entries)
    notes = [
        f"{visit.incident.title}, {visit.day.day} {visit.day:%b %Y}",
        *([f"{count} time entries"] if count > 1 else []),
        f"{visit.worked} min worked, {minutes} min billed",
        *(["on site"] if visit.on_site else []),
        *(["after hours"] if visit.after_hours else []),
        *(["emergency call-out"] if visit.callout else []),
        *([f"x{rates.after_hours_multiplier.normalize()}"] if surcharged else []),
        *(["beyond included hours"] if visit.beyond_included else []),
    ]
    return InvoiceLine(
        kind="time",
        description=", ".join(notes),
        quantity=(Decimal(minutes) / 60).quantize(QUANTITY, rounding=ROUND_HALF_UP),
        unit_price=cents(hourly),
        amount=cents(hourly * minutes / 60),
        ref=VISIT_REF + ",".join(str(e.id) for e in visit.entries),
    )


def visit_entry_ids(line: InvoiceLine) -> list[str]:
    """The ids of the time entries a time line prices (empty for other lines)."""
    return line.ref.removeprefix(VISIT_REF).split(",") if line.ref.startswith(VISIT_REF) else []


def entry_shares(line: InvoiceLine, minutes: dict[str, int]) -> dict[str, Decimal]:
    """A visit's amount shared among its entries by minutes worked (by entry id), the cents left to the last."""
    ids = visit_entry_ids(line)
    worked = sum(minutes.get(entry_id, 0) for entry_id in ids)
    shares, left = {}, line.amount
    for n, entry_id in enumerate(ids):
        share = left if n == len(ids) - 1 else cents(line.amount * minutes.get(entry_id, 0) / (worked or 1))
        shares[entry_id], left = share, left - share
    return shares


def _rates_on(rates: Sequence[BreakFixRates], day: date) -> BreakFixRates:
    """The rate card in force on `day`; billable time without one is a configuration error."""
    card = in_force(rates, day)
    if card is None:
        raise ValueError(f"no break/fix rates in force on {day}")
    return card


def breakfix_equivalent(
    incidents: Iterable[Incident],
    entries: Iterable[TimeEntry],
    rates: Sequence[BreakFixRates],
    history: Iterable[TimeEntry] | None = None,
) -> Decimal:
    """What the entries would cost without a contract: their visits priced, non-billable time left out.

    `history` (all the incidents' entries, default `entries`) tells which visit was an emergency's call-out.
    """
    entries = list(entries)
    by_id = {incident.id: incident for incident in incidents}
    callouts = callout_days(by_id.values(), entries if history is None else history)
    billable = [e for e in entries if classify(e, by_id[e.incident_id], None) != "non_billable"]
    return sum(
        (price_visit(v, _rates_on(rates, v.day)).amount for v in visits(billable, by_id, callouts)),
        Decimal("0.00"),
    )


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
    for contract in sorted({c for c in (in_force(contracts, day) for day in days) if c is not None},
                           key=lambda c: c.effective_from):
        count = sum(in_force(contracts, day) == contract for day in days)
        if contract.monthly_fee:
            whole_month = count == len(days)
            share = (Decimal(count) / len(days)).quantize(QUANTITY, rounding=ROUND_HALF_UP)
            prorated.append(
                InvoiceLine(
                    kind="contract",
                    description=f"Monthly service fee, {first:%B %Y}"
                    + ("" if whole_month else f", {count}/{len(days)} days"),
                    quantity=Decimal(1) if whole_month else share,
                    unit_price=contract.monthly_fee,
                    amount=cents(contract.monthly_fee * count / len(days)),
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
    """Billable visits and covered time beyond the contract's included hours, priced, in date order."""
    own = [e for e in entries if e.incident_id in incidents]
    callouts = callout_days(incidents.values(), own)
    billable: list[TimeEntry] = []
    beyond: list[TimeEntry] = []
    covered_minutes = 0
    for entry in sorted(own, key=lambda e: (e.start, str(e.id))):
        day = entry.start.date()
        if not first <= day <= last:
            continue
        contract = in_force(contracts, day)
        classification = classify(entry, incidents[entry.incident_id], contract)
        if classification == "billable":
            billable.append(entry)
        elif classification == "covered" and contract is not None and contract.included_hours is not None:
            # Included hours are consumed in time order; the part of an entry past them is break/fix work.
            left = max(int(contract.included_hours * 60) - covered_minutes, 0)
            covered_minutes += min(entry.minutes, left)
            if entry.minutes > left:
                beyond.append(replace(entry, minutes=entry.minutes - left))
    every = [*visits(billable, incidents, callouts), *visits(beyond, incidents, {}, beyond_included=True)]
    every.sort(key=lambda v: (v.entries[0].start, str(v.entries[0].id)))
    return [price_visit(visit, _rates_on(rates, visit.day)) for visit in every]


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


def _charge_lines(charges: Iterable[Charge], client: Id, first: date, last: date) -> list[InvoiceLine]:
    """The client's one-off charges dated in the month, in date order."""
    mine = [c for c in charges if c.client == client and first <= c.day <= last]
    return [
        InvoiceLine(kind="fee", description=f"{c.description}, {c.day.day} {c.day:%b %Y}", quantity=Decimal(1),
                    unit_price=c.amount, amount=cents(c.amount), ref=f"charge:{c.id}")
        for c in sorted(mine, key=lambda c: (c.day, str(c.id)))
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
    tax: Tax = NO_TAX,
    charges: Iterable[Charge] = (),
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
        *_charge_lines(charges, client, first, last),
        *_time_lines(own_contracts, rates, own_incidents, entries, first, last),
        *_part_lines(parts, own_incidents, first, last),
    ]
    return Invoice(client=client, month=first, currency=currency, lines=tuple(lines), tax=tax)
