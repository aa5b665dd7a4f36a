"""``SqlLane`` on SQLite: look-ups by key run on the event loop, and one that SQLite
answers "busy" waits on the lane's thread instead, never on the loop. Runs on PostgreSQL
too, where a look-up is the async engine's ``run_sync``."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.storage.db import SqlLane
from tests.conftest import while_another_process_writes

probe = sa.table("lane_probe", sa.column("id"), sa.column("name"))
PROBE_DDL = "CREATE TABLE lane_probe (id VARCHAR(8) PRIMARY KEY, name TEXT)"


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


async def test_writes_after_a_failure_and_a_cancelled_commit_store_exactly_what_committed(
    db: AsyncEngine,
) -> None:
    """A write whose work fails stores nothing and the next one goes on; on SQLite a write
    cancelled while its commit runs on the thread is still committed whole, and the next
    write waits for it instead of sharing its connection."""
    async with db.begin() as conn:
        await conn.execute(
            sa.text("CREATE TABLE lane_probe (id VARCHAR(8) PRIMARY KEY, name TEXT)")
        )
    lane = SqlLane(db, "test-lane")

    def insert(row_id: str, fail: bool = False) -> Callable[[Connection], None]:
        def run(c: Connection) -> None:
            c.execute(sa.insert(probe), [{"id": row_id, "name": row_id}])
            if fail:
                raise ValueError("the work failed after writing")

        return run

    try:
        with pytest.raises(ValueError):
            await lane.write(insert("a", fail=True))
        await lane.write(insert("b"))
        pending = asyncio.ensure_future(lane.write(insert("c")))
        await asyncio.sleep(0)  # its statements ran; its commit is on the lane's thread
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        await lane.write(insert("d"))
        ids = await lane.read(lambda c: sorted(c.execute(sa.select(probe.c.id)).scalars()))
        # (PostgreSQL: cancelled at its first statement's await, so before anything ran)
        assert ids == (["b", "c", "d"] if db.dialect.name == "sqlite" else ["b", "d"])
    finally:
        await lane.stop()


async def test_then_hears_of_a_commit_even_when_its_writer_was_cancelled(
    db: AsyncEngine,
) -> None:
    """``then`` gets the work's result once the commit succeeded — also when the task that
    started the write was cancelled meanwhile (a group commit's senders still hear that
    their messages are stored) — and never for a write that failed."""
    async with db.begin() as conn:
        await conn.execute(sa.text(PROBE_DDL))
    lane = SqlLane(db, "test-lane")
    heard: list[str] = []

    def insert(row_id: str) -> Callable[[Connection], str]:
        def run(c: Connection) -> str:
            c.execute(sa.insert(probe), [{"id": row_id, "name": row_id}])
            return row_id

        return run

    try:
        assert await lane.write(insert("a"), then=heard.append) == "a"
        assert heard == ["a"]
        with pytest.raises(sa.exc.IntegrityError):
            await lane.write(insert("a"), then=heard.append)  # a duplicate key
        assert heard == ["a"]
        if db.dialect.name == "sqlite":
            pending = asyncio.ensure_future(lane.write(insert("b"), then=heard.append))
            await asyncio.sleep(0)  # its commit is on the lane's thread
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
            for _ in range(100):
                if heard == ["a", "b"]:
                    break
                await asyncio.sleep(0.01)
            assert heard == ["a", "b"]
    finally:
        await lane.stop()


async def test_a_write_waits_its_turn_behind_another_process_writer_and_then_stores(
    db: AsyncEngine,
) -> None:
    """With several serving processes, a write that finds another process's lane writing
    (holding the writers' queue beside the database) waits for it on the lane's thread —
    the event loop keeps running — and is stored once the other is done."""
    if db.dialect.name != "sqlite":
        pytest.skip("the writers' queue is SQLite's")
    async with db.begin() as conn:
        await conn.execute(sa.text(PROBE_DDL))
    lane = SqlLane(db, "test-lane")
    assert db.url.database is not None
    other = os.open(f"{db.url.database}-writers.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)  # another process's writer holds the queue
        pending = asyncio.ensure_future(
            lane.write(lambda c: c.execute(sa.insert(probe), [{"id": "q", "name": "排队"}]))
        )
        ticks = 0
        for _ in range(20):
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20 and not pending.done()  # waiting, not holding up the loop
        fcntl.flock(other, fcntl.LOCK_UN)
        await asyncio.wait_for(pending, 10)
        names = await lane.read(lambda c: list(c.execute(sa.select(probe.c.name)).scalars()))
        assert names == ["排队"]
        # the lane let go of the queue: the other process gets it straight away
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(other, fcntl.LOCK_UN)
    finally:
        os.close(other)
        await lane.stop()
