"""`fieldpost report-mail`: a client's value report e-mailed on a schedule (show, set, stop) and its sends."""

from __future__ import annotations

import argparse
from typing import Any

from technician.client import Context
from technician.parsing import client_path, command
from technician.text import local_time, table


def described(state: dict[str, Any], client: str) -> str:
    """The schedule and its sends, readable; a failed send with its error and next try; why nothing is mailed
    (an archived or the demo client)."""
    schedule = state["schedule"]
    if schedule is None:
        lines = [f"{client} gets no value report by e-mail"]
    else:
        lines = [f"{client}: the {schedule['frequency']} value report on day {schedule['day']} to "
                 f"{', '.join(schedule['recipients'])} (channel {schedule['channel_id']})"]
    if state.get("held"):
        lines.append(state["held"])
    rows = [[f"{s['first_day']} to {s['last_day']}", s["status"], str(s["attempts"]),
             local_time(s["sent_at"] or s["next_try_at"]), s["error"] or ""] for s in state["sends"]]
    if rows:
        lines.append(table(rows, ["PERIOD", "STATUS", "TRIES", "SENT / NEXT TRY", "ERROR"]))
    return "\n".join(lines)


async def report_mail(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost report-mail CLIENT [--monthly|--quarterly --to ADDRESS... [--day N] [--channel ID] | --stop]`."""
    path = f"/api/v1/clients/{client_path(args.client)}/report-schedule"
    if args.stop:
        await ctx.collector.delete(path)
        print(f"{args.client} gets no more value reports by e-mail")
        return
    if args.frequency:
        body = {"frequency": args.frequency, "day": args.day, "recipients": args.to or [],
                **({"channel_id": args.channel} if args.channel is not None else {})}
        await ctx.collector.put(path, body)
    print(described(await ctx.collector.get(path), args.client))


def register(commands: Any) -> None:
    """Add `report-mail`."""
    mail = command(
        commands, "report-mail", "e-mail a client's value report monthly or quarterly (show, set, stop)",
        description="E-mail a client's value report (the PDF attached, the page in the mail) on a day of each "
        "month for the month before, or of the month after each quarter. Without options: the schedule and its "
        "sends, a failed one with its error and when it is tried again.",
        examples=("fieldpost report-mail 'Acme Tooling' --monthly --day 3 --to owner@acme.example",
                  "fieldpost report-mail 'Acme Tooling' --quarterly --to owner@acme.example --to books@acme.example",
                  "fieldpost report-mail 'Acme Tooling'", "fieldpost report-mail 'Acme Tooling' --stop"),
        func=report_mail,
    )
    mail.add_argument("client")
    how = mail.add_mutually_exclusive_group()
    how.add_argument("--monthly", dest="frequency", action="store_const", const="monthly")
    how.add_argument("--quarterly", dest="frequency", action="store_const", const="quarterly")
    how.add_argument("--stop", action="store_true", help="no more reports by e-mail")
    mail.add_argument("--day", type=int, default=1, help="the day of the month it is sent on, 1 to 28 (default 1)")
    mail.add_argument("--to", action="append",
                      help="a recipient's e-mail address (repeat for more; default: the client's billing e-mail "
                           "or billing contact)")
    mail.add_argument("--channel", type=int, help="the mailto:// channel's id (default: the only mail channel)")
