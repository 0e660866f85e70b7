"""Endpoints for incidents and the work on them: open, list, show, notes, alerts, timer, time, parts, time saved,
close."""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from collector.alerts.dedupe import alert_view
from collector.api.errors import BadQuery, parse
from collector.api.technician import Handler, technician
from collector.api.wiring import incidents
from collector.services.incidents import (
    CloseInput,
    IncidentInput,
    LinkInput,
    NoteInput,
    OverrideInput,
    PartInput,
    TimeEditInput,
    TimeInput,
    TimerInput,
    TimeSavedInput,
    TitleInput,
)
from collector.services.inputs import TECHNICIAN
from collector.services.views import entry_view, incident_view, note_view, part_view, time_saved_view

STATUSES = ("open", "closed", "all")


def incident_id(request: web.Request) -> int:
    """The incident the path names."""
    return int(request.match_info["incident_id"])


async def open_incident(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents`: open an incident from an alert (keeping the link) or by hand."""
    incident = await incidents(request).open(await parse(request, IncidentInput))
    return web.json_response(incident_view(incident), status=201)


async def list_incidents(request: web.Request) -> web.Response:
    """`GET /api/v1/incidents?client=NAME&status=open|closed|all` (default open), oldest first."""
    status = request.query.get("status", "open")
    if status not in STATUSES:
        raise BadQuery("status", "the status must be open, closed or all")
    listed = await incidents(request).overview(request.query.get("client"),
                                               None if status == "all" else status)  # type: ignore[arg-type]
    return web.json_response({"incidents": [{**incident_view(s.incident), "minutes": s.minutes} for s in listed]})


async def show_incident(request: web.Request) -> web.Response:
    """`GET /api/v1/incidents/{id}`: the incident, its alerts with their history, notes, time and parts."""
    detail = await incidents(request).detail(incident_id(request))
    entries = detail.entries
    return web.json_response({
        **incident_view(detail.incident),
        "alerts": [{**alert_view(a.alert), "history": [
            {"at": at.isoformat(), "what": what, "by": actor, "detail": info} for at, what, actor, info in a.events
        ]} for a in detail.alerts],
        "notes": [{"at": n.at.isoformat(), "by": n.author, "text": n.text} for n in detail.notes],
        "time": [entry_view(e, detail.ledger.classification(e)) for e in entries],
        "minutes": sum(e.minutes or 0 for e in entries),
        "parts": [part_view(p) for p in detail.parts],
        "time_saved": None if detail.time_saved is None
        else time_saved_view(detail.time_saved, sum(e.minutes or 0 for e in entries)),
    })


async def add_note(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents/{id}/notes`: what was found or done, in words the client can read."""
    note = await incidents(request).add_note(incident_id(request), await parse(request, NoteInput))
    return web.json_response(note_view(note), status=201)


async def link_alert(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents/{id}/alerts`: add another alert to the incident."""
    body = await parse(request, LinkInput)
    return web.json_response(incident_view(await incidents(request).link_alert(incident_id(request), body.alert_id)))


async def close_incident(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents/{id}/close`, with what fixed it."""
    closed = await incidents(request).close(incident_id(request), await parse(request, CloseInput))
    return web.json_response(incident_view(closed))


async def timer(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents/{id}/timer/start|stop`: time the work as it happens."""
    action: Literal["start", "stop"] = "start" if request.match_info["action"] == "start" else "stop"
    done = await incidents(request).timer(incident_id(request), action, await parse(request, TimerInput))
    return web.json_response(done.view(), status=201 if action == "start" else 200)


async def add_time(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents/{id}/time`: work done, by duration (remote or on site, in or after hours)."""
    done = await incidents(request).add_time(incident_id(request), await parse(request, TimeInput))
    return web.json_response(done.view(), status=201)


async def override_time(request: web.Request) -> web.Response:
    """`POST /api/v1/time/{entry_id}/override`: bill an entry differently than the rules would, saying why."""
    entry_id = int(request.match_info["entry_id"])
    done = await incidents(request).override(entry_id, await parse(request, OverrideInput))
    return web.json_response(done.view())


async def retitle(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents/{id}/title`: the title the client reads on invoices and reports."""
    incident = await incidents(request).retitle(incident_id(request), await parse(request, TitleInput))
    return web.json_response(incident_view(incident))


async def edit_time(request: web.Request) -> web.Response:
    """`POST /api/v1/time/{entry_id}`: correct a finished entry (only the fields given change)."""
    entry_id = int(request.match_info["entry_id"])
    done = await incidents(request).edit_time(entry_id, await parse(request, TimeEditInput))
    return web.json_response(done.view())


async def delete_time(request: web.Request) -> web.Response:
    """`DELETE /api/v1/time/{entry_id}?technician=NAME`: delete an entry recorded in error."""
    entry_id = int(request.match_info["entry_id"])
    deleted = await incidents(request).delete_time(entry_id, request.query.get("technician", TECHNICIAN))
    return web.json_response(entry_view(deleted, None))


async def delete_part(request: web.Request) -> web.Response:
    """`DELETE /api/v1/parts/{part_id}?technician=NAME`: a part recorded in error."""
    part = await incidents(request).delete_part(int(request.match_info["part_id"]),
                                                request.query.get("technician", TECHNICIAN))
    return web.json_response(part_view(part))


async def add_part(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents/{id}/parts`: hardware fitted, with what it cost and what the client pays."""
    part = await incidents(request).add_part(incident_id(request), await parse(request, PartInput))
    return web.json_response(part_view(part), status=201)


async def record_time_saved(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents/{id}/time-saved`: the estimated work without the preparation, and what it was."""
    saved = await incidents(request).record_time_saved(incident_id(request), await parse(request, TimeSavedInput))
    return web.json_response(time_saved_view(saved))


async def clear_time_saved(request: web.Request) -> web.Response:
    """`DELETE /api/v1/incidents/{id}/time-saved?technician=NAME`: an estimate recorded in error."""
    saved = await incidents(request).clear_time_saved(incident_id(request),
                                                      request.query.get("technician", TECHNICIAN))
    return web.json_response(time_saved_view(saved))


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/api/v1/incidents", list_incidents),
    ("POST", "/api/v1/incidents", open_incident),
    ("GET", r"/api/v1/incidents/{incident_id:\d{1,18}}", show_incident),
    ("POST", r"/api/v1/incidents/{incident_id:\d{1,18}}/notes", add_note),
    ("POST", r"/api/v1/incidents/{incident_id:\d{1,18}}/alerts", link_alert),
    ("POST", r"/api/v1/incidents/{incident_id:\d{1,18}}/close", close_incident),
    ("POST", r"/api/v1/incidents/{incident_id:\d{1,18}}/timer/{action:start|stop}", timer),
    ("POST", r"/api/v1/incidents/{incident_id:\d{1,18}}/time", add_time),
    ("POST", r"/api/v1/incidents/{incident_id:\d{1,18}}/parts", add_part),
    ("POST", r"/api/v1/incidents/{incident_id:\d{1,18}}/title", retitle),
    ("POST", r"/api/v1/incidents/{incident_id:\d{1,18}}/time-saved", record_time_saved),
    ("DELETE", r"/api/v1/incidents/{incident_id:\d{1,18}}/time-saved", clear_time_saved),
    ("POST", r"/api/v1/time/{entry_id:\d{1,18}}", edit_time),
    ("DELETE", r"/api/v1/time/{entry_id:\d{1,18}}", delete_time),
    ("DELETE", r"/api/v1/parts/{part_id:\d{1,18}}", delete_part),
    ("POST", r"/api/v1/time/{entry_id:\d{1,18}}/override", override_time),
]


def setup(app: web.Application) -> None:
    """Register the routes (all for the technician)."""
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, technician(handler))
