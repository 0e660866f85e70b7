"""The delivery guarantee under faults, with real processes: agents report through a proxy to a collector that
fails in turn (errors from the proxy, the collector killed, its database locked). Nothing may be lost or stored
twice, and no device may be declared offline because the collector was down. Run with `make faults`."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from agent.outbox import OUTBOX_FILE
from tests.e2e.harness import Agent, Collector, wait_until
from tests.faults.figures import count
from tests.faults.proxy import FaultProxy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

AGENTS = 4
GRACE = 20
# Shortened intervals: heartbeats every second, uploads every half second, waits of at most 8 s.
UPLOAD = {"backoff_cap_seconds": 8}


def produced(agent: Agent) -> int:
    """How many envelopes the agent has numbered so far."""
    with sqlite3.connect(agent.state_dir / OUTBOX_FILE) as outbox:
        [(next_seq,)] = outbox.execute("SELECT value FROM meta WHERE key = 'next_seq'")
    return int(next_seq) - 1


def all_stored(collector: Collector, targets: dict[str, int]) -> bool:
    """True when each agent's envelopes up to its target are stored."""
    with sqlite3.connect(collector.db) as db:
        return all(
            db.execute("SELECT count(*) FROM reports WHERE agent_id = ? AND seq <= ?", (agent_id, upto)).fetchone()[0]
            == upto for agent_id, upto in targets.items())


def scenario(tmp_path: Path, name: str, fault: Callable[[Collector, FaultProxy], None],
             **settings: Any) -> None:
    """Start a collector, a proxy and AGENTS agents, inject `fault`, let them catch up, stop, count, check."""
    collector = Collector(tmp_path / "collector")
    collector.workdir.mkdir()
    collector.start(GRACE, **settings)
    agents: list[Agent] = []
    try:
        with FaultProxy(collector.url) as proxy:
            for n in range(AGENTS):
                agent = Agent(tmp_path / f"pc{n}", collector, url=proxy.url, upload=UPLOAD)
                agents.append(agent)
                agent.enroll()
                agent.start()
            wait_until(lambda: all(len(collector.reports(a.agent_id)) >= 3 for a in agents), 30, "first reports")
            fault(collector, proxy)
            healed = time.monotonic()
            targets = {agent.agent_id: produced(agent) for agent in agents}
            wait_until(lambda: all_stored(collector, targets), 120, "the agents to catch up")
            catch_up = time.monotonic() - healed
            time.sleep(2)
            for agent in agents:
                agent.stop()
            answers = ", ".join(f"{status}: {n}" for status, n in sorted(proxy.answers.items()))
        figures = count(name, collector, agents, catch_up, answers)
    finally:
        for agent in agents:
            agent.stop()
        collector.stop()
    assert figures.lost == 0, figures
    assert figures.duplicated == 0, figures
    assert figures.rejected == 0, figures
    assert figures.false_offline == 0, figures
    assert figures.stored + figures.kept == figures.produced, figures


def test_a_proxy_answering_500_then_408_loses_nothing(tmp_path: Path) -> None:
    def fault(collector: Collector, proxy: FaultProxy) -> None:
        proxy.fault = 500
        time.sleep(15)
        proxy.fault = 408
        time.sleep(10)
        proxy.fault = None

    # The collector sees nothing while the proxy fails: a device is offline only after a minute of silence.
    scenario(tmp_path, "proxy: 500 for 15 s, then 408 for 10 s", fault, offline_after_missed=60)


def test_a_killed_collector_down_20_s_loses_nothing_and_declares_no_device_offline(tmp_path: Path) -> None:
    settings = {"offline_after_missed": 3, "agent_reconnect_seconds": 5}

    def fault(collector: Collector, proxy: FaultProxy) -> None:
        assert collector.process is not None
        collector.process.kill()
        collector.process.wait(10)
        time.sleep(20)
        collector.start(GRACE, **settings)

    # Devices silent for 3 s are offline: only the start-up grace and the agents' quick return prevent it.
    scenario(tmp_path, "collector kill -9, down 20 s", fault, **settings)


def test_the_collector_database_locked_for_15_s_loses_nothing_and_declares_no_device_offline(
    tmp_path: Path,
) -> None:
    def fault(collector: Collector, proxy: FaultProxy) -> None:
        with locked(collector.db):
            time.sleep(15)

    scenario(tmp_path, "SQLite write lock held 15 s", fault, offline_after_missed=3, agent_reconnect_seconds=5)


@contextmanager
def locked(db: Path) -> Iterator[None]:
    """The database's write lock, held by another process's transaction for the block."""
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
    finally:
        other.close()
