"""Store fixtures, parametrised by backend so every backend passes the same tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from collector.store import Store
from collector.store.sqlite import SqliteStore

# A PostgreSQL backend joins this list (and `_make` below) and must then pass the same tests.
BACKENDS = ["sqlite"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test (also its migrations folder)."""
    return request.param


def _make(backend: str, tmp_path: Path) -> Store:
    """A new, unopened store on the test's one database."""
    if backend == "sqlite":
        return SqliteStore(str(tmp_path / "collector.db"))
    raise ValueError(f"no store backend {backend!r}")


@pytest.fixture
async def new_store(backend: str, tmp_path: Path) -> AsyncIterator[Callable[[], Store]]:
    """A factory of unopened stores on one fresh database (think: several collector processes)."""
    made: list[Store] = []

    def make() -> Store:
        store = _make(backend, tmp_path)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()


@pytest.fixture
async def store(new_store: Callable[[], Store]) -> Store:
    """An open store on a fresh database."""
    opened = new_store()
    await opened.open()
    return opened
