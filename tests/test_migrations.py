"""The schema: migrations run on a fresh database, run again harmlessly, match the table
definitions, go down and up again; SQLite gets its pragmas; ping tells up from down.

Runs on SQLite always and on PostgreSQL when CONTACTD_TEST_POSTGRES_URL is set (each test
in a schema of its own, dropped afterwards)."""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from contactd.storage.db import (
    MIGRATIONS_DIR,
    SQLITE_BUSY_TIMEOUT_MS,
    alembic_config,
    migrate,
    open_database,
    ping,
)
from contactd.storage.tables import metadata

PG_URL = os.environ.get("CONTACTD_TEST_POSTGRES_URL")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgres",
        marks=pytest.mark.skipif(not PG_URL, reason="CONTACTD_TEST_POSTGRES_URL is not set"),
    ),
]
OUR_TABLES = set(metadata.tables)
HEAD = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


Target = tuple[str, dict[str, Any]]  # (url, connect_args) of an empty database


@pytest.fixture(params=BACKENDS)
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'db.sqlite3'}", {}
        return
    assert PG_URL is not None
    schema = "contactd_test_" + secrets.token_hex(6)
    admin = await open_database(PG_URL)
    async with admin.begin() as conn:
        await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield PG_URL, {"server_settings": {"search_path": schema}}
    finally:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
async def fresh_db(target: Target) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database (not migrated)."""
    engine = await open_database(target[0], connect_args=target[1])
    yield engine
    await engine.dispose()


def _tables(conn: Connection) -> set[str]:
    return set(sa.inspect(conn).get_table_names())


def _version(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def test_migrate_creates_the_schema_and_is_idempotent(fresh_db: AsyncEngine) -> None:
    async with fresh_db.connect() as conn:
        assert await conn.run_sync(_tables) == set()
    await migrate(fresh_db)
    await migrate(fresh_db)
    async with fresh_db.connect() as conn:
        assert await conn.run_sync(_tables) == OUR_TABLES | {"alembic_version"}
        assert await conn.run_sync(_version) == HEAD


async def test_migrated_schema_matches_table_definitions(fresh_db: AsyncEngine) -> None:
    await migrate(fresh_db)

    def diff(conn: Connection) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, metadata))

    async with fresh_db.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_downgrade_to_base_and_back_up(fresh_db: AsyncEngine) -> None:
    await migrate(fresh_db)

    def downgrade(conn: Connection) -> None:
        command.downgrade(alembic_config(conn), "base")

    async with fresh_db.begin() as conn:
        await conn.run_sync(downgrade)
    async with fresh_db.connect() as conn:
        assert await conn.run_sync(_tables) == {"alembic_version"}
    await migrate(fresh_db)
    async with fresh_db.connect() as conn:
        assert await conn.run_sync(_tables) >= OUR_TABLES


async def test_ping_answers_for_a_live_database(fresh_db: AsyncEngine) -> None:
    assert await ping(fresh_db) is True


async def test_ping_is_false_when_the_database_cannot_be_opened(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    engine = create_async_engine(f"sqlite+aiosqlite:///{blocker / 'db.sqlite3'}")
    threads = threading.active_count()
    try:
        assert await ping(engine) is False
    finally:
        await engine.dispose()
    # aiosqlite stops the worker thread of a failed connection without waiting for it;
    # let it finish while this test's event loop is still open
    for _ in range(500):
        if threading.active_count() <= threads:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0)


async def test_sqlite_file_gets_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "contactd.sqlite3"
    engine = await open_database(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate(engine)
        assert path.exists()
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
            assert (
                await conn.exec_driver_sql("PRAGMA busy_timeout")
            ).scalar() == SQLITE_BUSY_TIMEOUT_MS
        with pytest.raises(sa.exc.IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text(
                        "INSERT INTO auth_tokens (token_hash, staff_id, created_at, expires_at) "
                        "VALUES ('x', 12345, 0, 1)"
                    )
                )
    finally:
        await engine.dispose()


async def test_a_failed_migration_leaves_no_half_schema(tmp_path: Path) -> None:
    """Migrations run in one transaction on SQLite too: a crash leaves nothing behind."""
    engine = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        async with engine.begin() as conn:  # a table in the way makes 0001 fail midway
            await conn.execute(sa.text("CREATE TABLE audit_log (x INTEGER)"))
        with pytest.raises(sa.exc.OperationalError):
            await migrate(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == {"audit_log"}
    finally:
        await engine.dispose()


async def test_processes_migrating_at_once_take_turns(target: Target) -> None:
    engines = [await open_database(target[0], connect_args=target[1]) for _ in range(3)]
    try:
        await asyncio.gather(*(migrate(engine) for engine in engines))
        async with engines[0].connect() as conn:
            assert await conn.run_sync(_version) == HEAD
    finally:
        for engine in engines:
            await engine.dispose()
