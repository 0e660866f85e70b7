"""The live feed page and an alert's page: its reasons, facts and history, and the technician's actions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from collector import keys
from collector.alerts.dedupe import alert_view
from collector.api import wiring
from collector.api.errors import as_json, status_of
from collector.billing.report import MALWARE_BLOCKED
from collector.services.alerts import DONE, ActionInput
from collector.services.errors import DomainError
from collector.store import AlertRow, Tx
from collector.web.render import reasons, render, see_other
from collector.web.sessions import SESSION, form, page, refusal, wants_json
from shared.signals import SIGNALS, all_rules, rule_matches

STATES = ("open", "resolved", "all")
SEVERITIES = ("critical", "warning", "unknown")
FILTERS = ("client", "site", "severity", "kind")
# The rules an alert can come from, offered in the feed's filter before any such alert exists.
RULES = all_rules()
# A signal in the filter shows all of its rules.
SIGNAL_NAMES = tuple(signal.name for signal in SIGNALS)
FEED_LIMIT = 200
# The collector's own outages are shown this long: while it was down, nothing was judged or sent.
DOWNTIMES_SHOWN = timedelta(days=7)
BACKUP_RUNS = 10
# Malware the antivirus blocked: info, not alerts; the feed shows the last week's.
BLOCKED_SHOWN = timedelta(days=7)
BLOCKED_LIMIT = 20
# Choices offered for snoozing and for silencing from an alert, in minutes.
DURATIONS = {60: "1 hour", 240: "4 hours", 1440: "1 day", 10080: "1 week"}
# The feed's row template for the script: an alert with every field empty.
BLANK = {"alert_id": "", "rule": "", "severity": "", "state": "", "summary": "", "client": "", "site": "",
         "hostname": "", "opened_at": "", "acknowledged_by": "", "snoozed_until": "", "flapping": False}


def _matches(view: dict[str, Any], filters: dict[str, str]) -> bool:
    """True when an alert passes the feed's filters (an empty filter passes everything)."""
    fields = {"client": view["client"], "site": view["site"], "severity": view["severity"],
              "kind": view["rule"]}
    return all(not wanted or (rule_matches(wanted, fields[name]) if name == "kind" else fields[name] == wanted)
               for name, wanted in filters.items())


@page
async def feed_page(request: web.Request) -> web.Response:
    """`GET /`: alerts newest first, filtered; the page's script adds what happens next (the SSE feed)."""
    filters = {name: request.query.get(name, "") for name in FILTERS}
    state = request.query.get("state", "open")
    state = state if state in STATES else "open"
    async with request.app[keys.STORE].read() as tx:
        # Read before the alerts: the script replays from here, so nothing between the two is missed.
        after = await tx.feed_last_id()
        alerts = await tx.alerts(None if state == "all" else state)  # type: ignore[arg-type]
        clients = await tx.clients()
        downtimes = await tx.recent_feed("collector.down", request.app[keys.CLOCK]() - DOWNTIMES_SHOWN, 3)
        blocked = await tx.recent_feed(MALWARE_BLOCKED, request.app[keys.CLOCK]() - BLOCKED_SHOWN, BLOCKED_LIMIT)
    views = [view for view in map(alert_view, alerts) if _matches(view, filters)]
    rules = sorted({*SIGNAL_NAMES, *RULES, *(a.rule for a in alerts)})
    sites = sorted({site for client in clients for site, _ in client.sites
                    if not filters["client"] or client.name == filters["client"]})
    return render(request, "feed.html", alerts=views[:FEED_LIMIT], more=max(0, len(views) - FEED_LIMIT),
                  after=after, filters=filters, state=state, states=STATES, clients=[c.name for c in clients],
                  sites=sites, severities=SEVERITIES, rules=rules, blank=BLANK,
                  downtimes=[event.data for event in downtimes],
                  blocked=[{"at": event.at.isoformat(), **event.data} for event in blocked
                           if all(not filters[key] or event.data.get(key) == filters[key]
                                  for key in ("client", "site"))])


async def _disk_facts(tx: Tx, alert: AlertRow) -> dict[str, Any] | None:
    """The alert's disk as the device reported it last (SMART attributes and all)."""
    serial = alert.details.get("serial")
    if alert.rule != "disk_health" or not serial or alert.agent_id is None:
        return None
    for observation in tx.unreadable.readable(await tx.observations(alert.agent_id, "disk_health", 1)):
        for disk in observation.payload.get("disks", []):
            if disk.get("serial") == serial:
                facts = {key: value for key, value in disk.items() if key != "attributes"}
                return {"collected_at": observation.collected_at, "attributes": disk.get("attributes", []),
                        "facts": facts}
    return None


async def _backup_runs(tx: Tx, alert: AlertRow) -> list[dict[str, Any]]:
    """The alert's backup job's last runs, newest first, as the device reported them."""
    job = alert.details.get("name")
    if alert.rule != "backup_results" or not job or alert.agent_id is None:
        return []
    runs: dict[str, dict[str, Any]] = {}
    for observation in tx.unreadable.readable(await tx.observations(alert.agent_id, "backup_results", 200)):
        for reported in observation.payload.get("jobs", []):
            ended = reported.get("last_run_ended_at") or reported.get("last_run_started_at")
            if reported.get("name") == job and ended and ended not in runs:
                runs[ended] = reported
        if len(runs) >= BACKUP_RUNS:
            break
    return list(runs.values())


@page
async def alert_page(request: web.Request) -> web.Response:
    """`GET /alerts/{id}`: what is wrong and why, the facts behind it, its history, and what to do."""
    alert_id = int(request.match_info["alert_id"])
    async with request.app[keys.STORE].read() as tx:
        alert = await tx.alert(alert_id)
        if alert is None:
            return render(request, "missing.html", status=404, what=f"There is no alert {alert_id}.")
        events = await tx.alert_events(alert_id)
        disk = await _disk_facts(tx, alert)
        runs = await _backup_runs(tx, alert)
        incident_id = await tx.incident_of_alert(alert_id)
    details = dict(alert.details)
    reasons = details.pop("reasons", None) or details.pop("findings", None) or [alert.summary]
    return render(request, "alert.html", alert=alert, view=alert_view(alert), reasons=reasons,
                  alert_facts=details,
                  events=events[::-1], disk=disk, runs=runs, durations=DURATIONS, incident_id=incident_id)


def _minutes(fields: Any) -> float | None:
    """The `minutes` field of a form, if it holds a positive number."""
    try:
        minutes = float(fields.get("minutes", ""))
    except ValueError:
        return None
    return minutes if minutes > 0 else None


@form
async def alert_action(request: web.Request) -> web.StreamResponse:
    """`POST /alerts/{id}/acknowledge|snooze|resolve` (form or script): the same action as the API's."""
    alert_id = int(request.match_info["alert_id"])
    action = request.match_info["action"]
    fields = await request.post()
    wanted = ActionInput(note=str(fields.get("note", ""))[:2000], minutes=_minutes(fields))
    try:
        alert = await wiring.alerts(request).act(alert_id, action, request[SESSION].name,  # type: ignore[arg-type]
                                                 wanted)
    except DomainError as exc:
        if wants_json(request):
            return as_json(exc)
        return see_other(f"/alerts/{alert_id}", flash=f"Not done: {exc.reason}.")
    if wants_json(request):
        return web.json_response(alert_view(alert))
    return see_other(f"/alerts/{alert_id}", flash=f"Alert {alert_id} {alert_view(alert)['state']}: "
                                                 f"{DONE[action]}.")  # type: ignore[index]


@form
async def silence_like_this(request: web.Request) -> web.StreamResponse:
    """`POST /alerts/{id}/silence`: hold notifications of alerts like this one (its client, device, rule)."""
    alert_id = int(request.match_info["alert_id"])
    fields = await request.post()
    try:
        silence = await wiring.silences(request).like_alert(alert_id, _minutes(fields), str(fields.get("comment", "")),
                                                     request[SESSION].name)
    except DomainError as exc:
        return refusal(status_of(exc), "; ".join(reasons(exc)))
    until = f"{silence.ends_at:%Y-%m-%d %H:%M} UTC"
    return see_other(f"/alerts/{alert_id}", flash=f"Silenced alerts like this one until {until} "
                                                 f"(silence {silence.silence_id}).")


def setup(app: web.Application) -> None:
    """Register the feed and alert pages."""
    app.router.add_get("/", feed_page)
    app.router.add_get(r"/alerts/{alert_id:\d{1,18}}", alert_page)
    app.router.add_post(r"/alerts/{alert_id:\d{1,18}}/{action:acknowledge|snooze|resolve}", alert_action)
    app.router.add_post(r"/alerts/{alert_id:\d{1,18}}/silence", silence_like_this)
