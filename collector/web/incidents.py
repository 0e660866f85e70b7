"""Incidents on the dashboard: opened from an alert (or by hand), worked with a timer or added time, notes and
parts, and closed; each time entry shown with how it is billed.

The forms take the API's request models and store through the same Tx methods, and every change goes to the
live feed with the API's event type and payload.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from aiohttp import web

from collector import keys
from collector.alerts.dedupe import alert_view
from collector.api import billing as api
from collector.api.billing import (
    TIMER_EVENTS,
    Body,
    CloseBody,
    IncidentBody,
    NoteBody,
    PartBody,
    Refused,
    TimeBody,
    TimerBody,
    classification_of,
    entry_view,
    incident_view,
    part_view,
    publish,
)
from collector.billing.ledger import billing_settings, load_ledger
from collector.billing.model import Part
from collector.store import Tx
from collector.store.billing_rows import IncidentRow, TimeEntryRow
from collector.web.admin import fields_of, parse
from collector.web.billing import BILLED_AS, client_path, priced, refusal_text
from collector.web.render import render, see_other
from collector.web.sessions import SESSION, form, page

CATEGORIES = ("request", "hardware", "software", "network", "backup", "internal", "rework")
OVERRIDES = {"": "as the contract says", **BILLED_AS}

B = TypeVar("B", bound=Body)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class NotDone(Exception):
    """A form's change was refused; the message says why."""


async def body_of(request: web.Request, model: type[B], **given: Any) -> B:
    """The form as the API's request model (with what the page itself knows), or NotDone naming bad fields."""
    body = parse(model, {**await fields_of(request), **given})
    if isinstance(body, list):
        raise NotDone("; ".join(body))
    return body


def incident_form(handler: Handler) -> Handler:
    """A form on an incident's page: a refusal goes back to the page as a message."""

    async def answered(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refused as exc:
            message = refusal_text(exc)
        except NotDone as exc:
            message = str(exc)
        return see_other(f"/incidents/{request.match_info['incident_id']}", flash=f"Not done: {message}")

    return form(answered)


def done(request: web.Request, incident_id: int, message: str) -> web.Response:
    """After a change: wake the live feed, and show the incident with a message."""
    request.app[keys.FEED].notify()
    return see_other(f"/incidents/{incident_id}", flash=message)


def technician(request: web.Request) -> str:
    """The logged-in technician's name: the one who does the work."""
    return request[SESSION].name


# Pages -----------------------------------------------------------------------------------------------------

@page
async def incidents_page(request: web.Request) -> web.Response:
    """`GET /incidents`: open incidents first, then closed ones, newest first, with time spent on each."""
    async with request.app[keys.STORE].transaction() as tx:
        incidents = await tx.incidents(None, None)
        entries = await tx.time_entries()
        clients = await tx.clients()
    minutes: dict[int, int] = {}
    running: set[int] = set()
    for entry in entries:
        minutes[entry.incident_id] = minutes.get(entry.incident_id, 0) + (entry.minutes or 0)
        if entry.running:
            running.add(entry.incident_id)
    ordered = sorted(incidents, key=lambda i: (i.status != "open", -i.opened_at.timestamp(), -i.incident_id))
    return render(request, "incidents.html", incidents=ordered, minutes=minutes, running=running,
                  clients=[c.name for c in clients], categories=CATEGORIES)


@page
async def incident_page(request: web.Request) -> web.Response:
    """`GET /incidents/{id}`: its alerts with their history, notes, time (how each entry is billed), parts."""
    incident_id = int(request.match_info["incident_id"])
    async with request.app[keys.STORE].transaction() as tx:
        incident = await tx.incident(incident_id)
        if incident is None:
            return render(request, "missing.html", status=404, what=f"There is no incident {incident_id}.")
        ledger = await load_ledger(tx, incident.client)
        alerts = []
        for alert_id in incident.alert_ids:
            alert = await tx.alert(alert_id)
            if alert is not None:
                alerts.append((alert, alert_view(alert), (await tx.alert_events(alert_id))[::-1]))
        notes = await tx.incident_notes(incident_id)
    assert ledger is not None  # the incident's client exists: a foreign key points at it
    entries, problem = priced(ledger, [e for e in ledger.entries if e.incident_id == incident_id])
    mine = next((p.entry for p in entries if p.entry.running and p.entry.technician == technician(request)),
                None)
    return render(request, "incident.html", incident=incident, alerts=alerts, notes=notes, entries=entries,
                  problem=problem, parts=[p for p in ledger.parts if p.incident_id == incident_id],
                  currency=ledger.settings.currency, running=mine, overrides=OVERRIDES,
                  minutes=sum(p.entry.minutes or 0 for p in entries), billing=client_path(incident.client),
                  month=f"{request.app[keys.CLOCK]().astimezone(ledger.settings.zone):%Y-%m}")


# Opening ---------------------------------------------------------------------------------------------------

async def open_incident(request: web.Request, body: IncidentBody, back: str) -> web.Response:
    """Open an incident as the API does (from an alert: its client, summary and rule), then show it."""
    try:
        async with request.app[keys.STORE].transaction() as tx:
            existing = await tx.incident_of_alert(body.alert_id) if body.alert_id is not None else None
            if existing is not None:
                return see_other(f"/incidents/{existing}",
                                 flash=f"This alert belongs to incident {existing}.")
            alert = await tx.alert(body.alert_id) if body.alert_id is not None else None
            if alert is not None:
                client, title = alert.owner.client, body.title or alert.summary
                category = body.category or alert.rule
            elif body.alert_id is None and body.client and body.title:
                client, title, category = body.client, body.title, body.category or "request"
            else:
                raise NotDone(f"there is no alert {body.alert_id}" if body.alert_id
                              else "give a client and a title")
            ledger = await api.ledger_of(tx, client)
            incident = await tx.add_incident(ledger.client_id, title, category, body.emergency, body.alert_id,
                                             request.app[keys.CLOCK](), body.technician)
            if incident is None:
                raise NotDone(f"alert {body.alert_id} belongs to an incident already")
            await publish(request, tx, "incident.opened", incident_view(incident))
    except Refused as exc:
        return see_other(back, flash=f"Not opened: {refusal_text(exc)}")
    except NotDone as exc:
        return see_other(back, flash=f"Not opened: {exc}")
    return done(request, incident.incident_id, f"Incident {incident.incident_id} opened.")


@form
async def open_from_alert(request: web.Request) -> web.Response:
    """`POST /alerts/{id}/incident`: open an incident for the alert (or show the one it belongs to)."""
    alert_id = int(request.match_info["alert_id"])
    back = f"/alerts/{alert_id}"
    try:
        body = await body_of(request, IncidentBody, alert_id=alert_id, technician=technician(request))
    except NotDone as exc:
        return see_other(back, flash=f"Not opened: {exc}")
    return await open_incident(request, body, back)


@form
async def open_by_hand(request: web.Request) -> web.Response:
    """`POST /incidents`: an incident no alert raised (a client's call, a request)."""
    try:
        body = await body_of(request, IncidentBody, technician=technician(request))
    except NotDone as exc:
        return see_other("/incidents", flash=f"Not opened: {exc}")
    if body.alert_id is not None:
        return see_other("/incidents", flash="Not opened: open an alert's incident from the alert's page.")
    return await open_incident(request, body, "/incidents")


# Working on it ---------------------------------------------------------------------------------------------

async def stored(request: web.Request, tx: Tx, event: str, incident: IncidentRow,
                 entry: TimeEntryRow) -> None:
    """Tell the live feed about a stored time entry, with how it is billed, as the API does."""
    view = entry_view(entry, await classification_of(tx, incident, entry))
    await publish(request, tx, event, {**view, "client": incident.client})


@incident_form
async def timer(request: web.Request) -> web.Response:
    """`POST /incidents/{id}/timer/start|stop`: the logged-in technician's timer.

    Two plain routes rather than an `{action}` parameter: the alert forms own that parameter's name."""
    action = request.path.rsplit("/", 1)[-1]
    body = await body_of(request, TimerBody, technician=technician(request))
    now = request.app[keys.CLOCK]()
    async with request.app[keys.STORE].transaction() as tx:
        incident = await api.incident_of(tx, request)
        if action == "start":
            entry = await tx.start_timer(incident.incident_id, body.technician, now, body.on_site,
                                         body.after_hours)
        else:
            entry = await tx.stop_timer(incident.incident_id, body.technician, now)
        if entry is None:
            raise NotDone("your timer is running already" if action == "start"
                          else "you have no timer running")
        await stored(request, tx, TIMER_EVENTS[action], incident, entry)
    message = "Timer started." if action == "start" else f"Timer stopped: {entry.minutes} min recorded."
    return done(request, incident.incident_id, message)


@incident_form
async def add_time(request: web.Request) -> web.Response:
    """`POST /incidents/{id}/time`: work done, by duration, ending now."""
    body = await body_of(request, TimeBody, technician=technician(request))
    if body.override is not None and not (body.override_reason or "").strip():
        raise NotDone("billing it differently than the contract says needs a reason")
    end = request.app[keys.CLOCK]()
    start = body.start or end - timedelta(minutes=body.minutes)
    async with request.app[keys.STORE].transaction() as tx:
        incident = await api.incident_of(tx, request)
        entry = await tx.add_time_entry(TimeEntryRow(
            0, incident.incident_id, body.technician, start, start + timedelta(minutes=body.minutes),
            body.minutes, body.on_site, body.after_hours, body.override,
            body.override_reason if body.override else None, body.note))
        await stored(request, tx, "time.added", incident, entry)
    return done(request, incident.incident_id, f"{body.minutes} min added.")


@incident_form
async def add_note(request: web.Request) -> web.Response:
    """`POST /incidents/{id}/notes`: what was found or done, in words the client can read."""
    body = await body_of(request, NoteBody, technician=technician(request))
    async with request.app[keys.STORE].transaction() as tx:
        incident = await api.incident_of(tx, request)
        note = await tx.add_incident_note(incident.incident_id, request.app[keys.CLOCK](), body.technician,
                                          body.text)
        view = {"note_id": note.note_id, "incident_id": note.incident_id, "at": note.at.isoformat(),
                "by": note.author, "text": note.text, "client": incident.client}
        await publish(request, tx, "incident.noted", view)
    return done(request, incident.incident_id, "Note added.")


@incident_form
async def add_part(request: web.Request) -> web.Response:
    """`POST /incidents/{id}/parts`: hardware fitted, what it cost and what the client pays."""
    body = await body_of(request, PartBody)
    async with request.app[keys.STORE].transaction() as tx:
        incident = await api.incident_of(tx, request)
        settings = await billing_settings(tx)
        day = body.day or request.app[keys.CLOCK]().astimezone(settings.zone).date()
        part = await tx.add_part(Part(0, incident.incident_id, day, body.description, body.cost, body.price,
                                      body.quantity))
        await publish(request, tx, "part.added", {**part_view(part), "client": incident.client})
    return done(request, incident.incident_id, f"Part added: {part.description}.")


@incident_form
async def close(request: web.Request) -> web.Response:
    """`POST /incidents/{id}/close`, with what fixed it."""
    body = await body_of(request, CloseBody, technician=technician(request))
    async with request.app[keys.STORE].transaction() as tx:
        incident = await api.incident_of(tx, request)
        closed = await tx.close_incident(incident.incident_id, request.app[keys.CLOCK](), body.technician,
                                         body.resolution)
        if closed is None:
            raise NotDone(f"incident {incident.incident_id} is closed already")
        await publish(request, tx, "incident.closed", incident_view(closed))
    return done(request, incident.incident_id, f"Incident {incident.incident_id} closed.")


def setup(app: web.Application) -> None:
    """Register the incident pages and forms."""
    app.router.add_get("/incidents", incidents_page)
    app.router.add_post("/incidents", open_by_hand)
    app.router.add_get(r"/incidents/{incident_id:\d+}", incident_page)
    app.router.add_post(r"/alerts/{alert_id:\d+}/incident", open_from_alert)
    for action in TIMER_EVENTS:
        app.router.add_post(rf"/incidents/{{incident_id:\d+}}/timer/{action}", timer)
    app.router.add_post(r"/incidents/{incident_id:\d+}/time", add_time)
    app.router.add_post(r"/incidents/{incident_id:\d+}/notes", add_note)
    app.router.add_post(r"/incidents/{incident_id:\d+}/parts", add_part)
    app.router.add_post(r"/incidents/{incident_id:\d+}/close", close)
