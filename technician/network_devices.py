"""`fieldpost network-device list|add|remove`: a site's devices without an agent (recorders, cameras, NAS,
switches...), which the site's agents probe."""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

from shared.reachability import DEVICE_KINDS
from technician.client import Context
from technician.parsing import command
from technician.text import table


def devices_path(args: argparse.Namespace) -> str:
    """The API path of the site's devices."""
    return f"/api/v1/sites/{quote(args.client, safe='')}/{quote(args.site, safe='')}/network-devices"


def network_devices_table(devices: list[dict[str, Any]]) -> str:
    """Declared devices as a readable table."""
    if not devices:
        return "no devices declared for this site yet"
    rows = [[d["name"], d["kind"], d["address"], d["how"], d["hours"] or "always"] for d in devices]
    return table(rows, ["NAME", "KIND", "ADDRESS", "PROBE", "EXPECTED"])


async def list_network_devices(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost network-device list CLIENT SITE [--json]`."""
    body = await ctx.collector.get(devices_path(args))
    found = body["network_devices"]
    print(json.dumps(found, indent=2) if args.json else network_devices_table(found))


def declaration(args: argparse.Namespace) -> dict[str, Any]:
    """The device as the API takes it, from the command line's options (the probe from --tcp or --http)."""
    body: dict[str, Any] = {"name": args.name, "address": args.address, "kind": args.kind, "probe": "icmp",
                            "hours": args.hours, "expect_status": args.status, "tls_days": args.tls_days}
    if args.tcp is not None:
        body.update(probe="tcp", port=args.tcp)
    if args.http is not None:
        body.update(probe="http", url=args.http)
    return {key: value for key, value in body.items() if value is not None}


async def add_network_device(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost network-device add CLIENT SITE NAME ADDRESS --kind KIND [--tcp PORT | --http URL]`."""
    device = await ctx.collector.post(devices_path(args), declaration(args))
    print(f"{device['name']} ({device['kind']}, {device['address']}) is probed by {args.site}'s agents: "
          f"{device['how']}")


async def remove_network_device(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost network-device remove CLIENT SITE NAME`."""
    await ctx.collector.delete(f"{devices_path(args)}/{quote(args.name, safe='')}")
    print(f"{args.name} is no longer probed")


def register(commands: Any) -> None:
    """Add `network-device`."""
    group = command(
        commands, "network-device", "declare a site's devices without an agent (recorders, cameras, NAS...)",
        description="Devices that cannot run an agent, probed by every agent of their site. Unreachable from "
                    "every PC that probed it is an alert (a camera recorder, NAS or router critical, others a "
                    "warning); unreachable from one PC only is that PC's network, not the device.",
        examples=("fieldpost network-device add 'Acme Tooling' 'Main office' Recorder 192.168.1.20 "
                  "--kind camera_recorder --tcp 554",
                  "fieldpost network-device add 'Acme Tooling' 'Main office' NAS nas.local --kind nas "
                  "--http https://nas.local/ --tls-days 21",
                  "fieldpost network-device list 'Acme Tooling' 'Main office'"),
    )
    actions = group.add_subparsers(dest="action", required=True)
    listing = command(actions, "list", "list the site's declared devices", func=list_network_devices)
    added = command(actions, "add", "declare a device for the site to probe", func=add_network_device,
                    description="Declare a device; without --tcp or --http it is probed by ICMP echo.")
    removed = command(actions, "remove", "stop probing a device", func=remove_network_device)
    for parser in (listing, added, removed):
        parser.add_argument("client")
        parser.add_argument("site")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    removed.add_argument("name")
    added.add_argument("name", help="its name at the site (Recorder, Camera yard)")
    added.add_argument("address", help="host name or IP address")
    added.add_argument("--kind", required=True, choices=DEVICE_KINDS)
    how = added.add_mutually_exclusive_group()
    how.add_argument("--tcp", type=int, metavar="PORT", help="connect to this TCP port instead of echo")
    how.add_argument("--http", metavar="URL", help="fetch this http(s) URL instead of echo")
    added.add_argument("--status", type=int, help="the HTTP status that means up (default 200)")
    added.add_argument("--tls-days", type=int, help="warn when its certificate expires within this many days")
    added.add_argument("--hours", metavar="HH:MM-HH:MM", help="only expected to answer in these local hours")
