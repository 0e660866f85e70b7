"""`fieldpost escrow status|on|off|keys|reveal|purge`: recovery-key escrow per client (off unless turned on),
a device's escrowed keys, revealing one (recorded) and purging a client's kept keys."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from technician.client import CliError, Context
from technician.parsing import command
from technician.text import local_time, table


def client_path(args: argparse.Namespace) -> str:
    """The API path of the client's escrow switch."""
    return f"/api/v1/clients/{quote(args.client, safe='')}/escrow"


def device_path(args: argparse.Namespace) -> str:
    """The API path of the device's escrowed keys."""
    return f"/api/v1/devices/{quote(args.device, safe='')}/escrow"


def policy_line(client: str, policy: dict[str, Any]) -> str:
    """`Acme Tooling: escrow on (turned on by anna, 2026-11-23 10:00)`."""
    state = "on" if policy["enabled"] else "off"
    if policy["changed_at"] is None:
        return f"{client}: escrow {state} (never turned on)"
    return f"{client}: escrow {state} (turned {state} by {policy['changed_by']}, {local_time(policy['changed_at'])})"


async def show(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost escrow status CLIENT`."""
    print(policy_line(args.client, await ctx.collector.get(client_path(args))))


async def turn_on(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost escrow on CLIENT`."""
    print(policy_line(args.client, await ctx.collector.put(client_path(args), {"enabled": True})))
    print("its devices send their BitLocker recovery passwords, sealed to the collector's escrow key, at their "
          "next encryption check")


async def turn_off(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost escrow off CLIENT`."""
    print(policy_line(args.client, await ctx.collector.put(client_path(args), {"enabled": False})))
    print("the keys kept so far stay until `fieldpost escrow purge` deletes them")


async def list_keys(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost escrow keys --device AGENT_ID`."""
    found = (await ctx.collector.get(device_path(args)))["keys"]
    rows = [[k["volume"], k["protector_id"], local_time(k["escrowed_at"])] for k in found]
    print(table(rows, ["VOLUME", "PROTECTOR", "ESCROWED"]) if rows else "no recovery key escrowed")


async def reveal(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost escrow reveal --device AGENT_ID --volume C:` (recorded in the device's history)."""
    found = (await ctx.collector.post(device_path(args) + "/reveal", {"volume": args.volume}))["keys"]
    for key in found:
        print(f"{key['volume']} {key['protector_id']} (escrowed {local_time(key['escrowed_at'])}): "
              f"{key['recovery_password']}")


async def purge(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost escrow purge CLIENT --yes`."""
    if not args.yes:
        raise CliError(f"this deletes every recovery key {args.client}'s devices escrowed: add --yes to do it")
    deleted = (await ctx.collector.post(client_path(args) + "/purge", {}))["deleted"]
    print(f"{deleted} escrowed recovery key{'s' if deleted != 1 else ''} of {args.client} deleted")


def register(commands: Any) -> None:
    """Add `escrow`."""
    group = command(
        commands, "escrow", "recovery-key escrow per client: on, off, a device's keys, reveal, purge",
        description="Off unless turned on here for a client. With escrow on, the client's Windows devices send "
                    "their BitLocker recovery passwords sealed to the collector's escrow key (FileVault personal "
                    "keys cannot be read back: not escrowable; LUKS has none). Revealing a key is recorded in the "
                    "device's history; turning escrow off keeps the keys until `escrow purge`.",
        examples=("fieldpost escrow on 'Acme Tooling'",
                  "fieldpost escrow keys --device ag_4f2a9c",
                  "fieldpost escrow reveal --device ag_4f2a9c --volume C:",
                  "fieldpost escrow purge 'Acme Tooling' --yes"),
    )
    actions = group.add_subparsers(dest="action", required=True)
    for name, summary, func in (("status", "whether the client's recovery keys are escrowed", show),
                                ("on", "turn escrow on for the client", turn_on),
                                ("off", "turn escrow off for the client (kept keys stay)", turn_off),
                                ("purge", "delete every key the client's devices escrowed", purge)):
        parser = command(actions, name, summary, func=func)
        parser.add_argument("client")
        if name == "purge":
            parser.add_argument("--yes", action="store_true", help="yes, delete them")
    keys = command(actions, "keys", "list a device's escrowed keys (not their values)", func=list_keys)
    revealed = command(actions, "reveal", "show a volume's recovery password (recorded)", func=reveal)
    for parser in (keys, revealed):
        parser.add_argument("--device", required=True, metavar="AGENT_ID")
    revealed.add_argument("--volume", required=True, help="the volume, e.g. C:")
