"""Building the command line: one helper that registers a command with its help, examples and handler."""

from __future__ import annotations

import argparse
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from technician.client import Context

# A command's handler: it prints its result and returns the exit status (None for 0).
Handler = Callable[[Context, argparse.Namespace], Awaitable[int | None]]


def command(
    commands: Any,
    name: str,
    summary: str,
    *,
    description: str | None = None,
    examples: tuple[str, ...] = (),
    func: Handler | None = None,
) -> argparse.ArgumentParser:
    """Add the subcommand `name` (its one-line help, a longer description, examples) that runs `func`."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=description or f"{summary[0].upper()}{summary[1:]}.",
        epilog="examples:\n" + "\n".join(f"  {e}" for e in examples) if examples else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if func is not None:
        parser.set_defaults(func=func)
    return parser


def actions(parser: argparse.ArgumentParser, *, required: bool = True) -> Any:
    """The subcommands of a command group (`fieldpost GROUP ACTION`)."""
    return parser.add_subparsers(dest="action", required=required, metavar="ACTION")


def duration_minutes(text: str) -> float:
    """`30m`, `2h`, `1d` in minutes."""
    units = {"m": 1, "h": 60, "d": 1440}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.replace(".", "", 1).isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 2h or 1d")
    return float(number) * units[unit]


def client_path(name: str) -> str:
    """A client's name as one URL path segment."""
    return urllib.parse.quote(name, safe="")
