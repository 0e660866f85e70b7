"""A throw-away PostgreSQL cluster for the tests: `initdb` and `pg_ctl` in a temporary folder.

It listens on a Unix socket in that folder only (no TCP port), runs without fsync and with asynchronous
commit (a crash loses nothing a test needs; a test that crashes the server asks for a durable one), and
hands out a fresh database per test. PostgreSQL refuses to run as root, so as root the server runs as the
`postgres` user the Debian package creates (or a user made for it).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from itertools import count
from pathlib import Path

SUPERUSER = "fieldpost"
PORT = 5432  # names the socket file only: nothing listens on TCP
_SERVER_USERS = ("postgres", "fieldpost-pg")
_names = count(1)


class ClusterUnavailable(Exception):
    """PostgreSQL's server programs are not installed here."""


def bin_dir() -> Path:
    """Where `initdb` and `pg_ctl` are: Debian's newest version first, then the PATH."""
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    found = debian[-1] if debian else shutil.which("initdb")
    if found is None:
        raise ClusterUnavailable("initdb not found: install the `postgresql` package")
    return Path(found).resolve().parent


@dataclass
class Cluster:
    """A running cluster: its folder, socket folder and the account commands run as."""

    root: Path
    bin: Path
    run_as: str | None
    # Commits on disk before they are acknowledged (the server's defaults), for tests that crash the server:
    # with asynchronous commit a crash rightly loses the last acknowledged transactions.
    durable: bool = False

    @property
    def socket_dir(self) -> Path:
        """The folder holding the server's Unix socket."""
        return self.root

    def dsn(self, database: str) -> str:
        """A connection URL for one of the cluster's databases (over the Unix socket)."""
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}&port={PORT}"

    def new_database_name(self) -> str:
        """A database name no test of this session used before."""
        return f"test_{os.getpid()}_{next(_names)}"

    def _run(self, *argv: str) -> None:
        """Run a server program (as the server's account when we are root); its output goes to a log."""
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        # The server keeps the real clock: under `make test-dates` (libfaketime, preloaded) its lock timeout
        # never fires and a locked-database test waits forever. The dates under test are the collector's.
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FAKETIME")}
        with open(self.root / "commands.log", "a") as log:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, timeout=120, env=env)

    def serve(self) -> None:
        """Start the server on the cluster's data (again, after `crash`) and wait until it takes connections."""
        durability = "on" if self.durable else "off"
        options = (
            f"-k {self.root} -p {PORT} -c listen_addresses='' -c fsync={durability} "
            f"-c synchronous_commit={durability} -c full_page_writes={durability} -c max_connections=300"
        )
        # The server writes its own log, as its own account: a file root made would be closed to it.
        server_log = str(self.root / "data" / "server.log")
        self._run("pg_ctl", "-D", str(self.root / "data"), "-o", options, "-l", server_log, "-w", "start")

    def crash(self) -> None:
        """Stop the server as a crash does: every backend quits at once, no checkpoint; `serve` recovers."""
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        """Stop the server at once and delete the cluster's folder."""
        try:
            self.crash()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _server_user() -> str:
    """An unprivileged account for the server, made with useradd when none exists."""
    for name in _SERVER_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    name = _SERVER_USERS[-1]
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True
    )
    return name


def start(durable: bool = False) -> Cluster:
    """Create and start a cluster (`durable`: see Cluster); raises ClusterUnavailable when PostgreSQL is not
    installed."""
    programs = bin_dir()
    root = Path(tempfile.mkdtemp(prefix="fieldpost-pg-"))
    run_as = _server_user() if os.geteuid() == 0 else None
    if run_as is not None:
        account = pwd.getpwnam(run_as)
        os.chown(root, account.pw_uid, account.pw_gid)
    cluster = Cluster(root, programs, run_as, durable)
    data = str(root / "data")
    try:
        cluster._run(
            "initdb", "-D", data, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"
        )
        cluster.serve()
    except BaseException:
        logs = [root / "commands.log", root / "data" / "server.log"]
        text = "".join(log.read_text(errors="replace") for log in logs if log.exists())
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"could not start a PostgreSQL cluster:\n{text}") from None
    return cluster
