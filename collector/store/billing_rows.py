"""Stored billing rows: incidents, notes, time entries, device classes, contract and rate card versions.

They turn into the pure records of `collector.billing.model` for pricing; days are read in the billing
time zone the caller passes, because the store keeps UTC moments only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any, Literal

from collector.billing.model import (
    BreakFixRates,
    Classification,
    Contract,
    Device,
    DeviceClass,
    Incident,
    TimeEntry,
)

IncidentStatus = Literal["open", "closed"]


@dataclass(frozen=True)
class DeviceBillingRow:
    """An enrolled device with its class and contact (a workstation with no contact until told otherwise).

    `active_from`/`active_to` override the days it was under management; otherwise they are the days it
    enrolled and was revoked.
    """

    agent_id: str
    hostname: str
    site: str
    enrolled_at: datetime
    revoked_at: datetime | None
    device_class: DeviceClass = "workstation"
    contact: str = ""
    active_from: date | None = None
    active_to: date | None = None

    def model(self, zone: tzinfo) -> Device:
        """The device as billing sees it, named by hostname as invoice lines show it; days read in `zone`."""
        revoked = self.revoked_at.astimezone(zone).date() if self.revoked_at else None
        return Device(
            self.hostname,
            self.device_class,
            self.active_from or self.enrolled_at.astimezone(zone).date(),
            self.active_to or revoked,
        )


@dataclass(frozen=True)
class IssuedInvoiceRow:
    """An issued invoice: its number, whose and which month, when and by whom, and its body as issued."""

    number: str
    client_id: int
    month: date
    issued_at: datetime
    issued_by: str
    due: date
    body: dict[str, Any]
    voided_at: datetime | None = None
    voided_by: str | None = None
    void_reason: str | None = None


@dataclass(frozen=True)
class ClientTax:
    """A client's own tax terms: a rate in percent (None: the default rate) or an exemption's reason."""

    tax_rate: Decimal | None = None
    exemption: str = ""


@dataclass(frozen=True)
class ContractRow:
    """One stored version of a client's contract."""

    contract_id: int
    contract: Contract


@dataclass(frozen=True)
class RatesRow:
    """One stored version of a break/fix rate card; `client_id` None is the card for every client."""

    rates_id: int
    client_id: int | None
    rates: BreakFixRates


@dataclass(frozen=True)
class IncidentRow:
    """An incident: what it is about, whose it is, where it stands and which alerts it covers."""

    incident_id: int
    client_id: int
    client: str
    title: str
    category: str
    emergency: bool
    status: IncidentStatus
    alert_id: int | None
    opened_at: datetime
    opened_by: str
    closed_at: datetime | None = None
    closed_by: str | None = None
    resolution: str | None = None
    alert_ids: tuple[int, ...] = ()

    def model(self) -> Incident:
        """The incident as pricing sees it (clients are named by id)."""
        return Incident(
            self.incident_id,
            self.client_id,
            self.title,
            self.category,
            self.opened_at,
            self.alert_id,
            self.emergency,
        )


@dataclass(frozen=True)
class NoteRow:
    """A note on an incident."""

    note_id: int
    incident_id: int
    at: datetime
    author: str
    text: str


@dataclass(frozen=True)
class TimeEntryRow:
    """Time on an incident: a running timer (`minutes` None) or finished work."""

    entry_id: int
    incident_id: int
    technician: str
    started_at: datetime
    stopped_at: datetime | None
    minutes: int | None
    on_site: bool = False
    after_hours: bool = False
    override: Classification | None = None
    override_reason: str | None = None
    note: str = ""

    @property
    def running(self) -> bool:
        """True while the timer runs."""
        return self.minutes is None

    def model(self, zone: tzinfo) -> TimeEntry:
        """The finished entry as pricing sees it, its start in `zone` so it is billed on the local day."""
        if self.minutes is None:
            raise ValueError(f"time entry {self.entry_id} is still running")
        return TimeEntry(
            self.entry_id,
            self.incident_id,
            self.technician,
            self.started_at.astimezone(zone),
            self.minutes,
            self.on_site,
            self.after_hours,
            self.override,
            self.override_reason,
        )
