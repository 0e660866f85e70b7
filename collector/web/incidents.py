"""Incidents on the dashboard: opened from an alert (or by hand), worked with a timer or added time, notes and
parts, and closed; each time entry shown with how it is billed.

Every form is validated as the API's input and carried out by the same service (`collector.services.incidents`),
so the dashboard and the API store, refuse and tell the live feed alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from collector import keys
from collector.alerts.dedupe import alert_view
from collector.api.wiring import clients, incidents
from collector.billing.saved import PREPARATIONS, saved_minutes
from collector.services.errors import DomainError, Invalid
from collector.services.incidents import (
    TIMER_EVENTS,
    CloseInput,
    IncidentInput,
    NoteInput,
    PartInput,
    TimeEditInput,
    TimeInput,
    TimerInput,
    TimeSavedInput,
    TitleInput,
)
from collector.services.inputs import M, validated
from collector.web.admin import fields_of
from collector.web.billing import BILLED_AS, client_path, priced
from collector.web.render import refused, refused_page, render, see_other
from collector.web.sessions import form, page, technician

CATEGORIES = ("request", "hardware", "software", "network", "backup", "internal", "rework")
OVERRIDES = {"": "as the contract says", **BILLED_AS}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def input_of(request: web.Request, model: type[M], **given: Any) -> M:
    """The form as the operation's input (with what the page itself knows), or Invalid naming bad fields."""
    return validated(model, {**await fields_of(request), **given})


def incident_id(request: web.Request) -> int:
    """The incident the path names."""
    return int(request.match_info["incident_id"])


def incident_form(handler: Handler) -> Handler:
    """A form on an incident's page: done or refused, back to the page with a message."""

    async def answered(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except DomainError as exc:
            return refused(exc, f"/incidents/{incident_id(request)}")

    return form(answered)


# Pages -----------------------------------------------------------------------------------------------------

@page
async def incidents_page(request: web.Request) -> web.Response:
    """`GET /incidents`: open incidents first, then closed ones, newest first, with time spent on each."""
    listed = await incidents(request).overview()
    ordered = sorted(listed, key=lambda s: (s.incident.status != "open", -s.incident.opened_at.timestamp(),
                                            -s.incident.incident_id))
    return render(request, "incidents.html", incidents=[s.incident for s in ordered],
                  minutes={s.incident.incident_id: s.minutes for s in listed},
                  running={s.incident.incident_id for s in listed if s.running},
                  clients=[c.name for c in await clients(request).list()], categories=CATEGORIES)


@page
async def incident_page(request: web.Request) -> web.Response:
    """`GET /incidents/{id}`: its alerts with their history, notes, time (how each entry is billed), parts."""
    try:
        detail = await incidents(request).detail(incident_id(request))
    except DomainError as exc:
        return refused_page(request, exc)
    ledger = detail.ledger
    entries, problem = priced(ledger, detail.entries)
    mine = next((p.entry for p in entries if p.entry.running and p.entry.technician == technician(request)),
                None)
    alerts = [(a.alert, alert_view(a.alert), a.events[::-1]) for a in detail.alerts]
    return render(request, "incident.html", incident=detail.incident, alerts=alerts, notes=detail.notes,
                  entries=entries, problem=problem, parts=detail.parts, currency=ledger.settings.currency,
                  running=mine, overrides=OVERRIDES, minutes=sum(p.entry.minutes or 0 for p in entries),
                  saved=detail.time_saved, preparations=PREPARATIONS,
                  minutes_saved=saved_minutes(detail.time_saved, sum(e.minutes or 0 for e in detail.entries))
                  if detail.time_saved else 0,
                  billing=client_path(detail.incident.client),
                  month=f"{request.app[keys.CLOCK]().astimezone(ledger.settings.zone):%Y-%m}")


# Opening ---------------------------------------------------------------------------------------------------

async def open_incident(request: web.Request, back: str, **given: Any) -> web.Response:
    """Open an incident as the API does (from an alert: its client, summary and rule), then show it."""
    try:
        incident = await incidents(request).open(
            await input_of(request, IncidentInput, technician=technician(request), **given))
    except DomainError as exc:
        return refused(exc, back, "opened")
    return see_other(f"/incidents/{incident.incident_id}", flash=f"Incident {incident.incident_id} opened.")


@form
async def open_from_alert(request: web.Request) -> web.Response:
    """`POST /alerts/{id}/incident`: open an incident for the alert (or show the one it belongs to)."""
    alert_id = int(request.match_info["alert_id"])
    existing = await incidents(request).of_alert(alert_id)
    if existing is not None:
        return see_other(f"/incidents/{existing}", flash=f"This alert belongs to incident {existing}.")
    return await open_incident(request, f"/alerts/{alert_id}", alert_id=alert_id)


@form
async def open_by_hand(request: web.Request) -> web.Response:
    """`POST /incidents`: an incident no alert raised (a client's call, a request)."""
    if "alert_id" in await fields_of(request):
        return refused(Invalid(None, "open an alert's incident from the alert's page"), "/incidents", "opened")
    return await open_incident(request, "/incidents")


# Working on it ---------------------------------------------------------------------------------------------

def timer(action: str) -> Handler:
    """`POST /incidents/{id}/timer/start|stop`: the logged-in technician's timer.

    Two plain routes rather than an `{action}` parameter: the alert forms own that parameter's name."""

    @incident_form
    async def handler(request: web.Request) -> web.Response:
        wanted = await input_of(request, TimerInput, technician=technician(request))
        done = await incidents(request).timer(incident_id(request), "start" if action == "start" else "stop",
                                              wanted)
        message = "Timer started." if action == "start" else f"Timer stopped: {done.entry.minutes} min recorded."
        return see_other(f"/incidents/{incident_id(request)}", flash=message)

    return handler


@incident_form
async def add_time(request: web.Request) -> web.Response:
    """`POST /incidents/{id}/time`: work done, by duration, ending now."""
    wanted = await input_of(request, TimeInput, technician=technician(request))
    await incidents(request).add_time(incident_id(request), wanted)
    return see_other(f"/incidents/{incident_id(request)}", flash=f"{wanted.minutes} min added.")


@incident_form
async def retitle(request: web.Request) -> web.Response:
    """`POST /incidents/{id}/title`: the title the client reads on invoices and reports."""
    wanted = await input_of(request, TitleInput, technician=technician(request))
    incident = await incidents(request).retitle(incident_id(request), wanted)
    return see_other(f"/incidents/{incident.incident_id}", flash=f"Retitled: {incident.title}.")


def entry_id(request: web.Request) -> int:
    """The time entry the path names."""
    return int(request.match_info["entry_id"])


@incident_form
async def edit_time(request: web.Request) -> web.Response:
    """`POST /incidents/{id}/time/{entry_id}`: correct a finished entry (unticked boxes mean no)."""
    fields = {"on_site": "false", "after_hours": "false", **await fields_of(request)}
    wanted = validated(TimeEditInput, {**fields, "technician": technician(request)})
    done = await incidents(request).edit_time(entry_id(request), wanted)
    return see_other(f"/incidents/{done.entry.incident_id}", flash=f"Time entry {done.entry.entry_id} corrected.")


@incident_form
async def delete_time(request: web.Request) -> web.Response:
    """`POST /incidents/{id}/time/{entry_id}/delete`: an entry recorded in error."""
    entry = await incidents(request).delete_time(entry_id(request), technician(request))
    return see_other(f"/incidents/{entry.incident_id}", flash=f"Time entry {entry.entry_id} deleted.")


@incident_form
async def delete_part(request: web.Request) -> web.Response:
    """`POST /incidents/{id}/parts/{part_id}/delete`: a part recorded in error."""
    part = await incidents(request).delete_part(int(request.match_info["part_id"]), technician(request))
    return see_other(f"/incidents/{part.incident_id}", flash=f"Part deleted: {part.description}.")


@incident_form
async def add_note(request: web.Request) -> web.Response:
    """`POST /incidents/{id}/notes`: what was found or done, in words the client can read."""
    await incidents(request).add_note(incident_id(request),
                                      await input_of(request, NoteInput, technician=technician(request)))
    return see_other(f"/incidents/{incident_id(request)}", flash="Note added.")


@incident_form
async def add_part(request: web.Request) -> web.Response:
    """`POST /incidents/{id}/parts`: hardware fitted, what it cost and what the client pays."""
    part = await incidents(request).add_part(incident_id(request), await input_of(request, PartInput))
    return see_other(f"/incidents/{incident_id(request)}", flash=f"Part added: {part.description}.")


@incident_form
async def record_time_saved(request: web.Request) -> web.Response:
    """`POST /incidents/{id}/time-saved`: how long the work would have taken without the preparation."""
    wanted = await input_of(request, TimeSavedInput, technician=technician(request))
    saved = await incidents(request).record_time_saved(incident_id(request), wanted)
    return see_other(f"/incidents/{saved.incident_id}",
                     flash=f"Time saved recorded: {saved.minutes_without} min without the preparation.")


@incident_form
async def clear_time_saved(request: web.Request) -> web.Response:
    """`POST /incidents/{id}/time-saved/delete`: an estimate recorded in error."""
    saved = await incidents(request).clear_time_saved(incident_id(request), technician(request))
    return see_other(f"/incidents/{saved.incident_id}", flash="Time saved removed.")


@incident_form
async def close(request: web.Request) -> web.Response:
    """`POST /incidents/{id}/close`, with what fixed it."""
    wanted = await input_of(request, CloseInput, technician=technician(request))
    closed = await incidents(request).close(incident_id(request), wanted)
    return see_other(f"/incidents/{closed.incident_id}", flash=f"Incident {closed.incident_id} closed.")


def setup(app: web.Application) -> None:
    """Register the incident pages and forms."""
    app.router.add_get("/incidents", incidents_page)
    app.router.add_post("/incidents", open_by_hand)
    app.router.add_get(r"/incidents/{incident_id:\d{1,18}}", incident_page)
    app.router.add_post(r"/alerts/{alert_id:\d{1,18}}/incident", open_from_alert)
    for action in TIMER_EVENTS:
        app.router.add_post(rf"/incidents/{{incident_id:\d{{1,18}}}}/timer/{action}", timer(action))
    app.router.add_post(r"/incidents/{incident_id:\d{1,18}}/time", add_time)
    app.router.add_post(r"/incidents/{incident_id:\d{1,18}}/title", retitle)
    app.router.add_post(r"/incidents/{incident_id:\d{1,18}}/parts/{part_id:\d{1,18}}/delete", delete_part)
    app.router.add_post(r"/incidents/{incident_id:\d{1,18}}/time/{entry_id:\d{1,18}}", edit_time)
    app.router.add_post(r"/incidents/{incident_id:\d{1,18}}/time/{entry_id:\d{1,18}}/delete", delete_time)
    app.router.add_post(r"/incidents/{incident_id:\d{1,18}}/notes", add_note)
    app.router.add_post(r"/incidents/{incident_id:\d{1,18}}/parts", add_part)
    app.router.add_post(r"/incidents/{incident_id:\d{1,18}}/close", close)
    app.router.add_post(r"/incidents/{incident_id:\d{1,18}}/time-saved", record_time_saved)
    app.router.add_post(r"/incidents/{incident_id:\d{1,18}}/time-saved/delete", clear_time_saved)
