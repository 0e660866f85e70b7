"""`/backups`: push backup jobs by client, site and device with their last pings, the form that creates one
(its URL is shown once: only its token's hash is kept), and pausing, resuming or deleting one after a
confirmation page."""

from __future__ import annotations

from typing import Any, cast

from aiohttp import web

from collector.api.errors import status_of
from collector.api.wiring import devices, push_jobs
from collector.push import push_instructions, push_url
from collector.services.errors import DomainError
from collector.services.inputs import validated
from collector.services.push_jobs import DONE, STEPS, PushJobInput, Step
from collector.web.admin import collector_url, fields_of
from collector.web.render import reasons, refused, refused_page, render, see_other
from collector.web.sessions import SESSION, owner_form, owner_page, page

FIELDS = ("device", "name", "schedule", "timezone", "grace_hours")


async def show(request: web.Request, status: int = 200, **context: Any) -> web.Response:
    """The page: the jobs (of the client in `?client=`), the devices a job can protect, and the form."""
    client = request.query.get("client") or None
    jobs = await push_jobs(request).list(client)
    fleet = await devices(request).fleet()
    choices = [d.agent for d in fleet.devices if not d.agent.revoked
               and (client is None or d.agent.site.client_name == client)]
    return render(request, "backups.html", status=status, jobs=jobs, choices=choices, client=client,
                  owner=request[SESSION].role == "owner", url=collector_url(request),
                  **{"errors": [], "filled": {}, "created": None, **context})


@page
async def backups_page(request: web.Request) -> web.Response:
    """`GET /backups[?client=NAME]`: push backup jobs with their last pings."""
    try:
        return await show(request)
    except DomainError as exc:
        return refused_page(request, exc)


@owner_form
async def create_job(request: web.Request) -> web.Response:
    """`POST /backups`: a push job for a device; its URL is shown once with how a script calls it."""
    filled = {k: v for k, v in (await fields_of(request)).items() if k in FIELDS}
    try:
        made = await push_jobs(request).create(validated(PushJobInput, filled))
    except DomainError as exc:
        return await show(request, status_of(exc), errors=reasons(exc), filled=filled)
    url = push_url((await fields_of(request)).get("collector_url") or collector_url(request), made.token)
    created = {"job": made.job, "agent": made.agent, "url": url, "instructions": push_instructions(url)}
    return await show(request, 201, created=created)


# What each step does, as the confirmation page says it.
CONSEQUENCES = {
    "pause": "It is not judged while paused: no alert when it fails or is late, and its open alert is resolved. "
             "Its pings are still kept.",
    "resume": "It is judged again from the next sweep: a run overdue by then raises an alert.",
    "delete": "Its URL stops working and it leaves this page; its pings stay, so past value reports keep its "
              "verified backups. This cannot be undone: a new job needs a new URL (and another name).",
}


def _job_id(request: web.Request) -> int:
    """The job id in the path (the route admits digits only)."""
    return int(request.match_info["job_id"])


def _step(request: web.Request) -> Step:
    """The step in the path (the route admits STEPS only)."""
    return cast(Step, request.match_info["step"])


@owner_page
async def confirm_page(request: web.Request) -> web.Response:
    """`GET /backups/{job_id}/{step}`: what pausing, resuming or deleting the job does, and the button that does
    it."""
    step = _step(request)
    try:
        listing = await push_jobs(request).get(_job_id(request))
    except DomainError as exc:
        return refused_page(request, exc)
    return render(request, "backup_job_confirm.html", j=listing, step=step, consequence=CONSEQUENCES[step])


@owner_form
async def change_job(request: web.Request) -> web.Response:
    """`POST /backups/{job_id}/{step}` (from the confirmation page): pause, resume or delete the job."""
    step = _step(request)
    try:
        job = await push_jobs(request).change(_job_id(request), step)
    except DomainError as exc:
        return refused(exc, "/backups", DONE[step])
    return see_other("/backups", flash=f"Push job {job.name} {DONE[step]}.")


def setup(app: web.Application) -> None:
    """Register the page and its forms (creating a job mints a credential, and pausing or deleting one silences
    a backup's alerts: the owner's to do, as tokens)."""
    app.router.add_get("/backups", backups_page)
    app.router.add_post("/backups", create_job)
    path = "/backups/{job_id:\\d{1,18}}/{step:" + "|".join(STEPS) + "}"
    app.router.add_get(path, confirm_page)
    app.router.add_post(path, change_job)
