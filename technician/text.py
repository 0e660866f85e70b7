"""Output for a terminal: local times, aligned tables, files or standard output."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path


def local_time(iso: str | None) -> str:
    """An ISO timestamp as local time, to the minute."""
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")


def table(rows: list[list[str]], header: list[str]) -> str:
    """Rows aligned in columns under a header."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def write_output(target: str, data: bytes) -> None:
    """Write to a file, or to standard output for `-`."""
    if target == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        Path(target).write_bytes(data)
