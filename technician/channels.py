"""`fieldpost channel`: where notifications go (any apprise URL), with quiet hours and a daily digest."""

from __future__ import annotations

import argparse
from typing import Any

from technician.client import CliError, Context
from technician.parsing import actions, command
from technician.silences import KIND_HELP
from technician.text import table


async def create_channel(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost channel create NAME URL ...`."""
    body: dict[str, Any] = {"name": args.name, "url": args.channel_url, "min_severity": args.min_severity,
                            "clients": args.client, "kinds": args.kind, "timezone": args.timezone,
                            "digest_at": args.digest}
    if args.quiet:
        body["quiet_start"], _, body["quiet_end"] = args.quiet.partition("-")
    created = await ctx.collector.post("/api/v1/channels", body)
    print(f"channel {created['name']} created ({created['url']}); try it: fieldpost channel test {args.name}")


async def list_channels(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost channel list`."""
    channels = (await ctx.collector.get("/api/v1/channels"))["channels"]
    rows = [[c["name"], c["url"], c["min_severity"], c["quiet_hours"] or "-", c["digest_at"] or "-",
             f"BROKEN: {c['broken']}" if c["broken"] else "ok"] for c in channels]
    print(table(rows, ["NAME", "URL", "FROM", "QUIET", "DIGEST", "STATE"]) if rows else "no channels yet")


async def send_test_message(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost channel test NAME`."""
    try:
        await ctx.collector.post(f"/api/v1/channels/{args.name}/test", {})
    except CliError as exc:
        raise CliError(f"test message through {args.name} failed: {exc}") from None
    print(f"test message sent through {args.name}")


def register(commands: Any) -> None:
    """Add `channel` and its actions."""
    channel = command(commands, "channel", "notification channels: create, list, test")
    verbs = actions(channel)
    create = command(
        verbs, "create", "a new channel (any apprise URL: mailto://, ntfy://, pover://, tgram://, json://, ...)",
        examples=("fieldpost channel create phone ntfy://ntfy.sh/my-topic --quiet 22:00-07:00 "
                  "--timezone Europe/Berlin",
                  "fieldpost channel create mail 'mailtos://user:pass@host?to=me@x' --min-severity critical "
                  "--digest 08:00"),
        func=create_channel,
    )
    create.add_argument("name")
    create.add_argument("channel_url", metavar="URL",
                        help="apprise URL, e.g. ntfy://ntfy.sh/my-topic or mailtos://user:pass@host?to=me@x")
    create.add_argument("--min-severity", choices=["warning", "critical"], default="warning")
    create.add_argument("--client", action="append", default=[], help="only this client (repeatable)")
    create.add_argument("--kind", action="append", default=[], help=KIND_HELP + " (repeatable)")
    create.add_argument("--quiet", metavar="HH:MM-HH:MM", help="quiet hours: only criticals; warnings go to the digest")
    create.add_argument("--digest", metavar="HH:MM", help="send a daily digest at this local time")
    create.add_argument("--timezone", default="UTC", help="for quiet hours and digest, e.g. Europe/Berlin")
    command(verbs, "list", "channels and whether they work", func=list_channels)
    command(verbs, "test", "send a test message now", examples=("fieldpost channel test phone",),
            func=send_test_message).add_argument("name")
