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
                   "onboarding_workstation_months", "onboarding_server_months", "monthly_fee")
RATE_FIELDS = ("effective_from", "hourly_rate", "minimum_minutes", "increment_minutes", "after_hours_multiplier",
               "onsite_minimum_minutes", "emergency_minimum_minutes", "client")
COVERS = ("remote", "onsite", "after-hours")
SETTING_HELP = {
    "currency": "ISO 4217 code, e.g. EUR, GBP, USD",
    "timezone": "the zone whose days time is billed by, e.g. Europe/Dublin",
    "tax_rate": "the default tax rate in percent, e.g. 19 (a client's own rate or exemption wins)",
    "tax_label": "what the tax is called on invoices, e.g. VAT, GST",
    "payment_terms_days": "days until an invoice is due, e.g. 14",
    "xero_account_code": "the Xero account every line is booked to, e.g. 200",
    "xero_tax_type": "the Xero tax type for taxed invoices, e.g. '20%% (VAT on Income)'",
    "minimum_term_months": "contracts run at least this long, e.g. 36 (0: any term)",
    "term_with_onboarding_months": "a shorter term allowed when the contract charges an onboarding fee, e.g. 12",
}


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
         f"{r['increment_minutes']} min", f"x{r['after_hours_multiplier']}", f"{r['onsite_minimum_minutes']} min",
         f"{r['emergency_minimum_minutes']} min"]
        for r in (await ctx.collector.get("/api/v1/rates"))["rates"]
    ]
    print(table(rows, ["FROM", "FOR", "HOURLY", "MINIMUM", "INCREMENT", "AFTER HOURS", "ON-SITE MINIMUM",
                       "EMERGENCY MINIMUM"])
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
    tax = bill["tax"]
    rows.append(["", "SUBTOTAL", "", bill["currency"], bill["totals"]["subtotal"]])
    rows.append(["", tax["exemption"] or f"{tax['label']} {tax['rate']}%", "", bill["currency"], bill["totals"]["tax"]])
    rows.append(["", "TOTAL", "", bill["currency"], bill["totals"]["total"]])
    print(f"invoice for {bill['client']}, {bill['month']}\n" + table(rows, ["KIND", "LINE", "QTY", "PRICE", "AMOUNT"]))


SETTINGS = ("currency", "timezone", "business_name", "business_address", "tax_id", "tax_label", "tax_rate",
            "payment_terms_days", "bank_details", "invoice_prefix", "minimum_term_months",
            "term_with_onboarding_months", "xero_account_code", "xero_tax_type")


async def settings(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost billing settings [--currency GBP --tax-rate 20 ...]`: show, or change what is given."""
    changes = {name: getattr(args, name) for name in SETTINGS if getattr(args, name) is not None}
    if changes:
        shown = await ctx.collector.post("/api/v1/billing/settings", changes)
    else:
        shown = await ctx.collector.get("/api/v1/billing/settings")
    print(table([[name, str(shown[name])] for name in SETTINGS], ["SETTING", "VALUE"]))


async def client_tax(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost billing tax CLIENT --rate 19 | --exempt REASON | --default`."""
    if sum((args.rate is not None, args.exempt is not None, args.default)) != 1:
        raise CliError("give one of --rate PERCENT, --exempt REASON or --default")
    body = {"tax_rate": args.rate} if args.rate is not None else {"exemption": args.exempt or ""}
    await ctx.collector.post(f"/api/v1/clients/{client_path(args.client)}/tax", body)
    if args.rate is not None:
        print(f"{args.client}'s invoices charge {args.rate}% tax")
    else:
        print(f"{args.client}'s invoices are exempt: {args.exempt}" if args.exempt
              else f"{args.client}'s invoices charge the default rate")


async def add_charge(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost billing charge CLIENT --description TEXT --amount 1200.00 [--day DATE]`."""
    body = {"description": args.description, "amount": args.amount, **({"day": args.day} if args.day else {})}
    charge = await ctx.collector.post(f"/api/v1/clients/{client_path(args.client)}/charges", body)
    print(f"one-off charge for {args.client} on {charge['day']}: {charge['description']}, {charge['amount']}")


async def issue(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost billing issue CLIENT --month YYYY-MM [--pdf FILE]`."""
    row = await ctx.collector.post(f"/api/v1/clients/{client_path(args.client)}/invoices", {"month": args.month})
    print(f"invoice {row['number']} issued for {args.client}, {args.month}: {row['currency']} "
          f"{row['totals']['total']}, due {row['due']}")
    if args.pdf:
        await write_issued_pdf(ctx, row["number"], args.pdf)


async def write_issued_pdf(ctx: Context, number: str, target: str) -> None:
    """Write an issued invoice's PDF."""
    write_output(target, await ctx.collector.fetch(f"/api/v1/invoices/{urllib.parse.quote(number)}?format=pdf"))
    if target != "-":
        print(f"invoice {number} written to {target}")


async def issued_pdf(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost billing pdf NUMBER FILE`."""
    await write_issued_pdf(ctx, args.number, args.file)


async def list_issued(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost billing invoices CLIENT`."""
    rows = [[i["number"], i["month"], i["issued"], i["due"], f"{i['currency']} {i['totals']['total']}",
             f"void: {i['void_reason']}" if i["voided_at"] else "issued"]
            for i in (await ctx.collector.get(f"/api/v1/clients/{client_path(args.client)}/invoices"))["invoices"]]
    print(table(rows, ["NUMBER", "MONTH", "ISSUED", "DUE", "TOTAL", "STATE"]) if rows else "no invoices issued")


async def void(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost billing void NUMBER --reason TEXT`."""
    await ctx.collector.post(f"/api/v1/invoices/{urllib.parse.quote(args.number)}/void", {"reason": args.reason})
    print(f"invoice {args.number} voided; its month can be issued anew")


async def report(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost report CLIENT --month YYYY-MM | --quarter YYYYQn | --from DATE --to DATE [--pdf|--html FILE]`."""
    given = sum(bool(x) for x in (args.month, args.quarter, args.first or args.last))
    if given != 1 or bool(args.first) != bool(args.last):
        raise CliError("give one period: --month YYYY-MM, --quarter YYYYQn, or --from DATE and --to DATE")
    when = (
        {"month": args.month} if args.month
        else {"quarter": args.quarter} if args.quarter
        else {"from": args.first, "to": args.last}
    )
    path = f"/api/v1/clients/{client_path(args.client)}/report?{urllib.parse.urlencode(when)}"
    if not (args.pdf or args.html):
        raise CliError("give --pdf FILE and/or --html FILE")
    for target, fmt in ((args.html, "html"), (args.pdf, "pdf")):
        if target:
            write_output(target, await ctx.collector.fetch(f"{path}&format={fmt}"))
            print(f"value report for {args.client} written to {target}")


def register(commands: Any) -> None:
    """Add `contract`, `rates`, `billing`, `invoice` and `report`."""
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
    setting.add_argument("--monthly-fee", help="a flat fee a month for the client as a whole, e.g. 250.00")
    command(contract_verbs, "list", "the contract's versions", func=list_contracts).add_argument("client")

    rates = command(commands, "rates", "break/fix rate card: set (a new version), list")
    rates_verbs = actions(rates)
    card = command(rates_verbs, "set", "a rate card version from --from DATE",
                   examples=("fieldpost rates set --from 2027-01-01 --hourly 95.00 --minimum 30 --increment 15",
                             "fieldpost rates set --from 2027-01-01 --hourly 80.00 --client 'Acme Tooling'"),
                   func=set_rates)
    card.add_argument("--from", dest="effective_from", required=True, help="YYYY-MM-DD")
    card.add_argument("--hourly", dest="hourly_rate", required=True, help="e.g. 90.00")
    card.add_argument("--minimum", dest="minimum_minutes", type=int, default=60,
                      help="minutes per visit (an incident's time on one day)")
    card.add_argument("--increment", dest="increment_minutes", type=int, default=15, help="minutes")
    card.add_argument("--multiplier", dest="after_hours_multiplier", default="1.5", help="after hours/emergency")
    card.add_argument("--onsite-minimum", dest="onsite_minimum_minutes", type=int, default=0,
                      help="minutes for a visit with on-site time")
    card.add_argument("--emergency-minimum", dest="emergency_minimum_minutes", type=int, default=0,
                      help="minutes for an emergency incident's call-out (its first visit), e.g. 300")
    card.add_argument("--client", help="only for this client (default: everyone)")
    command(rates_verbs, "list", "rate card versions", func=list_rates)

    billing = command(commands, "billing", "billing settings (business, currency, tax, terms) and clients' tax")
    billing_verbs = actions(billing)
    setting_cmd = command(billing_verbs, "settings", "show the billing settings, or change those given",
                          examples=("fieldpost billing settings",
                                    "fieldpost billing settings --currency GBP --tax-label VAT --tax-rate 20 "
                                    "--xero-tax-type '20% (VAT on Income)'"),
                          func=settings)
    for name in SETTINGS:
        setting_cmd.add_argument("--" + name.replace("_", "-"), dest=name, help=SETTING_HELP.get(name))
    tax = command(billing_verbs, "tax", "a client's own tax rate or exemption (or back to the default rate)",
                  examples=("fieldpost billing tax 'Acme Tooling' --rate 19",
                            "fieldpost billing tax 'Harbour Trust' --exempt 'Charity: exempt from VAT'"),
                  func=client_tax)
    tax.add_argument("client")
    tax.add_argument("--rate", help="percent, e.g. 19")
    tax.add_argument("--exempt", metavar="REASON", help="no tax; the invoice prints the reason")
    tax.add_argument("--default", action="store_true", help="the default rate from the billing settings")
    charge = command(billing_verbs, "charge", "a one-off charge (project work), invoiced in the month of its day",
                     examples=("fieldpost billing charge 'Acme Tooling' --description 'Server migration, fixed price' "
                               "--amount 1200.00 --day 2026-11-20",), func=add_charge)
    charge.add_argument("client")
    charge.add_argument("--description", required=True)
    charge.add_argument("--amount", required=True, help="e.g. 1200.00")
    charge.add_argument("--day", help="YYYY-MM-DD (default: today)")
    issuing = command(billing_verbs, "issue", "issue a client's invoice for a month: numbered, and never changed",
                      examples=("fieldpost billing issue 'Acme Tooling' --month 2026-11 --pdf INV-acme-2026-11.pdf",),
                      func=issue)
    issuing.add_argument("client")
    issuing.add_argument("--month", required=True, help="YYYY-MM")
    issuing.add_argument("--pdf", metavar="FILE", help="also write the issued invoice's PDF here")
    command(billing_verbs, "invoices", "a client's issued invoices, voided ones too",
            func=list_issued).add_argument("client")
    pdf = command(billing_verbs, "pdf", "an issued invoice's PDF", examples=("fieldpost billing pdf INV-00007 a.pdf",),
                  func=issued_pdf)
    pdf.add_argument("number")
    pdf.add_argument("file", help="where to write it (- for standard output)")
    voiding = command(billing_verbs, "void", "void an issued invoice (it keeps its number; the month can be "
                      "issued anew)", examples=("fieldpost billing void INV-00007 --reason 'wrong rate'",), func=void)
    voiding.add_argument("number")
    voiding.add_argument("--reason", required=True)

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

    value = command(commands, "report", "a client's value report for a month, a quarter or a date range",
                    examples=("fieldpost report 'Acme Tooling' --month 2026-11 --pdf acme-2026-11.pdf",
                              "fieldpost report 'Acme Tooling' --quarter 2026Q3 --pdf acme-2026Q3.pdf",
                              "fieldpost report 'Acme Tooling' --from 2026-06-01 --to 2026-11-30 --html acme.html"),
                    func=report)
    value.add_argument("client")
    value.add_argument("--month", help="YYYY-MM")
    value.add_argument("--quarter", help="YYYYQn, e.g. 2026Q3 (July to September)")
    value.add_argument("--from", dest="first", help="YYYY-MM-DD (with --to): a trial period, say")
    value.add_argument("--to", dest="last", help="YYYY-MM-DD")
    value.add_argument("--pdf", metavar="FILE", help="write the PDF here")
    value.add_argument("--html", metavar="FILE", help="write the HTML page here")
