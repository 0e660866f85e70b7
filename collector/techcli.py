"""`fieldpost`: the technician's command line, talking to the collector's API."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from shared import __version__

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


async def get_json(conn: Connection, path: str) -> Any:
    """GET an API path and return its JSON, or raise CliError with the collector's reason."""
    try:
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {conn.token}"}) as session,
            session.get(conn.url + path) as response,
        ):
            body = await response.json(content_type=None)
            if response.status != 200:
                raise CliError(f"collector answered {response.status}: {body.get('error', body)}")
            return body
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
    alerts = commands.add_parser("alerts", help="list alerts, or follow the live feed")
    alerts.add_argument("--state", choices=["open", "resolved", "all"], default="open", help="default: open")
    alerts.add_argument("--follow", "-f", action="store_true", help="show the live feed as it happens")
    alerts.add_argument("--count", type=int, help="with --follow: stop after this many events")
    alerts.add_argument("--json", action="store_true", help="machine-readable output")
    devices = commands.add_parser("devices", help="list enrolled devices and whether they are online")
    devices.add_argument("--json", action="store_true", help="machine-readable output")
    diagnose = commands.add_parser("diagnose", help="the collector's verdict on output pasted from a client's PC")
    tools = diagnose.add_subparsers(dest="tool", required=True)
    smartctl = tools.add_parser(
        "smartctl", help="judge `smartctl --xall --json` output files; prints one JSON line per file",
        description="Runs the same parser and disk rule as the collector, offline; needs no collector or token.",
    )
    smartctl.add_argument("files", nargs="+", type=Path, metavar="FILE")
    return parser


async def run(args: argparse.Namespace) -> None:
    """Carry out one command."""
    conn = connection(args)
    if args.command == "alerts" and args.follow:
        await follow(conn, args.json, args.count)
    elif args.command == "alerts":
        body = await get_json(conn, f"/api/v1/alerts?state={args.state}")
        print(json.dumps(body["alerts"], indent=2) if args.json else alerts_table(body["alerts"]))
    elif args.command == "devices":
        body = await get_json(conn, "/api/v1/devices")
        print(json.dumps(body["devices"], indent=2) if args.json else devices_table(body["devices"]))


def main(argv: list[str] | None = None) -> int:
    """Entry point of `fieldpost`."""
    args = build_parser().parse_args(argv)
    if args.command == "diagnose":
        from collector.diagnose import diagnose_smartctl_file

        verdicts = [diagnose_smartctl_file(path) for path in args.files]
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
