"""One fault scenario, run the same way whatever fails: collector(s), a proxy and agents as real processes,
a fault injected while the agents report, then the catch-up awaited, the figures counted and checked."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from agent.outbox import OUTBOX_FILE
from tests.e2e.harness import Agent, Collector, wait_until
from tests.faults.figures import Figures, assert_delivered, count, query
from tests.faults.proxy import FaultProxy

AGENTS = 4
GRACE = 20
# Shortened intervals: heartbeats every second, uploads every half second, waits of at most 8 s.
UPLOAD = {"backoff_cap_seconds": 8}


@dataclass
class PgCollector(Collector):
    """A collector on a PostgreSQL database (`dsn`); several may share one."""

    dsn: str = ""

    @property
    def db(self) -> Any:
        """The database URL, given to `--db` as the SQLite file is."""
        return self.dsn

    def reports(self, agent_id: str) -> list[int]:
        """Sequence numbers stored for an agent."""
        return [seq for (seq,) in query(self, "SELECT seq FROM reports WHERE agent_id = ? ORDER BY seq", agent_id)]


def new_database(admin_dsn: str, name: str) -> None:
    """Create an empty database on the cluster `admin_dsn` connects to."""
    async def create() -> None:
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()

    asyncio.run(create())


def produced(agent: Agent) -> int:
    """How many envelopes the agent has numbered so far."""
    with sqlite3.connect(agent.state_dir / OUTBOX_FILE) as outbox:
        [(next_seq,)] = outbox.execute("SELECT value FROM meta WHERE key = 'next_seq'")
    return int(next_seq) - 1


def all_stored(collector: Collector, targets: dict[str, int]) -> bool:
    """True when each agent's envelopes up to its target are stored."""
    return all(query(collector, "SELECT count(*) FROM reports WHERE agent_id = ? AND seq <= ?", agent_id, upto)[0][0]
               == upto for agent_id, upto in targets.items())


def run(tmp_path: Path, name: str, collectors: list[Collector],
        fault: Callable[[list[Collector], FaultProxy], None], **settings: Any) -> Figures:
    """Start the collectors, a proxy in front of them and AGENTS agents, inject `fault`, let them catch up,
    stop, count and check: every envelope stored or still queued, none twice, no device offline."""
    agents: list[Agent] = []
    for collector in collectors:
        collector.workdir.mkdir()
        collector.start(GRACE, **settings)
    try:
        with FaultProxy(*(collector.url for collector in collectors)) as proxy:
            first = collectors[0]
            for n in range(AGENTS):
                agent = Agent(tmp_path / f"pc{n}", first, url=proxy.url, upload=UPLOAD)
                agents.append(agent)
                agent.enroll()
                agent.start()
            wait_until(lambda: all(len(first.reports(a.agent_id)) >= 3 for a in agents), 30, "first reports")
            fault(collectors, proxy)
            healed = time.monotonic()
            targets = {agent.agent_id: produced(agent) for agent in agents}
            wait_until(lambda: all_stored(first, targets), 120, "the agents to catch up")
            catch_up = time.monotonic() - healed
            time.sleep(2)
            # The collectors first: an agent stopped while they sweep would be declared offline, rightly.
            for collector in collectors:
                collector.stop()
            for agent in agents:
                agent.stop()
            answers = ", ".join(f"{status}: {n}" for status, n in sorted(proxy.answers.items()))
            unhinted = proxy.unhinted
        figures = count(name, first, agents, catch_up, answers)
    finally:
        for agent in agents:
            agent.stop()
        for collector in collectors:
            collector.stop()
    assert_delivered(figures)
    assert unhinted == 0, f"{unhinted} answers of 503 without Retry-After"
    return figures


@contextmanager
def locked(db: Path) -> Iterator[None]:
    """The database's write lock, held by another process's transaction for the block."""
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
    finally:
        other.close()
