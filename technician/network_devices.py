"""`fieldpost network-device list|add|remove|candidates|adopt|dismiss`: a site's devices without an agent
(recorders, cameras, NAS, switches...), which the site's agents probe, and those its agents discovered."""

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


def candidates_path(args: argparse.Namespace) -> str:
    """The API path of the site's discovered devices not monitored yet."""
    return f"/api/v1/sites/{quote(args.client, safe='')}/{quote(args.site, safe='')}/network-device-candidates"


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


def probing(args: argparse.Namespace) -> dict[str, Any]:
    """How the device is probed, as the API takes it, from --tcp or --http (else ICMP echo) and their options."""
    body: dict[str, Any] = {"probe": "icmp", "hours": args.hours, "expect_status": args.status,
                            "tls_days": args.tls_days}
    if args.tcp is not None:
        body.update(probe="tcp", port=args.tcp)
    if args.http is not None:
        body.update(probe="http", url=args.http)
    return {key: value for key, value in body.items() if value is not None}


def declaration(args: argparse.Namespace) -> dict[str, Any]:
    """The device as the API takes it, from the command line's options."""
    return {"name": args.name, "address": args.address, "kind": args.kind, **probing(args)}


async def add_network_device(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost network-device add CLIENT SITE NAME ADDRESS --kind KIND [--tcp PORT | --http URL]`."""
    device = await ctx.collector.post(devices_path(args), declaration(args))
    print(f"{device['name']} ({device['kind']}, {device['address']}) is probed by {args.site}'s agents: "
          f"{device['how']}")


async def remove_network_device(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost network-device remove CLIENT SITE NAME`."""
    await ctx.collector.delete(f"{devices_path(args)}/{quote(args.name, safe='')}")
    print(f"{args.name} is no longer probed")


def candidates_table(candidates: list[dict[str, Any]]) -> str:
    """Discovered devices not monitored yet as a readable table."""
    if not candidates:
        return "no devices of camera, NAS or network makers seen that are not monitored yet"
    rows = [[c["address"], c["mac"], c["vendor"], c["kind"], ", ".join(c["seen_by"])] for c in candidates]
    return table(rows, ["ADDRESS", "HARDWARE ADDRESS", "MAKER", "KIND", "SEEN BY"])


async def list_candidates(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost network-device candidates CLIENT SITE [--json]`."""
    found = (await ctx.collector.get(candidates_path(args)))["candidates"]
    print(json.dumps(found, indent=2) if args.json else candidates_table(found))


async def adopt_candidate(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost network-device adopt CLIENT SITE CANDIDATE [--name NAME] [--kind KIND] [--tcp PORT | --http
    URL]`."""
    body = {key: value for key, value in (("name", args.name), ("kind", args.kind)) if value is not None}
    device = await ctx.collector.post(f"{candidates_path(args)}/{quote(args.candidate, safe='')}/adopt",
                                      {**body, **probing(args)})
    print(f"{device['name']} ({device['kind']}, {device['address']}) is probed by {args.site}'s agents: "
          f"{device['how']}")


async def dismiss_candidate(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost network-device dismiss CLIENT SITE CANDIDATE`."""
    found = (await ctx.collector.post(f"{candidates_path(args)}/{quote(args.candidate, safe='')}/dismiss",
                                      {}))["dismissed"]
    print(f"{found['vendor']} {found['address']} ({found['mac']}) is no longer offered for {args.site}")


def probe_options(parser: argparse.ArgumentParser) -> None:
    """The options that say how a device is probed (ICMP echo unless --tcp or --http)."""
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--tcp", type=int, metavar="PORT", help="connect to this TCP port instead of echo")
    how.add_argument("--http", metavar="URL", help="fetch this http(s) URL instead of echo")
    parser.add_argument("--status", type=int, help="the HTTP status that means up (default 200)")
    parser.add_argument("--tls-days", type=int, help="warn when its certificate expires within this many days")
    parser.add_argument("--hours", metavar="HH:MM-HH:MM", help="only expected to answer in these local hours "
                        "(the client's time zone)")


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
                  "fieldpost network-device list 'Acme Tooling' 'Main office'",
                  "fieldpost network-device candidates 'Acme Tooling' 'Main office'",
                  "fieldpost network-device adopt 'Acme Tooling' 'Main office' 192.168.1.31 --name 'Camera yard' "
                  "--tcp 554",
                  "fieldpost network-device dismiss 'Acme Tooling' 'Main office' 44:19:b6:12:34:56"),
    )
    actions = group.add_subparsers(dest="action", required=True)
    listing = command(actions, "list", "list the site's declared devices", func=list_network_devices)
    added = command(actions, "add", "declare a device for the site to probe", func=add_network_device,
                    description="Declare a device; without --tcp or --http it is probed by ICMP echo.")
    removed = command(actions, "remove", "stop probing a device", func=remove_network_device)
    candidates = command(
        actions, "candidates", "list devices the site's PCs see that are not monitored yet", func=list_candidates,
        description="Devices of camera, NAS and network makers (known by their hardware address) that the site's "
                    "PCs saw in their neighbour tables within the last day, neither declared nor dismissed. Adopt "
                    "one with `adopt`, or stop it being offered with `dismiss`.")
    adopted = command(
        actions, "adopt", "declare a device not monitored yet, probed at the address it was seen at",
        func=adopt_candidate,
        description="Declare one of the `candidates` as a device of the site. CANDIDATE is its IP address or its "
                    "hardware address. Its name defaults to its maker and address, its kind to what its maker "
                    "makes, its probe to ICMP echo (--tcp or --http for another).")
    dismissed = command(
        actions, "dismiss", "stop offering a device not monitored yet", func=dismiss_candidate,
        description="Stop offering one of the `candidates` (a guest's phone, a device watched elsewhere). "
                    "CANDIDATE is its IP address or its hardware address; it stays dismissed by its hardware "
                    "address, whatever IP address it has next.")
    for parser in (listing, added, removed, candidates, adopted, dismissed):
        parser.add_argument("client")
        parser.add_argument("site")
    for parser in (listing, candidates):
        parser.add_argument("--json", action="store_true", help="machine-readable output")
    removed.add_argument("name")
    added.add_argument("name", help="its name at the site (Recorder, Camera yard)")
    added.add_argument("address", help="host name or IP address")
    added.add_argument("--kind", required=True, choices=DEVICE_KINDS)
    probe_options(added)
    for parser in (adopted, dismissed):
        parser.add_argument("candidate", help="its IP address or hardware address, as `candidates` lists it")
    adopted.add_argument("--name", help="its name at the site (default: its maker and address)")
    adopted.add_argument("--kind", choices=DEVICE_KINDS, help="what it is (default: what its maker makes)")
    probe_options(adopted)
