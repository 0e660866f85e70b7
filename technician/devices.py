"""`fieldpost devices` (enrolled devices, online or not), `fieldpost device set` (billing class and contact),
`fieldpost device-class` (what a device's silence means) and `fieldpost client-hours` (business hours)."""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

from technician.client import Context
from technician.parsing import command
from technician.text import local_time, table


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


async def list_devices(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost devices [--json]`."""
    body = await ctx.collector.get("/api/v1/devices")
    print(json.dumps(body["devices"], indent=2) if args.json else devices_table(body["devices"]))


async def set_device(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost device set AGENT_ID --class C [--contact TEXT]`: how the device is billed."""
    device = await ctx.collector.post(
        f"/api/v1/devices/{args.agent_id}/billing", {"device_class": args.device_class, "contact": args.contact}
    )
    print(f"{device['hostname']} is a {device['device_class']}")


async def set_device_class(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost device-class AGENT_ID server|workstation|laptop|agent`."""
    wanted = None if args.device_class == "agent" else args.device_class
    device = await ctx.collector.put(f"/api/v1/devices/{args.agent_id}/class", {"device_class": wanted})
    source = "set by hand" if device["class_override"] else "as its agent reports"
    print(f"{device['hostname']} is judged as a {device['device_class']} ({source})")


async def set_client_hours(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost client-hours CLIENT [--days D] [--start HH:MM] [--end HH:MM] [--timezone ZONE]`."""
    body = {"days": args.days, "start": args.start, "end": args.end, "timezone": args.timezone}
    client = await ctx.collector.put(f"/api/v1/clients/{quote(args.client, safe='')}/hours", body)
    hours = client["business_hours"]
    print(f"{client['name']}: business hours {hours['days']} {hours['start']}-{hours['end']} {hours['timezone']}")


def register(commands: Any) -> None:
    """Add `devices` and `device`."""
    devices = command(commands, "devices", "list enrolled devices and whether they are online",
                      examples=("fieldpost devices", "fieldpost devices --json"), func=list_devices)
    devices.add_argument("--json", action="store_true", help="machine-readable output")
    device = command(
        commands, "device", "set a device's class and contact",
        description="Set a device's class (what the contract bills it as) and its contact person.",
        examples=("fieldpost device set 3f2a... --class server --contact 'Anna, front desk'",),
        func=set_device,
    )
    device.add_argument("action", choices=["set"])
    device.add_argument("agent_id", help="as `fieldpost devices` lists it")
    device.add_argument("--class", dest="device_class", required=True, choices=["workstation", "server", "network"])
    device.add_argument("--contact", default="")
    classed = command(
        commands, "device-class", "say what a device is: server, workstation or laptop",
        description="A server that stops reporting is critical at once; a workstation or laptop being off is "
                    "normal, and a warning only when it misses its client's business hours or stays off for days. "
                    "`agent` goes back to the class the device's agent reports.",
        examples=("fieldpost device-class 3f2a... server", "fieldpost device-class 3f2a... agent"),
        func=set_device_class,
    )
    classed.add_argument("agent_id", help="as `fieldpost devices` lists it")
    classed.add_argument("device_class", choices=["server", "workstation", "laptop", "agent"])
    hours = command(
        commands, "client-hours", "set a client's business hours (when its workstations should be on)",
        description="A part left out takes the collector's default ([collector.business_hours]: mon-fri "
                    "08:00-18:00 in the collector's time zone unless configured otherwise).",
        examples=("fieldpost client-hours 'Acme Tooling' --days mon-fri --start 07:30 --end 17:00 "
                  "--timezone Europe/Berlin",),
        func=set_client_hours,
    )
    hours.add_argument("client", help="the client's name, as `fieldpost devices` shows it")
    hours.add_argument("--days", help="working days, e.g. mon-fri or mon-thu,sat")
    hours.add_argument("--start", help="local time business hours begin (HH:MM)")
    hours.add_argument("--end", help="local time business hours end (HH:MM)")
    hours.add_argument("--timezone", help="IANA time zone, e.g. Europe/Berlin")
