"""What the SQLite store guarantees at acknowledgement: a commit is on disk when it returns (synchronous=FULL).

tests/faults/test_power_loss.py shows it under power cuts; this guards the setting in the fast suite.
"""

from __future__ import annotations

from pathlib import Path

from collector.store.sqlite import SqliteStore

FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA


async def test_the_sqlite_store_syncs_each_commit(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "collector.db"))
    await store.open()
    try:
        assert store._db is not None
        [(mode,)] = await store._db.execute_fetchall("PRAGMA synchronous")
        [(journal,)] = await store._db.execute_fetchall("PRAGMA journal_mode")
    finally:
        await store.close()
    assert (mode, journal) == (FULL, "wal")
