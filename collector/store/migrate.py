"""Versioned schema migrations, shared by every backend.

Migrations are files `collector/store/migrations/<backend>/NNNN_name.sql`, numbered from 0001 without
gaps. Applied versions are recorded in `schema_migrations(version, name, applied_at)`. Each pending
migration runs in its own transaction, which the backend makes exclusive (SQLite: `BEGIN IMMEDIATE`;
PostgreSQL: an advisory lock), so two collectors starting at once apply each migration exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Protocol

from shared.clock import Clock, system_clock

# Portable DDL: the same statement works on SQLite and PostgreSQL.
CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
)
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    """The migrations could not be applied; the message says why."""


class SchemaTooNew(MigrationError):
    """The database was migrated by a newer fieldpost than this one."""


@dataclass(frozen=True)
class Migration:
    """One schema step: its version, name and SQL script."""

    version: int
    name: str
    sql: str


class MigrationTx(Protocol):
    """What the runner needs from a backend inside one exclusive transaction."""

    async def run_script(self, sql: str) -> None:
        """Execute a script of one or more SQL statements."""

    async def applied(self) -> dict[int, str]:
        """The versions recorded in `schema_migrations`, with their names."""

    async def record(self, migration: Migration, applied_at: datetime) -> None:
        """Add a row to `schema_migrations`."""


def load_migrations(backend: str) -> list[Migration]:
    """The migrations shipped for a backend, in order; raises MigrationError on a misnamed or missing file."""
    folder = resources.files("collector.store") / "migrations" / backend
    if not folder.is_dir():
        raise MigrationError(f"no migrations for store backend {backend!r}")
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise MigrationError(f"migration file {entry.name!r} is not named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"{backend} migrations must be numbered 1, 2, 3...; found {migration.version} "
                f"({migration.name}) where {expected} was expected"
            )
    return found


async def migrate(
    begin: Callable[[], AbstractAsyncContextManager[MigrationTx]],
    migrations: Sequence[Migration],
    clock: Clock = system_clock,
) -> list[Migration]:
    """Apply the pending migrations, each in its own transaction; returns those this call applied.

    1. Create `schema_migrations` if it is missing.
    2. For each known migration, in a fresh exclusive transaction: refuse a database newer than the code,
       skip the migration if it is recorded (perhaps by another process meanwhile), else run and record it.
    """
    async with begin() as tx:
        await tx.run_script(CREATE_TABLE)
        _refuse_newer(await tx.applied(), migrations)
    applied_now = []
    for migration in migrations:
        async with begin() as tx:
            applied = await tx.applied()
            _refuse_newer(applied, migrations)
            if migration.version in applied:
                continue
            try:
                await tx.run_script(migration.sql)
            except Exception as exc:
                name = f"{migration.version:04d}_{migration.name}"
                raise MigrationError(f"migration {name} failed: {exc}") from exc
            await tx.record(migration, clock())
        applied_now.append(migration)
    return applied_now


def _refuse_newer(applied: dict[int, str], migrations: Sequence[Migration]) -> None:
    """Raise SchemaTooNew when the database has a version this code does not know."""
    known = max((m.version for m in migrations), default=0)
    newest = max(applied, default=0)
    if newest > known:
        raise SchemaTooNew(
            f"the database schema is at version {newest} ({applied[newest]}) but this fieldpost knows "
            f"versions up to {known}: upgrade fieldpost or point it at another database"
        )
