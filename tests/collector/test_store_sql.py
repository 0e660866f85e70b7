"""Portable queries are rewritten for each driver: named parameters, casts PostgreSQL needs, list membership."""

from __future__ import annotations

from collector.store.sql import compile_sql


def test_named_parameters_become_positional_marks_in_order_for_sqlite() -> None:
    sql = "UPDATE t SET a = :at WHERE id = :id AND b > :at"
    assert compile_sql(sql, "sqlite") == ("UPDATE t SET a = ? WHERE id = ? AND b > ?", ("at", "id", "at"))


def test_named_parameters_become_numbered_once_each_for_postgresql() -> None:
    sql = "UPDATE t SET a = :at WHERE id = :id AND b > :at"
    assert compile_sql(sql, "postgresql") == ("UPDATE t SET a = $1 WHERE id = $2 AND b > $1", ("at", "id"))


def test_a_parameter_cast_is_kept_for_postgresql_and_dropped_for_sqlite() -> None:
    sql = "SELECT * FROM t WHERE :state::text IS NULL OR state = :state"
    assert compile_sql(sql, "postgresql")[0] == "SELECT * FROM t WHERE $1::text IS NULL OR state = $1"
    assert compile_sql(sql, "sqlite")[0] == "SELECT * FROM t WHERE ? IS NULL OR state = ?"


def test_a_list_parameter_tests_membership_on_both() -> None:
    sql = "UPDATE n SET state = 'sending' WHERE id IN (:ids::bigint[]) AND state = 'pending'"
    assert compile_sql(sql, "postgresql")[0] == (
        "UPDATE n SET state = 'sending' WHERE id = ANY($1::bigint[]) AND state = 'pending'"
    )
    assert compile_sql(sql, "sqlite")[0] == (
        "UPDATE n SET state = 'sending' WHERE id IN (SELECT value FROM json_each(?)) AND state = 'pending'"
    )


def test_string_literals_and_column_casts_are_left_alone() -> None:
    sql = "SELECT (j ->> 'at')::timestamptz, '10:30 :x' FROM t WHERE k = :k"
    expected = "SELECT (j ->> 'at')::timestamptz, '10:30 :x' FROM t WHERE k = $1"
    assert compile_sql(sql, "postgresql") == (expected, ("k",))
