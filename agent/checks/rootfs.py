"""Reading host files below a root directory (like node_exporter's --path.rootfs), so tests use real trees."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path


def below(root: Path, path: str) -> Path:
    """`path` (written as an absolute host path) inside `root`."""
    return root / path.lstrip("/")


def read_text(root: Path, path: str) -> str | None:
    """The file's text, or None when it does not exist or cannot be read."""
    try:
        return below(root, path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def mtime(path: Path) -> datetime | None:
    """The file's modification time in UTC, or None when it does not exist."""
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return None


def linux_boot_time(root: Path) -> datetime | None:
    """Boot time from the `btime` line of /proc/stat."""
    text = read_text(root, "/proc/stat") or ""
    found = re.search(r"^btime\s+(\d+)", text, re.MULTILINE)
    return datetime.fromtimestamp(int(found.group(1)), UTC) if found else None


def linux_boot_id(root: Path) -> str | None:
    """The kernel's random boot id, new at every boot."""
    text = read_text(root, "/proc/sys/kernel/random/boot_id")
    return text.strip() or None if text else None
