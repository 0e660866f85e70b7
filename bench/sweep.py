"""Offline-sweep benchmark: the median time of one offline sweep over N enrolled devices on SQLite.

The steady state the collector sweeps every 15 s: 25 devices per site, all reporting except one in a hundred,
which went silent an hour ago and whose offline alerts the first (unmeasured) sweep opened. With --baseline DIR
the collector of another checkout (e.g. `git archive main | tar -x -C /tmp/before`) is measured in the same run,
each sweep in a child process that imports that checkout's code, so the figures are comparable.

    python -m bench.sweep [--devices 3000 30000] [--rounds 5] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

PER_SITE = 25
SILENT_EVERY = 100
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def measure(devices: int, rounds: int) -> list[float]:
    """Seed a fresh database with `devices` devices, sweep once to reach the steady state, then time `rounds` sweeps."""
    from collector.feed import Feed
    from collector.offline import sweep
    from collector.settings import Settings
    from collector.store import AgentRow, open_store

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(db=str(Path(folder) / "bench.db"), startup_grace_seconds=0)
        store = open_store(settings.db)
        await store.open()
        try:
            async with store.transaction() as tx:
                for n in range(devices):
                    site = await tx.site(f"Client {n // (PER_SITE * 4):04d}", f"Site {n // PER_SITE:05d}")
                    agent_id = f"ag_{n:08d}"
                    await tx.add_agent(AgentRow(agent_id, b"\x01" * 32, f"PC-{n:05d}", site, NOW - timedelta(days=30)))
                    silent = n % SILENT_EVERY == 0
                    seen = NOW - (timedelta(hours=1) if silent else timedelta(minutes=1))
                    await tx.touch_agent(agent_id, seen, 1, f"PC-{n:05d}")
            # A checkout from before the store woke the feed itself takes the feed as an argument.
            before = ("feed",) if "feed" in inspect.signature(sweep).parameters else ()
            up_since = NOW - timedelta(days=1)
            # Since the sweep notices a database that held it back, it takes the collector's availability.
            if "availability" in inspect.signature(sweep).parameters:
                from collector.offline import Availability

                up_since = Availability(up_since)
            start = (store, *(Feed(store) for _ in before), settings, up_since)
            await sweep(*start, NOW)
            times = []
            for round_ in range(rounds):
                started = time.perf_counter()
                await sweep(*start, NOW + timedelta(seconds=15 * (round_ + 1)))
                times.append(time.perf_counter() - started)
            return times
        finally:
            await store.close()


def run_child(code: Path, devices: int, rounds: int) -> list[float]:
    """Measure in a child process that imports the collector from `code` (a checkout)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", str(devices), "--rounds", str(rounds)],
        cwd=code, env=env, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    """Print the median sweep time for each device count (and for the baseline checkout, if given)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[3000, 30000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another checkout, measured alike for comparison")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(measure(args.child, args.rounds))))
        return
    here = Path(__file__).resolve().parents[1]
    checkouts = [("this checkout", here)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    for devices in args.devices:
        for name, code in checkouts:
            times = run_child(code, devices, args.rounds)
            print(f"{devices:>6} devices, {name}: median sweep {statistics.median(times) * 1000:8.1f} ms "
                  f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}, {len(times)} rounds)", flush=True)


if __name__ == "__main__":
    main()
