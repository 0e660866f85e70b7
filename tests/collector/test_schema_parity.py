"""The SQLite and PostgreSQL schemas, each migrated from scratch, have the same tables, columns and indexes."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from collector.store import open_store
from tests.collector import pg_cluster

# A column's type family is how SQLite keeps the value: PostgreSQL's richer types map onto the
# storage class the SQLite twin of the column uses (moments, days, times of day, money and JSON as text).
_PG_FAMILY = {
    "bigint": "integer", "integer": "integer", "smallint": "integer", "boolean": "integer",
    "text": "text", "timestamp with time zone": "text", "date": "text", "time without time zone": "text",
    "json": "text", "jsonb": "text", "numeric": "text", "bytea": "blob", "double precision": "real",
    "real": "real",
}
_SQLITE_FAMILY = {"INTEGER": "integer", "TEXT": "text", "BLOB": "blob", "REAL": "real", "ANY": "any"}

Schema = dict[str, Any]


def _sqlite_schema(path: str) -> Schema:
    """Tables, columns, primary keys, unique constraints and named indexes of a SQLite database."""
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )]
        columns: dict[str, dict[str, tuple[str, bool]]] = {}
        primary: dict[str, tuple[str, ...]] = {}
        uniques: set[tuple[str, tuple[str, ...]]] = set()
        indexes: dict[str, tuple[str, tuple[str, ...], bool, bool]] = {}
        for table in tables:
            info = db.execute(f"PRAGMA table_info({table})").fetchall()
            columns[table] = {
                name: (_SQLITE_FAMILY[type_.upper()], not notnull and not pk)
                for _, name, type_, notnull, _, pk in info
            }
            primary[table] = tuple(name for *_, name in sorted((pk, name) for _, name, _, _, _, pk in info if pk))
            for _, index, unique, origin, partial in db.execute(f"PRAGMA index_list({table})").fetchall():
                cols = tuple(name or "<expression>" for _, _, name in db.execute(f"PRAGMA index_info({index})"))
                if origin == "u":
                    uniques.add((table, cols))
                elif origin == "c":
                    indexes[index] = (table, cols, bool(unique), bool(partial))
        return {"tables": tables, "columns": columns, "primary": primary, "uniques": uniques, "indexes": indexes}
    finally:
        db.close()


async def _postgres_schema(dsn: str) -> Schema:
    """The same facts as `_sqlite_schema`, read from PostgreSQL's catalogue."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = [r["table_name"] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name"
        )]
        columns: dict[str, dict[str, tuple[str, bool]]] = {table: {} for table in tables}
        for r in await conn.fetch(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        ):
            columns[r["table_name"]][r["column_name"]] = (_PG_FAMILY[r["data_type"]], r["is_nullable"] == "YES")
        primary: dict[str, tuple[str, ...]] = {table: () for table in tables}
        uniques: set[tuple[str, tuple[str, ...]]] = set()
        indexes: dict[str, tuple[str, tuple[str, ...], bool, bool]] = {}
        for r in await conn.fetch(
            "SELECT t.relname AS table_name, i.relname AS index_name, x.indisunique, x.indpred IS NOT NULL "
            "  AS partial, con.contype::text AS contype, "
            "  array(SELECT coalesce(a.attname, '<expression>') FROM unnest(x.indkey::int2[]) WITH ORDINALITY "
            "    AS k(attnum, n) LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
            "    ORDER BY k.n) AS cols "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_namespace ns ON ns.oid = t.relnamespace "
            "LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = t.oid "
            "WHERE ns.nspname = 'public'"
        ):
            cols = tuple(r["cols"])
            if r["contype"] == "p":
                primary[r["table_name"]] = cols
            elif r["contype"] == "u":
                uniques.add((r["table_name"], cols))
            else:
                indexes[r["index_name"]] = (r["table_name"], cols, r["indisunique"], r["partial"])
        return {"tables": tables, "columns": columns, "primary": primary, "uniques": uniques, "indexes": indexes}
    finally:
        await conn.close()


@pytest.fixture
async def schemas(tmp_path: Path, postgres: pg_cluster.Cluster) -> tuple[Schema, Schema]:
    """Both schemas, each migrated from an empty database by the store itself."""
    path = str(tmp_path / "parity.db")
    name = postgres.new_database_name()
    admin = await asyncpg.connect(postgres.dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        for url in (path, postgres.dsn(name)):
            store = open_store(url)
            await store.open()
            await store.close()
        pg = await _postgres_schema(postgres.dsn(name))
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    return _sqlite_schema(path), pg


async def test_both_backends_have_the_same_tables(schemas: tuple[Schema, Schema]) -> None:
    sqlite, pg = schemas
    assert sqlite["tables"] == pg["tables"]


async def test_every_column_has_the_same_type_family_and_nullability(schemas: tuple[Schema, Schema]) -> None:
    sqlite, pg = schemas
    assert sqlite["columns"] == pg["columns"]


async def test_primary_keys_and_unique_constraints_match(schemas: tuple[Schema, Schema]) -> None:
    sqlite, pg = schemas
    assert sqlite["primary"] == pg["primary"]
    assert sqlite["uniques"] == pg["uniques"]


async def test_named_indexes_match_in_columns_uniqueness_and_partiality(schemas: tuple[Schema, Schema]) -> None:
    sqlite, pg = schemas
    assert sqlite["indexes"] == pg["indexes"]
