"""`fieldpost silence`: hold notifications for a while or in recurring maintenance windows."""

from __future__ import annotations

import argparse
from typing import Any

from shared.signals import SIGNALS
from technician.client import CliError, Context
from technician.parsing import actions, command, duration_minutes
from technician.text import local_time, table

MATCHERS = ("client", "site", "device", "kind", "severity")
KIND_HELP = ("only alerts of this signal (every rule of it) or one rule, e.g. updates or updates.security; signals: "
             + ", ".join(signal.name for signal in SIGNALS))


async def create_silence(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost silence create (--for D | --cron C --duration D) --comment TEXT`."""
    if bool(args.minutes) == bool(args.cron):
        raise CliError("give either --for (one-off) or --cron with --duration (recurring)")
    body = {k: getattr(args, k) for k in MATCHERS if getattr(args, k)}
    body.update(comment=args.comment, timezone=args.timezone)
    if args.minutes:
        body["minutes"] = args.minutes
    else:
        body.update(cron=args.cron, duration_minutes=args.duration)
    created = await ctx.collector.post("/api/v1/silences", body)
    print(f"silence {created['silence_id']} created")


async def list_silences(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost silence list`."""
    silences = (await ctx.collector.get("/api/v1/silences"))["silences"]
    rows = [[str(s["silence_id"]), ", ".join(f"{k}={v}" for k, v in s["matchers"].items()) or "everything",
             f"{s['cron']} for {s['duration_minutes']:g} min ({s['timezone']})" if s["cron"]
             else f"until {local_time(s['ends_at'])}", s["comment"]] for s in silences]
    print(table(rows, ["ID", "MATCHES", "WHEN", "WHY"]) if rows else "no silences")


async def expire_silence(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost silence expire ID`."""
    await ctx.collector.post(f"/api/v1/silences/{args.silence_id}/expire", {})
    print(f"silence {args.silence_id} expired; held notifications go out at the next round")


def register(commands: Any) -> None:
    """Add `silence` and its actions."""
    silence = command(commands, "silence", "hold notifications (alerts are still recorded)")
    verbs = actions(silence)
    make = command(
        verbs, "create", "one-off (--for 2h) or recurring maintenance window (--cron '0 22 * * 6' --duration 4h)",
        description="Hold the notifications of matching alerts; the alerts are still recorded and shown.",
        examples=("fieldpost silence create --client 'Acme Tooling' --for 2h --comment 'moving the office'",
                  "fieldpost silence create --device FILESRV --cron '0 22 * * 6' --duration 4h "
                  "--timezone Europe/Berlin --comment 'Saturday backups'"),
        func=create_silence,
    )
    for matcher in MATCHERS:
        make.add_argument(f"--{matcher}", help=KIND_HELP if matcher == "kind" else
                          f"only alerts of this {matcher} (default: any)")
    make.add_argument("--for", dest="minutes", type=duration_minutes, help="from now, for this long")
    make.add_argument("--cron", help="recurring: crontab of each window's start")
    make.add_argument("--duration", type=duration_minutes, help="recurring: length of each window")
    make.add_argument("--timezone", default="UTC", help="the zone of --cron, e.g. Europe/Berlin")
    make.add_argument("--comment", required=True, help="why (shown to whoever wonders later)")
    command(verbs, "list", "silences in force or to come", func=list_silences)
    command(verbs, "expire", "end a silence now", examples=("fieldpost silence expire 3",),
            func=expire_silence).add_argument("silence_id", type=int)
