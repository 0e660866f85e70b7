"""`fieldpost contract`, `rates`, `invoice` and `report`: what a client pays and what they got for it."""

from __future__ import annotations

import argparse
import textwrap
import urllib.parse
from typing import Any

from shared.spreadsheet import EXPORT_NOTE
from technician.client import CliError, Context
from technician.parsing import actions, client_path, command
from technician.text import table, write_output

CONTRACT_FIELDS = ("effective_from", "start", "term_months", "workstation_rate", "server_rate", "included_hours",
                   "onboarding_workstation_months", "onboarding_server_months")
RATE_FIELDS = ("effective_from", "hourly_rate", "minimum_minutes", "increment_minutes", "after_hours_multiplier",
               "onsite_minimum_minutes", "client")
COVERS = ("remote", "onsite", "after-hours")


async def set_contract(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost contract set CLIENT ...`: a new version of the client's contract."""
    body: dict[str, Any] = {f: getattr(args, f) for f in CONTRACT_FIELDS if getattr(args, f) is not None}
    if args.covers is not None:
        covers = {c.strip() for c in args.covers.split(",") if c.strip()}
        unknown = covers - set(COVERS)
        if unknown:
            raise CliError(f"--covers: unknown {', '.join(sorted(unknown))} ({', '.join(COVERS)})")
        body.update(covers_remote="remote" in covers, covers_onsite="onsite" in covers,
                    covers_after_hours="after-hours" in covers)
    made = await ctx.collector.post(f"/api/v1/clients/{client_path(args.client)}/contracts", body)
    print(f"contract for {args.client} from {made['effective_from']}: "
          f"{made['workstation_rate']} per workstation, {made['server_rate']} per server a month")


async def list_contracts(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost contract list CLIENT`."""
    contracts = (await ctx.collector.get(f"/api/v1/clients/{client_path(args.client)}/contracts"))["contracts"]
    rows = [
        [c["effective_from"], c["effective_to"] or "-", c["workstation_rate"], c["server_rate"],
         f"{c['term_months']} months from {c['start']}"]
        for c in contracts
    ]
    print(table(rows, ["FROM", "TO", "WORKSTATION", "SERVER", "TERM"]) if rows else "no contract")


async def set_rates(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost rates set --from DATE --hourly AMOUNT ...`: a new rate card version."""
    card = await ctx.collector.post("/api/v1/rates", {f: getattr(args, f) for f in RATE_FIELDS
                                                      if getattr(args, f) is not None})
    print(f"break/fix rates from {card['effective_from']} for {card['client'] or 'everyone'}: "
          f"{card['hourly_rate']} an hour")


async def list_rates(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost rates list`."""
    rows = [
        [r["effective_from"], r["client"] or "everyone", r["hourly_rate"], f"{r['minimum_minutes']} min",
         f"{r['increment_minutes']} min", f"x{r['after_hours_multiplier']}", f"{r['onsite_minimum_minutes']} min"]
        for r in (await ctx.collector.get("/api/v1/rates"))["rates"]
    ]
    print(table(rows, ["FROM", "FOR", "HOURLY", "MINIMUM", "INCREMENT", "AFTER HOURS", "ON-SITE MINIMUM"])
          if rows else "no rate cards")


async def invoice(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost invoice CLIENT --month YYYY-MM [--csv FILE --format generic|qbo|xero]`."""
    path = f"/api/v1/clients/{client_path(args.client)}/invoice?month={args.month}"
    if args.csv:
        fmt = {"generic": "csv"}.get(args.format, args.format)
        write_output(args.csv, await ctx.collector.fetch(f"{path}&format={fmt}"))
        if args.csv != "-":
            print(f"invoice for {args.client}, {args.month} written to {args.csv} ({args.format} layout)")
        return
    bill = await ctx.collector.get(path)
    rows = [[line["kind"], line["description"], line["quantity"], line["unit_price"], line["amount"]]
            for line in bill["lines"]]
    rows.append(["", "TOTAL", "", bill["currency"], bill["totals"]["total"]])
    print(f"invoice for {bill['client']}, {bill['month']}\n" + table(rows, ["KIND", "LINE", "QTY", "PRICE", "AMOUNT"]))


async def report(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost report CLIENT --month YYYY-MM | --from DATE --to DATE [--pdf FILE] [--html FILE]`."""
    if bool(args.month) == bool(args.first or args.last):
        raise CliError("give --month, or --from and --to")
    when = {"month": args.month} if args.month else {"from": args.first, "to": args.last}
    path = f"/api/v1/clients/{client_path(args.client)}/report?{urllib.parse.urlencode(when)}"
    if not (args.pdf or args.html):
        raise CliError("give --pdf FILE and/or --html FILE")
    for target, fmt in ((args.html, "html"), (args.pdf, "pdf")):
        if target:
            write_output(target, await ctx.collector.fetch(f"{path}&format={fmt}"))
            print(f"value report for {args.client} written to {target}")


def register(commands: Any) -> None:
    """Add `contract`, `rates`, `invoice` and `report`."""
    contract = command(commands, "contract", "a client's managed-service contract: set (a new version), list",
                       examples=("fieldpost contract list 'Acme Tooling'",))
    contract_verbs = actions(contract)
    setting = command(
        contract_verbs, "set", "the first contract, or a change from --from DATE (options left out stay as they were)",
        examples=("fieldpost contract set 'Acme Tooling' --start 2026-06-01 --term 24 --workstation-rate 45.00 "
                  "--server-rate 150.00 --covers remote,onsite",
                  "fieldpost contract set 'Acme Tooling' --from 2027-01-01 --workstation-rate 49.00"),
        func=set_contract,
    )
    setting.add_argument("client")
    setting.add_argument("--from", dest="effective_from", help="the day this version takes effect (YYYY-MM-DD)")
    setting.add_argument("--start", help="the contract's first day (YYYY-MM-DD)")
    setting.add_argument("--term", type=int, dest="term_months", help="months, e.g. 24")
    setting.add_argument("--workstation-rate", help="a month, e.g. 45.00")
    setting.add_argument("--server-rate", help="a month, e.g. 150.00")
    setting.add_argument("--covers", help="comma-separated: remote, onsite, after-hours")
    setting.add_argument("--included-hours", help="covered hours a month (default: unlimited)")
    setting.add_argument("--onboarding-workstation-months", help="onboarding fee: months' rate per workstation")
    setting.add_argument("--onboarding-server-months", help="onboarding fee: months' rate per server")
    command(contract_verbs, "list", "the contract's versions", func=list_contracts).add_argument("client")

    rates = command(commands, "rates", "break/fix rate card: set (a new version), list")
    rates_verbs = actions(rates)
    card = command(rates_verbs, "set", "a rate card version from --from DATE",
                   examples=("fieldpost rates set --from 2027-01-01 --hourly 95.00 --minimum 30 --increment 15",
                             "fieldpost rates set --from 2027-01-01 --hourly 80.00 --client 'Acme Tooling'"),
                   func=set_rates)
    card.add_argument("--from", dest="effective_from", required=True, help="YYYY-MM-DD")
    card.add_argument("--hourly", dest="hourly_rate", required=True, help="e.g. 90.00")
    card.add_argument("--minimum", dest="minimum_minutes", type=int, default=60, help="minutes per entry")
    card.add_argument("--increment", dest="increment_minutes", type=int, default=15, help="minutes")
    card.add_argument("--multiplier", dest="after_hours_multiplier", default="1.5", help="after hours/emergency")
    card.add_argument("--onsite-minimum", dest="onsite_minimum_minutes", type=int, default=0, help="minutes")
    card.add_argument("--client", help="only for this client (default: everyone)")
    command(rates_verbs, "list", "rate card versions", func=list_rates)

    bill = command(commands, "invoice", "a client's monthly invoice (printed, or as CSV)",
                   description="A client's monthly invoice (printed, or as CSV).\n\n" + textwrap.fill(EXPORT_NOTE, 78),
                   examples=("fieldpost invoice 'Acme Tooling' --month 2026-11",
                             "fieldpost invoice 'Acme Tooling' --month 2026-11 --csv acme.csv --format xero"),
                   func=invoice)
    bill.add_argument("client")
    bill.add_argument("--month", required=True, help="YYYY-MM")
    bill.add_argument("--csv", metavar="FILE", help="write the invoice as CSV to FILE (- for standard output)")
    bill.add_argument("--format", choices=["generic", "qbo", "xero"], default="generic",
                      help="CSV layout: generic, QuickBooks Online or Xero import")

    value = command(commands, "report", "a client's value report for a month or a date range",
                    examples=("fieldpost report 'Acme Tooling' --month 2026-11 --pdf acme-2026-11.pdf",
                              "fieldpost report 'Acme Tooling' --from 2026-06-01 --to 2026-11-30 --html acme.html"),
                    func=report)
    value.add_argument("client")
    value.add_argument("--month", help="YYYY-MM")
    value.add_argument("--from", dest="first", help="YYYY-MM-DD (with --to)")
    value.add_argument("--to", dest="last", help="YYYY-MM-DD")
    value.add_argument("--pdf", metavar="FILE", help="write the PDF here")
    value.add_argument("--html", metavar="FILE", help="write the HTML page here")
