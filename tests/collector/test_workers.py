"""`serve --workers N`: N processes share the port on PostgreSQL and stop together; SQLite refuses N > 1.
`serve --loop`: uvloop by default, asyncio's own loop on request. Serving tunes the cyclic collector."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import psutil
import pytest

from collector.cli import SERVE_GC_THRESHOLDS, main
from shared.clock import system_clock


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Each runs on the one backend it is about, rather than being skipped on the other.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_sqlite_refuses_more_than_one_worker_and_says_why(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await asyncio.to_thread(main, ["--db", database, "serve", "--workers", "2"], system_clock)
    _, err = capsys.readouterr()
    assert code == 2
    assert "--workers above 1 needs PostgreSQL" in err and "write lock" in err


# What `serve` hands to aiohttp: here the cycle collector's state at that moment is printed instead of served.
GC_AT_SERVE = (
    "import gc, sys; from aiohttp import web; "
    "web.run_app = lambda *args, **kwargs: print(*gc.get_threshold(), gc.get_freeze_count()); "
    "from collector.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_serve_collects_cycles_less_often_and_leaves_start_up_objects_out(database: str) -> None:
    env = {**os.environ, "FIELDPOST_COLLECTOR_ADMIN_TOKEN": "workers-test"}
    done = subprocess.run([sys.executable, "-c", GC_AT_SERVE, "--db", database, "serve", "--listen", "127.0.0.1:0"],
                          capture_output=True, text=True, env=env, timeout=60, check=True)
    *thresholds, frozen = map(int, done.stdout.splitlines()[-1].split())
    assert tuple(thresholds) == SERVE_GC_THRESHOLDS
    # Everything imported before serving is frozen: no collection walks it again.
    assert frozen > 10_000


async def started(database: str, *args: str) -> tuple[asyncio.subprocess.Process, int]:
    """`fieldpost-collector serve` on a free port with `args`, once it answers /healthz."""
    port = free_port()
    env = {**os.environ, "FIELDPOST_COLLECTOR_ADMIN_TOKEN": "workers-test"}
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collector.cli", "--db", database, "serve", "--listen", f"127.0.0.1:{port}",
        *args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return server, port
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    server.kill()
    await server.wait()
    pytest.fail(f"the collector did not answer /healthz within 30 s (serve {' '.join(args)})")


async def stopped(server: asyncio.subprocess.Process) -> int:
    """Stop a started collector as its service manager would; its exit code."""
    if server.returncode is None:
        server.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(server.wait(), 30)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
async def test_serve_runs_on_the_loop_asked_for(database: str, loop: str) -> None:
    server, _ = await started(database, "--loop", loop)
    try:
        maps = await asyncio.to_thread(Path(f"/proc/{server.pid}/maps").read_text)
        assert ("uvloop" in maps) is (loop == "uvloop")
    finally:
        assert await stopped(server) == 0


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_two_workers_serve_one_port_on_postgresql_and_stop_together(database: str) -> None:
    server, port = await started(database, "--workers", "2")
    try:
        workers = [server.pid, *(child.pid for child in psutil.Process(server.pid).children())]
        assert len(workers) == 2
        listening = {conn.pid for conn in psutil.net_connections("tcp")
                     if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port}
        assert listening == set(workers)
        assert await stopped(server) == 0
        assert not psutil.pid_exists(workers[1]) or psutil.Process(workers[1]).status() == psutil.STATUS_ZOMBIE
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
