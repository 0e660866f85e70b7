"""Files and folders that hold secrets, kept owner-only (0600/0700) whatever the umask.

The collector's database holds channel URLs with passwords; the agent's state holds its private key and
unsent reports. SQLite creates a database file 0644 under the usual umask, but gives its -wal, -shm and
-journal files the database file's own mode: so the database is created 0600 before SQLite opens it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def _narrow(path: Path, mode: int) -> None:
    """Take away any right beyond `mode` (a file made before, or by another tool, may be wider)."""
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & ~mode:
        path.chmod(stat.S_IMODE(path.stat().st_mode) & mode)


def private_dir(path: Path) -> Path:
    """Create the folder (and its parents) if missing; the folder itself is owner-only (0700)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    _narrow(path, 0o700)
    return path


def private_sqlite(path: Path) -> Path:
    """Make sure a SQLite database file exists owner-only (0600) before SQLite opens it, and its companion
    files from an earlier run are too; SQLite then creates new companions with the database's mode."""
    # Only ever a new file: closing a descriptor of a database this process has open would drop
    # SQLite's POSIX locks on it (they belong to the process, not the descriptor).
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600))
    for candidate in (path, *(path.with_name(path.name + suffix) for suffix in SQLITE_COMPANIONS)):
        if candidate.exists():
            _narrow(candidate, 0o600)
    return path
