"""Ingest benchmark: N simulated agents send signed batches to a real collector on SQLite over loopback.

Prints batches/s, the server's CPU seconds per 1,000 uploads and report-to-feed latency (p50/p99), and in
the same run the same for a bare aiohttp endpoint that only parses the JSON: the ceiling for this stack.
With --baseline DIR, the collector of another checkout (e.g. `git worktree add /tmp/before HEAD~3`) runs in
the same rounds, interleaved, so a busy machine slows both alike; --loops runs the current collector on
each event loop named. --heartbeats sends only heartbeats, each on a new connection (the side-by-side
shape: nothing to alert on). Every figure is the median of --rounds rounds.

    python -m bench.ingest [--agents 50] [--batches 20] [--concurrency 16] [--rounds 3] [--baseline DIR]
                           [--loops uvloop,asyncio] [--heartbeats]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import psutil

from bench.agents import REPORTS, BenchAgent
from collector.cli import DEFAULT_LOOP
from shared.wire import Unknown

TECH_TOKEN = "bench-technician"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_ready(url: str) -> None:
    """Wait until a server answers /healthz."""
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


def start(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """A server process whose output is discarded; run from `cwd`, `-m` imports that checkout's code."""
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=cwd)


def enrol_tokens(db: str, count: int, source: Path | None) -> str:
    """Create one multi-use enrolment token with the collector's own CLI."""
    out = subprocess.run(
        [sys.executable, "-m", "collector.cli", "--db", db, "token", "create", "--client", "Bench",
         "--site", "Loopback", "--uses", str(count)],
        capture_output=True, text=True, check=True, cwd=source,
    )
    return out.stdout.strip()


def bodies(agents: list[BenchAgent], batches: int, heartbeats: bool) -> list[tuple[BenchAgent, str, bytes]]:
    """Every upload of the run, as (agent, marker, body); unless only `heartbeats`, every second batch opens
    an alert (a feed event)."""
    work = []
    for n in range(batches):
        for agent in agents:
            marker = f"{agent.hostname}#{n}"
            signal = (Unknown(collected_at=datetime.now(UTC), check="heartbeat", error=marker)
                      if n % 2 == 0 and not heartbeats else agent.heartbeat())
            work.append((agent, marker, agent.upload(signal)))
    return work


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a process has used so far, its threads included."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def send_all(url: str, work: list[tuple[BenchAgent, str, bytes]], concurrency: int,
                   sent_at: dict[str, float], new_connections: bool = False) -> float:
    """Send every body with `concurrency` parallel uploaders (each on a new connection if asked); returns
    seconds taken."""
    queue: asyncio.Queue[tuple[BenchAgent, str, bytes]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=new_connections)

    async def uploader(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            agent, marker, body = queue.get_nowait()
            sent_at[marker] = time.perf_counter()
            async with session.post(url + REPORTS, data=body, headers=agent.headers(body)) as response:
                if response.status != 200:
                    raise RuntimeError(f"upload failed: {response.status} {await response.text()}")
                await response.read()

    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*(uploader(session) for _ in range(concurrency)))
        return time.perf_counter() - began


async def watch_feed(
    url: str, expected: set[str], received: dict[str, float], ready: asyncio.Event, done: asyncio.Event
) -> None:
    """Record when each opened alert's marker arrives on the live feed; `done` once all expected arrived."""
    headers = {"Authorization": f"Bearer {TECH_TOKEN}"}
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(
        url + "/api/v1/feed", headers=headers
    ) as response:
        ready.set()
        async for raw in response.content:
            line = raw.decode()
            if line.startswith("data: "):
                data = json.loads(line[6:])
                error = data.get("details", {}).get("error")
                if error:
                    received.setdefault(error, time.perf_counter())
                    if expected <= received.keys():
                        done.set()


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the values lie."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


Round = tuple[float, float, float, float]


async def collector_round(
    args: argparse.Namespace, db: str, source: Path | None = None, loop: str | None = None
) -> Round:
    """One round against a fresh collector (of the checkout at `source`, on `loop` if named):
    (batches/s, CPU seconds per 1,000 uploads, p50 ms, p99 ms)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    token = enrol_tokens(db, args.agents, source)
    # The per-device upload limit would refuse a benchmark's hundreds of uploads a minute per device.
    env = {**os.environ, "FIELDPOST_COLLECTOR_ADMIN_TOKEN": TECH_TOKEN,
           "FIELDPOST_COLLECTOR_AGENT_UPLOADS_PER_MINUTE": "0"}
    server = start([sys.executable, "-m", "collector.cli", "--db", db, "serve", "--listen", f"127.0.0.1:{port}",
                    *(["--loop", loop] if loop else [])], env, source)
    try:
        await wait_ready(url)
        agents = [BenchAgent(f"BENCH-{i:03d}") for i in range(args.agents)]
        async with aiohttp.ClientSession() as session:
            for agent in agents:
                async with session.post(url + "/api/v1/enrol", json=agent.enrol_body(token)) as response:
                    agent.agent_id = (await response.json())["agent_id"]
        work = bodies(agents, args.batches, args.heartbeats)
        expected = set() if args.heartbeats else {
            f"{agent.hostname}#{n}" for agent in agents for n in range(0, args.batches, 2)}
        sent: dict[str, float] = {}
        received: dict[str, float] = {}
        ready, done = asyncio.Event(), asyncio.Event()
        watcher = asyncio.create_task(watch_feed(url, expected, received, ready, done))
        await ready.wait()
        cpu = cpu_seconds(server.pid)
        seconds = await send_all(url, work, args.concurrency, sent, args.heartbeats)
        cpu = cpu_seconds(server.pid) - cpu
        if expected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 10)
        watcher.cancel()
        latencies = [(received[m] - sent[m]) * 1000 for m in expected if m in received]
        if len(latencies) != len(expected):
            raise RuntimeError(f"only {len(latencies)} of {len(expected)} alerts reached the feed")
        return (len(work) / seconds, cpu / len(work) * 1000,
                percentile(latencies, 0.5) if latencies else math.nan,
                percentile(latencies, 0.99) if latencies else math.nan)
    finally:
        server.terminate()
        server.wait()


async def bare_round(args: argparse.Namespace) -> Round:
    """One round against the parse-only endpoint: (batches/s, CPU seconds per 1,000 uploads, -, -)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start([sys.executable, "-m", "bench.bare_server", str(port)])
    try:
        await wait_ready(url)
        agents = [BenchAgent(f"BENCH-{i:03d}", agent_id=f"ag_{i}") for i in range(args.agents)]
        work = bodies(agents, args.batches, args.heartbeats)
        cpu = cpu_seconds(server.pid)
        seconds = await send_all(url, work, args.concurrency, {}, args.heartbeats)
        cpu = cpu_seconds(server.pid) - cpu
        return len(work) / seconds, cpu / len(work) * 1000, math.nan, math.nan
    finally:
        server.terminate()
        server.wait()


def summary(name: str, rounds: list[Round], ceiling: list[Round]) -> str:
    """Median throughput, CPU per upload (and its ratio to the ceiling's) and latencies of a server's rounds."""
    rate, cpu, p50, p99 = (statistics.median(r[n] for r in rounds) for n in range(4))
    ceiling_cpu = statistics.median(r[1] for r in ceiling)
    # CPU time is counted in clock ticks: a run of a few uploads can leave the ceiling at zero.
    ratio = f"{cpu / ceiling_cpu:.1f} x the ceiling" if ceiling_cpu else "ceiling below a clock tick: send more"
    latency = "" if math.isnan(p50) else f", report -> feed p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    return f"  {name:28}{rate:7.0f} batches/s, {cpu:.2f} CPU-s per 1k uploads ({ratio}){latency}"


async def main(args: argparse.Namespace) -> None:
    """Run the rounds, interleaving the collectors and the ceiling, and print the medians."""
    rounds: dict[str, list[Round]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.rounds):
            if args.baseline:
                rounds.setdefault(f"baseline ({args.baseline.name})", []).append(
                    await collector_round(args, f"{tmp}/baseline-{n}.db", args.baseline))
            for loop in args.loops:
                rounds.setdefault(f"collector (SQLite, {loop})", []).append(
                    await collector_round(args, f"{tmp}/{loop}-{n}.db", loop=loop))
            rounds.setdefault("bare aiohttp parse-only", []).append(await bare_round(args))
            print(f"round {n + 1}/{args.rounds} done", file=sys.stderr)
    shape = "heartbeats only, a new connection each" if args.heartbeats else "every second one opens an alert"
    print(f"ingest benchmark: {args.agents} agents x {args.batches} signed batches = {args.agents * args.batches} "
          f"uploads ({shape}), concurrency {args.concurrency}, median of {args.rounds} rounds")
    ceiling = rounds["bare aiohttp parse-only"]
    for name, measured in rounds.items():
        print(summary(name, measured, ceiling))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=50, help="simulated enrolled agents (default 50)")
    parser.add_argument("--batches", type=int, default=20, help="batches per agent (default 20)")
    parser.add_argument("--concurrency", type=int, default=16, help="parallel uploads (default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported (default 3)")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="another checkout whose collector runs in the same rounds, for before/after")
    parser.add_argument("--loops", type=lambda text: text.split(","), default=[DEFAULT_LOOP], metavar="LOOP,...",
                        help="event loops to run the current collector on, each in every round "
                        f"(default {DEFAULT_LOOP})")
    parser.add_argument("--heartbeats", action="store_true",
                        help="send only heartbeats, each on a new connection (the side-by-side shape)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
