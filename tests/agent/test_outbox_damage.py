"""A damaged outbox (truncated, overwritten with garbage) is moved aside and a new one started (issue 23)."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from agent.checks import CheckContext
from agent.checks.heartbeat import HeartbeatCheck
from agent.cli import main
from agent.identity import save_identity
from agent.outbox import OUTBOX_FILE, Outbox, read_stats
from collector.rules.heartbeat import OUTBOX_RULE, outbox
from tests.agent.support import T0, heartbeat, make_identity, unknown
from tests.support.clock import Clock

PAGE = 4096


def full_outbox(state_dir: Path, count: int = 300) -> tuple[Path, str | None]:
    """An outbox file of many pages, closed cleanly (its WAL folded in); returns its path and stream."""
    path = state_dir / OUTBOX_FILE
    outbox = Outbox(path, "ag_test", "boot-1")
    for n in range(count):
        outbox.put([unknown(error=f"error {n} " + "x" * 200)], now=T0)
    epoch = outbox.epoch
    outbox.close()
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return path, epoch


def truncate(path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)


def garbage(path: Path) -> None:
    path.write_bytes(os.urandom(8 * PAGE))


def garbage_after_the_header(path: Path) -> None:
    """Pages 2 onwards overwritten: SQLite still opens the file, but its tables are gone."""
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(PAGE)
        f.write(os.urandom(size - PAGE))


@pytest.mark.parametrize("damage", [truncate, garbage, garbage_after_the_header])
def test_a_damaged_outbox_is_moved_aside_and_a_new_one_takes_reports(
    state_dir: Path, damage: object, caplog: pytest.LogCaptureFixture
) -> None:
    path, old_epoch = full_outbox(state_dir)
    damage(path)  # type: ignore[operator]
    clock = Clock(T0)
    with caplog.at_level(logging.ERROR, "agent.outbox"):
        outbox = Outbox(path, "ag_test", "boot-1", clock=clock)
    aside = state_dir / f"{OUTBOX_FILE}.damaged-20240506T070000Z"
    assert aside.exists()
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"OUTBOX DAMAGED: {path} (") and f"moved aside to {aside}" in line
    assert outbox.epoch is not None and outbox.epoch != old_epoch, "a new stream"
    assert outbox.put([heartbeat()], now=T0) == 1
    for _ in range(10):  # what was salvaged from the damaged file goes first (test_outbox_salvage.py)
        batch = outbox.pending(1 << 20, limit=1000)
        if json.loads(batch[0][1]).get("epoch") == outbox.epoch:
            break
        outbox.ack(seq for seq, _ in batch)
    assert [seq for seq, _ in batch] == [1]
    stats = outbox.stats()
    assert stats.warning is not None and aside.name in stats.warning and stats.warning_at == T0
    outbox.close()
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_damage_found_while_the_agent_runs_starts_a_new_outbox(state_dir: Path) -> None:
    path, _ = full_outbox(state_dir)
    outbox = Outbox(path, "ag_test", "boot-1")
    first = outbox.epoch
    outbox._db.close()
    garbage_after_the_header(path)
    # A connection opened on the damaged file, as if the damage had happened under the running agent.
    outbox._db = sqlite3.connect(path, isolation_level=None)
    assert outbox.put([heartbeat()], now=T0) == 1
    assert outbox.epoch != first
    assert outbox.stats().warning is not None


def test_the_heartbeat_carries_the_warning_and_the_collector_warns_for_a_day(state_dir: Path) -> None:
    path, _ = full_outbox(state_dir, count=5)
    garbage(path)
    Outbox(path, "ag_test", "boot-1", clock=Clock(T0)).close()
    stats = read_stats(path)
    assert stats is not None and stats.warning_at == T0
    [beat] = HeartbeatCheck(CheckContext(state_dir=state_dir, clock=Clock(T0))).collect()
    assert (beat.outbox_warning, beat.outbox_warning_at) == (stats.warning, T0)
    verdict = outbox(beat)
    assert (verdict.rule, verdict.status) == (OUTBOX_RULE, "warning")
    assert "moved aside" in verdict.summary
    later = beat.model_copy(update={"collected_at": T0 + timedelta(days=1)})
    assert outbox(later).status == "ok", "the warning resolves a day after the damage"


def test_status_reads_a_damaged_outbox_as_a_warning_not_a_traceback(
    state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = full_outbox(state_dir, count=5)
    garbage(path)
    stats = read_stats(path)
    assert stats is not None and stats.pending == 0
    assert stats.warning is not None and stats.warning.startswith("the outbox file is damaged (")
    save_identity(state_dir, make_identity())
    config = tmp_path / "agent.toml"
    config.write_text(f'[agent]\nstate_dir = "{state_dir}"\n')
    assert main(["status", "--config", str(config)]) == 0
    assert "warning:    the outbox file is damaged (file is not a database)" in capsys.readouterr().out
