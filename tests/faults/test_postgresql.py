"""The delivery guarantee on PostgreSQL, with real processes: the database server crashing under the collector,
and two collectors on one database killed in turn. Nothing lost or stored twice, no alert opened twice, no device
declared offline; meanwhile the collector answers 503 + Retry-After, never 500. Run with `make faults`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.store.postgresql import PostgresStore
from shared.clock import system_clock
from tests.collector import pg_cluster
from tests.e2e.harness import Collector
from tests.faults.proxy import FaultProxy
from tests.faults.scenario import GRACE, PgCollector, new_database, run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SETTINGS = {"offline_after_missed": 3, "agent_reconnect_seconds": 5}


@pytest.fixture(scope="module")
def cluster() -> Iterator[pg_cluster.Cluster]:
    """A PostgreSQL cluster of this module's own, since its tests crash it; durable, as a production server is."""
    try:
        started = pg_cluster.start(durable=True)
    except pg_cluster.ClusterUnavailable as exc:
        pytest.skip(str(exc))
    yield started
    started.stop()


def collectors(tmp_path: Path, cluster: pg_cluster.Cluster, n: int) -> list[Collector]:
    """`n` collectors on one fresh database of the cluster."""
    name = cluster.new_database_name()
    new_database(cluster.dsn("postgres"), name)
    return [PgCollector(tmp_path / f"collector{i}", dsn=cluster.dsn(name)) for i in range(n)]


def test_a_postgresql_server_crash_of_12_s_loses_nothing_and_answers_503_meanwhile(
    tmp_path: Path, cluster: pg_cluster.Cluster
) -> None:
    def fault(_: list[Collector], proxy: FaultProxy) -> None:
        cluster.crash()
        time.sleep(12)
        cluster.serve()

    figures = run(tmp_path, "PostgreSQL server crash, down 12 s", collectors(tmp_path, cluster, 1), fault,
                  **SETTINGS)
    # The agents were answered 503 + Retry-After while the server was down (run() checks the header), never 500.
    assert "503" in figures.fault_answers and "500" not in figures.fault_answers, figures


def test_two_collectors_on_one_postgresql_killed_in_turn_lose_nothing(
    tmp_path: Path, cluster: pg_cluster.Cluster
) -> None:
    def fault(pair: list[Collector], proxy: FaultProxy) -> None:
        for collector in pair:
            assert collector.process is not None
            collector.process.kill()
            collector.process.wait(10)
            time.sleep(8)  # the other collector takes every report meanwhile
            collector.start(GRACE, **SETTINGS)
            time.sleep(3)

    figures = run(tmp_path, "2 collectors on PostgreSQL, kill -9 in turn", collectors(tmp_path, cluster, 2),
                  fault, **SETTINGS)
    assert "500" not in figures.fault_answers, figures


async def test_the_live_feed_listens_again_after_the_postgresql_server_restarts(
    cluster: pg_cluster.Cluster,
) -> None:
    name = cluster.new_database_name()
    await asyncio.to_thread(new_database, cluster.dsn("postgres"), name)
    listening, writing = PostgresStore(cluster.dsn(name)), PostgresStore(cluster.dsn(name))
    await listening.open()
    woken = asyncio.Event()
    try:
        await listening.watch_feed(woken.set)
        await asyncio.to_thread(cluster.crash)
        await asyncio.to_thread(cluster.serve)
        # Once listening again, it wakes the feed for what it missed while the server was down.
        await asyncio.wait_for(woken.wait(), 30)
        woken.clear()
        await writing.open()
        async with writing.transaction() as tx:
            await tx.append_feed(system_clock(), "test.event", {"summary": "after the restart"})
        await asyncio.wait_for(woken.wait(), 10)
    finally:
        await listening.close()
        await writing.close()
