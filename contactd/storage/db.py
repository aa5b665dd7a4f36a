"""The SQL database: open an engine, bring the schema to the newest revision, ping it.

SQLite (``sqlite+aiosqlite:///path``) is the embedded default; PostgreSQL
(``postgresql+asyncpg://user:pw@host/db``) uses the same tables and migrations.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sys
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from contactd import fastjson

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000  # other processes' writers
# pg_advisory_xact_lock key held while migrating, so processes starting together take turns
MIGRATION_LOCK_KEY = 0x636F6E74  # "cont"
# execution option: open the SQLite transaction with BEGIN IMMEDIATE (take the write lock now)
SQLITE_IMMEDIATE = "contactd_sqlite_immediate"
# JSON columns are written and read with orjson by every engine made here
_JSON: dict[str, Any] = {"json_serializer": fastjson.dumps, "json_deserializer": fastjson.loads}


async def open_database(url: str, *, connect_args: Mapping[str, Any] | None = None) -> AsyncEngine:
    """Create the engine. ``connect_args`` go to the driver (e.g. asyncpg ``server_settings``)."""
    parsed = make_url(url)
    args = dict(connect_args or {})
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(parsed, connect_args=args, pool_pre_ping=True, **_JSON)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        await asyncio.to_thread(Path(database).parent.mkdir, parents=True, exist_ok=True)
    engine = create_async_engine(parsed, connect_args=args, **_JSON)
    _configure_sqlite(engine.sync_engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys and a busy timeout on every connection; real BEGIN/COMMIT.

    The sqlite3 module opens transactions lazily (and never for DDL), so we switch its own
    handling off and emit BEGIN ourselves: migrations then run in one transaction.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(SQLITE_IMMEDIATE, False)
        # straight to the driver: every write transaction begins here, and a statement
        # through SQLAlchemy's execution machinery costs more than the BEGIN itself
        driver_execute(conn, "BEGIN IMMEDIATE" if immediate else "BEGIN")


def driver_execute(conn: Connection, statement: str, params: Sequence[Any] = ()) -> None:
    """``statement`` straight on the driver's connection under ``conn`` (inside its
    transaction), without SQLAlchemy's execution machinery; the driver's errors are raised
    as SQLAlchemy raises them (``DBAPIError`` subclasses: ``OperationalError`` for
    SQLite's "busy")."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        cursor.execute(statement, params)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise sa_exc.DBAPIError.instance(
            statement, params, exc, conn.dialect.loaded_dbapi.Error
        ) from exc
    finally:
        cursor.close()


def alembic_config(connection: Connection) -> Config:
    """An alembic Config for our package's migrations, bound to an open connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
    command.upgrade(alembic_config(connection), "head")


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that is going to write; use it instead of ``engine.begin()``.

    On SQLite it takes the write lock at BEGIN (``BEGIN IMMEDIATE``), so a concurrent
    writer waits up to the busy timeout instead of failing half-way with "database is
    locked". On PostgreSQL it is a plain transaction.
    """
    if engine.dialect.name != "sqlite":
        async with engine.connect() as conn, conn.begin():
            yield conn
        return
    # SQLite has one writer at a time: this process's writers queue here, in order, instead
    # of spinning in SQLite's busy handler (which under load gave up with "database is
    # locked" and lost work); other processes are waited for by the busy timeout.
    async with writer_lock(engine), engine.connect() as conn:
        await conn.execution_options(**{SQLITE_IMMEDIATE: True})
        async with conn.begin():
            yield conn


_WRITER_LOCKS: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


def writer_lock(engine: AsyncEngine) -> asyncio.Lock:
    """This process's queue of SQLite writers (see ``write_transaction``)."""
    lock = _WRITER_LOCKS.get(engine.sync_engine)
    if lock is None:
        lock = _WRITER_LOCKS[engine.sync_engine] = asyncio.Lock()
    return lock


def sqlite_file_engine(engine: AsyncEngine) -> Engine | None:
    """A blocking engine on the same SQLite file as ``engine``, set up alike (WAL, busy
    timeout, ``BEGIN IMMEDIATE`` on request), for code that runs a whole transaction on a
    thread of its own in one hop; None when ``engine`` is not SQLite on a file. Use each
    of its connections on one thread only, inside ``writer_lock(engine)``."""
    url = engine.url
    database = url.database or ""
    if (
        url.get_backend_name() != "sqlite"
        or database in ("", ":memory:")
        or database.startswith("file:")
    ):
        return None
    sync = create_engine(url.set(drivername="sqlite"), **_JSON)
    _configure_sqlite(sync)
    return sync


T = TypeVar("T")


class WritersQueue:
    """The SQLite writers of every contactd process on this host, queued on an exclusive
    ``flock`` of a file beside the database (``<db>-writers.lock``).

    SQLite itself makes a writer that finds the database locked sleep and retry: 1, 2, 5,
    10, 25... ms, so with several serving processes (``contactd serve --workers``) writing
    often, an unlucky transaction waited tens of milliseconds for a lock that was free
    again after half of one. A lane's transaction takes this lock first, without waiting
    when it is free; when it is not, its thread blocks on it and the kernel wakes it the
    moment the holder lets go. Writers that do not use a lane (admin, tickets) still meet
    SQLite's own lock and its busy timeout, as before. One per lane: ``flock`` locks
    belong to an open file, so two lanes of a process queue on each other too (they are
    already serialised by ``writer_lock``)."""

    def __init__(self, database: str) -> None:
        self.path = f"{database}-writers.lock"
        self._fd: int | None = None

    def _file(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd

    def take_if_free(self) -> bool:
        try:
            fcntl.flock(self._file(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def take(self) -> None:
        """Wait for the lock (blocks: on a lane's thread only)."""
        fcntl.flock(self._file(), fcntl.LOCK_EX)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# A lane's thread gives up the GIL in SQLite and must take it back from a busy event loop,
# which by default lets it wait up to 5 ms each time (sys.getswitchinterval); at 1 ms it
# waits at most 1 ms (the interval only matters while a thread waits for the GIL).
_SWITCH_INTERVAL_S = 0.001


class SqlLane:
    """Whole transactions — a blocking function of a SQLAlchemy ``Connection`` — without
    aiosqlite's hand-off between threads per statement, cursor and BEGIN/COMMIT (each of
    which also makes the event loop wait for the GIL, or the thread wait for the loop).

    On SQLite on a file the lane has a blocking engine of its own (``sqlite_file_engine``)
    and a thread. A **write** runs its statements right on the event loop — they take
    microseconds — and only its ``COMMIT`` (the wait for the disk) on the thread: one
    hand-off per transaction. It queues behind this process's other writers
    (``writer_lock``) and takes SQLite's write lock at ``BEGIN IMMEDIATE`` without
    waiting; when another process holds it, the whole transaction goes to the thread and
    waits there (the busy timeout), never on the loop. A **read** runs on the thread.
    Elsewhere (PostgreSQL, SQLite in memory) both are the async engine's ``run_sync``.

    The thread starts on first use; ``stop`` closes it (a stopped lane starts again when
    used)."""

    def __init__(self, engine: AsyncEngine, name: str) -> None:
        self.engine = engine
        self.name = name
        self._sync: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._started = False
        # the loop's own connections, kept open, with a busy timeout of 0 (the loop never
        # waits for another process): one for writes, one for look-ups
        self._writer: Connection | None = None
        self._reader: Connection | None = None
        self._queue: WritersQueue | None = None

    def _lane(self) -> tuple[Engine, ThreadPoolExecutor] | None:
        if not self._started:
            self._started = True
            self._sync = sqlite_file_engine(self.engine)
            if self._sync is not None:
                self._queue = WritersQueue(self._sync.url.database or "")
                self._thread = ThreadPoolExecutor(1, thread_name_prefix=self.name)
                if sys.getswitchinterval() > _SWITCH_INTERVAL_S:
                    sys.setswitchinterval(_SWITCH_INTERVAL_S)
        if self._sync is None or self._thread is None:
            return None
        return self._sync, self._thread

    async def write(
        self, fn: Callable[[Connection], T], then: Callable[[T], object] | None = None
    ) -> T:
        """``fn`` in a write transaction, committed (to disk) when this returns. ``then``
        (optional) gets ``fn``'s result on the event loop as soon as the commit is known
        to have succeeded, a turn of the loop before this returns: a group commit
        resolves its waiters there (a busy loop's turn is milliseconds)."""
        lane = self._lane()
        if lane is None:
            async with write_transaction(self.engine) as conn:
                done = await conn.run_sync(fn)
            if then is not None:
                then(done)
            return done
        sync, thread = lane
        queue = self._queue
        assert queue is not None
        loop = asyncio.get_running_loop()
        async with writer_lock(self.engine):
            if not queue.take_if_free():  # another process is writing: wait on the thread
                return await loop.run_in_executor(thread, _write_waiting, sync, fn, queue)
            own = self._writer = self._writer or _no_wait(sync, immediate=True)
            try:
                own.begin()
                result = fn(own)
            except sa_exc.OperationalError as exc:
                self._writer = _rolled_back(own)
                queue.release()
                if not is_busy(exc):
                    raise
            except BaseException:
                self._writer = _rolled_back(own)
                queue.release()
                raise
            else:
                committing = thread.submit(_commit, own, queue)
                try:  # (not shielded: one turn of the busy loop less before the result)
                    await _outcome(committing, loop, None if then is None else lambda: then(result))
                except asyncio.CancelledError:
                    # the commit goes on on the thread: this connection is its until then,
                    # and the thread gives it back when done
                    self._writer = None
                    committing.add_done_callback(lambda _: own.close())
                    raise
                except BaseException:
                    self._writer = _rolled_back(own)
                    raise
                return result
            # a writer that is not a lane's holds SQLite's lock: wait for it on the thread
            return await loop.run_in_executor(thread, _write_waiting, sync, fn, queue)

    async def lookup(self, fn: Callable[[Connection], T]) -> T:
        """``fn``, a read by key that takes microseconds (an index, a few rows), right on
        the event loop: no hand-off to the thread and back, which costs more than the read
        (every call and chat looks its customer up). SQLite in WAL mode lets a reader
        through while others write; in the rare case it answers "busy" (a checkpoint being
        recovered) the read goes to the thread instead, never waiting on the loop. Anything
        that may scan (a search) goes through ``read``."""
        lane = self._lane()
        if lane is None:
            return await self.read(fn)
        sync, thread = lane
        conn = self._reader = self._reader or _no_wait(sync, immediate=False)
        try:
            return fn(conn)
        except sa_exc.OperationalError as exc:
            if not is_busy(exc):
                raise
        finally:
            self._reader = _rolled_back(conn)
        return await asyncio.get_running_loop().run_in_executor(thread, _read, sync, fn)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """``fn`` in a read transaction (rolled back), on the lane's thread."""
        lane = self._lane()
        if lane is None:
            async with self.engine.connect() as conn:
                return await conn.run_sync(fn)
        sync, thread = lane
        return await asyncio.get_running_loop().run_in_executor(thread, _read, sync, fn)

    async def stop(self) -> None:
        thread, sync, queue = self._thread, self._sync, self._queue
        conns = [c for c in (self._writer, self._reader) if c is not None]
        self._thread = self._sync = self._writer = self._reader = self._queue = None
        self._started = False
        if thread is not None and sync is not None:
            for conn in conns:
                await asyncio.get_running_loop().run_in_executor(thread, conn.close)
            await asyncio.get_running_loop().run_in_executor(thread, sync.dispose)
            thread.shutdown()
        if queue is not None:
            queue.close()


def is_busy(exc: BaseException) -> bool:
    """SQLite's "database is locked": another connection holds the write lock."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlite_errorname", "") == "SQLITE_BUSY"


def _no_wait(sync: Engine, immediate: bool) -> Connection:
    """A connection for the event loop: SQLite answers "busy" at once instead of waiting
    for another process. ``immediate``: its transactions take the write lock at BEGIN."""
    conn = sync.connect()
    if immediate:
        conn = conn.execution_options(**{SQLITE_IMMEDIATE: True})
    raw = conn.connection.dbapi_connection
    assert raw is not None
    raw.execute("PRAGMA busy_timeout=0")
    return conn


def _rolled_back(conn: Connection) -> Connection | None:
    """``conn`` with nothing open, for the next use; None (closed) when it is broken."""
    try:
        if conn.in_transaction():
            conn.rollback()
    except Exception:
        conn.invalidate()
        conn.close()
        return None
    if conn.invalidated or conn.closed:
        conn.close()
        return None
    return conn


def _outcome(
    work: Future[T], loop: asyncio.AbstractEventLoop, succeeded: Callable[[], object] | None
) -> asyncio.Future[T]:
    """``work``'s outcome on the loop (``succeeded`` called there first when it succeeded).
    Unlike ``asyncio.wrap_future``, cancelling the waiter leaves ``work`` alone: a commit
    once submitted always runs."""
    waiter: asyncio.Future[T] = loop.create_future()

    def settle(done: Future[T]) -> None:
        error = done.exception()
        if error is None and succeeded is not None:
            try:
                succeeded()
            except Exception:  # the caller's; the write itself stands
                log.exception("a committed write's follow-up failed")
        if waiter.cancelled():
            return
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(done.result())

    work.add_done_callback(lambda done: loop.call_soon_threadsafe(settle, done))
    return waiter


def _commit(conn: Connection, queue: WritersQueue) -> None:
    try:
        conn.commit()
    finally:
        queue.release()


def _write_waiting(sync: Engine, fn: Callable[[Connection], T], queue: WritersQueue) -> T:
    """The whole transaction on the lane's thread, waiting for the writers' queue, then for
    SQLite's write lock (held by a writer that is not a lane's: the busy timeout)."""
    queue.take()
    try:
        with sync.connect() as conn, conn.execution_options(**{SQLITE_IMMEDIATE: True}).begin():
            return fn(conn)
    finally:
        queue.release()


def _read(sync: Engine, fn: Callable[[Connection], T]) -> T:
    with sync.connect() as conn:
        return fn(conn)


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the schema to the newest revision, in one transaction; a no-op when it is
    already there. Processes migrating at the same time wait for each other."""
    async with write_transaction(engine) as conn:
        await conn.run_sync(_upgrade)


async def ping(engine: AsyncEngine, timeout_s: float = 2.0) -> bool:
    """True when the database answers ``SELECT 1`` within ``timeout_s``."""
    try:
        async with asyncio.timeout(timeout_s), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # any failure at all means "not ready"
        return False
    return True
