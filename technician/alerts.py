"""`fieldpost alerts`: list alerts, follow the live feed, show one, acknowledge, snooze or resolve it."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from technician.client import Collector, Context, refusal
from technician.parsing import actions, command, duration_minutes
from technician.text import local_time, table

SEVERITY_ORDER = {"critical": 0, "warning": 1, "unknown": 2}


def alerts_table(alerts: list[dict[str, Any]]) -> str:
    """Alerts, most severe and newest first, as a readable table."""
    if not alerts:
        return "no alerts"
    ordered = sorted(alerts, key=lambda a: (a["state"] != "open", SEVERITY_ORDER.get(a["severity"], 9)))
    rows = [
        [str(a["alert_id"]), a["severity"].upper(), a["state"], f"{a['client']} / {a['site']}", a["hostname"],
         local_time(a["opened_at"]), a["summary"]]
        for a in ordered
    ]
    return table(rows, ["ID", "SEVERITY", "STATE", "CLIENT / SITE", "DEVICE", "OPENED", "SUMMARY"])


def alert_detail(alert: dict[str, Any]) -> str:
    """One alert and its history, readable."""
    lines = [f"#{alert['alert_id']} {alert['severity'].upper()} {alert['state']}: {alert['summary']}",
             f"  {alert['client']} / {alert['site']} / {alert['hostname']}, rule {alert['rule']}, "
             f"subject {alert['subject']}, seen {alert['occurrences']} time(s)"]
    if alert.get("acknowledged_at"):
        lines.append(f"  acknowledged by {alert['acknowledged_by']} at {local_time(alert['acknowledged_at'])}")
    if alert.get("snoozed_until"):
        lines.append(f"  snoozed until {local_time(alert['snoozed_until'])}")
    for entry in alert.get("history", []):
        why = entry["detail"].get("note") or entry["detail"].get("reason") or ""
        lines.append(f"  {local_time(entry['at'])}  {entry['what']:12} {entry['by']:12} {why}")
    return "\n".join(lines)


def feed_line(event_type: str, data: dict[str, Any]) -> str:
    """One feed event of any type as one terminal line: when, how bad, what, where (as far as it has one)."""
    when = local_time(data.get("at"))
    where = " / ".join(str(data[key]) for key in ("client", "site", "hostname") if data.get(key))
    place = f"{where}: " if where else ""
    if event_type.startswith("alert."):
        what = event_type.removeprefix("alert.")
        return f"{when}  {data['severity'].upper():8}  {what:8}  #{data['alert_id']}  {place}{data['summary']}"
    level = "DOWN" if event_type == "collector.down" else "INFO"
    return f"{when}  {level:8}  {event_type:18}  {place}{describe(event_type, data)}"


# What says most about an event, in order: the first field an event has is its text.
DESCRIBING = ("summary", "title", "text", "description", "comment")


def describe(event_type: str, data: dict[str, Any]) -> str:
    """The words of a feed event that is not an alert's change (an incident, a channel, a silence, ...)."""
    text = next((str(data[key]) for key in DESCRIBING if data.get(key)), "")
    if event_type.startswith("channel."):
        text = f"channel {data.get('name', '?')} ({data.get('url', '')})" + (
            f" broken: {data['broken']}" if data.get("broken") else "")
    elif event_type.startswith("time."):
        text = f"{data.get('technician', '?')}: {data.get('minutes') or 'timer running'} min"
    elif event_type == "silence.expired":
        text = f"silence {data.get('silence_id', '?')} expired"
    elif event_type == "silence.created":
        matchers = ", ".join(f"{k}={v}" for k, v in (data.get("matchers") or {}).items()) or "everything"
        text = f"silence {data.get('silence_id', '?')} on {matchers}: {text}"
    ids = [f"#{data[key]}" for key in ("incident_id", "alert_id") if data.get(key)]
    return " ".join([*ids, text]).strip() or ", ".join(f"{k}={v}" for k, v in data.items() if k != "at")


async def sse_events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str | None, str, str]]:
    """(id, event type, data) for each Server-Sent Event in a response."""
    event_id: str | None = None
    event_type, data = "message", []
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                yield event_id, event_type, "\n".join(data)
            event_type, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            event_id = value
        elif name == "event":
            event_type = value
        elif name == "data":
            data.append(value)


async def follow(collector: Collector, as_json: bool, count: int | None) -> None:
    """Print the live feed; on a lost connection, reconnect and resume after the last event seen."""
    url = collector.connection.url
    last_id: str | None = None
    shown = 0
    delay = 1.0
    async with collector.session(aiohttp.ClientTimeout(total=None, sock_read=60)) as session:
        while True:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            try:
                async with session.get(url + "/api/v1/feed", headers=headers) as response:
                    if response.status == 401:
                        raise refusal(401, b"")
                    response.raise_for_status()
                    delay = 1.0
                    print(f"following {url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
                    async for event_id, event_type, data in sse_events(response):
                        last_id = event_id or last_id
                        payload = json.loads(data)
                        if as_json:
                            print(json.dumps({"id": event_id, "type": event_type, **payload}), flush=True)
                        else:
                            print(feed_line(event_type, payload), flush=True)
                        shown += 1
                        if count is not None and shown >= count:
                            return
            except (aiohttp.ClientError, TimeoutError) as exc:
                print(f"feed connection lost ({exc or type(exc).__name__}); reconnecting in {delay:.0f} s",
                      file=sys.stderr, flush=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


async def list_alerts(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost alerts [--state S] [--json]`, or the live feed with `--follow`."""
    if args.follow:
        await follow(ctx.collector, args.json, args.count)
        return
    body = await ctx.collector.get(f"/api/v1/alerts?state={args.state}")
    print(json.dumps(body["alerts"], indent=2) if args.json else alerts_table(body["alerts"]))


async def show_alert(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost alerts show ID`."""
    print(alert_detail(await ctx.collector.get(f"/api/v1/alerts/{args.alert_id}")))


async def act_on_alert(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost alerts ack|snooze|resolve ID`: the API's verb of the same name."""
    body: dict[str, Any] = {"note": args.note}
    if args.verb == "snooze":
        body["minutes"] = args.duration
    alert = await ctx.collector.post(f"/api/v1/alerts/{args.alert_id}/{args.verb}", body)
    print(f"#{alert['alert_id']} {args.verb}d: {alert['summary']}")


def register(commands: Any) -> None:
    """Add `alerts` and its actions."""
    alerts = command(
        commands, "alerts", "list alerts, follow the live feed, or act on an alert",
        description="Without an action: list alerts (or --follow the live feed). Actions: show, ack, snooze, resolve.",
        examples=("fieldpost alerts", "fieldpost alerts --state all --json", "fieldpost alerts --follow",
                  "fieldpost alerts ack 42 --note 'calling the client'", "fieldpost alerts snooze 42 --for 2h"),
        func=list_alerts,
    )
    alerts.add_argument("--state", choices=["open", "resolved", "all"], default="open", help="default: open")
    alerts.add_argument("--follow", "-f", action="store_true", help="show the live feed as it happens")
    alerts.add_argument("--count", type=int, help="with --follow: stop after this many events")
    alerts.add_argument("--json", action="store_true", help="machine-readable output")
    verbs = actions(alerts, required=False)
    command(verbs, "show", "one alert with its history", examples=("fieldpost alerts show 42",),
            func=show_alert).add_argument("alert_id", type=int)
    for name, verb, what, example in (
        ("ack", "acknowledge", "acknowledge: you are on it (reminders stop)",
         "fieldpost alerts ack 42 --note 'calling the client'"),
        ("snooze", "snooze", "hold its notifications for a while", "fieldpost alerts snooze 42 --for 2h"),
        ("resolve", "resolve", "close it by hand", "fieldpost alerts resolve 42 --note 'moved the archive'"),
    ):
        action = command(verbs, name, what, examples=(example,), func=act_on_alert)
        action.set_defaults(verb=verb)
        action.add_argument("alert_id", type=int)
        action.add_argument("--note", default="", help="why, for the alert's history and the client's report")
        if name == "snooze":
            action.add_argument("--for", dest="duration", required=True, type=duration_minutes,
                                help="how long, e.g. 30m, 2h, 1d")
