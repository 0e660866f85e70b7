"""A site's devices without an agent: the declare form, each device's reachability from every PC of the site
with its latency and loss history, and the devices not monitored yet to adopt or dismiss."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from aiohttp import web
from markupsafe import Markup

from collector import keys
from collector.api import wiring
from collector.services.errors import DomainError
from collector.services.inputs import validated
from collector.web.charts import Series, line_chart
from collector.web.render import refused, refused_page, render, see_other
from collector.web.sessions import form, page
from shared.reachability import DEVICE_KINDS, Reachability, Target

# What the page shows: a day of reports, at most this many per PC.
HISTORY = timedelta(days=1)
PER_PC = 300
FIELDS = ("name", "address", "kind", "probe", "port", "url", "expect_status", "tls_days", "hours")


def site_path(client: str, site: str) -> str:
    """The page of a site's devices without an agent."""
    return f"/sites/{quote(client, safe='')}/{quote(site, safe='')}/network-devices"


def history(reports: list[tuple[str, Reachability]]) -> dict[str, dict[str, Any]]:
    """Per declared device: each PC's newest result, and per PC its latency line and loss per report."""
    found: dict[str, dict[str, Any]] = defaultdict(lambda: {"latest": {}, "latency": defaultdict(list), "rows": []})
    for hostname, report in sorted(reports, key=lambda r: r[1].collected_at):
        for result in report.results:
            device = found[result.target.name]
            device["latest"][hostname] = (report.collected_at, result)
            if result.latency_ms is not None:
                device["latency"][hostname].append((report.collected_at, result.latency_ms))
            device["rows"].append((report.collected_at, hostname, result))
    return found


def chart(latency: dict[str, list[Any]]) -> Markup:
    """Round-trip time per PC over the day."""
    return line_chart("Latency per PC (ms)", [Series(host, points) for host, points in sorted(latency.items())],
                      y_floor=0)


@page
async def site_devices_page(request: web.Request) -> web.Response:
    """`GET /sites/{client}/{site}/network-devices`: the site's devices, from every PC, and the declare form."""
    client, site = request.match_info["client"], request.match_info["site"]
    service = wiring.network_devices(request)
    try:
        declared = await service.list(client, site)
        candidates = await service.candidates(client, site)
    except DomainError as exc:
        return refused_page(request, exc)
    now = request.app[keys.CLOCK]()
    async with request.app[keys.STORE].read() as tx:
        ref = await tx.find_site(client, site)
        rows = await tx.site_observations(ref.site_id if ref else 0, "reachability", now - HISTORY, now, PER_PC,
                                          PER_PC * 50)
        readable = tx.unreadable.readable([row for _, row in rows])
    hosts = {row.agent_id: host for host, row in rows}
    reports = [(hosts[row.agent_id], Reachability.model_validate(row.payload)) for row in readable]
    seen = history(reports)
    devices = [(row.target, seen.get(row.target.name), chart(seen[row.target.name]["latency"])
                if row.target.name in seen else None) for row in declared]
    return render(request, "network_devices.html", client=client, site=site, devices=devices, kinds=DEVICE_KINDS,
                  candidates=candidates, path=site_path(client, site))


@form
async def add_device(request: web.Request) -> web.Response:
    """`POST /sites/{client}/{site}/network-devices`: declare a device (blank fields left out)."""
    client, site = request.match_info["client"], request.match_info["site"]
    filled = {key: value for key, value in (await request.post()).items() if key in FIELDS and value}
    try:
        target = validated(Target, filled)
        await wiring.network_devices(request).add(client, site, target)
    except DomainError as exc:
        return refused(exc, site_path(client, site), "added")
    return see_other(site_path(client, site), flash=f"{target.name} is probed by the site's agents from now on.")


@form
async def remove_device(request: web.Request) -> web.Response:
    """`POST /sites/{client}/{site}/network-devices/{name}/remove`."""
    client, site, name = (request.match_info[k] for k in ("client", "site", "name"))
    try:
        await wiring.network_devices(request).remove(client, site, name)
    except DomainError as exc:
        return refused(exc, site_path(client, site), "removed")
    return see_other(site_path(client, site), flash=f"{name} is no longer probed.")


@form
async def dismiss_candidate(request: web.Request) -> web.Response:
    """`POST /sites/{client}/{site}/network-devices/candidates/{candidate}/dismiss`: not offered again."""
    client, site, candidate = (request.match_info[k] for k in ("client", "site", "candidate"))
    try:
        found = await wiring.network_devices(request).dismiss(client, site, candidate)
    except DomainError as exc:
        return refused(exc, site_path(client, site), "dismissed")
    return see_other(site_path(client, site), flash=f"{found.vendor} {found.address} is no longer offered.")


def setup(app: web.Application) -> None:
    """Register the site's network devices page and its forms."""
    app.router.add_get("/sites/{client}/{site}/network-devices", site_devices_page)
    app.router.add_post("/sites/{client}/{site}/network-devices", add_device)
    app.router.add_post("/sites/{client}/{site}/network-devices/{name}/remove", remove_device)
    app.router.add_post("/sites/{client}/{site}/network-devices/candidates/{candidate}/dismiss", dismiss_candidate)
