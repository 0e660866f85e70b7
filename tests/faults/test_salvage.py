"""A damaged outbox, with real processes: reports queued while the collector was down, the outbox's header then
destroyed while the agent was stopped. The agent moves the file aside, salvages what it can read and sends it
under its old stream and numbers: the collector stores every report once, and the device shows the warning."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from agent.outbox import OUTBOX_FILE
from tests.e2e.harness import Agent, Collector, wait_until
from tests.faults.figures import ROWS, Figures, query, table

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PAGE = 4096


def test_an_outbox_with_its_header_destroyed_is_salvaged_and_nothing_queued_in_it_is_lost(tmp_path: Path) -> None:
    collector = Collector(tmp_path / "collector")
    collector.workdir.mkdir()
    collector.start(20, offline_after_missed=60)
    agent = Agent(tmp_path / "pc", collector, upload={"backoff_cap_seconds": 2})
    agent.enroll()
    try:
        agent.start()
        wait_until(lambda: len(collector.reports(agent.agent_id)) >= 3, 30, "first reports")
        collector.stop()
        time.sleep(8)  # reports queue in the outbox meanwhile
        agent.stop()
        outbox = agent.state_dir / OUTBOX_FILE
        with sqlite3.connect(outbox) as db:
            [(epoch,)] = db.execute("SELECT value FROM meta WHERE key = 'epoch'")
            [(next_seq,)] = db.execute("SELECT value FROM meta WHERE key = 'next_seq'")
            [(queued,)] = db.execute("SELECT count(*) FROM envelopes WHERE rejected IS NULL")
        assert queued >= 4
        with outbox.open("r+b") as f:
            f.write(os.urandom(PAGE))  # the header and the schema: SQLite cannot open the file at all
        collector.start(20, offline_after_missed=60)
        agent.start()
        numbered = set(range(1, int(next_seq)))
        started = time.monotonic()

        def old_stream() -> set[int]:
            rows = query(collector, "SELECT seq FROM reports WHERE agent_id = ? AND epoch = ?", agent.agent_id, epoch)
            return {seq for (seq,) in rows}

        wait_until(lambda: old_stream() == numbered, 60, "the salvaged reports to be stored")
        catch_up = time.monotonic() - started
        wait_until(lambda: collector.alerts(agent.agent_id, "heartbeat.outbox") == ["open"], 30,
                   "the device to show the outbox warning")
        collector.stop()
        agent.stop()
    finally:
        agent.stop()
        collector.stop()
    [(twice,)] = query(collector, "SELECT count(*) FROM (SELECT epoch, seq, kind FROM observations WHERE agent_id = ? "
                       "GROUP BY epoch, seq, kind HAVING count(*) > 1) AS twice", agent.agent_id)
    [(summary,)] = query(collector, "SELECT summary FROM alerts WHERE agent_id = ? AND rule = 'heartbeat.outbox'",
                         agent.agent_id)
    offline = len(collector.alerts(agent.agent_id, "heartbeat.offline"))
    row = Figures("outbox header destroyed, salvaged", len(numbered), len(old_stream()), 0, 0,
                  len(numbered - old_stream()), twice, offline, round(catch_up, 1), f"{queued} queued when damaged")
    ROWS.append(row)
    print(table([row]), summary, sep="\n")
    assert twice == 0 and offline == 0, row
    assert f"{queued} queued reports salvaged from it and sent again, 0 unreadable" in summary, summary
