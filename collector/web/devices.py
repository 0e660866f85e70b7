"""Clients, their sites and devices with each signal's state at a glance, and a device's page with charts."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from aiohttp import web
from markupsafe import Markup

from collector import keys
from collector.api import wiring
from collector.rules.disk_health import Thresholds, fill_forecast_days
from collector.rules.expectations import UNKNOWN_CLASS, format_days
from collector.services.clients import HoursInput
from collector.services.errors import DomainError, Invalid
from collector.services.inputs import validated
from collector.store import AlertRow, ObservationRow
from collector.web.charts import Series, line_chart
from collector.web.render import reasons, refused_page, render, see_other, size
from collector.web.sessions import form, page
from shared import signals
from shared.base import EARLIEST
from shared.device_class import DEVICE_CLASSES
from shared.disk_health import FilesystemFacts

# (signal kind, column heading, the rules whose alerts say how that signal is doing)
SIGNALS = tuple((s.name, s.label, s.rules) for s in signals.SIGNALS if s.at_a_glance)
RANK = {"critical": 3, "warning": 2, "unknown": 1}
HISTORY = 500
# Recovery-key reveals looked at for the device's history (the newest of all devices').
REVEALS_LOOKED_AT = 500
# How far a filesystem's fill forecast is drawn ahead of its last report.
FORECAST_DAYS = 30
REALLOCATED = 5


@dataclass
class Glance:
    """One signal of one device: the worst open alert's severity, or ok / none when nothing is open."""

    state: str
    alerts: list[AlertRow] = field(default_factory=list)


def glance(kind: str, rules: tuple[str, ...], open_alerts: list[AlertRow], seen: datetime | None) -> Glance:
    """How one signal of a device is doing: its open alerts (a check that could not look: unknown)."""
    mine = [a for a in open_alerts if a.rule in rules or (a.rule == "unknown" and a.subject == kind)]
    if mine:
        return Glance(max((a.severity for a in mine), key=RANK.__getitem__), mine)
    return Glance("ok" if seen is not None else "none")


@page
async def clients_page(request: web.Request) -> web.Response:
    """`GET /clients`: every client, its sites and devices, each signal's state at a glance."""
    fleet = await wiring.devices(request).fleet()
    everyone = await wiring.clients(request).list(archived=True)
    clients = [c for c in everyone if c.archived_at is None]
    async with request.app[keys.STORE].read() as tx:
        seen = await tx.last_observed([kind for kind, _, _ in SIGNALS])
    devices: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for status in fleet.devices:
        agent = status.agent
        devices[(agent.site.client_name, agent.site.site_name)].append({
            "agent": agent, "open": len(status.open_alerts), "online": status.online,
            "signals": [glance(kind, rules, status.open_alerts, seen.get((agent.agent_id, kind)))
                        for kind, _, rules in SIGNALS],
        })
    defaults = request.app[keys.SETTINGS].business_hours
    hours = {c.name: defaults.for_client(c.hours) for c in clients}
    return render(request, "clients.html", clients=clients, devices=devices, site_wide=fleet.site_wide,
                  archived=[c.name for c in everyone if c.archived_at is not None],
                  headings=[heading for _, heading, _ in SIGNALS], hours=hours, format_days=format_days)


def _disk_name(disk: dict[str, Any]) -> str:
    """A disk as people tell disks apart: model and serial."""
    return f"{disk.get('model') or 'disk'} {disk.get('serial') or disk.get('device', '')}".strip()


def _reallocated(disk: dict[str, Any]) -> int | None:
    """Reallocated sectors (ATA attribute 5) or grown defects (SCSI)."""
    found = next((a["decoded"] for a in disk.get("attributes", []) if a.get("id") == REALLOCATED), None)
    return found if found is not None else disk.get("scsi_grown_defects")


def _by_name(observations: list[ObservationRow], items: str, name: Any, value: Any,
             at: Any = None) -> dict[str, list[tuple[datetime, float]]]:
    """Points per named item (disk, filesystem, job) across observations, oldest first, one per moment."""
    lines: dict[str, dict[datetime, float]] = defaultdict(dict)
    for observation in reversed(observations):
        for item in observation.payload.get(items, []):
            number = value(item)
            moment = at(item) if at else observation.collected_at
            if number is not None and moment is not None:
                lines[name(item)][moment] = float(number)
    return {key: sorted(points.items()) for key, points in lines.items()}


def _fill_forecast(mount: str, free: list[tuple[datetime, float]], latest: dict[str, Any]) -> Series | None:
    """The dashed line from the last report to full (or FORECAST_DAYS ahead), at the rate the rule sees."""
    last_at = free[-1][0]
    window = timedelta(days=Thresholds().fs_forecast_window_days)
    facts = FilesystemFacts.model_validate(latest)
    earlier = [(at, int(value)) for at, value in free[:-1] if last_at - at <= window]
    days = fill_forecast_days(facts, last_at, earlier)
    if days is None or not facts.total_bytes:
        return None
    shown = min(days, FORECAST_DAYS)
    used = 100 * facts.used_bytes / facts.total_bytes
    return Series(f"{mount} forecast: full in about {days:.0f} days",
                  [(last_at, used), (last_at + timedelta(days=shown), used + (100 - used) * shown / days)],
                  dashed=True)


def _lines(points: dict[str, list[tuple[datetime, float]]]) -> list[Series]:
    """One solid line per name."""
    return [Series(name, line) for name, line in points.items()]


def _ended(job: dict[str, Any]) -> datetime | None:
    """When a reported backup run ended (the moment its size and duration belong to)."""
    moment = job.get("last_run_ended_at")
    return datetime.fromisoformat(moment) if moment else None


def _minutes(job: dict[str, Any]) -> float | None:
    """A reported backup run's duration in minutes."""
    seconds = job.get("duration_seconds")
    return seconds / 60 if seconds is not None else None


def _used_percent(fs: dict[str, Any]) -> float | None:
    """How full a reported filesystem is, in percent."""
    return 100 * fs["used_bytes"] / fs["total_bytes"] if fs.get("total_bytes") else None


def _charts(disks: list[ObservationRow], backups: list[ObservationRow]) -> list[Markup]:
    """The device's charts: disk temperature, reallocated sectors, filesystem fill, backup sizes and times."""
    mount, job = (lambda f: f["mount"]), (lambda j: j["name"])
    temperature = _by_name(disks, "disks", _disk_name, lambda d: d.get("temperature_c"))
    reallocated = _by_name(disks, "disks", _disk_name, _reallocated)
    fill = _by_name(disks, "filesystems", mount, _used_percent)
    free = _by_name(disks, "filesystems", mount, lambda f: f["free_bytes"])
    latest = {f["mount"]: f for f in (disks[0].payload.get("filesystems", []) if disks else [])}
    series: list[Series] = []
    for name, used in fill.items():
        series.append(Series(name, used))
        forecast = _fill_forecast(name, free[name], latest[name]) if name in latest else None
        series += [forecast] if forecast else []
    sizes = _by_name(backups, "jobs", job, lambda j: j.get("bytes_total"), at=_ended)
    times = _by_name(backups, "jobs", job, _minutes, at=_ended)
    return [
        line_chart("Disk temperature (°C)", _lines(temperature)),
        line_chart("Reallocated sectors", _lines(reallocated), y_floor=0),
        line_chart("Filesystem fill (% used)", series, fmt=lambda v: f"{v:.0f} %", y_floor=0, y_ceiling=100),
        line_chart("Backup size per job", _lines(sizes), fmt=size, y_floor=0),
        line_chart("Backup duration per job (minutes)", _lines(times), y_floor=0),
    ]


@page
async def device_page(request: web.Request) -> web.Response:
    """`GET /devices/{agent_id}`: the device's signals, open alerts by rule, latest facts and charts."""
    agent_id = request.match_info["agent_id"]
    try:
        status = await wiring.devices(request).device(agent_id)
    except DomainError as exc:
        return refused_page(request, exc)
    agent, open_alerts = status.agent, status.open_alerts
    async with request.app[keys.STORE].read() as tx:
        seen = await tx.last_observed([kind for kind, _, _ in SIGNALS])
        disks = tx.unreadable.readable(await tx.observations(agent_id, "disk_health", HISTORY))
        backups = tx.unreadable.readable(await tx.observations(agent_id, "backup_results", HISTORY))
        encryption = tx.unreadable.readable(await tx.observations(agent_id, "encryption", 1))
        streams = await tx.agent_epochs(agent_id)
        escrowed = await tx.escrowed_keys(agent_id)
        reveals = [event for event in await tx.recent_feed("escrow.revealed", EARLIEST, REVEALS_LOOKED_AT)
                   if event.data.get("agent_id") == agent_id]
    by_rule: dict[str, list[AlertRow]] = defaultdict(list)
    for alert in sorted(open_alerts, key=lambda a: (-RANK.get(a.severity, 0), a.rule, a.subject)):
        by_rule[alert.rule].append(alert)
    signals = [(heading, glance(kind, rules, open_alerts, seen.get((agent_id, kind))),
                seen.get((agent_id, kind))) for kind, heading, rules in SIGNALS]
    return render(request, "device.html", agent=agent, by_rule=by_rule, signals=signals,
                  online=status.online, streams=streams, judged_as=agent.device_class or UNKNOWN_CLASS,
                  classes=DEVICE_CLASSES,
                  latest_disks=disks[0].payload if disks else None,
                  latest_backups=backups[0].payload.get("jobs", []) if backups else [],
                  latest_encryption=encryption[0].payload if encryption else None,
                  escrowed=escrowed, reveals=reveals,
                  charts=_charts(disks, backups),
                  unreadable=request.app[keys.STORE].unreadable.count(agent_id))


@form
async def set_device_class(request: web.Request) -> web.Response:
    """`POST /devices/{agent_id}/class`: what the device is (`agent`: what its agent reports)."""
    agent_id = request.match_info["agent_id"]
    wanted = str((await request.post()).get("device_class", ""))
    try:
        if wanted not in (*DEVICE_CLASSES, "agent"):
            raise Invalid("device_class", f"{wanted!r} is not server, workstation, laptop or agent")
        status = await wiring.devices(request).set_class(agent_id, None if wanted == "agent" else wanted)  # type: ignore[arg-type]
    except DomainError as exc:
        return see_other(f"/devices/{quote(agent_id)}", flash=f"Not changed: {'; '.join(reasons(exc))}")
    judged = status.agent.device_class or UNKNOWN_CLASS
    return see_other(f"/devices/{quote(agent_id)}", flash=f"{status.agent.hostname} is judged as a {judged}.")


@form
async def set_client_hours(request: web.Request) -> web.Response:
    """`POST /clients/{name}/hours`: the client's business hours (blank fields: the collector's defaults)."""
    name = request.match_info["name"]
    filled = {key: value for key, value in (await request.post()).items()
              if key in ("days", "start", "end", "timezone") and value}
    try:
        await wiring.clients(request).set_hours(name, validated(HoursInput, filled))
    except DomainError as exc:
        return see_other("/clients", flash=f"Business hours of {name} not changed: {'; '.join(reasons(exc))}")
    return see_other("/clients", flash=f"Business hours of {name} saved.")


def setup(app: web.Application) -> None:
    """Register the clients and device pages."""
    app.router.add_get("/clients", clients_page)
    app.router.add_get("/devices/{agent_id}", device_page)
    app.router.add_post("/devices/{agent_id}/class", set_device_class)
    app.router.add_post("/clients/{name}/hours", set_client_hours)
