"""A dedicated PostgreSQL cluster whose server processes run under the power-cut shim, with fsync and
synchronous commit on (the shared test cluster runs without them, for speed)."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from tests.collector.pg_cluster import PORT, SUPERUSER, Cluster, _server_user, bin_dir
from tests.e2e.harness import Collector
from tests.faults.powercut import PowerCut, build

DATABASE = "postgres"


@dataclass
class PgCollector(Collector):
    """A collector whose store is a PostgreSQL database (its workdir keeps only config and log)."""

    dsn: str = ""

    @property
    def db(self) -> Path:
        """The database URL, where the SQLite collector has a file (the CLI's --db takes either)."""
        return self.dsn  # type: ignore[return-value]


@dataclass
class PowerCutServer:
    """`postgres` started by hand (not pg_ctl) in its own process group, so a cut kills all of its processes."""

    cluster: Cluster
    power: PowerCut
    # More server settings (`-c name=value`), e.g. synchronous_commit=off for a control run.
    settings: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls, settings: dict[str, str] | None = None) -> PowerCutServer:
        """initdb a cluster in a new folder (outside pytest's, which the server's account cannot enter)."""
        root = Path(tempfile.mkdtemp(prefix="fieldpost-pgcut-"))
        run_as = _server_user() if os.geteuid() == 0 else None
        cluster = Cluster(root, bin_dir(), run_as)
        # The shim and its log where the server's account can read and write them.
        power = PowerCut(root / "data", build(root), root / "undo.log")
        power.log.touch()
        if run_as is not None:
            account = pwd.getpwnam(run_as)
            for path in (root, power.log):
                os.chown(path, account.pw_uid, account.pw_gid)
        # Written without the shim: the cluster as initdb leaves it counts as on disk.
        cluster._run("initdb", "-D", str(power.folder), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                     "--locale=C", "--no-sync")
        return cls(cluster, power, settings or {})

    @property
    def dsn(self) -> str:
        """The URL of the database the collector uses."""
        return self.cluster.dsn(DATABASE)

    def start(self) -> None:
        """Start the server under the shim and wait until it takes connections (after crash recovery)."""
        # recovery_init_sync_method=syncfs: crash recovery starts with one syncfs, not an fsync per file.
        settings = {"listen_addresses": "", "fsync": "on", "synchronous_commit": "on", "full_page_writes": "on",
                    "max_connections": "100", "recovery_init_sync_method": "syncfs", **self.settings}
        command = [str(self.cluster.bin / "postgres"), "-D", str(self.power.folder), "-k", str(self.cluster.root),
                   "-p", str(PORT), *(f"-c{name}={value}" for name, value in settings.items())]
        # The server's account is taken by the child itself (not runuser, which would put the server in a
        # process group of its own): the cut's SIGKILL to the group reaches the postmaster and its children.
        account = {"user": self.cluster.run_as, "group": pwd.getpwnam(self.cluster.run_as).pw_gid,
                   "extra_groups": []} if self.cluster.run_as is not None else {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAKETIME")} | self.power.env()
        with open(self.cluster.root / "server.log", "ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True,
                                            cwd=self.cluster.root, **account)
        deadline = time.monotonic() + 60
        while not asyncio.run(self._answers()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start: {(self.cluster.root / 'server.log').read_text()}")
            time.sleep(0.2)

    async def _answers(self) -> bool:
        """True when a connection succeeds."""
        try:
            connection = await asyncpg.connect(self.dsn, timeout=2)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await connection.close()
        return True

    def cut(self) -> None:
        """Cut the server's power: every process of its group killed, what no fsync covered undone."""
        assert self.process is not None
        self.power.cut(self.process, group=True)

    def remove(self) -> None:
        """Kill the server if it runs and delete the cluster's folder."""
        if self.process is not None and self.process.poll() is None:
            self.power.cut(self.process, group=True)
        shutil.rmtree(self.cluster.root, ignore_errors=True)
