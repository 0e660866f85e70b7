"""The `fieldpost` command line: global options, every command group's subcommands, and running one of them."""

from __future__ import annotations

import argparse
import asyncio
import sys

from shared import __version__
from shared.clock import Clock, system_clock
from technician import (
    alerts,
    billing,
    channels,
    clients,
    devices,
    diagnose,
    escrow,
    incidents,
    network_devices,
    report_mail,
    silences,
)
from technician.client import CONFIG_PATH, DEFAULT_URL, CliError, Collector, Context

# Each registers its commands, each with its handler (`set_defaults(func=...)`), in the order `--help` lists them.
GROUPS = (alerts, devices, clients, network_devices, escrow, incidents, billing, report_mail, silences, channels,
          diagnose)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="fieldpost",
        description="The technician's fieldpost command line: alerts, devices, the live feed, incidents and billing. "
        "`fieldpost COMMAND --help` explains each command, with examples.",
        epilog=f"Collector URL and token: --url/--token, FIELDPOST_URL/FIELDPOST_TOKEN, or [technician] url/token "
        f"in {CONFIG_PATH}.",
    )
    parser.add_argument("--version", action="version", version=f"fieldpost {__version__}")
    parser.add_argument("--url", help=f"collector URL (default {DEFAULT_URL})")
    parser.add_argument("--token", help="technician API token")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(commands)
    return parser


def main(argv: list[str] | None = None, clock: Clock = system_clock) -> int:
    """Entry point of `fieldpost`; `clock` is the time `diagnose` judges by."""
    args = build_parser().parse_args(argv)
    ctx = Context(Collector(args.url, args.token), clock)
    try:
        return asyncio.run(args.func(ctx, args)) or 0
    except CliError as exc:
        print(f"fieldpost: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
