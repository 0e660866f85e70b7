"""`fieldpost client` and `fieldpost site`: clients as records (create, rename, billing details, archive,
contacts) and their sites."""

from __future__ import annotations

import argparse
import json
from typing import Any

from technician.client import CliError, Context
from technician.parsing import actions, client_path, command
from technician.text import table

DETAILS = ("name", "billing_email", "billing_address", "notes")


def client_text(client: dict[str, Any]) -> str:
    """A client as a few readable lines: flags, billing details, sites and contacts."""
    flags = [word for word, on in (("archived", client["archived_at"]), ("demo, not billed", client["demo"])) if on]
    lines = [client["name"] + (f" ({', '.join(flags)})" if flags else "")]
    if client["billing_email"]:
        lines.append(f"  billing e-mail: {client['billing_email']}")
    if client["billing_address"]:
        lines.append("  billing address: " + ", ".join(client["billing_address"].splitlines()))
    sites = [f"{s['name']} ({s['devices']} devices)" for s in client["sites"]]
    sites += [f"{name} (archived)" for name in client["archived_sites"]]
    lines.append(f"  sites: {', '.join(sites) or 'none'}")
    for c in client["contacts"]:
        reach = ", ".join(part for part in (c["email"], c["phone"]) if part)
        lines.append(f"  contact {c['id']}: {c['name']}" + (f", {c['role']}" if c["role"] else "")
                     + (f" <{reach}>" if reach else "") + (" [billing]" if c["billing"] else ""))
    if client["notes"]:
        lines.append(f"  notes: {client['notes']}")
    return "\n".join(lines)


async def list_clients(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost client list [--archived] [--json]`."""
    body = await ctx.collector.get(f"/api/v1/clients?archived={'yes' if args.archived else 'no'}")
    if args.json:
        print(json.dumps(body["clients"], indent=2))
        return
    rows = [[c["name"], str(len(c["sites"])), str(sum(s["devices"] for s in c["sites"])),
             "archived" if c["archived_at"] else "demo" if c["demo"] else "",
             next((p["name"] for p in c["contacts"] if p["billing"]), "")] for c in body["clients"]]
    print(table(rows, ["CLIENT", "SITES", "DEVICES", "NOTE", "BILLING CONTACT"]) if rows else "no clients")


async def show_client(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost client show NAME`."""
    print(client_text(await ctx.collector.get(f"/api/v1/clients/{client_path(args.client)}")))


async def add_client(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost client add NAME [--demo]`."""
    made = await ctx.collector.post("/api/v1/clients", {"name": args.client, "demo": args.demo})
    print(f"client {made['name']} created")


async def set_client(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost client set NAME [--name NEW] [--billing-email E] [--billing-address A] [--notes N]`."""
    body = {key: getattr(args, key) for key in DETAILS if getattr(args, key) is not None}
    if args.billing_address is not None:
        body["billing_address"] = args.billing_address.replace("\\n", "\n")
    print(client_text(await ctx.collector.patch(f"/api/v1/clients/{client_path(args.client)}", body)))


async def archive_client(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost client archive|restore NAME`."""
    await ctx.collector.post(f"/api/v1/clients/{client_path(args.client)}/{args.action}", {})
    print(f"client {args.client} {'archived' if args.action == 'archive' else 'restored'}")


async def mark_demo(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost client demo NAME on|off`."""
    await ctx.collector.put(f"/api/v1/clients/{client_path(args.client)}/demo", {"demo": args.state == "on"})
    print(f"{args.client} is {'a demo client, kept out of billing' if args.state == 'on' else 'billed again'}")


async def add_contact(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost client contact NAME PERSON [--email E] [--phone P] [--role R] [--billing]`."""
    body = {"name": args.person, "email": args.email, "phone": args.phone, "role": args.role or "",
            "billing": args.billing}
    print(client_text(await ctx.collector.post(f"/api/v1/clients/{client_path(args.client)}/contacts", body)))


async def remove_contact(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost client uncontact NAME CONTACT_ID`."""
    path = f"/api/v1/clients/{client_path(args.client)}/contacts/{args.contact_id}"
    print(client_text(await ctx.collector.delete(path)))


async def site_action(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost site add|rename|archive|restore CLIENT SITE [NEW_NAME]`."""
    base = f"/api/v1/clients/{client_path(args.client)}/sites"
    if args.action == "add":
        client = await ctx.collector.post(base, {"name": args.site})
    elif args.action == "rename":
        if not args.new_name:
            raise CliError("site rename needs the new name: fieldpost site rename CLIENT SITE NEW_NAME")
        client = await ctx.collector.patch(f"{base}/{client_path(args.site)}", {"name": args.new_name})
    else:
        client = await ctx.collector.post(f"{base}/{client_path(args.site)}/{args.action}", {})
    print(client_text(client))


def register(commands: Any) -> None:
    """Add `client` and `site` with their actions."""
    client = command(commands, "client", "clients: list, add, rename, billing details, contacts, archive")
    verbs = actions(client)
    listing = command(verbs, "list", "clients with their sites, devices and billing contact", func=list_clients)
    listing.add_argument("--archived", action="store_true", help="archived clients too")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    command(verbs, "show", "one client: billing details, sites, contacts, notes",
            func=show_client).add_argument("client")
    add = command(verbs, "add", "a new client", examples=("fieldpost client add 'Acme Tooling'",), func=add_client)
    add.add_argument("client")
    add.add_argument("--demo", action="store_true", help="a demo client, kept out of billing")
    change = command(
        verbs, "set", "rename a client or set its billing e-mail, billing address or notes ('' clears one)",
        examples=("fieldpost client set 'Acme' --name 'Acme Tooling'",
                  "fieldpost client set 'Acme Tooling' --billing-email accounts@acme.example "
                  "--billing-address 'Hauptstr. 1\\n10115 Berlin'"),
        func=set_client,
    )
    change.add_argument("client")
    change.add_argument("--name", help="the new name")
    change.add_argument("--billing-email", help="where invoices go")
    change.add_argument("--billing-address", help="postal address; \\n between lines")
    change.add_argument("--notes", help="notes on the client")
    for verb, text in (("archive", "archive a client: it leaves lists and billing, its history stays"),
                       ("restore", "bring an archived client back")):
        command(verbs, verb, text, func=archive_client).add_argument("client")
    demo = command(verbs, "demo", "mark a client as the demo client (on: kept out of billing) or not (off)",
                   func=mark_demo)
    demo.add_argument("client")
    demo.add_argument("state", choices=["on", "off"])
    contact = command(verbs, "contact", "add a contact person to a client",
                      examples=("fieldpost client contact 'Acme Tooling' 'Eva Weber' --email eva@acme.example "
                                "--role owner --billing",), func=add_contact)
    contact.add_argument("client")
    contact.add_argument("person", help="the person's name")
    contact.add_argument("--email")
    contact.add_argument("--phone")
    contact.add_argument("--role", help="owner, office manager, bookkeeper...")
    contact.add_argument("--billing", action="store_true", help="invoices and value reports go to this person")
    uncontact = command(verbs, "uncontact", "remove a contact (its id as `fieldpost client show` lists it)",
                        func=remove_contact)
    uncontact.add_argument("client")
    uncontact.add_argument("contact_id", type=int)
    site = command(commands, "site", "a client's sites: add, rename, archive, restore",
                   examples=("fieldpost site add 'Acme Tooling' Warehouse",
                             "fieldpost site rename 'Acme Tooling' Warehouse 'Old warehouse'",
                             "fieldpost site archive 'Acme Tooling' 'Old warehouse'"), func=site_action)
    site.add_argument("action", choices=["add", "rename", "archive", "restore"])
    site.add_argument("client")
    site.add_argument("site")
    site.add_argument("new_name", nargs="?", help="rename: the site's new name")
