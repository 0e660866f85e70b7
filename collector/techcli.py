"""`fieldpost`: the technician's command line, talking to the collector's API."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tomllib
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from shared import __version__
from shared.clock import Clock, system_clock

CONFIG_PATH = Path("~/.config/fieldpost/technician.toml").expanduser()
SEVERITY_ORDER = {"critical": 0, "warning": 1, "unknown": 2}


class CliError(Exception):
    """Something the technician must fix; printed as one line."""


@dataclass(frozen=True)
class Connection:
    """Where the collector is and how to authenticate to it."""

    url: str
    token: str


def connection(args: argparse.Namespace) -> Connection:
    """Collector URL and token from options, else FIELDPOST_URL/FIELDPOST_TOKEN, else the config file."""
    file: dict[str, Any] = {}
    if CONFIG_PATH.exists():
        try:
            file = tomllib.loads(CONFIG_PATH.read_text()).get("technician", {})
        except tomllib.TOMLDecodeError as exc:
            raise CliError(f"{CONFIG_PATH}: not valid TOML: {exc}") from exc
    url = args.url or os.environ.get("FIELDPOST_URL") or file.get("url") or "http://127.0.0.1:8470"
    token = args.token or os.environ.get("FIELDPOST_TOKEN") or file.get("token")
    if not token:
        raise CliError(
            "no technician token: pass --token, set FIELDPOST_TOKEN, or put token = \"...\" under [technician] "
            f"in {CONFIG_PATH} (the collector writes one to the file admin-token next to its database)"
        )
    return Connection(url.rstrip("/"), token)


async def get_json(conn: Connection, path: str, body: dict[str, Any] | None = None) -> Any:
    """GET an API path (POST when there is a body) and return its JSON, or raise CliError with the reason."""
    try:
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {conn.token}"}) as session,
            session.request("POST" if body is not None else "GET", conn.url + path, json=body) as response,
        ):
            answer = await response.json(content_type=None)
            if response.status not in (200, 201):
                problems = "; ".join(f"{p['field']}: {p['message']}" for p in answer.get("problems", []))
                raise CliError(f"collector answered {response.status}: {answer.get('error', answer)}"
                               + (f" ({problems})" if problems else ""))
            return answer
    except aiohttp.ClientConnectionError as exc:
        raise CliError(f"cannot reach the collector at {conn.url}: {exc}") from exc


def local_time(iso: str | None) -> str:
    """An ISO timestamp as local time, to the minute."""
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")


def table(rows: list[list[str]], header: list[str]) -> str:
    """Rows aligned in columns under a header."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


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


def devices_table(devices: list[dict[str, Any]]) -> str:
    """Devices as a readable table."""
    if not devices:
        return "no devices enrolled yet"
    rows = [
        [d["hostname"], f"{d['client']} / {d['site']}", "online" if d["online"] else "OFFLINE",
         local_time(d["last_seen_at"]), str(d["open_alerts"]), d["agent_id"]]
        for d in devices
    ]
    return table(rows, ["DEVICE", "CLIENT / SITE", "STATE", "LAST SEEN", "ALERTS", "AGENT ID"])


def feed_line(event_type: str, data: dict[str, Any]) -> str:
    """One feed event as one terminal line."""
    when = local_time(data.get("at"))
    where = f"{data.get('client', '?')} / {data.get('site', '?')} / {data.get('hostname', '?')}"
    if event_type.startswith("alert."):
        what = event_type.removeprefix("alert.")
        return f"{when}  {data['severity'].upper():8}  {what:8}  #{data['alert_id']}  {where}: {data['summary']}"
    return f"{when}  {'INFO':8}  {event_type.removeprefix('device.'):8}  {where}"


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


async def follow(conn: Connection, as_json: bool, count: int | None) -> None:
    """Print the live feed; on a lost connection, reconnect and resume after the last event seen."""
    last_id: str | None = None
    shown = 0
    delay = 1.0
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {conn.token}"}, timeout=timeout) as session:
        while True:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            try:
                async with session.get(conn.url + "/api/v1/feed", headers=headers) as response:
                    if response.status == 401:
                        raise CliError("collector refused the technician token")
                    response.raise_for_status()
                    delay = 1.0
                    print(f"following {conn.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
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


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="fieldpost",
        description="The technician's fieldpost command line: alerts, devices and the live feed.",
        epilog=f"Collector URL and token: --url/--token, FIELDPOST_URL/FIELDPOST_TOKEN, or [technician] url/token "
        f"in {CONFIG_PATH}.",
    )
    parser.add_argument("--version", action="version", version=f"fieldpost {__version__}")
    parser.add_argument("--url", help="collector URL (default http://127.0.0.1:8470)")
    parser.add_argument("--token", help="technician API token")
    commands = parser.add_subparsers(dest="command", required=True)
    alerts = commands.add_parser(
        "alerts", help="list alerts, follow the live feed, or act on an alert",
        description="Without an action: list alerts (or --follow the live feed). Actions: show, ack, snooze, resolve.",
    )
    actions = alerts.add_subparsers(dest="action", metavar="ACTION")
    show = actions.add_parser("show", help="one alert with its history")
    show.add_argument("alert_id", type=int)
    for name, what in (("ack", "acknowledge: you are on it (reminders stop)"),
                       ("snooze", "hold its notifications for a while"),
                       ("resolve", "close it by hand")):
        action = actions.add_parser(name, help=what)
        action.add_argument("alert_id", type=int)
        action.add_argument("--note", default="", help="why, for the alert's history and the client's report")
        if name == "snooze":
            action.add_argument("--for", dest="duration", required=True, type=duration_minutes,
                                help="how long, e.g. 30m, 2h, 1d")
    alerts.add_argument("--state", choices=["open", "resolved", "all"], default="open", help="default: open")
    alerts.add_argument("--follow", "-f", action="store_true", help="show the live feed as it happens")
    alerts.add_argument("--count", type=int, help="with --follow: stop after this many events")
    alerts.add_argument("--json", action="store_true", help="machine-readable output")
    devices = commands.add_parser("devices", help="list enrolled devices and whether they are online")
    devices.add_argument("--json", action="store_true", help="machine-readable output")
    channel = commands.add_parser("channel", help="notification channels: create, list, test")
    channel_actions = channel.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = channel_actions.add_parser(
        "create", help="a new channel (any apprise URL: mailto://, ntfy://, pover://, tgram://, json://, ...)")
    create.add_argument("name")
    create.add_argument("channel_url", metavar="URL",
                        help="apprise URL, e.g. ntfy://ntfy.sh/my-topic or mailtos://user:pass@host?to=me@x")
    create.add_argument("--min-severity", choices=["warning", "critical"], default="warning")
    create.add_argument("--client", action="append", default=[], help="only this client (repeatable)")
    create.add_argument("--kind", action="append", default=[], help="only this signal or rule, e.g. updates")
    create.add_argument("--quiet", metavar="HH:MM-HH:MM", help="quiet hours: only criticals; warnings go to the digest")
    create.add_argument("--digest", metavar="HH:MM", help="send a daily digest at this local time")
    create.add_argument("--timezone", default="UTC", help="for quiet hours and digest, e.g. Europe/Berlin")
    channel_actions.add_parser("list", help="channels and whether they work")
    test = channel_actions.add_parser("test", help="send a test message now")
    test.add_argument("name")

    silence = commands.add_parser("silence", help="hold notifications (alerts are still recorded)")
    silence_actions = silence.add_subparsers(dest="action", required=True, metavar="ACTION")
    make = silence_actions.add_parser(
        "create", help="one-off (--for 2h) or recurring maintenance window (--cron '0 22 * * 6' --duration 4h)")
    for matcher in ("client", "site", "device", "kind", "severity"):
        make.add_argument(f"--{matcher}", help=f"only alerts of this {matcher} (default: any)")
    make.add_argument("--for", dest="minutes", type=duration_minutes, help="from now, for this long")
    make.add_argument("--cron", help="recurring: crontab of each window's start")
    make.add_argument("--duration", type=duration_minutes, help="recurring: length of each window")
    make.add_argument("--timezone", default="UTC", help="the zone of --cron, e.g. Europe/Berlin")
    make.add_argument("--comment", required=True, help="why (shown to whoever wonders later)")
    silence_actions.add_parser("list", help="silences in force or to come")
    expire = silence_actions.add_parser("expire", help="end a silence now")
    expire.add_argument("silence_id", type=int)

    diagnose = commands.add_parser("diagnose", help="the collector's verdict on output pasted from a client's PC")
    tools = diagnose.add_subparsers(dest="tool", required=True)
    smartctl = tools.add_parser(
        "smartctl", help="judge `smartctl --xall --json` output files; prints one JSON line per file",
        description="Runs the same parser and disk rule as the collector, offline; needs no collector or token.",
    )
    smartctl.add_argument("files", nargs="+", type=Path, metavar="FILE")
    add_billing_commands(commands)
    return parser


def duration_minutes(text: str) -> float:
    """`30m`, `2h`, `1d` in minutes."""
    units = {"m": 1, "h": 60, "d": 1440}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.replace(".", "", 1).isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 2h or 1d")
    return float(number) * units[unit]


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


async def channel_command(conn: Connection, args: argparse.Namespace) -> None:
    """`fieldpost channel create|list|test`."""
    if args.action == "list":
        channels = (await get_json(conn, "/api/v1/channels"))["channels"]
        rows = [[c["name"], c["url"], c["min_severity"], c["quiet_hours"] or "-", c["digest_at"] or "-",
                 f"BROKEN: {c['broken']}" if c["broken"] else "ok"] for c in channels]
        print(table(rows, ["NAME", "URL", "FROM", "QUIET", "DIGEST", "STATE"]) if rows else "no channels yet")
    elif args.action == "test":
        try:
            await get_json(conn, f"/api/v1/channels/{args.name}/test", {})
        except CliError as exc:
            raise CliError(f"test message through {args.name} failed: {exc}") from None
        print(f"test message sent through {args.name}")
    else:
        body: dict[str, Any] = {"name": args.name, "url": args.channel_url, "min_severity": args.min_severity,
                                "clients": args.client, "kinds": args.kind, "timezone": args.timezone,
                                "digest_at": args.digest}
        if args.quiet:
            body["quiet_start"], _, body["quiet_end"] = args.quiet.partition("-")
        created = await get_json(conn, "/api/v1/channels", body)
        print(f"channel {created['name']} created ({created['url']}); try it: fieldpost channel test {args.name}")


async def silence_command(conn: Connection, args: argparse.Namespace) -> None:
    """`fieldpost silence create|list|expire`."""
    if args.action == "list":
        silences = (await get_json(conn, "/api/v1/silences"))["silences"]
        rows = [[str(s["silence_id"]), ", ".join(f"{k}={v}" for k, v in s["matchers"].items()) or "everything",
                 f"{s['cron']} for {s['duration_minutes']:g} min ({s['timezone']})" if s["cron"]
                 else f"until {local_time(s['ends_at'])}", s["comment"]] for s in silences]
        print(table(rows, ["ID", "MATCHES", "WHEN", "WHY"]) if rows else "no silences")
    elif args.action == "expire":
        await get_json(conn, f"/api/v1/silences/{args.silence_id}/expire", {})
        print(f"silence {args.silence_id} expired; held notifications go out at the next round")
    else:
        if bool(args.minutes) == bool(args.cron):
            raise CliError("give either --for (one-off) or --cron with --duration (recurring)")
        body = {k: getattr(args, k) for k in ("client", "site", "device", "kind", "severity") if getattr(args, k)}
        body.update(comment=args.comment, timezone=args.timezone)
        if args.minutes:
            body["minutes"] = args.minutes
        else:
            body.update(cron=args.cron, duration_minutes=args.duration)
        created = await get_json(conn, "/api/v1/silences", body)
        print(f"silence {created['silence_id']} created")


async def run(args: argparse.Namespace) -> None:
    """Carry out one command."""
    conn = connection(args)
    if args.command == "alerts" and args.action == "show":
        print(alert_detail(await get_json(conn, f"/api/v1/alerts/{args.alert_id}")))
    elif args.command == "alerts" and args.action:
        verb = {"ack": "acknowledge", "snooze": "snooze", "resolve": "resolve"}[args.action]
        body: dict[str, Any] = {"note": args.note}
        if args.action == "snooze":
            body["minutes"] = args.duration
        alert = await get_json(conn, f"/api/v1/alerts/{args.alert_id}/{verb}", body)
        print(f"#{alert['alert_id']} {verb}d: {alert['summary']}")
    elif args.command == "channel":
        await channel_command(conn, args)
    elif args.command == "silence":
        await silence_command(conn, args)
    elif args.command == "alerts" and args.follow:
        await follow(conn, args.json, args.count)
    elif args.command == "alerts":
        body = await get_json(conn, f"/api/v1/alerts?state={args.state}")
        print(json.dumps(body["alerts"], indent=2) if args.json else alerts_table(body["alerts"]))
    elif args.command == "devices":
        body = await get_json(conn, "/api/v1/devices")
        print(json.dumps(body["devices"], indent=2) if args.json else devices_table(body["devices"]))
    elif args.command in BILLING_COMMANDS:
        await BILLING_COMMANDS[args.command](conn, args)


# Billing: incidents, time, contracts, invoices and value reports -------------------------------------------


def client_path(name: str) -> str:
    """A client's name as one URL path segment."""
    return urllib.parse.quote(name, safe="")


async def fetch(conn: Connection, path: str) -> bytes:
    """GET a non-JSON API path (a CSV, a page, a PDF), or raise CliError with the collector's reason."""
    try:
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {conn.token}"}) as session,
            session.get(conn.url + path) as response,
        ):
            body = await response.read()
            if response.status != 200:
                try:
                    reason = json.loads(body).get("error", body.decode())
                except ValueError:
                    reason = body.decode(errors="replace")
                raise CliError(f"collector answered {response.status}: {reason}")
            return body
    except aiohttp.ClientConnectionError as exc:
        raise CliError(f"cannot reach the collector at {conn.url}: {exc}") from exc


def add_billing_commands(commands: Any) -> None:
    """`incident`, `time`, `contract`, `rates`, `device`, `invoice` and `report`."""
    incident = commands.add_parser(
        "incident", help="billable work: open (from an alert or by hand), list, show, note, close"
    )
    actions = incident.add_subparsers(dest="action", required=True, metavar="ACTION")
    opening = actions.add_parser(
        "open", help="open an incident --from-alert ID, or --client NAME --title TEXT"
    )
    opening.add_argument("--from-alert", type=int, dest="alert_id", help="the alert that caught it")
    opening.add_argument("--client", help="by hand: whose incident it is")
    opening.add_argument("--title", help="what it is about (default: the alert's summary)")
    opening.add_argument("--category", help="e.g. hardware, network, request, internal (not billed)")
    opening.add_argument("--emergency", action="store_true", help="billed with the after-hours multiplier")
    listing = actions.add_parser("list", help="incidents, oldest first")
    listing.add_argument("--client")
    listing.add_argument("--status", choices=["open", "closed", "all"], default="open")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    for name, what in (
        ("show", "one incident with its alerts, notes, time and parts"),
        ("note", "add a note"),
        ("close", "close it"),
    ):
        action = actions.add_parser(name, help=what)
        action.add_argument("incident_id", type=int)
        if name == "note":
            action.add_argument("text")
        if name == "close":
            action.add_argument("--resolution", default="", help="what fixed it, for the client's report")
        if name == "show":
            action.add_argument("--json", action="store_true", help="machine-readable output")

    time_cmd = commands.add_parser("time", help="time on an incident: start/stop a timer, or add by duration")
    time_actions = time_cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, what in (
        ("start", "start your timer"),
        ("stop", "stop your timer"),
        ("add", "add time worked"),
    ):
        action = time_actions.add_parser(name, help=what)
        action.add_argument("incident_id", type=int)
        action.add_argument("--technician", default="technician")
        if name == "stop":
            continue
        action.add_argument("--onsite", action="store_true", help="worked on site (default: remote)")
        action.add_argument("--after-hours", action="store_true", help="worked outside business hours")
        if name == "add":
            action.add_argument("--minutes", type=int, required=True)
            action.add_argument(
                "--at", type=datetime.fromisoformat, help="when it began (default: minutes ago)"
            )
            action.add_argument("--note", default="")
            action.add_argument(
                "--override",
                choices=["covered", "billable", "non_billable"],
                help="bill it this way instead of by the rules (needs --reason)",
            )
            action.add_argument("--reason", help="why the override")

    contract = commands.add_parser(
        "contract", help="a client's managed-service contract: set (a new version), list"
    )
    contract_actions = contract.add_subparsers(dest="action", required=True, metavar="ACTION")
    setting = contract_actions.add_parser(
        "set", help="the first contract, or a change from --from DATE (options left out stay as they were)"
    )
    setting.add_argument("client")
    setting.add_argument(
        "--from", dest="effective_from", help="the day this version takes effect (YYYY-MM-DD)"
    )
    setting.add_argument("--start", help="the contract's first day (YYYY-MM-DD)")
    setting.add_argument("--term", type=int, dest="term_months", help="months, e.g. 24")
    setting.add_argument("--workstation-rate", help="a month, e.g. 45.00")
    setting.add_argument("--server-rate", help="a month, e.g. 150.00")
    setting.add_argument("--covers", help="comma-separated: remote, onsite, after-hours")
    setting.add_argument("--included-hours", help="covered hours a month (default: unlimited)")
    setting.add_argument(
        "--onboarding-workstation-months", help="onboarding fee: months' rate per workstation"
    )
    setting.add_argument("--onboarding-server-months", help="onboarding fee: months' rate per server")
    contract_actions.add_parser("list", help="the contract's versions").add_argument("client")

    rates = commands.add_parser("rates", help="break/fix rate card: set (a new version), list")
    rates_actions = rates.add_subparsers(dest="action", required=True, metavar="ACTION")
    card = rates_actions.add_parser("set", help="a rate card version from --from DATE")
    card.add_argument("--from", dest="effective_from", required=True, help="YYYY-MM-DD")
    card.add_argument("--hourly", dest="hourly_rate", required=True, help="e.g. 90.00")
    card.add_argument("--minimum", dest="minimum_minutes", type=int, default=60, help="minutes per entry")
    card.add_argument("--increment", dest="increment_minutes", type=int, default=15, help="minutes")
    card.add_argument(
        "--multiplier", dest="after_hours_multiplier", default="1.5", help="after hours/emergency"
    )
    card.add_argument("--onsite-minimum", dest="onsite_minimum_minutes", type=int, default=0, help="minutes")
    card.add_argument("--client", help="only for this client (default: everyone)")
    rates_actions.add_parser("list", help="rate card versions")

    device = commands.add_parser("device", help="set a device's class and contact")
    device.add_argument("action", choices=["set"])
    device.add_argument("agent_id")
    device.add_argument(
        "--class", dest="device_class", required=True, choices=["workstation", "server", "network"]
    )
    device.add_argument("--contact", default="")

    invoice = commands.add_parser("invoice", help="a client's monthly invoice (printed, or as CSV)")
    invoice.add_argument("client")
    invoice.add_argument("--month", required=True, help="YYYY-MM")
    invoice.add_argument(
        "--csv", metavar="FILE", help="write the invoice as CSV to FILE (- for standard output)"
    )
    invoice.add_argument(
        "--format",
        choices=["generic", "qbo", "xero"],
        default="generic",
        help="CSV layout: generic, QuickBooks Online or Xero import",
    )

    report = commands.add_parser("report", help="a client's value report for a month or a date range")
    report.add_argument("client")
    report.add_argument("--month", help="YYYY-MM")
    report.add_argument("--from", dest="first", help="YYYY-MM-DD (with --to)")
    report.add_argument("--to", dest="last", help="YYYY-MM-DD")
    report.add_argument("--pdf", metavar="FILE", help="write the PDF here")
    report.add_argument("--html", metavar="FILE", help="write the HTML page here")


def classified(entry: dict[str, Any]) -> str:
    """How an entry is billed, in words."""
    return {
        "covered": "covered by the contract",
        "billable": "billable",
        "non_billable": "not billed",
        None: "running",
    }[entry["classification"]]


def incident_detail(incident: dict[str, Any]) -> str:
    """One incident with its alerts, notes, time and parts, readable."""
    lines = [
        f"incident {incident['incident_id']} {incident['status']}: {incident['title']}",
        f"  {incident['client']}, {incident['category']}{', EMERGENCY' if incident['emergency'] else ''}, "
        f"opened {local_time(incident['opened_at'])} by {incident['opened_by']}",
    ]
    for alert in incident["alerts"]:
        lines.append("  " + alert_detail(alert).replace("\n", "\n  "))
    lines += [f"  note {local_time(n['at'])} {n['by']}: {n['text']}" for n in incident["notes"]]
    lines += [
        f"  time #{e['entry_id']} {local_time(e['started_at'])} {e['technician']} "
        f"{e['minutes'] if e['minutes'] is not None else '...'} min"
        f"{' on site' if e['on_site'] else ''}{' after hours' if e['after_hours'] else ''}: {classified(e)}"
        for e in incident["time"]
    ]
    lines += [
        f"  part {p['day']} {p['quantity']} x {p['description']} at {p['price']}" for p in incident["parts"]
    ]
    if incident["closed_at"]:
        lines.append(f"  closed {local_time(incident['closed_at'])}: {incident['resolution'] or '-'}")
    lines.append(f"  {incident['minutes']} min in all")
    return "\n".join(lines)


async def incident_command(conn: Connection, args: argparse.Namespace) -> None:
    """`fieldpost incident open|list|show|note|close`."""
    if args.action == "open":
        body = {k: getattr(args, k) for k in ("alert_id", "client", "title", "category") if getattr(args, k)}
        opened = await get_json(conn, "/api/v1/incidents", {**body, "emergency": args.emergency})
        source = f", from alert #{opened['alert_id']}" if opened["alert_id"] else ""
        print(f"incident {opened['incident_id']} opened: {opened['title']} ({opened['client']}{source})")
    elif args.action == "list":
        query = urllib.parse.urlencode(
            {"status": args.status, **({"client": args.client} if args.client else {})}
        )
        incidents = (await get_json(conn, f"/api/v1/incidents?{query}"))["incidents"]
        rows = [
            [
                str(i["incident_id"]),
                i["status"],
                i["client"],
                local_time(i["opened_at"]),
                f"#{i['alert_id']}" if i["alert_id"] else "-",
                f"{i['minutes']} min",
                i["title"],
            ]
            for i in incidents
        ]
        if args.json:
            print(json.dumps(incidents, indent=2))
        else:
            print(
                table(rows, ["ID", "STATUS", "CLIENT", "OPENED", "ALERT", "TIME", "TITLE"])
                if rows
                else "no incidents"
            )
    elif args.action == "show":
        incident = await get_json(conn, f"/api/v1/incidents/{args.incident_id}")
        print(json.dumps(incident, indent=2) if args.json else incident_detail(incident))
    elif args.action == "note":
        await get_json(conn, f"/api/v1/incidents/{args.incident_id}/notes", {"text": args.text})
        print(f"note added to incident {args.incident_id}")
    else:
        closed = await get_json(
            conn, f"/api/v1/incidents/{args.incident_id}/close", {"resolution": args.resolution}
        )
        print(f"incident {closed['incident_id']} closed: {closed['title']}")


async def time_command(conn: Connection, args: argparse.Namespace) -> None:
    """`fieldpost time start|stop|add`."""
    path = f"/api/v1/incidents/{args.incident_id}"
    body: dict[str, Any] = {"technician": args.technician}
    if args.action != "stop":
        body.update(on_site=args.onsite, after_hours=args.after_hours)
    if args.action == "add":
        body.update(minutes=args.minutes, note=args.note)
        if args.at:
            body["start"] = args.at.isoformat()
        if args.override:
            body.update(override=args.override, override_reason=args.reason)
        entry = await get_json(conn, f"{path}/time", body)
        print(f"{entry['minutes']} min added to incident {args.incident_id} ({classified(entry)})")
    elif args.action == "start":
        entry = await get_json(conn, f"{path}/timer/start", body)
        print(f"timer started on incident {args.incident_id} at {local_time(entry['started_at'])}")
    else:
        entry = await get_json(conn, f"{path}/timer/stop", body)
        print(f"timer stopped on incident {args.incident_id}: {entry['minutes']} min ({classified(entry)})")


async def contract_command(conn: Connection, args: argparse.Namespace) -> None:
    """`fieldpost contract set|list`, `fieldpost rates set|list` and `fieldpost device set`."""
    if args.command == "device":
        device = await get_json(
            conn,
            f"/api/v1/devices/{args.agent_id}/billing",
            {"device_class": args.device_class, "contact": args.contact},
        )
        print(f"{device['hostname']} is a {device['device_class']}")
    elif args.command == "rates" and args.action == "list":
        rows = [
            [
                r["effective_from"],
                r["client"] or "everyone",
                r["hourly_rate"],
                f"{r['minimum_minutes']} min",
                f"{r['increment_minutes']} min",
                f"x{r['after_hours_multiplier']}",
                f"{r['onsite_minimum_minutes']} min",
            ]
            for r in (await get_json(conn, "/api/v1/rates"))["rates"]
        ]
        print(
            table(rows, ["FROM", "FOR", "HOURLY", "MINIMUM", "INCREMENT", "AFTER HOURS", "ON-SITE MINIMUM"])
            if rows
            else "no rate cards"
        )
    elif args.command == "rates":
        fields = (
            "effective_from",
            "hourly_rate",
            "minimum_minutes",
            "increment_minutes",
            "after_hours_multiplier",
            "onsite_minimum_minutes",
            "client",
        )
        card = await get_json(
            conn, "/api/v1/rates", {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
        )
        print(
            f"break/fix rates from {card['effective_from']} for {card['client'] or 'everyone'}: "
            f"{card['hourly_rate']} an hour"
        )
    elif args.action == "list":
        contracts = (await get_json(conn, f"/api/v1/clients/{client_path(args.client)}/contracts"))[
            "contracts"
        ]
        rows = [
            [
                c["effective_from"],
                c["effective_to"] or "-",
                c["workstation_rate"],
                c["server_rate"],
                f"{c['term_months']} months from {c['start']}",
            ]
            for c in contracts
        ]
        print(table(rows, ["FROM", "TO", "WORKSTATION", "SERVER", "TERM"]) if rows else "no contract")
    else:
        fields = (
            "effective_from",
            "start",
            "term_months",
            "workstation_rate",
            "server_rate",
            "included_hours",
            "onboarding_workstation_months",
            "onboarding_server_months",
        )
        body: dict[str, Any] = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
        if args.covers is not None:
            covers = {c.strip() for c in args.covers.split(",") if c.strip()}
            unknown = covers - {"remote", "onsite", "after-hours"}
            if unknown:
                raise CliError(
                    f"--covers: unknown {', '.join(sorted(unknown))} (remote, onsite, after-hours)"
                )
            body.update(
                covers_remote="remote" in covers,
                covers_onsite="onsite" in covers,
                covers_after_hours="after-hours" in covers,
            )
        made = await get_json(conn, f"/api/v1/clients/{client_path(args.client)}/contracts", body)
        print(
            f"contract for {args.client} from {made['effective_from']}: "
            f"{made['workstation_rate']} per workstation, {made['server_rate']} per server a month"
        )


def write_output(target: str, data: bytes) -> None:
    """Write to a file, or to standard output for `-`."""
    if target == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        Path(target).write_bytes(data)


async def invoice_command(conn: Connection, args: argparse.Namespace) -> None:
    """`fieldpost invoice CLIENT --month YYYY-MM [--csv FILE --format generic|qbo|xero]`."""
    path = f"/api/v1/clients/{client_path(args.client)}/invoice?month={args.month}"
    if args.csv:
        fmt = {"generic": "csv"}.get(args.format, args.format)
        write_output(args.csv, await fetch(conn, f"{path}&format={fmt}"))
        if args.csv != "-":
            print(f"invoice for {args.client}, {args.month} written to {args.csv} ({args.format} layout)")
        return
    bill = await get_json(conn, path)
    rows = [
        [line["kind"], line["description"], line["quantity"], line["unit_price"], line["amount"]]
        for line in bill["lines"]
    ]
    rows.append(["", "TOTAL", "", bill["currency"], bill["totals"]["total"]])
    print(
        f"invoice for {bill['client']}, {bill['month']}\n"
        + table(rows, ["KIND", "LINE", "QTY", "PRICE", "AMOUNT"])
    )


async def report_command(conn: Connection, args: argparse.Namespace) -> None:
    """`fieldpost report CLIENT --month YYYY-MM | --from DATE --to DATE [--pdf FILE] [--html FILE]`."""
    if bool(args.month) == bool(args.first or args.last):
        raise CliError("give --month, or --from and --to")
    when = {"month": args.month} if args.month else {"from": args.first, "to": args.last}
    path = f"/api/v1/clients/{client_path(args.client)}/report?{urllib.parse.urlencode(when)}"
    if not (args.pdf or args.html):
        raise CliError("give --pdf FILE and/or --html FILE")
    for target, fmt in ((args.html, "html"), (args.pdf, "pdf")):
        if target:
            write_output(target, await fetch(conn, f"{path}&format={fmt}"))
            print(f"value report for {args.client} written to {target}")


BILLING_COMMANDS = {
    "incident": incident_command,
    "time": time_command,
    "contract": contract_command,
    "rates": contract_command,
    "device": contract_command,
    "invoice": invoice_command,
    "report": report_command,
}


def main(argv: list[str] | None = None, clock: Clock = system_clock) -> int:
    """Entry point of `fieldpost`; `clock` is the time `diagnose` judges by."""
    args = build_parser().parse_args(argv)
    if args.command == "diagnose":
        from collector.diagnose import diagnose_smartctl_file

        verdicts = [diagnose_smartctl_file(path, now=clock()) for path in args.files]
        for verdict in verdicts:
            print(json.dumps(verdict))
        return 0 if all(v["status"] == "ok" for v in verdicts) else 1
    try:
        asyncio.run(run(args))
    except CliError as exc:
        print(f"fieldpost: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
