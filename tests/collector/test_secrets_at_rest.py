"""The SQLite database (channel URLs with passwords, every client's data) is owner-only whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.store.sqlite import SqliteStore


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask of a shell or `make run` (022), under which SQLite creates files world-readable."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def modes(folder: Path) -> dict[str, int]:
    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()}


async def test_a_new_database_and_its_wal_and_shm_are_owner_only(tmp_path: Path, usual_umask: None) -> None:
    store = SqliteStore(str(tmp_path / "collector.db"))
    await store.open()
    try:
        async with store.transaction() as tx:
            await tx.set_meta("probe", "x")
        async with store.read() as tx:
            assert await tx.get_meta("probe") == "x"
        assert modes(tmp_path) == {"collector.db": 0o600, "collector.db-wal": 0o600, "collector.db-shm": 0o600}
    finally:
        await store.close()


async def test_a_database_left_world_readable_is_narrowed_when_opened(tmp_path: Path, usual_umask: None) -> None:
    first = SqliteStore(str(tmp_path / "collector.db"))
    await first.open()
    await first.close()
    os.chmod(tmp_path / "collector.db", 0o644)  # as an earlier version left it
    again = SqliteStore(str(tmp_path / "collector.db"))
    await again.open()
    try:
        assert set(modes(tmp_path).values()) == {0o600}
    finally:
        await again.close()
