"""`fieldpost-collector install` (systemd, dedicated user), agents' install commands, and `backup`."""

from __future__ import annotations

import os
import shlex
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from agent.commands import Runner, run_command
from agent.install import (
    NOTHING_CHANGED,
    InstallError,
    Say,
    call,
    place,
    render,
    script_path,
    systemd_install,
    systemd_quote,
)
from collector.store.sqlite import BUSY_TIMEOUT_MS
from shared import __version__

USER = "fieldpost"
STATE_DIRECTORY = "fieldpost-collector"
UNIT = "fieldpost-collector.service"
UNIT_PATH = PurePosixPath("/etc/systemd/system") / UNIT
DB_PATH = PurePosixPath("/var/lib") / STATE_DIRECTORY / "collector.db"
DEFAULT_LISTEN = "127.0.0.1:8470"
# The Python that install.ps1 puts on Windows PCs that have none (an all-users install).
WINDOWS_PYTHON = "3.12.10"
INSTALLER_SCRIPTS = {"install.ps1": "windows/install.ps1", "install.sh": "unix/install.sh"}


class BackupError(Exception):
    """The backup could not be made; the message says why."""


def render_unit(program: str, listen: str = DEFAULT_LISTEN) -> str:
    """The collector's systemd unit for `program` (the fieldpost-collector script)."""
    return render("systemd/fieldpost-collector.service", exec_start=f"{systemd_quote(program)} serve",
                  state_directory=STATE_DIRECTORY, listen=listen, user=USER)


def install(root: Path = Path("/"), *, listen: str = DEFAULT_LISTEN, run: Runner = run_command,
            program: str | None = None, say: Say = print) -> list[str]:
    """Create the `fieldpost` system user, install the hardened unit, enable and start it; returns the changes.

    The database lives in /var/lib/fieldpost-collector (systemd's StateDirectory, owned by that user).
    """
    if root == Path("/") and os.geteuid() != 0:
        raise InstallError("run as root (sudo fieldpost-collector install)")
    done = []
    if run(["getent", "passwd", USER]).returncode != 0:
        argv = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
                str(DB_PATH.parent), "--shell", "/usr/sbin/nologin", USER]
        call(run, argv)
        done.append(f"ran {' '.join(argv)}")
    unit = render_unit(program or script_path("fieldpost-collector"), listen).encode()
    changed = place(root, UNIT_PATH, unit, 0o644)
    done += [changed] if changed else []
    done += systemd_install(run, UNIT, reload=changed is not None, restart=changed is not None)
    for line in done or [NOTHING_CHANGED]:
        say(line)
    admin = f"sudo -u {USER} {script_path('fieldpost-collector')} --db {DB_PATH}"
    say(f"\nDatabase {DB_PATH}; the technician token is written to {DB_PATH.parent}/admin-token on first start.\n"
        f"Administer it as its owner, e.g.:\n  {admin} token create --client NAME --site NAME")
    return done


def install_commands(collector_url: str, token: str) -> dict[str, str]:
    """The one-line agent install command for each OS, with the collector URL and token filled in."""
    agent_args = f"install --collector {shlex.quote(collector_url)} --token {shlex.quote(token)}"
    posix = ("sudo sh -c '{py} -m venv {prefix} && {prefix}/bin/pip install --quiet fieldpost && "
             "{prefix}/bin/fieldpost-agent {args}'")
    # Inside sh -c '...': the quoted arguments must not end the outer single quotes.
    inner = agent_args.replace("'", "'\\''")
    return {
        "Linux": posix.format(py="python3", prefix="/opt/fieldpost", args=inner),
        "Windows (PowerShell as Administrator, with packaging/windows/install.ps1)":
            f"powershell -NoProfile -ExecutionPolicy Bypass -File install.ps1 -Collector '{collector_url}' "
            f"-Token '{token}'",
        "macOS": posix.format(py="/usr/bin/python3", prefix="/usr/local/fieldpost", args=inner),
    }


def installer_script(name: str, version: str = __version__, python: str = WINDOWS_PYTHON) -> str:
    """The agent install script `name` (install.ps1 or install.sh) for this fieldpost version."""
    if name == "install.sh":
        return render(INSTALLER_SCRIPTS[name], version=version)
    major_minor = ".".join(python.split(".")[:2])
    return render(INSTALLER_SCRIPTS[name], version=version, python_version=major_minor,
                  python_tag=major_minor.replace(".", ""), python_release=python)


def backup(db_path: Path, dest: Path, now: datetime) -> Path:
    """Copy the collector's SQLite database to `dest` while the collector may be writing to it.

    `dest` is a file, or a directory that receives collector-<UTC time>.db. SQLite's online backup API
    copies all pages in one step inside one read transaction, so the copy is a consistent snapshot
    and the collector's writers go on in the WAL meanwhile. The copy is a self-contained file
    (rollback journal, not WAL), readable by its owner only, and it replaces `dest` only when complete.
    """
    if not db_path.is_file():
        raise BackupError(f"{db_path}: no such database file")
    if dest.is_dir():
        dest = dest / f"collector-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.db"
    partial = dest.with_name(f".{dest.name}.partial")
    partial.unlink(missing_ok=True)
    # Created owner-only before SQLite writes a byte: the copy holds every client's data.
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        # mode=rw: never create an empty database where the real one was expected.
        source = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=rw", uri=True)
        try:
            source.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            target = sqlite3.connect(partial)
            try:
                source.backup(target)
                target.execute("PRAGMA journal_mode = DELETE")
                verdict = target.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                target.close()
        finally:
            source.close()
        if verdict != "ok":
            raise BackupError(f"the copy of {db_path} failed its integrity check: {verdict}")
        os.replace(partial, dest)
    except sqlite3.Error as exc:
        raise BackupError(f"{db_path}: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return dest


if __name__ == "__main__":
    # `python -m collector.install install.ps1 > install.ps1`: the script to copy to client PCs.
    sys.stdout.write(installer_script(sys.argv[1]))
