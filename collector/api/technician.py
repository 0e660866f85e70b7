"""Endpoints the technician's CLI and browser call: alerts, devices, clients and the live feed (SSE)."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from collector import keys
from collector.access import OWNER_ONLY, Access, declare, permits
from collector.alerts.dedupe import alert_view
from collector.api import error, wiring
from collector.api.errors import BadQuery, parse, whole_number
from collector.auth import technician_allowed
from collector.rules.expectations import UNKNOWN_CLASS, format_days
from collector.services.alerts import ActionInput
from collector.services.clients import HoursInput
from collector.services.devices import DeviceStatus
from collector.services.inputs import Input
from collector.settings import Settings
from collector.store import ClientRow, FeedEvent
from shared.device_class import DeviceClass

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The largest event id a client may resume after (a 64-bit database integer).
LAST_EVENT_ID = 2**63 - 1

# The technician logged in to the dashboard in this browser: set by the web layer's session middleware
# (for anything but a read only when the request also carries the session's CSRF token).
BROWSER_TECHNICIAN = web.RequestKey("browser_technician", str)
BROWSER_ROLE = web.RequestKey("browser_role", str)
# Whether that browser's session still stands (the owner or the person may revoke it while a stream is open).
SESSION_STANDS = web.RequestKey("session_stands", Callable[[], Awaitable[bool]])


def technician(handler: Handler, need: Access = Access.TECHNICIAN) -> Handler:
    """Refuse the request (401) unless it carries the technician token or a dashboard session, and (403) a
    session whose role may not do what the route needs. The token is the collector's own key: owner."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        if "token" in request.query:
            # A token in the URL lands in access logs and browser history, and a link carrying it forges
            # requests; the dashboard's feed rides on the session cookie instead.
            return error(400, "the technician token is not accepted in the URL (?token=): "
                         "send it as Authorization: Bearer TOKEN")
        header = request.headers.get("Authorization", "")
        presented = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
        token = await technician_allowed(presented, request.app[keys.STORE], request.app[keys.SETTINGS])
        if not token and BROWSER_TECHNICIAN not in request:
            return error(401, "technician token missing or wrong (Authorization: Bearer TOKEN)")
        if not token and not permits(request[BROWSER_ROLE], need):
            return error(403, OWNER_ONLY)
        return await handler(request)

    return declare(need)(guarded)


def owner(handler: Handler) -> Handler:
    """As `technician`, for the owner only (setting the collector up)."""
    return technician(handler, Access.OWNER)


def device_view(status: DeviceStatus) -> dict[str, Any]:
    """A device as the API shows it."""
    agent = status.agent
    return {
        "agent_id": agent.agent_id,
        "hostname": agent.hostname,
        "client": agent.site.client_name,
        "site": agent.site.site_name,
        "enrolled_at": agent.enrolled_at.isoformat(),
        "last_seen_at": agent.last_seen_at.isoformat() if agent.last_seen_at else None,
        "online": status.online,
        "open_alerts": len(status.open_alerts),
        "revoked": agent.revoked,
        # Requests refused because the PC's clock was off, and the last offset (+ ahead, seconds).
        "clock_refusals": agent.skew_refusals,
        "last_clock_offset_seconds": agent.last_skew_seconds,
        # What the device is judged as (a device of no known class as a server), and where that comes from.
        "device_class": agent.device_class or UNKNOWN_CLASS,
        "reported_class": agent.reported_class,
        "class_override": agent.class_override,
    }


@technician
async def list_alerts(request: web.Request) -> web.Response:
    """`GET /api/v1/alerts?state=open|resolved|all` (default open), newest first."""
    state = request.query.get("state", "open")
    if state not in ("open", "resolved", "all"):
        raise BadQuery("state", "the state must be open, resolved or all")
    listed = await wiring.alerts(request).list(None if state == "all" else state)  # type: ignore[arg-type]
    return web.json_response({"alerts": [alert_view(a) for a in listed]})


@technician
async def alert_detail(request: web.Request) -> web.Response:
    """`GET /api/v1/alerts/{id}`: the alert and its history, oldest first."""
    alert, events = await wiring.alerts(request).detail(int(request.match_info["alert_id"]))
    history = [{"at": at.isoformat(), "what": what, "by": actor, "detail": detail}
               for at, what, actor, detail in events]
    return web.json_response({**alert_view(alert), "history": history})


@technician
async def alert_action(request: web.Request) -> web.Response:
    """`POST /api/v1/alerts/{id}/acknowledge|snooze|resolve` with `{"note": ..., "minutes": ...}`."""
    alert = await wiring.alerts(request).act(int(request.match_info["alert_id"]),
                                             request.match_info["action"],  # type: ignore[arg-type]
                                             "technician", await parse(request, ActionInput))
    return web.json_response(alert_view(alert))


@technician
async def list_devices(request: web.Request) -> web.Response:
    """`GET /api/v1/devices`: every enrolled device, whether it is online and how many alerts it has open."""
    fleet = await wiring.devices(request).fleet()
    return web.json_response({"devices": [device_view(d) for d in fleet.devices]})


def client_view(client: ClientRow, settings: Settings) -> dict[str, Any]:
    """A client as the API shows it: its sites, contacts, billing details and the business hours its
    workstations are judged by."""
    hours = settings.business_hours.for_client(client.hours)
    return {
        "name": client.name,
        "archived_at": client.archived_at.isoformat() if client.archived_at else None,
        "demo": client.demo,
        "billing_email": client.details.billing_email,
        "billing_address": client.details.billing_address,
        "notes": client.details.notes,
        "contacts": [{"id": c.contact_id, "name": c.name, "email": c.email, "phone": c.phone, "role": c.role,
                      "billing": c.billing} for c in client.contacts],
        "sites": [{"name": name, "devices": n} for name, n in client.sites],
        "archived_sites": client.archived_sites,
        "business_hours": {"days": format_days(hours.days), "start": hours.start.strftime("%H:%M"),
                           "end": hours.end.strftime("%H:%M"), "timezone": hours.timezone},
        "own_business_hours": {"days": client.hours.days, "timezone": client.hours.timezone,
                               **{k: t.strftime("%H:%M") if t else None
                                  for k, t in (("start", client.hours.start), ("end", client.hours.end))}},
    }


@technician
async def list_clients(request: web.Request) -> web.Response:
    """`GET /api/v1/clients[?archived=yes]`: clients (archived ones too when asked) with their sites, device
    counts, contacts, billing details and business hours."""
    archived = request.query.get("archived", "no")
    if archived not in ("yes", "no"):
        raise BadQuery("archived", "archived must be yes or no")
    clients = await wiring.clients(request).list(archived == "yes")
    return web.json_response({"clients": [client_view(c, request.app[keys.SETTINGS]) for c in clients]})


@technician
async def set_client_hours(request: web.Request) -> web.Response:
    """`PUT /api/v1/clients/{name}/hours` with `{"days": "mon-fri", "start": "08:00", "end": "18:00",
    "timezone": "Europe/Berlin"}`; a part left out takes the collector's default."""
    client = await wiring.clients(request).set_hours(request.match_info["name"], await parse(request, HoursInput))
    return web.json_response(client_view(client, request.app[keys.SETTINGS]))


class ClassInput(Input):
    """What a device is, whatever its agent says; null: what its agent says."""

    device_class: DeviceClass | None


@technician
async def set_device_class(request: web.Request) -> web.Response:
    """`PUT /api/v1/devices/{agent_id}/class` with `{"device_class": "server"|"workstation"|"laptop"|null}`."""
    wanted = await parse(request, ClassInput)
    status = await wiring.devices(request).set_class(request.match_info["agent_id"], wanted.device_class)
    return web.json_response(device_view(status))


def sse(event: FeedEvent) -> bytes:
    """One Server-Sent Event."""
    data = json.dumps({"at": event.at.isoformat(), **event.data}, separators=(",", ":"))
    return f"id: {event.event_id}\nevent: {event.type}\ndata: {data}\n\n".encode()


@technician
async def feed(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/feed`: the live feed as Server-Sent Events; `Last-Event-ID` resumes without gaps."""
    feed = request.app[keys.FEED]
    resume = request.headers.get("Last-Event-ID") or request.query.get("after")
    if resume is not None:
        after = whole_number("Last-Event-ID (or after)", resume, 0, 0, LAST_EVENT_ID)
    else:
        after = await feed.latest_id()
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    })
    await response.prepare(request)
    await response.write(f"retry: 3000\n: resuming after event {after}\n\n".encode())
    stands = request.get(SESSION_STANDS)
    try:
        async for event in feed.follow(after):
            if stands is not None and not await stands():
                break  # the session was revoked or ended: the stream ends with it
            await response.write(sse(event) if event is not None else b": keep-alive\n\n")
    except ConnectionResetError:
        pass
    return response
