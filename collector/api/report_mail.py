"""Endpoints for the value report e-mailed on a schedule: a client's schedule and its sends, set, stopped."""

from __future__ import annotations

from aiohttp import web

from collector.access import Access
from collector.api.errors import parse
from collector.api.technician import Handler, technician
from collector.api.wiring import report_mail
from collector.services.report_mail import ScheduleInput, schedule_view, send_view

PATH = "/api/v1/clients/{client}/report-schedule"


async def show_schedule(request: web.Request) -> web.Response:
    """`GET /api/v1/clients/{client}/report-schedule`: the schedule (null: not opted in) and its recent sends,
    a failed one with its error and when it is tried again; `held`: why nothing is mailed on schedule (an
    archived or the demo client), else null."""
    state = await report_mail(request).state(request.match_info["client"])
    return web.json_response({
        "schedule": None if state.schedule is None else schedule_view(state.schedule),
        "sends": [send_view(s) for s in state.sends],
        "held": state.held,
    })


async def set_schedule(request: web.Request) -> web.Response:
    """`PUT /api/v1/clients/{client}/report-schedule`: opt the client in, or change its schedule."""
    wanted = await parse(request, ScheduleInput)
    return web.json_response(schedule_view(await report_mail(request).set(request.match_info["client"], wanted)))


async def stop_schedule(request: web.Request) -> web.Response:
    """`DELETE /api/v1/clients/{client}/report-schedule`: no more reports by e-mail."""
    return web.json_response(schedule_view(await report_mail(request).stop(request.match_info["client"])))


# What the client is sent, and to whom, is the owner's to decide; every technician may see it and its sends.
ROUTES: list[tuple[str, str, Handler, Access]] = [
    ("GET", PATH, show_schedule, Access.TECHNICIAN),
    ("PUT", PATH, set_schedule, Access.OWNER),
    ("DELETE", PATH, stop_schedule, Access.OWNER),
]


def setup(app: web.Application) -> None:
    """Register the routes, each for the technician or the owner as ROUTES says."""
    for method, path, handler, need in ROUTES:
        app.router.add_route(method, path, technician(handler, need))
