"""Incidents and the work on them: opening (from an alert or by hand), timers, time entries, overrides,
notes, parts, linking alerts, closing; and an incident with everything it holds."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, Field

from collector.billing.ledger import Ledger, billing_settings
from collector.billing.model import Classification, Part
from collector.billing.sentences import clean, client_sentence
from collector.services.base import Service
from collector.services.billing import ledger_of
from collector.services.errors import Conflict, Invalid, NotFound
from collector.services.inputs import TECHNICIAN, Input
from collector.services.views import entry_view, incident_view, note_view, part_view
from collector.store import AlertRow, Tx
from collector.store.billing_rows import IncidentRow, NoteRow, TimeEntryRow
from shared.base import Int

TimerAction = Literal["start", "stop"]
TIMER_EVENTS: dict[TimerAction, str] = {"start": "time.started", "stop": "time.stopped"}
IncidentStatus = Literal["open", "closed"]
NEEDS_REASON = "billing it differently than the contract says needs a reason"


class IncidentInput(Input):
    """A new incident: from an alert (`alert_id`) or by hand (`client` and `title`)."""

    alert_id: Int | None = None
    client: str | None = None
    title: str | None = Field(None, min_length=1, max_length=200)
    category: str | None = Field(None, min_length=1, max_length=40)
    emergency: bool = False
    technician: str = TECHNICIAN


class NoteInput(Input):
    """A note on an incident."""

    text: str = Field(min_length=1, max_length=4000)
    technician: str = TECHNICIAN


class CloseInput(Input):
    """Closing an incident, with what fixed it."""

    resolution: str = Field("", max_length=4000)
    technician: str = TECHNICIAN


class LinkInput(Input):
    """Another alert for an incident."""

    alert_id: Int


class TimerInput(Input):
    """Starting or stopping a technician's timer on an incident."""

    technician: str = TECHNICIAN
    on_site: bool = False
    after_hours: bool = False


class TimeInput(Input):
    """Work done, by duration."""

    minutes: int = Field(gt=0, le=24 * 60)
    start: AwareDatetime | None = Field(None, description="when the work began (default: `minutes` ago)")
    technician: str = TECHNICIAN
    on_site: bool = False
    after_hours: bool = False
    override: Classification | None = None
    override_reason: str | None = Field(None, max_length=500)
    note: str = Field("", max_length=2000)


class TitleInput(Input):
    """A new title for an incident: what the client reads on the invoice and in the value report."""

    title: str = Field(min_length=1, max_length=200)
    technician: str = TECHNICIAN


class TimeEditInput(Input):
    """A finished time entry corrected: only the fields given change."""

    minutes: int | None = Field(None, gt=0, le=24 * 60)
    start: AwareDatetime | None = None
    on_site: bool | None = None
    after_hours: bool | None = None
    note: str | None = Field(None, max_length=2000)
    technician: str = TECHNICIAN


class OverrideInput(Input):
    """Billing an entry differently than the rules would (None: back to the automatic classification)."""

    override: Classification | None
    reason: str | None = Field(None, max_length=500)


class PartInput(Input):
    """Hardware fitted, with what it cost and what the client pays."""

    description: str = Field(min_length=1, max_length=200)
    cost: Decimal = Field(ge=0, decimal_places=2)
    price: Decimal = Field(ge=0, decimal_places=2)
    quantity: int = Field(1, ge=1)
    day: date | None = Field(None, description="default: today in the billing time zone")


@dataclass(frozen=True)
class BilledEntry:
    """A time entry and how it is billed (None while it runs)."""

    entry: TimeEntryRow
    classification: Classification | None
    # What its month's invoice charges for it (None: running, or the month cannot be priced yet).
    charged: Decimal | None = None

    def view(self) -> dict[str, Any]:
        """The entry as the API and the feed show it."""
        return {**entry_view(self.entry, self.classification),
                "charged": None if self.charged is None else f"{self.charged:.2f}"}


@dataclass(frozen=True)
class IncidentSummary:
    """An incident in a list: minutes worked on it, and whether a timer runs on it."""

    incident: IncidentRow
    minutes: int
    running: bool


@dataclass(frozen=True)
class AlertHistory:
    """An alert of an incident with its history, oldest first."""

    alert: AlertRow
    events: list[tuple[datetime, str, str, dict[str, Any]]]


@dataclass(frozen=True)
class IncidentDetail:
    """An incident with its alerts, notes, and the client's ledger (its time entries and parts)."""

    incident: IncidentRow
    alerts: list[AlertHistory]
    notes: list[NoteRow]
    ledger: Ledger

    @property
    def entries(self) -> list[TimeEntryRow]:
        """The incident's time entries."""
        return [e for e in self.ledger.entries if e.incident_id == self.incident.incident_id]

    @property
    def parts(self) -> list[Part]:
        """The parts fitted on the incident."""
        return [p for p in self.ledger.parts if p.incident_id == self.incident.incident_id]


def check_override(override: Classification | None, reason: str | None, field: str) -> str | None:
    """The reason to store with an override (None without one), or Invalid when an override has none."""
    if override is None:
        return None
    if not (reason or "").strip():
        raise Invalid(field, NEEDS_REASON)
    return reason


async def incident_of(tx: Tx, incident_id: int) -> IncidentRow:
    """The incident, or NotFound."""
    incident = await tx.incident(incident_id)
    if incident is None:
        raise NotFound(f"there is no incident {incident_id}")
    return incident


def title_of(alert: AlertRow, limit: int = 120) -> str:
    """An incident's first title from its alert: the rule's client sentence (it reaches invoices), cut at a word."""
    return clean(client_sentence(alert, "open"), limit)


async def entry_of(tx: Tx, entry_id: int) -> TimeEntryRow:
    """The time entry, or NotFound."""
    entry = await tx.time_entry(entry_id)
    if entry is None:
        raise NotFound(f"there is no time entry {entry_id}")
    return entry


async def refuse_if_invoiced(tx: Tx, client: str, what: TimeEntryRow | Part) -> None:
    """Conflict when the time entry's or part's month is on an issued invoice: issued invoices never change."""
    ledger = await ledger_of(tx, client)
    if isinstance(what, Part):
        day, name = what.day, f"the part {what.description!r} of {what.day}"
    else:
        day, name = what.started_at.astimezone(ledger.settings.zone).date(), f"time entry {what.entry_id}"
    for issued in await tx.issued_invoices(ledger.client_id, day.replace(day=1)):
        if issued.voided_at is None:
            raise Conflict(f"{name} is billed on invoice {issued.number}, issued already: "
                           "void that invoice to change it")


async def billed(tx: Tx, client: str, entry: TimeEntryRow) -> BilledEntry:
    """How a stored entry is billed and what it is charged, read inside the same transaction."""
    ledger = await ledger_of(tx, client)
    return BilledEntry(entry, ledger.classification(entry), ledger.entry_charges([entry])[0].get(entry.entry_id))


class Incidents(Service):
    """Incidents and the work on them."""

    async def of_alert(self, alert_id: int) -> int | None:
        """The incident an alert belongs to, if any."""
        async with self.store.read() as tx:
            return await tx.incident_of_alert(alert_id)

    async def open(self, wanted: IncidentInput) -> IncidentRow:
        """Open an incident from an alert (its client, summary and rule, keeping the link) or by hand."""
        async with self.store.transaction() as tx:
            if wanted.alert_id is not None:
                alert = await tx.alert(wanted.alert_id)
                if alert is None:
                    raise NotFound(f"there is no alert {wanted.alert_id}")
                client, title = alert.owner.client, wanted.title or title_of(alert)
                category = wanted.category or alert.rule
            elif wanted.client and wanted.title:
                client, title, category = wanted.client, wanted.title, wanted.category or "request"
            else:
                raise Invalid(None, "give alert_id, or client and title")
            ledger = await ledger_of(tx, client)
            incident = await tx.add_incident(ledger.client_id, title, category, wanted.emergency,
                                             wanted.alert_id, self.clock(), wanted.technician)
            if incident is None:
                raise Conflict(f"alert {wanted.alert_id} belongs to incident "
                               f"{await tx.incident_of_alert(wanted.alert_id or 0)} already")
            await self.publish(tx, "incident.opened", incident_view(incident))
        return incident

    async def overview(self, client: str | None = None,
                       status: IncidentStatus | None = None) -> list[IncidentSummary]:
        """Incidents (of one client, in one status, or all), oldest first, with the minutes worked on each."""
        async with self.store.read() as tx:
            client_id = (await ledger_of(tx, client)).client_id if client is not None else None
            incidents = await tx.incidents(client_id, status)
            entries = await tx.time_entries(client_id=client_id)
        minutes: dict[int, int] = {}
        running: set[int] = set()
        for entry in entries:
            minutes[entry.incident_id] = minutes.get(entry.incident_id, 0) + (entry.minutes or 0)
            if entry.running:
                running.add(entry.incident_id)
        return [IncidentSummary(i, minutes.get(i.incident_id, 0), i.incident_id in running) for i in incidents]

    async def detail(self, incident_id: int) -> IncidentDetail:
        """The incident, its alerts with their history, its notes, and its client's ledger."""
        async with self.store.read() as tx:
            incident = await incident_of(tx, incident_id)
            ledger = await ledger_of(tx, incident.client)
            alerts = []
            for alert_id in incident.alert_ids:
                alert = await tx.alert(alert_id)
                if alert is not None:
                    alerts.append(AlertHistory(alert, await tx.alert_events(alert_id)))
            notes = await tx.incident_notes(incident_id)
        return IncidentDetail(incident, alerts, notes, ledger)

    async def add_note(self, incident_id: int, wanted: NoteInput) -> NoteRow:
        """What was found or done, in words the client can read."""
        async with self.store.transaction() as tx:
            incident = await incident_of(tx, incident_id)
            note = await tx.add_incident_note(incident_id, self.clock(), wanted.technician, wanted.text)
            await self.publish(tx, "incident.noted", {**note_view(note), "client": incident.client})
        return note

    async def link_alert(self, incident_id: int, alert_id: int) -> IncidentRow:
        """Add another alert (of the same client) to the incident."""
        async with self.store.transaction() as tx:
            incident = await incident_of(tx, incident_id)
            alert = await tx.alert(alert_id)
            if alert is None or alert.owner.client != incident.client:
                raise NotFound(f"there is no alert {alert_id} of {incident.client}")
            if not await tx.link_alert(incident_id, alert_id, self.clock()):
                raise Conflict(f"alert {alert_id} belongs to incident {await tx.incident_of_alert(alert_id)} "
                               "already")
            linked = await incident_of(tx, incident_id)
            await self.publish(tx, "incident.linked", incident_view(linked))
        return linked

    async def close(self, incident_id: int, wanted: CloseInput) -> IncidentRow:
        """Close the incident, with what fixed it."""
        async with self.store.transaction() as tx:
            await incident_of(tx, incident_id)
            closed = await tx.close_incident(incident_id, self.clock(), wanted.technician, wanted.resolution)
            if closed is None:
                raise Conflict(f"incident {incident_id} is closed already")
            await self.publish(tx, "incident.closed", incident_view(closed))
        return closed

    async def timer(self, incident_id: int, action: TimerAction, wanted: TimerInput) -> BilledEntry:
        """Start or stop the technician's timer on the incident: time the work as it happens."""
        now = self.clock()
        async with self.store.transaction() as tx:
            incident = await incident_of(tx, incident_id)
            if action == "start":
                entry = await tx.start_timer(incident_id, wanted.technician, now, wanted.on_site,
                                             wanted.after_hours)
                problem = f"{wanted.technician}'s timer on incident {incident_id} is running already"
            else:
                entry = await tx.stop_timer(incident_id, wanted.technician, now)
                problem = f"{wanted.technician} has no timer running on incident {incident_id}"
            if entry is None:
                raise Conflict(problem)
            done = await billed(tx, incident.client, entry)
            await self.publish(tx, TIMER_EVENTS[action], {**done.view(), "client": incident.client})
        return done

    async def add_time(self, incident_id: int, wanted: TimeInput) -> BilledEntry:
        """Work done, by duration (ending now unless it says when it began); an override needs a reason."""
        reason = check_override(wanted.override, wanted.override_reason, "override_reason")
        start = wanted.start or self.clock() - timedelta(minutes=wanted.minutes)
        async with self.store.transaction() as tx:
            incident = await incident_of(tx, incident_id)
            entry = await tx.add_time_entry(TimeEntryRow(
                0, incident_id, wanted.technician, start, start + timedelta(minutes=wanted.minutes),
                wanted.minutes, wanted.on_site, wanted.after_hours, wanted.override, reason, wanted.note))
            done = await billed(tx, incident.client, entry)
            await self.publish(tx, "time.added", {**done.view(), "client": incident.client})
        return done

    async def retitle(self, incident_id: int, wanted: TitleInput) -> IncidentRow:
        """Give the incident the title the client should read (an alert's summary is a technician's words)."""
        async with self.store.transaction() as tx:
            before = await incident_of(tx, incident_id)
            title = " ".join(wanted.title.split())
            if not title:
                raise Invalid("title", "the title must not be blank")
            after = await tx.retitle_incident(incident_id, title)
            assert after is not None
            await self.publish(tx, "incident.retitled", {**incident_view(after), "was": before.title,
                                                         "by": wanted.technician})
        return after

    async def edit_time(self, entry_id: int, wanted: TimeEditInput) -> BilledEntry:
        """Correct a finished entry (minutes, start, place, hours, note); the feed keeps what it was."""
        async with self.store.transaction() as tx:
            before = await entry_of(tx, entry_id)
            if before.running:
                raise Conflict(f"time entry {entry_id} is a running timer: stop it first")
            incident = await incident_of(tx, before.incident_id)
            await refuse_if_invoiced(tx, incident.client, before)
            start = wanted.start or before.started_at
            minutes = wanted.minutes or before.minutes or 0
            after = await tx.edit_time_entry(replace(
                before, started_at=start, stopped_at=start + timedelta(minutes=minutes), minutes=minutes,
                on_site=before.on_site if wanted.on_site is None else wanted.on_site,
                after_hours=before.after_hours if wanted.after_hours is None else wanted.after_hours,
                note=before.note if wanted.note is None else wanted.note))
            assert after is not None
            await refuse_if_invoiced(tx, incident.client, after)
            done = await billed(tx, incident.client, after)
            await self.publish(tx, "time.edited", {**done.view(), "client": incident.client,
                                                   "was": entry_view(before),
                                                   "by": wanted.technician})
        return done

    async def delete_time(self, entry_id: int, technician: str) -> TimeEntryRow:
        """Delete a time entry (recorded in error); the feed keeps what it was and who deleted it."""
        async with self.store.transaction() as tx:
            entry = await entry_of(tx, entry_id)
            incident = await incident_of(tx, entry.incident_id)
            await refuse_if_invoiced(tx, incident.client, entry)
            await tx.delete_time_entry(entry_id)
            await self.publish(tx, "time.deleted", {**entry_view(entry, None), "client": incident.client,
                                                    "by": technician})
        return entry

    async def override(self, entry_id: int, wanted: OverrideInput) -> BilledEntry:
        """Bill an entry differently than the rules would, saying why (None: as the rules say)."""
        reason = check_override(wanted.override, wanted.reason, "reason")
        async with self.store.transaction() as tx:
            entry = await tx.override_time_entry(entry_id, wanted.override, reason)
            if entry is None:
                raise NotFound(f"there is no time entry {entry_id}")
            incident = await incident_of(tx, entry.incident_id)
            await refuse_if_invoiced(tx, incident.client, entry)
            done = await billed(tx, incident.client, entry)
            await self.publish(tx, "time.overridden", {**done.view(), "client": incident.client})
        return done

    async def delete_part(self, part_id: int, technician: str) -> Part:
        """Delete a part recorded in error (re-add it to correct it); the feed keeps what it was."""
        async with self.store.transaction() as tx:
            part = await tx.delete_part(part_id)
            if part is None:
                raise NotFound(f"there is no part {part_id}")
            incident = await incident_of(tx, part.incident_id)
            await refuse_if_invoiced(tx, incident.client, part)
            await self.publish(tx, "part.deleted", {**part_view(part), "client": incident.client, "by": technician})
        return part

    async def add_part(self, incident_id: int, wanted: PartInput) -> Part:
        """Hardware fitted (on `day`, default today in the billing time zone)."""
        async with self.store.transaction() as tx:
            incident = await incident_of(tx, incident_id)
            day = wanted.day or self.clock().astimezone((await billing_settings(tx)).zone).date()
            part = await tx.add_part(Part(0, incident_id, day, wanted.description, wanted.cost, wanted.price,
                                          wanted.quantity))
            await refuse_if_invoiced(tx, incident.client, part)
            await self.publish(tx, "part.added", {**part_view(part), "client": incident.client})
        return part
