"""``SqlLane`` on SQLite: look-ups by key run on the event loop, and one that SQLite
answers "busy" waits on the lane's thread instead, never on the loop. Runs on PostgreSQL
too, where a look-up is the async engine's ``run_sync``."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.storage.db import SqlLane
from tests.conftest import while_another_process_writes

probe = sa.table("lane_probe", sa.column("id"), sa.column("name"))


async def test_a_lookup_answers_on_the_loop_and_a_busy_one_waits_on_the_thread(
    db: AsyncEngine,
) -> None:
    async with db.begin() as conn:
        await conn.execute(
            sa.text("CREATE TABLE lane_probe (id VARCHAR(8) PRIMARY KEY, name TEXT)")
        )
        await conn.execute(sa.insert(probe), [{"id": "u1", "name": "王芳"}])
    lane = SqlLane(db, "test-lane")
    by_id = sa.select(probe.c.name).where(probe.c.id == "u1")
    try:
        assert await lane.lookup(lambda c: c.execute(by_id).scalar_one()) == "王芳"
        if db.dialect.name != "sqlite":
            return
        # A look-up that needs the write lock (here: it writes) while another process
        # holds it gets SQLite's "busy" at once on the loop, then waits for the lock on the
        # lane's thread and answers when it is free.
        ran_on: list[str] = []

        def locking(c: Connection) -> str:
            ran_on.append("loop" if _on_loop() else "thread")
            c.exec_driver_sql("UPDATE lane_probe SET name = name")  # (rolled back)
            return str(c.execute(by_id).scalar_one())

        assert db.url.database is not None
        assert await while_another_process_writes(db.url.database, lane.lookup(locking)) == "王芳"
        assert ran_on == ["loop", "thread"]
    finally:
        await lane.stop()


def _on_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
