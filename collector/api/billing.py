"""Endpoints for billable work: device classes, contracts, rate cards, incidents, time, parts, invoices
and the value report (HTML and PDF). Every change is also a live-feed event."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from collector import keys
from collector.alerts.dedupe import alert_view
from collector.api import error
from collector.api.notifications import invalid, zone
from collector.api.technician import Handler, technician
from collector.billing.export import generic_csv, qbo_csv, xero_csv
from collector.billing.ledger import (
    BillingSettings,
    Ledger,
    billing_settings,
    load_ledger,
    load_value_report,
    save_billing_settings,
)
from collector.billing.model import BreakFixRates, Classification, Contract, DeviceClass, Invoice, Part
from collector.billing.pricing import month_bounds
from collector.billing.report import render_html, render_pdf
from collector.store import Tx
from collector.store.billing_rows import ContractRow, DeviceBillingRow, IncidentRow, RatesRow, TimeEntryRow

TECHNICIAN = "technician"
TIMER_EVENTS = {"start": "time.started", "stop": "time.stopped"}
DAYS_TO_PAY = 14


class Body(BaseModel):
    """A request body: unknown fields are errors, and money never arrives as a float."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_floats(cls, value: Any, info: Any) -> Any:
        """Refuse a JSON number with a fraction where a Decimal is wanted: send "45.50", not 45.5."""
        if isinstance(value, float) and cls.model_fields[info.field_name].annotation in (
            Decimal,
            Decimal | None,
        ):
            raise ValueError('send amounts as strings ("45.50") so no cent is lost to floating point')
        return value


class SettingsBody(Body):
    """`POST /api/v1/billing/settings`."""

    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR, GBP, USD")
    timezone: str = Field("UTC", description="the zone whose days time is billed by, e.g. Europe/Dublin")

    _zone = field_validator("timezone")(zone)


class DeviceBody(Body):
    """`POST /api/v1/devices/{agent_id}/billing`."""

    device_class: DeviceClass
    contact: str = Field("", max_length=200)
    active_from: date | None = Field(None, description="first day under management (default: enrolment)")
    active_to: date | None = Field(None, description="last day under management (default: revocation)")


class ContractBody(Body):
    """`POST /api/v1/clients/{client}/contracts`: a new version; fields left out keep the previous ones."""

    effective_from: date | None = Field(None, description="default: `start` for the first version")
    effective_to: date | None = None
    start: date | None = None
    term_months: int | None = Field(None, gt=0)
    workstation_rate: Decimal | None = Field(None, ge=0, decimal_places=2)
    server_rate: Decimal | None = Field(None, ge=0, decimal_places=2)
    covers_remote: bool | None = None
    covers_onsite: bool | None = None
    covers_after_hours: bool | None = None
    included_hours: Decimal | None = Field(None, ge=0)
    onboarding_workstation_months: Decimal | None = Field(None, ge=0)
    onboarding_server_months: Decimal | None = Field(None, ge=0)


class RatesBody(Body):
    """`POST /api/v1/rates`: a break/fix rate card version (for one client, or everyone)."""

    client: str | None = None
    effective_from: date
    effective_to: date | None = None
    hourly_rate: Decimal = Field(ge=0, decimal_places=2)
    minimum_minutes: int = Field(60, ge=0)
    increment_minutes: int = Field(15, ge=1)
    after_hours_multiplier: Decimal = Field(Decimal("1.5"), ge=1)
    onsite_minimum_minutes: int = Field(0, ge=0)


class IncidentBody(Body):
    """`POST /api/v1/incidents`: from an alert (`alert_id`) or by hand (`client` and `title`)."""

    alert_id: int | None = None
    client: str | None = None
    title: str | None = Field(None, min_length=1, max_length=200)
    category: str | None = Field(None, min_length=1, max_length=40)
    emergency: bool = False
    technician: str = TECHNICIAN


class NoteBody(Body):
    """`POST /api/v1/incidents/{id}/notes`."""

    text: str = Field(min_length=1, max_length=4000)
    technician: str = TECHNICIAN


class CloseBody(Body):
    """`POST /api/v1/incidents/{id}/close`."""

    resolution: str = Field("", max_length=4000)
    technician: str = TECHNICIAN


class LinkBody(Body):
    """`POST /api/v1/incidents/{id}/alerts`."""

    alert_id: int


class TimerBody(Body):
    """`POST /api/v1/incidents/{id}/timer/start|stop`."""

    technician: str = TECHNICIAN
    on_site: bool = False
    after_hours: bool = False


class TimeBody(Body):
    """`POST /api/v1/incidents/{id}/time`: work done, by duration."""

    minutes: int = Field(gt=0, le=24 * 60)
    start: AwareDatetime | None = Field(None, description="when the work began (default: `minutes` ago)")
    technician: str = TECHNICIAN
    on_site: bool = False
    after_hours: bool = False
    override: Classification | None = None
    override_reason: str | None = Field(None, max_length=500)
    note: str = Field("", max_length=2000)


class OverrideBody(Body):
    """`POST /api/v1/time/{id}/override`: null `override` goes back to the automatic classification."""

    override: Classification | None
    reason: str | None = Field(None, max_length=500)


class PartBody(Body):
    """`POST /api/v1/incidents/{id}/parts`."""

    description: str = Field(min_length=1, max_length=200)
    cost: Decimal = Field(ge=0, decimal_places=2)
    price: Decimal = Field(ge=0, decimal_places=2)
    quantity: int = Field(1, ge=1)
    day: date | None = Field(None, description="default: today in the billing time zone")


def money(value: Decimal | None) -> str | None:
    """Money as exact decimal text for JSON."""
    return None if value is None else str(value)


def contract_view(row: ContractRow) -> dict[str, Any]:
    """A contract version as the API shows it."""
    c = row.contract
    return {
        "contract_id": row.contract_id,
        "effective_from": c.effective_from.isoformat(),
        "effective_to": c.effective_to.isoformat() if c.effective_to else None,
        "start": c.start.isoformat(),
        "term_months": c.term_months,
        "workstation_rate": money(c.workstation_rate),
        "server_rate": money(c.server_rate),
        "covers_remote": c.covers_remote,
        "covers_onsite": c.covers_onsite,
        "covers_after_hours": c.covers_after_hours,
        "included_hours": money(c.included_hours),
        "onboarding_workstation_months": money(c.onboarding_workstation_months),
        "onboarding_server_months": money(c.onboarding_server_months),
    }


def rates_view(row: RatesRow, client: str | None) -> dict[str, Any]:
    """A rate card version as the API shows it (`client` None: everyone's card)."""
    r = row.rates
    return {
        "rates_id": row.rates_id,
        "client": client,
        "effective_from": r.effective_from.isoformat(),
        "effective_to": r.effective_to.isoformat() if r.effective_to else None,
        "hourly_rate": money(r.hourly_rate),
        "minimum_minutes": r.minimum_minutes,
        "increment_minutes": r.increment_minutes,
        "after_hours_multiplier": money(r.after_hours_multiplier),
        "onsite_minimum_minutes": r.onsite_minimum_minutes,
    }


def device_billing_view(row: DeviceBillingRow, ledger: Ledger) -> dict[str, Any]:
    """A device with its class, contact and managed days."""
    device = row.model(ledger.settings.zone)
    return {
        "agent_id": row.agent_id,
        "hostname": row.hostname,
        "site": row.site,
        "device_class": row.device_class,
        "contact": row.contact,
        "active_from": device.active_from.isoformat(),
        "active_to": device.active_to.isoformat() if device.active_to else None,
    }


def incident_view(incident: IncidentRow) -> dict[str, Any]:
    """An incident as lists and the feed show it."""
    return {
        "incident_id": incident.incident_id,
        "client": incident.client,
        "title": incident.title,
        "category": incident.category,
        "emergency": incident.emergency,
        "status": incident.status,
        "alert_id": incident.alert_id,
        "alert_ids": list(incident.alert_ids),
        "opened_at": incident.opened_at.isoformat(),
        "opened_by": incident.opened_by,
        "closed_at": incident.closed_at.isoformat() if incident.closed_at else None,
        "closed_by": incident.closed_by,
        "resolution": incident.resolution,
    }


def entry_view(entry: TimeEntryRow, classification: Classification | None = None) -> dict[str, Any]:
    """A time entry as the API shows it, with how it is billed once it is finished."""
    return {
        "entry_id": entry.entry_id,
        "incident_id": entry.incident_id,
        "technician": entry.technician,
        "started_at": entry.started_at.isoformat(),
        "stopped_at": entry.stopped_at.isoformat() if entry.stopped_at else None,
        "minutes": entry.minutes,
        "running": entry.running,
        "on_site": entry.on_site,
        "after_hours": entry.after_hours,
        "override": entry.override,
        "override_reason": entry.override_reason,
        "note": entry.note,
        "classification": classification,
    }


def part_view(part: Part) -> dict[str, Any]:
    """A part as the API shows it."""
    return {
        "part_id": part.id,
        "incident_id": part.incident_id,
        "day": part.day.isoformat(),
        "description": part.description,
        "cost": money(part.cost),
        "price": money(part.price),
        "quantity": part.quantity,
    }


def invoice_view(invoice: Invoice) -> dict[str, Any]:
    """An invoice as JSON, amounts as exact decimal text."""
    totals = invoice.totals()
    return {
        "client": invoice.client,
        "month": f"{invoice.month:%Y-%m}",
        "currency": invoice.currency,
        "lines": [
            {
                "kind": line.kind,
                "description": line.description,
                "quantity": f"{line.quantity.normalize():f}",
                "unit_price": money(line.unit_price),
                "amount": money(line.amount),
                "ref": line.ref,
            }
            for line in invoice.lines
        ],
        "totals": {
            name: money(getattr(totals, name))
            for name in ("contract", "onboarding", "time", "parts", "total")
        },
    }


async def parse(request: web.Request, model: type[Body]) -> Any:
    """The request body as `model`, or a 422 response raised naming each bad field."""
    try:
        return model.model_validate_json(await request.read() or b"{}")
    except ValidationError as exc:
        raise Refused(invalid(exc)) from None


class Refused(Exception):
    """A handler's answer is this error response."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.text)
        self.response = response


def refused(handler: Handler) -> Handler:
    """The handler for the technician only, a `Refused` it raises answered with its response."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refused as exc:
            return exc.response

    return technician(wrapped)


def fail(status: int, message: str) -> Refused:
    """An error response to raise."""
    return Refused(error(status, message))


async def publish(request: web.Request, tx: Tx, type: str, data: dict[str, Any]) -> None:
    """Add a change to the live feed (subscribers are woken once the transaction committed)."""
    await tx.append_feed(request.app[keys.CLOCK](), type, data)


def committed(request: web.Request, body: dict[str, Any], status: int = 200) -> web.Response:
    """Wake the feed's subscribers and answer with `body`."""
    request.app[keys.FEED].notify()
    return web.json_response(body, status=status)


async def ledger_of(tx: Tx, client: str) -> Ledger:
    """The client's ledger, or 404."""
    ledger = await load_ledger(tx, client)
    if ledger is None:
        raise fail(404, f"there is no client {client!r}")
    return ledger


async def incident_of(tx: Tx, request: web.Request) -> IncidentRow:
    """The incident the path names, or 404."""
    incident_id = int(request.match_info["incident_id"])
    incident = await tx.incident(incident_id)
    if incident is None:
        raise fail(404, f"there is no incident {incident_id}")
    return incident


async def get_settings(request: web.Request) -> web.Response:
    """`GET /api/v1/billing/settings`: the currency and billing time zone."""
    async with request.app[keys.STORE].transaction() as tx:
        settings = await billing_settings(tx)
    return web.json_response({"currency": settings.currency, "timezone": settings.timezone})


async def set_settings(request: web.Request) -> web.Response:
    """`POST /api/v1/billing/settings`."""
    body = await parse(request, SettingsBody)
    async with request.app[keys.STORE].transaction() as tx:
        await save_billing_settings(tx, BillingSettings(body.currency, body.timezone))
        await publish(request, tx, "billing.settings", body.model_dump())
    return committed(request, body.model_dump())


async def set_device(request: web.Request) -> web.Response:
    """`POST /api/v1/devices/{agent_id}/billing`: the device's class, contact and managed days."""
    body = await parse(request, DeviceBody)
    agent_id = request.match_info["agent_id"]
    async with request.app[keys.STORE].transaction() as tx:
        agent = await tx.agent(agent_id)
        if agent is None or not await tx.set_device_billing(
            agent_id, body.device_class, body.contact, body.active_from, body.active_to
        ):
            raise fail(404, f"there is no device {agent_id!r}")
        ledger = await ledger_of(tx, agent.site.client_name)
        view = next(device_billing_view(d, ledger) for d in ledger.devices if d.agent_id == agent_id)
        await publish(request, tx, "device.billing", {**view, "client": ledger.client})
    return committed(request, view)


async def list_client_devices(request: web.Request) -> web.Response:
    """`GET /api/v1/clients/{client}/devices`: devices with class, contact and managed days."""
    async with request.app[keys.STORE].transaction() as tx:
        ledger = await ledger_of(tx, request.match_info["client"])
    return web.json_response({"devices": [device_billing_view(d, ledger) for d in ledger.devices]})


async def list_contracts(request: web.Request) -> web.Response:
    """`GET /api/v1/clients/{client}/contracts`: the client's contract versions, oldest first."""
    async with request.app[keys.STORE].transaction() as tx:
        ledger = await ledger_of(tx, request.match_info["client"])
        rows = await tx.contracts(ledger.client_id)
    return web.json_response({"contracts": [contract_view(r) for r in rows]})


def new_version(body: ContractBody, client_id: int, previous: Contract | None) -> Contract:
    """The contract version a body asks for: the previous version with the given fields changed."""
    given = body.model_dump(exclude_none=True, exclude={"effective_to"})
    if previous is None:
        missing = [f for f in ("start", "term_months", "workstation_rate", "server_rate") if f not in given]
        if missing:
            raise fail(422, f"a client's first contract needs {', '.join(missing)}")
        given.setdefault("effective_from", given["start"])
        return Contract(client=client_id, effective_to=body.effective_to, **given)
    if "effective_from" not in given:
        raise fail(422, "a new contract version needs effective_from (the day the change takes effect)")
    return replace(previous, effective_to=body.effective_to, **given)


async def add_contract(request: web.Request) -> web.Response:
    """`POST /api/v1/clients/{client}/contracts`: a contract, or a new version of it (a rate change)."""
    body = await parse(request, ContractBody)
    async with request.app[keys.STORE].transaction() as tx:
        ledger = await ledger_of(tx, request.match_info["client"])
        previous = max(ledger.contracts, key=lambda c: c.effective_from, default=None)
        try:
            row = await tx.add_contract(
                ledger.client_id, new_version(body, ledger.client_id, previous), request.app[keys.CLOCK]()
            )
        except ValueError as exc:
            raise fail(409, str(exc)) from None
        await publish(request, tx, "contract.added", {"client": ledger.client, **contract_view(row)})
    return committed(request, contract_view(row), 201)


async def list_rates(request: web.Request) -> web.Response:
    """`GET /api/v1/rates`: every break/fix rate card version."""
    async with request.app[keys.STORE].transaction() as tx:
        rows = await tx.rate_cards()
        clients = {c.client_id: c.name for c in await tx.clients()}
    return web.json_response({"rates": [rates_view(r, clients.get(r.client_id or 0)) for r in rows]})


async def add_rates(request: web.Request) -> web.Response:
    """`POST /api/v1/rates`: a rate card version from `effective_from`; earlier days keep theirs."""
    body = await parse(request, RatesBody)
    fields = body.model_dump(exclude={"client"})
    async with request.app[keys.STORE].transaction() as tx:
        client_id = (await ledger_of(tx, body.client)).client_id if body.client else None
        try:
            row = await tx.add_rates(client_id, BreakFixRates(**fields), request.app[keys.CLOCK]())
        except ValueError as exc:
            raise fail(409, str(exc)) from None
        view = rates_view(row, body.client)
        await publish(request, tx, "rates.added", view)
    return committed(request, view, 201)


async def open_incident(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents`: open an incident from an alert (keeping the link) or by hand."""
    body = await parse(request, IncidentBody)
    now = request.app[keys.CLOCK]()
    async with request.app[keys.STORE].transaction() as tx:
        if body.alert_id is not None:
            alert = await tx.alert(body.alert_id)
            if alert is None:
                raise fail(404, f"there is no alert {body.alert_id}")
            client, title, category = (
                alert.owner.client,
                body.title or alert.summary,
                body.category or alert.rule,
            )
        elif body.client and body.title:
            client, title, category = body.client, body.title, body.category or "request"
        else:
            raise fail(422, "give alert_id, or client and title")
        ledger = await ledger_of(tx, client)
        incident = await tx.add_incident(
            ledger.client_id, title, category, body.emergency, body.alert_id, now, body.technician
        )
        if incident is None:
            raise fail(
                409,
                f"alert {body.alert_id} belongs to incident "
                f"{await tx.incident_of_alert(body.alert_id or 0)} already",
            )
        await publish(request, tx, "incident.opened", incident_view(incident))
    return committed(request, incident_view(incident), 201)


async def list_incidents(request: web.Request) -> web.Response:
    """`GET /api/v1/incidents?client=NAME&status=open|closed|all` (default open), oldest first."""
    status = request.query.get("status", "open")
    if status not in ("open", "closed", "all"):
        raise fail(422, "status must be open, closed or all")
    async with request.app[keys.STORE].transaction() as tx:
        client_id = None
        if "client" in request.query:
            client_id = (await ledger_of(tx, request.query["client"])).client_id
        wanted = None if status == "all" else status
        incidents = await tx.incidents(client_id, wanted)  # type: ignore[arg-type]
        entries = await tx.time_entries(client_id=client_id)
    minutes: dict[int, int] = {}
    for entry in entries:
        minutes[entry.incident_id] = minutes.get(entry.incident_id, 0) + (entry.minutes or 0)
    return web.json_response(
        {"incidents": [{**incident_view(i), "minutes": minutes.get(i.incident_id, 0)} for i in incidents]}
    )


async def show_incident(request: web.Request) -> web.Response:
    """`GET /api/v1/incidents/{id}`: the incident, its alerts with their history, notes, time and parts."""
    async with request.app[keys.STORE].transaction() as tx:
        incident = await incident_of(tx, request)
        ledger = await ledger_of(tx, incident.client)
        alerts = []
        for alert_id in incident.alert_ids:
            alert = await tx.alert(alert_id)
            if alert is not None:
                history = [
                    {"at": at.isoformat(), "what": what, "by": actor, "detail": detail}
                    for at, what, actor, detail in await tx.alert_events(alert_id)
                ]
                alerts.append({**alert_view(alert), "history": history})
        notes = await tx.incident_notes(incident.incident_id)
    entries = [e for e in ledger.entries if e.incident_id == incident.incident_id]
    return web.json_response(
        {
            **incident_view(incident),
            "alerts": alerts,
            "notes": [{"at": n.at.isoformat(), "by": n.author, "text": n.text} for n in notes],
            "time": [entry_view(e, ledger.classification(e)) for e in entries],
            "minutes": sum(e.minutes or 0 for e in entries),
            "parts": [part_view(p) for p in ledger.parts if p.incident_id == incident.incident_id],
        }
    )


async def add_note(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents/{id}/notes`: what was found or done, in words the client can read."""
    body = await parse(request, NoteBody)
    async with request.app[keys.STORE].transaction() as tx:
        incident = await incident_of(tx, request)
        note = await tx.add_incident_note(
            incident.incident_id, request.app[keys.CLOCK](), body.technician, body.text
        )
        view = {
            "note_id": note.note_id,
            "incident_id": incident.incident_id,
            "at": note.at.isoformat(),
            "by": note.author,
            "text": note.text,
        }
        await publish(request, tx, "incident.noted", {**view, "client": incident.client})
    return committed(request, view, 201)


async def link_alert(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents/{id}/alerts`: add another alert to the incident."""
    body = await parse(request, LinkBody)
    async with request.app[keys.STORE].transaction() as tx:
        incident = await incident_of(tx, request)
        alert = await tx.alert(body.alert_id)
        if alert is None or alert.owner.client != incident.client:
            raise fail(404, f"there is no alert {body.alert_id} of {incident.client}")
        if not await tx.link_alert(incident.incident_id, body.alert_id, request.app[keys.CLOCK]()):
            raise fail(
                409,
                f"alert {body.alert_id} belongs to incident "
                f"{await tx.incident_of_alert(body.alert_id)} already",
            )
        linked = await incident_of(tx, request)
        await publish(request, tx, "incident.linked", incident_view(linked))
    return committed(request, incident_view(linked))


async def close_incident(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents/{id}/close`, with what fixed it."""
    body = await parse(request, CloseBody)
    async with request.app[keys.STORE].transaction() as tx:
        incident = await incident_of(tx, request)
        closed = await tx.close_incident(
            incident.incident_id, request.app[keys.CLOCK](), body.technician, body.resolution
        )
        if closed is None:
            raise fail(409, f"incident {incident.incident_id} is closed already")
        await publish(request, tx, "incident.closed", incident_view(closed))
    return committed(request, incident_view(closed))


async def timer(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents/{id}/timer/start|stop`: time the work as it happens."""
    body = await parse(request, TimerBody)
    now = request.app[keys.CLOCK]()
    action = request.match_info["action"]
    async with request.app[keys.STORE].transaction() as tx:
        incident = await incident_of(tx, request)
        if action == "start":
            entry = await tx.start_timer(
                incident.incident_id, body.technician, now, body.on_site, body.after_hours
            )
            problem = f"{body.technician}'s timer on incident {incident.incident_id} is running already"
        else:
            entry = await tx.stop_timer(incident.incident_id, body.technician, now)
            problem = f"{body.technician} has no timer running on incident {incident.incident_id}"
        if entry is None:
            raise fail(409, problem)
        view = entry_view(entry, await classification_of(tx, incident, entry))
        await publish(request, tx, TIMER_EVENTS[action], {**view, "client": incident.client})
    return committed(request, view, 201 if action == "start" else 200)


async def classification_of(tx: Tx, incident: IncidentRow, entry: TimeEntryRow) -> Classification | None:
    """How a stored entry is billed, read inside the same transaction."""
    ledger = await ledger_of(tx, incident.client)
    return ledger.classification(entry)


async def add_time(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents/{id}/time`: work done, by duration (remote or on site, in or after hours)."""
    body = await parse(request, TimeBody)
    now = request.app[keys.CLOCK]()
    if body.override is not None and not (body.override_reason or "").strip():
        raise fail(422, "override_reason: an override needs a reason")
    start = body.start or now - timedelta(minutes=body.minutes)
    async with request.app[keys.STORE].transaction() as tx:
        incident = await incident_of(tx, request)
        entry = await tx.add_time_entry(
            TimeEntryRow(
                0,
                incident.incident_id,
                body.technician,
                start,
                start + timedelta(minutes=body.minutes),
                body.minutes,
                body.on_site,
                body.after_hours,
                body.override,
                body.override_reason,
                body.note,
            )
        )
        view = entry_view(entry, await classification_of(tx, incident, entry))
        await publish(request, tx, "time.added", {**view, "client": incident.client})
    return committed(request, view, 201)


async def override_time(request: web.Request) -> web.Response:
    """`POST /api/v1/time/{entry_id}/override`: bill an entry differently than the rules would, saying why."""
    body = await parse(request, OverrideBody)
    if body.override is not None and not (body.reason or "").strip():
        raise fail(422, "reason: an override needs a reason")
    entry_id = int(request.match_info["entry_id"])
    async with request.app[keys.STORE].transaction() as tx:
        entry = await tx.override_time_entry(entry_id, body.override, body.reason if body.override else None)
        if entry is None:
            raise fail(404, f"there is no time entry {entry_id}")
        incident = await tx.incident(entry.incident_id)
        assert incident is not None  # a foreign key points at it
        view = entry_view(entry, await classification_of(tx, incident, entry))
        await publish(request, tx, "time.overridden", {**view, "client": incident.client})
    return committed(request, view)


async def add_part(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents/{id}/parts`: hardware fitted, with what it cost and what the client pays."""
    body = await parse(request, PartBody)
    async with request.app[keys.STORE].transaction() as tx:
        incident = await incident_of(tx, request)
        settings = await billing_settings(tx)
        day = body.day or request.app[keys.CLOCK]().astimezone(settings.zone).date()
        part = await tx.add_part(
            Part(0, incident.incident_id, day, body.description, body.cost, body.price, body.quantity)
        )
        await publish(request, tx, "part.added", {**part_view(part), "client": incident.client})
    return committed(request, part_view(part), 201)


def month_of(text: str | None) -> date:
    """`YYYY-MM` as the month's first day, or 422."""
    try:
        return datetime.strptime(text or "", "%Y-%m").date()
    except ValueError:
        raise fail(422, "month must be YYYY-MM, e.g. 2026-11") from None


def period(query: Any) -> tuple[date, date]:
    """The report's days: `?month=YYYY-MM`, or `?from=YYYY-MM-DD&to=YYYY-MM-DD` (both inclusive)."""
    if "from" in query or "to" in query:
        try:
            first, last = date.fromisoformat(query["from"]), date.fromisoformat(query["to"])
        except (KeyError, ValueError):
            raise fail(422, "from and to must both be dates, e.g. from=2026-06-01&to=2026-11-30") from None
        if last < first:
            raise fail(422, "to is before from")
        return first, last
    return month_bounds(month_of(query.get("month")))


async def invoice(request: web.Request) -> web.Response:
    """`GET /api/v1/clients/{client}/invoice?month=YYYY-MM[&format=json|csv|qbo|xero]`.

    QuickBooks Online and Xero imports also take `number`, `due_days`, and for Xero `account_code` and
    `tax_type`, as they are named in the accounting package.
    """
    month = month_of(request.query.get("month"))
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv", "qbo", "xero"):
        raise fail(422, "format must be json, csv, qbo or xero")
    async with request.app[keys.STORE].transaction() as tx:
        ledger = await ledger_of(tx, request.match_info["client"])
    try:
        bill = ledger.invoice(month)
    except ValueError as exc:
        raise fail(409, f"cannot price {month:%Y-%m}: {exc}") from None
    if fmt == "json":
        return web.json_response(invoice_view(bill))
    issued = month_bounds(month)[1] + timedelta(days=1)
    due = issued + timedelta(days=int(request.query.get("due_days", DAYS_TO_PAY)))
    number = request.query.get("number", f"FP-{ledger.client_id}-{month:%Y%m}")
    if fmt == "csv":
        text = generic_csv(bill)
    elif fmt == "qbo":
        text = qbo_csv(bill, customer=ledger.client, number=number, issued=issued, due=due)
    else:
        text = xero_csv(
            bill,
            customer=ledger.client,
            number=number,
            issued=issued,
            due=due,
            account_code=request.query.get("account_code", "200"),
            tax_type=request.query.get("tax_type", "Tax Exempt"),
        )
    name = f"{ledger.client}-{month:%Y-%m}-{fmt}.csv".replace(" ", "-")
    return web.Response(
        text=text, content_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


async def value_report(request: web.Request) -> web.Response:
    """`GET /api/v1/clients/{client}/report?month=YYYY-MM` (or `from`/`to`) `[&format=html|pdf]`."""
    first, last = period(request.query)
    fmt = request.query.get("format", "html")
    if fmt not in ("html", "pdf"):
        raise fail(422, "format must be html or pdf")
    client = request.match_info["client"]
    async with request.app[keys.STORE].transaction() as tx:
        report = await load_value_report(tx, client, first, last, request.app[keys.CLOCK]())
    if report is None:
        raise fail(404, f"there is no client {client!r}")
    html = render_html(report)
    if fmt == "html":
        return web.Response(text=html, content_type="text/html")
    # Laying out pages takes a while: off the event loop, so agents' reports keep flowing meanwhile.
    pdf = await asyncio.to_thread(render_pdf, html)
    name = f"{client}-{first}-{last}.pdf".replace(" ", "-")
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


Action = Literal["get", "post"]
ROUTES: list[tuple[Action, str, Handler]] = [
    ("get", "/api/v1/billing/settings", get_settings),
    ("post", "/api/v1/billing/settings", set_settings),
    ("post", "/api/v1/devices/{agent_id}/billing", set_device),
    ("get", "/api/v1/clients/{client}/devices", list_client_devices),
    ("get", "/api/v1/clients/{client}/contracts", list_contracts),
    ("post", "/api/v1/clients/{client}/contracts", add_contract),
    ("get", "/api/v1/clients/{client}/invoice", invoice),
    ("get", "/api/v1/clients/{client}/report", value_report),
    ("get", "/api/v1/rates", list_rates),
    ("post", "/api/v1/rates", add_rates),
    ("get", "/api/v1/incidents", list_incidents),
    ("post", "/api/v1/incidents", open_incident),
    ("get", r"/api/v1/incidents/{incident_id:\d+}", show_incident),
    ("post", r"/api/v1/incidents/{incident_id:\d+}/notes", add_note),
    ("post", r"/api/v1/incidents/{incident_id:\d+}/alerts", link_alert),
    ("post", r"/api/v1/incidents/{incident_id:\d+}/close", close_incident),
    ("post", r"/api/v1/incidents/{incident_id:\d+}/timer/{action:start|stop}", timer),
    ("post", r"/api/v1/incidents/{incident_id:\d+}/time", add_time),
    ("post", r"/api/v1/incidents/{incident_id:\d+}/parts", add_part),
    ("post", r"/api/v1/time/{entry_id:\d+}/override", override_time),
]


def setup(app: web.Application) -> None:
    """Register the routes (all for the technician)."""
    for method, path, handler in ROUTES:
        app.router.add_route(method.upper(), path, refused(handler))
