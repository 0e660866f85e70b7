"""`fieldpost diagnose smartctl`: the collector's verdict on smartctl output pasted from a client's PC, offline."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any

from technician.client import CliError, Context
from technician.parsing import command

# The one place the technician CLI runs collector code: the verdict must come from the collector's own parser and
# disk rule, so it is loaded by name when the command runs, and the rest of the CLI works without the collector.
JUDGE = "collector.diagnose"


async def smartctl(ctx: Context, args: argparse.Namespace) -> int:
    """Print one JSON verdict per file; exit 1 unless every disk is ok."""
    try:
        judge = importlib.import_module(JUDGE)
    except ImportError as exc:
        raise CliError(f"diagnose needs the collector's code ({exc}): pip install 'fieldpost[collector]'") from exc
    verdicts = [judge.diagnose_smartctl_file(path, now=ctx.clock()) for path in args.files]
    for verdict in verdicts:
        print(json.dumps(verdict))
    return 0 if all(v["status"] == "ok" for v in verdicts) else 1


def register(commands: Any) -> None:
    """Add `diagnose` and its tools."""
    diagnose = command(commands, "diagnose", "the collector's verdict on output pasted from a client's PC")
    tools = diagnose.add_subparsers(dest="tool", required=True, metavar="TOOL")
    files = command(
        tools, "smartctl", "judge `smartctl --xall --json` output files; prints one JSON line per file",
        description="Runs the same parser and disk rule as the collector, offline; needs no collector or token. "
        "Exits 1 unless every disk is ok.",
        examples=("fieldpost diagnose smartctl sda.json nvme0.json",),
        func=smartctl,
    )
    files.add_argument("files", nargs="+", type=Path, metavar="FILE")
