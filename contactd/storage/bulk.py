"""Many rows in few statements, on a blocking connection (``SqlLane``); and hot reads by
key in plain SQL (``select_rows``).

On SQLite, ``executemany`` steps the driver once per row, and every step lets go of the
GIL and then waits for it again (up to the switch interval while the event loop is busy):
a batch of 30 rows could take 10 ms of waiting. Here the rows go as one multi-row
``INSERT`` per chunk of SQLite's parameter limit, in plain SQL with the columns' own bind
processors (SQLAlchemy's compilation of a large ``values()`` costs more than it saves).
Other databases take SQLAlchemy's ``executemany`` (asyncpg pipelines it)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from contactd.storage.db import driver_execute

MAX_VARIABLES = 999  # SQLite's lowest limit of parameters per statement (before 3.32)


class RowsSql(NamedTuple):
    head: str  # the statement up to its VALUES rows
    tail: str  # after them
    keys: tuple[str, ...]  # parameter keys, in the order of a row's values
    columns: tuple[sa.Column[Any], ...]  # whose bind processors apply


@cache
def insert_sql(table: sa.Table) -> RowsSql:
    columns = tuple(table.c)
    names = ", ".join(c.name for c in columns)
    keys = tuple(c.name for c in columns)
    return RowsSql(f"INSERT INTO {table.name} ({names}) VALUES ", "", keys, columns)


@cache
def _has_defaults(table: sa.Table) -> bool:
    return any(c.default is not None or c.server_default is not None for c in table.c)


@cache
def _binders(sql: RowsSql, dialect: Dialect) -> tuple[tuple[str, Any], ...]:
    """Each parameter's key and its column's bind processor (None: the value as it is)."""
    procs = (c.type.dialect_impl(dialect).bind_processor(dialect) for c in sql.columns)
    return tuple(zip(sql.keys, procs, strict=True))


def sqlite_rows(conn: Connection, sql: RowsSql, rows: list[dict[str, Any]]) -> None:
    """Run ``sql`` with ``rows`` as its VALUES, as few statements as the limit allows (a
    key a row leaves out is SQL NULL)."""
    if not rows:
        return
    binders = _binders(sql, conn.dialect)
    width = len(sql.keys)
    one = "(" + ", ".join("?" * width) + ")"
    per = MAX_VARIABLES // width
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        params = [
            row.get(key) if proc is None else proc(row.get(key))
            for row in chunk
            for key, proc in binders
        ]
        # straight to the driver: SQLAlchemy's execution context, events and result set-up
        # cost about as much as SQLite's own work for a batch of a few rows
        driver_execute(conn, sql.head + ", ".join([one] * len(chunk)) + sql.tail, params)


def insert_rows(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows``; a column a row leaves out is NULL (tables with column defaults take
    SQLAlchemy's path, which applies them)."""
    if not rows:
        return
    if conn.dialect.name == "sqlite" and not _has_defaults(table):
        sqlite_rows(conn, insert_sql(table), rows)
    else:
        conn.execute(sa.insert(table), rows)


def marks(n: int) -> str:
    """``?, ?, ?``: ``n`` parameters (an ``IN`` list)."""
    return ", ".join("?" * n)


@cache
def _result_processors(table: sa.Table, dialect: Dialect) -> tuple[Any, ...]:
    return tuple(
        c.type.dialect_impl(dialect).result_processor(dialect, None) for c in table.columns
    )


def select_rows(
    conn: Connection, table: sa.Table, where: str, params: Sequence[Any], tail: str = ""
) -> list[dict[str, Any]]:
    """``SELECT`` every column of ``table`` ``WHERE where`` (then ``tail``: ``ORDER BY``...)
    on SQLite, through the driver: no statement built and compiled per call, no result
    objects; values go through the columns' own result processors (JSON), so the rows
    read as SQLAlchemy reads them. For hot reads by key (a batch's sessions, callers)."""
    names = [c.name for c in table.columns]
    procs = _result_processors(table, conn.dialect)
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        cursor.execute(f"SELECT {', '.join(names)} FROM {table.name} WHERE {where} {tail}", params)
        found = cursor.fetchall()
    finally:
        cursor.close()
    return [
        {
            name: proc(value) if proc is not None and value is not None else value
            for name, proc, value in zip(names, procs, row, strict=True)
        }
        for row in found
    ]
