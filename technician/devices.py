"""`fieldpost devices` (enrolled devices, online or not) and `fieldpost device set` (class and contact)."""

from __future__ import annotations

import argparse
import json
from typing import Any

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
