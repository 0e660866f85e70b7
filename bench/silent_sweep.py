"""Never-silent sweep benchmark: the median time of one sweep over N online devices on SQLite.

Each device has reported its five checks hourly for six hours (the history the sweep reads); one in a
hundred has a check that stopped reporting three hours ago, so the first (unmeasured) sweep opened its
warning and the measured ones find nothing new, the steady state the collector sweeps every 5 minutes.

    python -m bench.silent_sweep [--devices 300 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

PER_SITE = 25
STUCK_EVERY = 100
HOURS = 6
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def measure(devices: int, rounds: int) -> list[float]:
    """Seed a fresh database, sweep once to reach the steady state, then time `rounds` sweeps."""
    from collector.settings import Settings
    from collector.stale import CHECKS, sweep
    from collector.store import AgentRow, open_store

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(db=str(Path(folder) / "bench.db"))
        store = open_store(settings.db)
        await store.open()
        try:
            async with store.transaction() as tx:
                for n in range(devices):
                    site = await tx.site(f"Client {n // (PER_SITE * 4):04d}", f"Site {n // PER_SITE:05d}")
                    agent_id = f"ag_{n:08d}"
                    await tx.add_agent(AgentRow(agent_id, b"\x01" * 32, f"PC-{n:05d}", site, NOW - timedelta(days=30)))
                    for hour in range(HOURS, 0, -1):
                        at = NOW - timedelta(hours=hour)
                        stuck = n % STUCK_EVERY == 0 and hour < 4
                        rows = [(kind, at, json.dumps({"kind": kind, "collected_at": at.isoformat()}))
                                for kind in CHECKS if not (stuck and kind == "disk_health")]
                        await tx.record_envelope(agent_id, HOURS - hour + 1, "boot", at, at, rows)
                    await tx.touch_agent(agent_id, NOW - timedelta(seconds=30), HOURS, f"PC-{n:05d}")
            await sweep(store, settings, NOW)
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                await sweep(store, settings, NOW)
                times.append(time.perf_counter() - started)
            return times
        finally:
            await store.close()


def main() -> None:
    """Print the median sweep time for each device count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[300, 3000])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for devices in args.devices:
        times = asyncio.run(measure(devices, args.rounds))
        print(f"{devices:>6} devices: median sweep {statistics.median(times) * 1000:8.1f} ms "
              f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}, {len(times)} rounds)", flush=True)


if __name__ == "__main__":
    main()
