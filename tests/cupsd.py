"""A private CUPS scheduler for tests: its own config, spool and Unix socket, queues added with lpadmin."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

CUPS_FILES = """ServerRoot {d}
RequestRoot {d}/spool
CacheDir {d}/cache
StateDir {d}/state
TempDir {d}/spool/tmp
ServerBin /usr/lib/cups
DataDir /usr/share/cups
AccessLog {d}/log/access_log
ErrorLog {d}/log/error_log
PageLog {d}/log/page_log
User lp
Group lp
SystemGroup root
"""
CUPSD_CONF = """Listen {d}/cups.sock
Browsing No
LogLevel warn
DefaultAuthType None
<Location />
  Order allow,deny
  Allow all
</Location>
<Location /admin>
  Order allow,deny
  Allow all
</Location>
"""


def need_cupsd() -> None:
    """Skip unless cupsd can run here (installed, and root to start it); under CI=true never skip."""
    missing = [tool for tool in ("cupsd", "lpadmin", "lpstat") if shutil.which(tool) is None]
    if (missing or os.geteuid() != 0) and os.environ.get("CI") != "true":
        pytest.skip(
            f"needs root and CUPS ({', '.join(missing) or 'not root'}): apt-get install cups cups-client"
        )


def running(env: Mapping[str, str]) -> bool:
    """Whether the scheduler at env's CUPS_SERVER answers (LC_ALL=C in env keeps lpstat's words English)."""
    status = subprocess.run(["lpstat", "-r"], env=env, capture_output=True, text=True, check=False)
    return status.stdout.strip() == "scheduler is running"


@contextmanager
def private_cupsd(queues: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """Start cupsd on a private socket, add `queues` (name -> device URI); yield the env that reaches it."""
    root = Path(tempfile.mkdtemp(prefix="fieldpost-cups-"))
    root.chmod(0o755)  # the scheduler drops to user lp for some work
    for sub in ("spool/tmp", "cache", "state", "log"):
        (root / sub).mkdir(parents=True)
    (root / "cups-files.conf").write_text(CUPS_FILES.format(d=root))
    (root / "cupsd.conf").write_text(CUPSD_CONF.format(d=root))
    env = {**os.environ, "CUPS_SERVER": str(root / "cups.sock"), "LC_ALL": "C"}
    server = subprocess.Popen(
        ["cupsd", "-f", "-c", str(root / "cupsd.conf"), "-s", str(root / "cups-files.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # it logs to log/error_log
    )
    try:
        deadline = time.monotonic() + 10
        # `lpstat -r` exits 0 either way; only its words tell whether the scheduler answers.
        while not running(env):
            if server.poll() is not None or time.monotonic() > deadline:
                log = root / "log/error_log"
                raise RuntimeError(f"cupsd did not start: {log.read_text() if log.exists() else 'no log'}")
            time.sleep(0.05)
        for name, uri in queues.items():
            argv = ["lpadmin", "-p", name, "-E", "-v", uri]
            added = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            if added.returncode != 0:
                raise RuntimeError(f"lpadmin -p {name} failed: {added.stderr.strip()}")
        yield {"CUPS_SERVER": env["CUPS_SERVER"], "LC_ALL": "C"}
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
