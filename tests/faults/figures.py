"""What a fault scenario delivered, counted from the agents' outboxes and the collector's database."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from dataclasses import dataclass, fields
from typing import Any

import asyncpg

from agent.outbox import OUTBOX_FILE
from tests.e2e.harness import Agent, Collector


@dataclass(frozen=True)
class Figures:
    """One scenario's row: every envelope the agents produced is stored, or still kept in an outbox."""

    scenario: str
    produced: int
    stored: int
    kept: int
    rejected: int
    lost: int
    duplicated: int
    false_offline: int
    catch_up_seconds: float
    fault_answers: str


ROWS: list[Figures] = []


def query(collector: Collector, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of `sql` (with `?` placeholders) from the collector's database, SQLite or PostgreSQL."""
    dsn = getattr(collector, "dsn", None)
    if dsn is None:
        with sqlite3.connect(collector.db) as db:
            return db.execute(sql, args).fetchall()
    numbered = iter(range(1, len(args) + 1))
    return asyncio.run(_pg_rows(dsn, re.sub(r"\?", lambda _: f"${next(numbered)}", sql), args))


async def _pg_rows(dsn: str, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """`query` on PostgreSQL, on a connection of its own."""
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(row) for row in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


def count(scenario: str, collector: Collector, agents: list[Agent], catch_up: float, answers: str) -> Figures:
    """Compare what each (stopped) agent numbered with what the collector stored and the outbox still holds."""
    produced = stored = kept = rejected = lost = duplicated = offline = 0
    for agent in agents:
        with sqlite3.connect(agent.state_dir / OUTBOX_FILE) as outbox:
            [(next_seq,)] = outbox.execute("SELECT value FROM meta WHERE key = 'next_seq'")
            waiting = {seq for (seq,) in outbox.execute("SELECT seq FROM envelopes WHERE rejected IS NULL")}
            [(refused,)] = outbox.execute("SELECT count(*) FROM envelopes WHERE rejected IS NOT NULL")
        have = {seq for (seq,) in query(collector, "SELECT seq FROM reports WHERE agent_id = ?", agent.agent_id)}
        [(twice,)] = query(
            collector, "SELECT count(*) FROM (SELECT seq FROM observations WHERE agent_id = ? "
            "GROUP BY seq, kind HAVING count(*) > 1) AS twice", agent.agent_id)
        [(alerts,)] = query(collector, "SELECT count(*) FROM alerts WHERE agent_id = ? "
                            "AND rule = 'heartbeat.offline'", agent.agent_id)
        numbered = set(range(1, int(next_seq)))
        produced += len(numbered)
        stored += len(have & numbered)
        kept += len(waiting)
        rejected += refused
        lost += len(numbered - have - waiting)
        duplicated += twice
        offline += alerts
    row = Figures(scenario, produced, stored, kept, rejected, lost, duplicated, offline, round(catch_up, 1),
                  answers)
    ROWS.append(row)
    print(table([row]))
    return row


def assert_delivered(figures: Figures) -> None:
    """Every envelope produced is stored or still kept; none lost, twice, refused, and no device falsely offline."""
    assert figures.lost == 0, figures
    assert figures.duplicated == 0, figures
    assert figures.rejected == 0, figures
    assert figures.false_offline == 0, figures
    assert figures.stored + figures.kept == figures.produced, figures


@dataclass(frozen=True)
class PowerFigures:
    """One power-loss scenario's row: what the collector acknowledged, and what the store held after the cuts."""

    scenario: str
    power_cuts: int
    acknowledged: int
    stored_after_power_cut: int
    lost: int
    duplicated: int
    # Sequence numbers the collector held that a device, restarted after a cut, would number again.
    reused_numbers: int
    unsynced_writes_undone: int


POWER_ROWS: list[PowerFigures] = []


def table(rows: list[Any]) -> str:
    """The rows (dataclasses of one type) as a Markdown table, a column per field."""
    columns = [column.name for column in fields(rows[0])]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(getattr(row, name)) for name in columns) + " |" for row in rows]
    return "\n".join(lines)
