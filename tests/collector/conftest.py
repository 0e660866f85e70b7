"""Store fixtures, parametrised by backend so every backend passes the same tests.

`database` is what a collector is configured with (`Settings.db`): a SQLite file, or a fresh database
on a throw-away PostgreSQL cluster that the session starts once. Under CI the PostgreSQL runs are
never skipped: a machine without PostgreSQL fails them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from collector.store import Store, open_store
from tests.collector import pg_cluster

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[pg_cluster.Cluster]:
    """A PostgreSQL cluster for the whole session (skipped where PostgreSQL is missing, except in CI)."""
    try:
        cluster = pg_cluster.start()
    except pg_cluster.ClusterUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI runs the PostgreSQL tests: {exc}")
        pytest.skip(str(exc))
    yield cluster
    cluster.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test (also its migrations folder)."""
    return request.param


@pytest.fixture
async def database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The database a collector under test uses: a SQLite file path or a fresh PostgreSQL database's URL."""
    if backend == "sqlite":
        yield str(tmp_path / "collector.db")
        return
    cluster: pg_cluster.Cluster = request.getfixturevalue("postgres")
    name = cluster.new_database_name()
    admin = await asyncpg.connect(cluster.dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield cluster.dsn(name)
        # FORCE: a test that failed half-way may leave a connection behind.
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def new_store(database: str) -> AsyncIterator[Callable[[], Store]]:
    """A factory of unopened stores on one fresh database (think: several collector processes)."""
    made: list[Store] = []

    def make() -> Store:
        store = open_store(database)
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
