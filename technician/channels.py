"""`fieldpost channel`: where notifications go (any apprise URL), with quiet hours and a daily digest; edit,
switch off and on, delete."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

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
             state(c)] for c in channels]
    print(table(rows, ["NAME", "URL", "FROM", "QUIET", "DIGEST", "STATE"]) if rows else "no channels yet")


def state(channel: dict[str, Any]) -> str:
    """Whether the channel works, is broken (and why) or was switched off."""
    if channel.get("disabled"):
        return "off"
    return f"BROKEN: {channel['broken']}" if channel["broken"] else "ok"


async def edit_channel(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost channel edit NAME [--url URL] [--min-severity S] ...`: only what is given changes."""
    body: dict[str, Any] = {key: value for key, value in (
        ("name", args.rename), ("url", args.channel_url), ("min_severity", args.min_severity),
        ("clients", args.client), ("kinds", args.kind), ("timezone", args.timezone), ("digest_at", args.digest),
    ) if value}
    if args.quiet:
        body["quiet_start"], _, body["quiet_end"] = args.quiet.partition("-")
    if not body:
        raise CliError("nothing to change: give --url, --rename, --min-severity, --client, --kind, --quiet, "
                       "--digest or --timezone")
    edited = await ctx.collector.patch(f"/api/v1/channels/{quote(args.name, safe='')}", body)
    print(f"channel {edited['name']} changed ({edited['url']}); {state(edited)}")


async def switch_channel(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost channel disable|enable NAME`."""
    switched = await ctx.collector.post(f"/api/v1/channels/{quote(args.name, safe='')}/{args.action}", {})
    print(f"channel {switched['name']} is {'off' if switched['disabled'] else 'on'}")


async def delete_channel(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost channel delete NAME`."""
    await ctx.collector.delete(f"/api/v1/channels/{quote(args.name, safe='')}")
    print(f"channel {args.name} deleted")


async def send_test_message(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost channel test NAME`."""
    try:
        await ctx.collector.post(f"/api/v1/channels/{args.name}/test", {})
    except CliError as exc:
        raise CliError(f"test message through {args.name} failed: {exc}") from None
    print(f"test message sent through {args.name}")


def register(commands: Any) -> None:
    """Add `channel` and its actions."""
    channel = command(commands, "channel", "notification channels: create, list, test, edit, disable, delete")
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
    edit = command(verbs, "edit", "change a channel's settings (a broken one is tried again)",
                   examples=("fieldpost channel edit mail --url 'mailtos://user:pass@newhost?to=me@x'",
                             "fieldpost channel edit phone --min-severity critical"),
                   func=edit_channel)
    edit.add_argument("name")
    edit.add_argument("--url", dest="channel_url", help="a new apprise URL")
    edit.add_argument("--rename", help="a new name")
    edit.add_argument("--min-severity", choices=["warning", "critical"])
    edit.add_argument("--client", action="append", help="only this client (repeatable; replaces the list)")
    edit.add_argument("--kind", action="append", help=KIND_HELP + " (repeatable; replaces the list)")
    edit.add_argument("--quiet", metavar="HH:MM-HH:MM", help="quiet hours")
    edit.add_argument("--digest", metavar="HH:MM", help="daily digest at this local time")
    edit.add_argument("--timezone", help="for quiet hours and digest, e.g. Europe/Berlin")
    for verb, summary in (("disable", "switch a channel off: nothing is queued for it"),
                          ("enable", "switch a channel on again")):
        command(verbs, verb, summary, examples=(f"fieldpost channel {verb} phone",),
                func=switch_channel).add_argument("name")
    command(verbs, "delete", "remove a channel, its queue and its delivery log",
            examples=("fieldpost channel delete old-pager",), func=delete_channel).add_argument("name")
