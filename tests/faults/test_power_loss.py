"""Power loss, VM-less: processes run under the powercut shim, and at random moments while reports flow the power
is cut (SIGKILL, then every write no fsync covered is undone). After each cut the process starts again; at
the end, what was acknowledged must be stored, once. Run with `make faults`."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from agent.outbox import OUTBOX_FILE
from tests.collector.pg_cluster import ClusterUnavailable
from tests.e2e.harness import BIN, Agent, Collector, wait_until
from tests.faults.figures import POWER_ROWS, PowerFigures, table
from tests.faults.pg_server import PgCollector, PowerCutServer
from tests.faults.powercut import PowerCut
from tests.faults.senders import Traffic, enrol

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEVICES = 6
AGENTS = 2
# Power cuts in a scenario (a control, which only has to show a loss, makes two).
CUTS = 3
# The collector's settings: no upload limit (the senders send back to back), devices never declared offline.
SETTINGS = {"agent_uploads_per_minute": 0, "offline_after_missed": 1000}
# Imported at the start of the collector's interpreter (PYTHONPATH): the store as it was before this test's fix.
NORMAL = "import collector.store.sqlite as store\nstore.SYNCHRONOUS = 'NORMAL'\n"
REPORTS = "SELECT agent_id, epoch, seq FROM reports"
TWICE = "SELECT count(*) FROM (SELECT 1 FROM observations GROUP BY agent_id, epoch, seq, kind HAVING count(*) > 1) AS t"


def stored_in_sqlite(db: Path) -> tuple[set[tuple[str, str, int]], int]:
    """(agent, epoch, seq) of the reports in the collector's database, and how many were stored twice."""
    with closing(sqlite3.connect(db)) as conn:
        return set(conn.execute(REPORTS)), conn.execute(TWICE).fetchone()[0]


async def stored_in_postgresql(dsn: str) -> tuple[set[tuple[str, str, int]], int]:
    """The same, from a PostgreSQL database."""
    connection = await asyncpg.connect(dsn)
    try:
        return {tuple(row) for row in await connection.fetch(REPORTS)}, await connection.fetchval(TWICE)
    finally:
        await connection.close()


def collector_scenario(name: str, seed: int, collector: Collector, cut: Callable[[], None],
                       stored: Callable[[], tuple[set[tuple[str, str, int]], int]], power: PowerCut,
                       env: dict[str, str], cuts: int) -> PowerFigures:
    """Devices send to the collector (its process's environment `env`) while `cut` cuts the power `cuts` times
    (and starts all again), and once more at the end; then what the devices were told was stored is looked
    up in the store."""
    # Enrolled before the power periods, then a clean stop: the devices' keys are not what is under test.
    collector.start(**SETTINGS)
    token = subprocess.run([BIN / "fieldpost-collector", "--db", collector.db, "token", "create", "--client",
                            "Acme Tooling", "--site", "Main office", "--uses", str(DEVICES)],
                           capture_output=True, text=True, check=True).stdout.strip()
    senders = asyncio.run(enrol(collector.url, token, DEVICES))
    collector.stop()
    collector.env = env
    collector.start(**SETTINGS)
    rand = random.Random(seed)
    with Traffic(collector.url, senders, seed):
        for _ in range(cuts):
            time.sleep(rand.uniform(1.0, 2.0))
            cut()
            collector.start(**SETTINGS)
        time.sleep(rand.uniform(1.0, 2.0))
        cut()
    have, twice = stored()
    acknowledged = {(s.device.agent_id, epoch, seq) for s in senders for epoch, seq in s.acknowledged}
    row = PowerFigures(name, power.cuts, len(acknowledged), len(acknowledged & have), len(acknowledged - have),
                       twice, 0, sum(power.undone))
    POWER_ROWS.append(row)
    print(table([row]))
    return row


def sqlite_scenario(tmp_path: Path, shim: Path, name: str, seed: int, cuts: int,
                    env: dict[str, str] | None = None) -> PowerFigures:
    """The collector on SQLite, under the shim: its own power is cut."""
    collector = Collector(tmp_path / "collector")
    collector.workdir.mkdir()
    power = PowerCut(collector.workdir, shim, tmp_path / "undo.log")

    def cut() -> None:
        assert collector.process is not None
        power.cut(collector.process)

    try:
        return collector_scenario(name, seed, collector, cut, lambda: stored_in_sqlite(collector.db), power,
                                  {**power.env(), **(env or {})}, cuts)
    finally:
        collector.stop()


def test_sqlite_with_synchronous_normal_loses_acknowledged_reports_at_a_power_cut(tmp_path: Path, shim: Path
                                                                                  ) -> None:
    # The control: the store as it was (WAL synced only at checkpoints). It shows the harness sees the loss.
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NORMAL)
    row = sqlite_scenario(tmp_path, shim, "collector, SQLite synchronous=NORMAL (before)", seed=1, cuts=2,
                          env={"PYTHONPATH": str(site)})
    assert row.acknowledged > 100, row
    assert row.lost > 0, row


def test_sqlite_loses_no_acknowledged_report_at_a_power_cut(tmp_path: Path, shim: Path) -> None:
    row = sqlite_scenario(tmp_path, shim, "collector, SQLite synchronous=FULL", seed=2, cuts=CUTS)
    assert row.acknowledged > 100, row
    assert row.lost == 0, row
    assert row.duplicated == 0, row


def postgresql_scenario(tmp_path: Path, name: str, seed: int, cuts: int,
                        settings: dict[str, str] | None = None) -> PowerFigures:
    """The collector on a PostgreSQL server under the shim: a cut kills the collector and cuts the server's
    power (one machine), then starts the server again (crash recovery)."""
    try:
        server = PowerCutServer.create(settings)
    except ClusterUnavailable as exc:
        pytest.skip(str(exc))
    collector = PgCollector(tmp_path / "collector", dsn=server.dsn)
    collector.workdir.mkdir()

    def cut() -> None:
        assert collector.process is not None
        collector.process.kill()
        collector.process.wait(10)
        server.cut()
        server.start()

    try:
        server.start()
        return collector_scenario(name, seed, collector, cut, lambda: asyncio.run(stored_in_postgresql(server.dsn)),
                                  server.power, {}, cuts)
    finally:
        collector.stop()
        server.remove()


def test_postgresql_with_asynchronous_commit_loses_acknowledged_reports_at_a_power_cut(tmp_path: Path) -> None:
    # The control: a commit acknowledged before its WAL is flushed is what a cut takes.
    row = postgresql_scenario(tmp_path, "collector, PostgreSQL synchronous_commit=off (control)", seed=4, cuts=2,
                              settings={"synchronous_commit": "off"})
    assert row.acknowledged > 100, row
    assert row.lost > 0, row


def test_postgresql_loses_no_acknowledged_report_at_a_power_cut(tmp_path: Path) -> None:
    row = postgresql_scenario(tmp_path, "collector, PostgreSQL fsync=on, synchronous_commit=on", seed=5,
                              cuts=CUTS)
    assert row.acknowledged > 100, row
    assert row.lost == 0, row
    assert row.duplicated == 0, row


def test_an_agent_whose_power_is_cut_loses_no_report_and_reuses_no_sequence_number(tmp_path: Path,
                                                                                  shim: Path) -> None:
    collector = Collector(tmp_path / "collector")
    collector.workdir.mkdir()
    collector.start(**SETTINGS)
    agents: list[Agent] = []
    powers: list[PowerCut] = []
    rand = random.Random(3)
    try:
        for n in range(AGENTS):
            power = PowerCut(tmp_path / f"pc{n}" / "state", shim, tmp_path / f"undo{n}.log")
            power.folder.mkdir(parents=True)
            # A report five times a second besides the heartbeat: cuts fall while it queues and uploads.
            agent = Agent(tmp_path / f"pc{n}", collector, checks={"pending_reboot": {"interval_seconds": 0.2}},
                          env=power.env())
            agent.enroll()
            agent.start()
            agents.append(agent)
            powers.append(power)
        reused = 0
        for _ in range(CUTS):
            # Each power period lasts until every agent has queued a few reports, then a random while more.
            wait_until(enough([(agent, numbered(agent) + 3) for agent in agents]), 30, "reports")
            time.sleep(rand.uniform(0.0, 1.5))
            for agent, power in zip(agents, powers, strict=True):
                assert agent.process is not None
                power.cut(agent.process)
                # Numbers the collector holds that the outbox, as the cut left it, would hand out again: the
                # next reports would be answered "duplicate" and deleted unsent.
                stream = Stream.read(collector, agent)
                reused += len(stream.stored - stream.numbered)
                agent.start()
        wait_until(lambda: all(queued(agent) == 0 for agent in agents), 60, "the agents to empty their outboxes")
    finally:
        for agent in agents:
            agent.stop()
        collector.stop()
    streams = [Stream.read(collector, agent) for agent in agents]
    numbers = sum(len(s.numbered) for s in streams)
    row = PowerFigures("agent, outbox under power cuts (acknowledged: numbered)", sum(p.cuts for p in powers),
                       numbers, sum(len(s.numbered & s.stored) for s in streams),
                       sum(len(s.numbered - s.stored - s.waiting) for s in streams),
                       sum(s.twice for s in streams), reused, sum(sum(p.undone) for p in powers))
    POWER_ROWS.append(row)
    print(table([row]))
    assert numbers > 50, row
    assert row.lost == 0, row
    assert row.reused_numbers == 0, row
    assert row.duplicated == 0, row


@dataclass(frozen=True)
class Stream:
    """An agent's current stream: the numbers its outbox handed out and still holds, and what the collector has."""

    numbered: set[int]
    waiting: set[int]
    stored: set[int]
    twice: int

    @classmethod
    def read(cls, collector: Collector, agent: Agent) -> Stream:
        """Read the (stopped) agent's outbox and the collector's database.

        Each connection is closed at once: one left open would keep this process's view of the outbox's
        shared memory across the next cut, which no process survives in a real one.
        """
        with closing(sqlite3.connect(agent.state_dir / OUTBOX_FILE)) as outbox:
            meta = dict(outbox.execute("SELECT key, value FROM meta"))
            waiting = {seq for (seq,) in outbox.execute("SELECT seq FROM envelopes")}
        with closing(sqlite3.connect(collector.db)) as db:
            stored = {seq for (seq,) in db.execute("SELECT seq FROM reports WHERE agent_id = ? AND epoch = ?",
                                                   (agent.agent_id, meta["epoch"]))}
            [(twice,)] = db.execute("SELECT count(*) FROM (SELECT 1 FROM observations WHERE agent_id = ? "
                                    "GROUP BY epoch, seq, kind HAVING count(*) > 1)", (agent.agent_id,))
        return cls(set(range(1, int(meta["next_seq"]))), waiting, stored, twice)


def queued(agent: Agent) -> int:
    """Envelopes waiting in the agent's outbox."""
    stats = agent.outbox()
    return stats.pending if stats else 0


def enough(marks: list[tuple[Agent, int]]) -> Callable[[], bool]:
    """A condition: each agent has numbered as many envelopes as its mark."""
    return lambda: all(numbered(agent) >= mark for agent, mark in marks)


def numbered(agent: Agent) -> int:
    """Envelopes the agent has numbered so far."""
    stats = agent.outbox()
    return stats.next_seq - 1 if stats else 0
