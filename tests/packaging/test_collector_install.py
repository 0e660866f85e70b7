"""`fieldpost-collector install` into a temporary root, and `fieldpost-collector backup` of a live database."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.cli import main as collector_main
from collector.install import NOTHING_CHANGED, BackupError, backup, install, render_unit
from collector.store.sqlite import SqliteStore
from tests.packaging.servicemanager import FakeServiceManager

COLLECTOR = "/opt/fieldpost/bin/fieldpost-collector"
UNIT = "fieldpost-collector.service"


def test_it_installs_the_collector_with_its_own_user_and_a_second_install_changes_nothing(tmp_path: Path) -> None:
    systemd, said = FakeServiceManager(), []
    done = install(tmp_path, run=systemd, program=COLLECTOR, say=said.append)
    unit = tmp_path / "etc/systemd/system" / UNIT
    assert unit.read_text() == render_unit(COLLECTOR)
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    assert systemd.changes() == [
        ("useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/var/lib/fieldpost-collector",
         "--shell", "/usr/sbin/nologin", "fieldpost"),
        ("systemctl", "daemon-reload"), ("systemctl", "enable", UNIT), ("systemctl", "start", UNIT)]
    assert done[1] == f"wrote /etc/systemd/system/{UNIT} (0644)"

    said.clear()
    assert install(tmp_path, run=systemd, program=COLLECTOR, say=said.append) == []
    assert said[0] == NOTHING_CHANGED
    assert len(systemd.changes()) == 4


async def test_backup_copies_a_live_wal_database_while_the_collector_writes(tmp_path: Path) -> None:
    db = tmp_path / "collector.db"
    store = SqliteStore(str(db))
    await store.open()
    written = 0
    stop, warm = asyncio.Event(), asyncio.Event()

    async def keep_writing() -> None:
        nonlocal written
        while not stop.is_set():
            async with store.transaction() as tx:
                await tx.append_feed(datetime.now(UTC), "test", {"n": written})
            written += 1
            if written == 200:
                warm.set()

    writer = asyncio.create_task(keep_writing())
    await warm.wait()
    assert (tmp_path / "collector.db-wal").exists()
    before = written
    status = await asyncio.to_thread(collector_main, ["--db", str(db), "backup", str(tmp_path / "copy.db")])
    after = written
    stop.set()
    await writer
    await store.close()

    assert status == 0
    copy = tmp_path / "copy.db"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    with sqlite3.connect(f"{copy.as_uri()}?mode=ro", uri=True) as db_copy:
        assert db_copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert db_copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db_copy.execute("SELECT count(*) FROM feed_events WHERE type = 'test'").fetchone()[0]
    assert before <= rows <= after
    assert after > before, "the collector went on writing while the backup ran"
    assert hidden_files(tmp_path) == [], "no partial copy is left behind"


def hidden_files(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".")]


def test_backup_into_a_directory_names_the_copy_by_time(tmp_path: Path) -> None:
    db = tmp_path / "collector.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
    (tmp_path / "backups").mkdir()
    made = backup(db, tmp_path / "backups", now=datetime(2026, 3, 1, 2, 30, tzinfo=UTC))
    assert made == tmp_path / "backups/collector-20260301T023000Z.db"


def test_backup_of_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="no such database"):
        backup(tmp_path / "missing.db", tmp_path / "copy.db", datetime(2026, 3, 1, 2, 30, tzinfo=UTC))
    assert list(tmp_path.iterdir()) == []
