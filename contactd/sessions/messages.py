"""The message log: every message is stored — with its per-session sequence number — before
anyone is told about it. Writes are group-committed: concurrent senders share one
transaction, which is what lets SQLite keep up with thousands of messages a second. On
SQLite the batch's statements run on the event loop itself, on a connection of the log's
own, and only the ``COMMIT`` (where the disk is waited for: ``fsync``) goes to the log's
thread: a statement on another thread gives up the GIL and must win it back from the busy
event loop, which cost a wait of up to the switch interval per statement. When another
process holds SQLite's write lock the whole batch waits for it on the log's thread instead.
On PostgreSQL the batch is one statement (two when a session's row must be read first) on
the log's own connection, checked against the rows' versions, and falls back to a locked
transaction when another writer got there first (``_Postgres``). One plan of the batch
(``_plan``) serves every path.

Sequence numbers come from ``service_sessions.last_seq`` updated inside the same
transaction, so they are gap-free and identical for every process. A resend with the same
``client_msg_id`` returns the stored message and stores nothing. A message may carry a
``Guard`` (who is posting): it is checked in that transaction against the session row, so
the caller need not read the session fresh before posting."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sqlite3
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contactd import fastjson
from contactd.clock import Clock
from contactd.errors import ContactdError, ErrorCode
from contactd.sessions import repository as repo
from contactd.sessions.models import (
    Attachment,
    Guard,
    Message,
    NewMessage,
    Sender,
    SessionRecord,
    not_found,
)
from contactd.storage.bulk import RowsSql, insert_sql, marks, select_rows, sqlite_rows
from contactd.storage.db import SqlLane, write_transaction
from contactd.storage.tables import service_sessions, session_messages

log = logging.getLogger(__name__)
_BATCH = 256


class Stored(NamedTuple):
    message: Message
    created: bool  # False for a resend: the message stored earlier
    session: SessionRecord  # as read in the storing transaction (before its own update)


Pending = tuple[NewMessage, Guard | None, "asyncio.Future[Stored]"]
Item = tuple[NewMessage, Guard | None]


def message_id(now_ms: int) -> str:
    """``m_``, the time in milliseconds (12 hex digits), 48 random bits: ids sort by the
    time they were stored, so the primary-key index grows at its end. Random ids put every
    message on a random page of that index: one more 4 KB page written per message, and
    SQLite's checkpoints, which stop the log's writer while they copy pages back into the
    database file, took that much longer each time (docs/benchmarks.md, "Live chat →
    Session 7")."""
    return f"m_{now_ms:012x}{secrets.token_hex(6)}"


def message_from_row(row: Mapping[Any, Any]) -> Message:
    return Message(
        id=row["id"],
        session_id=row["session_id"],
        seq=row["seq"],
        client_msg_id=row["client_msg_id"],
        sender=Sender(type=row["sender_type"], id=row["sender_id"], name=row["sender_name"]),
        kind=row["kind"],
        text=row["text"],
        attachment=Attachment.model_validate(row["attachment"]) if row["attachment"] else None,
        order=row["order_card"],
        created_at=row["created_at"],
    )


class _ReplyClock:
    """Response-time bookkeeping: the clock starts at the first unanswered customer message
    and stops at the next agent message."""

    def __init__(
        self, awaiting: int | None, first: int | None, responses: int, total_ms: int
    ) -> None:
        self.awaiting, self.first, self.responses, self.total_ms = (
            awaiting,
            first,
            responses,
            total_ms,
        )

    def observe(self, sender: str, now: int, *, answered: bool) -> None:
        if sender == "customer" and self.awaiting is None:
            self.awaiting = now
        elif sender == "agent" and answered:
            if self.first is None:
                self.first = now
            if self.awaiting is not None:
                self.responses += 1
                self.total_ms += now - self.awaiting
                self.awaiting = None


class MessageLog:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self._queue: asyncio.Queue[Pending] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self.lane = SqlLane(engine, "message-log")
        self._postgres = _Postgres(engine) if engine.dialect.name == "postgresql" else None

    def start(self) -> None:
        self._writer = asyncio.create_task(self._run(), name="message-log-writer")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._writer is None:
            return
        await self._queue.join()
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        self._writer = None
        await self.lane.stop()
        if self._postgres is not None:
            await self._postgres.close()

    async def append(self, msg: NewMessage, guard: Guard | None = None) -> Stored:
        """Store ``msg`` if ``guard`` (checked in the storing transaction) allows it."""
        if self._writer is None:
            raise ContactdError(ErrorCode.unavailable, "the message log is not running")
        fut: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((msg, guard, fut))
        return await fut

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await self._write(batch)
            except Exception as exc:  # the whole batch failed: tell every sender
                log.exception("storing %d messages failed", len(batch))
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(
                            ContactdError(ErrorCode.unavailable, f"message not stored: {exc}")
                        )
            else:
                _resolve(batch, results)  # (done already, as the commit succeeded)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[Pending]) -> list[Stored | ContactdError]:
        now = self.clock.now_ms()
        items = [(m, guard) for m, guard, _ in batch]
        if self._postgres is not None:
            results = await self._postgres.write(items, now)
            _resolve(batch, results)
            return results
        stored: list[Stored | ContactdError] = await self.lane.write(
            lambda conn: _write_batch(conn, items, now),
            then=lambda results: _resolve(batch, results),  # senders go on at once
        )
        return stored

    async def since(self, session_id: str, after_seq: int, limit: int = 500) -> list[Message]:
        async with self.engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        sa.select(session_messages)
                        .where(
                            session_messages.c.session_id == session_id,
                            session_messages.c.seq > after_seq,
                        )
                        .order_by(session_messages.c.seq)
                        .limit(limit)
                    )
                )
                .mappings()
                .all()
            )
        return [message_from_row(r) for r in rows]


class _Postgres:
    """The batch on PostgreSQL in one or two round trips, without a transaction of its own.

    Each session is planned against its row as last seen, with the row's version (``xmin``,
    which every update of the row changes): the row as this log last wrote it (remembered,
    with the version its write returned), or else as one statement reads it. The Python
    plan is made as on SQLite; one statement then updates each session whose row is still
    that version and none of whose messages is stored already (a resend), inserts the
    messages of the sessions it updated — atomically, being one statement — and returns
    their new versions. A session it did not update (changed by another writer since: an
    accept, a transfer, an end, another process's message) is planned once more against a
    fresh read, then, failing that too, through the locked transaction (``_write_batch``);
    all before the next batch: the sequence stays gap-free and in order. A refusal made
    against a remembered row counts only when the row is read again.

    The locked transaction alone takes about eleven round trips (pool ping, BEGIN, the
    statements, each prepared when its ``IN`` lists change length, COMMIT), and each waits
    for a turn of the busy event loop: about 27 ms per message at half load
    (docs/benchmarks.md, "Live chat → Session 8"). Here the statements' texts never
    change (arrays, not ``IN`` lists), so asyncpg prepares each once per connection; the
    connection is the log's own, kept open in autocommit."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._conn: AsyncConnection | None = None
        # session -> (its row as this log last wrote or read it, that row's version)
        self._seen: dict[str, tuple[SessionRecord, str]] = {}

    async def write(self, items: list[Item], now: int) -> list[Stored | ContactdError]:
        sent: set[str] = set()  # ids of messages in a write statement sent
        results: list[Stored | ContactdError] = []
        unsettled = list(range(len(items)))
        try:
            for remembered in (True, False):  # as last seen; then read afresh
                todo = [items[i] for i in unsettled]
                out, left = await self._unlocked(todo, now, sent, remembered=remembered)
                if not results:
                    results = out
                else:
                    for i, result in zip(unsettled, out, strict=True):
                        results[i] = result
                unsettled = [unsettled[j] for j in left]
                if not unsettled:
                    return results
        except (sa_exc.DBAPIError, OSError):
            # a failed statement stored nothing, unless the connection was lost after it
            # committed: the transaction below then finds those messages stored, by the
            # ids they were given here, and they count as new (to be announced)
            log.warning("storing %d messages: retrying in a transaction", len(items), exc_info=True)
            if not results:
                results = [ContactdError(ErrorCode.unavailable, "lost")] * len(items)
        retry = [items[i] for i in unsettled]
        for session_id in {m.session_id for m, _ in retry}:
            self._seen.pop(session_id, None)
        async with write_transaction(self.engine) as conn:
            again = await conn.run_sync(lambda c: _write_batch(c, retry, now))
        for i, result in zip(unsettled, again, strict=True):
            if isinstance(result, Stored) and result.message.id in sent:
                result = result._replace(created=True)
            results[i] = result
        return results

    async def _unlocked(
        self, items: list[Item], now: int, sent: set[str], *, remembered: bool
    ) -> tuple[list[Stored | ContactdError], list[int]]:
        """Plan and store ``items``; returns each one's outcome and the indexes of those
        to try again (their session changed, or was refused as remembered)."""
        conn = await self._connection()
        try:
            ids = {m.session_id for m, _ in items}
            seen = {sid: self._seen[sid] for sid in ids if sid in self._seen} if remembered else {}
            recalled = set(seen)
            if len(seen) < len(ids):
                rows = (
                    await conn.execute(_PG_SESSIONS, {"ids": [i for i in ids if i not in seen]})
                ).mappings()
                for row in rows:
                    data = dict(row)
                    version = data.pop(_VERSION)
                    seen[row["id"]] = self._seen[row["id"]] = (repo.record_from_row(data), version)
            plan = _plan(items, {sid: record for sid, (record, _) in seen.items()}, {}, now)
            written: dict[str, str] = {}
            if plan.inserts:
                sent.update(row["id"] for row in plan.inserts)
                params = _pg_params(plan, {sid: version for sid, (_, version) in seen.items()})
                written = {sid: v for sid, v in (await conn.execute(_PG_WRITE, params)).all()}
            await conn.commit()  # (autocommit: ends SQLAlchemy's own transaction state only)
        except BaseException:
            await self.close(broken=True)
            raise
        again = self._remember(items, plan, seen, written, recalled)
        return _outcomes(plan.out), [i for i, (m, _) in enumerate(items) if m.session_id in again]

    def _remember(
        self,
        items: list[Item],
        plan: _Plan,
        seen: dict[str, tuple[SessionRecord, str]],
        written: dict[str, str],
        recalled: set[str],
    ) -> set[str]:
        """Keep the sessions written as they are now; returns those to try again: not
        written, or refused against a remembered row (``recalled``) nothing confirmed."""
        again = {u["u_id"] for u in plan.updates} - written.keys()
        again |= {
            m.session_id
            for (m, _), result in zip(items, plan.out, strict=True)
            if isinstance(result, ContactdError)
            and m.session_id in recalled
            and m.session_id not in written
        }
        for update in plan.updates:
            sid = update["u_id"]
            if sid in written:
                after = seen[sid][0].model_copy(
                    update={col: update[key] for key, col in _UPDATED.items()}
                )
                self._seen[sid] = (after, written[sid])
        for sid in again:
            self._seen.pop(sid, None)
        for sid, (record, _) in seen.items():
            if record.state == "ended":
                self._seen.pop(sid, None)
        if len(self._seen) > _SEEN_MOST:
            self._seen.clear()
        return again

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self.engine.connect()
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    async def close(self, *, broken: bool = False) -> None:
        """Give the connection back (``broken``: discard it)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            if broken:
                await conn.invalidate()
            await conn.close()


def _resolve(batch: list[Pending], results: list[Stored | ContactdError]) -> None:
    """Each sender gets its message's outcome (those still waiting)."""
    for (_, _, fut), result in zip(batch, results, strict=True):
        if not fut.done():
            if isinstance(result, ContactdError):
                fut.set_exception(result)
            else:
                fut.set_result(result)


class _Plan(NamedTuple):
    out: list[Any]  # per item: Stored, ContactdError, or the index of the same message
    updates: list[dict[str, Any]]  # per session written: its new bookkeeping
    inserts: list[dict[str, Any]]  # the new messages' rows


def _plan(
    items: list[Item],
    records: dict[str, SessionRecord],
    known: dict[tuple[str, str], Message],
    now: int,
) -> _Plan:
    """What storing ``items`` writes, given the sessions as read (``records``) and the
    messages they resend (``known``): guards checked, sequence numbers given."""
    msgs = [m for m, _ in items]
    out: list[Any] = [None] * len(items)
    fresh: dict[str, list[int]] = defaultdict(list)
    first_of: dict[tuple[str, str], int] = {}
    for i, (m, guard) in enumerate(items):
        record = records.get(m.session_id)
        refused = not_found(m.session_id) if record is None else None
        if record is not None and guard is not None:
            refused = guard.check(record)
        key = (m.session_id, m.client_msg_id)
        if refused is not None:
            out[i] = refused
        elif key in known:
            assert record is not None
            out[i] = Stored(known[key], False, record)
        elif key in first_of:
            out[i] = first_of[key]  # the same message twice in one batch
        else:
            first_of[key] = i
            fresh[m.session_id].append(i)
    updates, inserts = _rows(msgs, records, fresh, out, now)
    return _Plan(out, updates, inserts)


def _outcomes(out: list[Any]) -> list[Stored | ContactdError]:
    """Each item's outcome once its plan is stored (a repeat gets its first's message)."""
    for i, r in enumerate(out):
        if isinstance(r, int):
            first = out[r]
            out[i] = first._replace(created=False) if isinstance(first, Stored) else first
    return [r if r is not None else ContactdError(ErrorCode.unavailable, "lost") for r in out]


def _write_batch(conn: Connection, items: list[Item], now: int) -> list[Stored | ContactdError]:
    """One transaction for the whole batch, set-based: one read of the sessions
    concerned (locked on PostgreSQL), one look-up for resends, one batched update of the
    sessions, one batched insert."""
    msgs = [m for m, _ in items]
    plan = _plan(items, _sessions(conn, {m.session_id for m in msgs}), _resends(conn, msgs), now)
    _execute(conn, plan.updates, plan.inserts)
    return _outcomes(plan.out)


def _sessions(conn: Connection, ids: set[str]) -> dict[str, SessionRecord]:
    if _plain_sql(conn):
        found = select_rows(conn, service_sessions, f"id IN ({marks(len(ids))})", [*ids])
        return {r["id"]: repo.record_from_row(r) for r in found}
    q = sa.select(service_sessions).where(service_sessions.c.id.in_(list(ids)))
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    rows = conn.execute(q).mappings().all()
    return {r["id"]: repo.record_from_row(r) for r in rows}


def _resends(conn: Connection, msgs: list[NewMessage]) -> dict[tuple[str, str], Message]:
    """The stored messages these are resends of. Two ``IN`` lists, not one list of
    (session, client_msg_id) pairs: SQLite answers a row-value ``IN`` by scanning the
    whole table; these two are one search of the unique index per pair (the few rows
    that match one list each but no pair are dropped here)."""
    pairs = {(m.session_id, m.client_msg_id) for m in msgs}
    sessions, ids = list({p[0] for p in pairs}), list({p[1] for p in pairs})
    rows: Sequence[Mapping[Any, Any]]
    if _plain_sql(conn):
        where = f"session_id IN ({marks(len(sessions))}) AND client_msg_id IN ({marks(len(ids))})"
        rows = select_rows(conn, session_messages, where, [*sessions, *ids])
    else:
        t = session_messages
        q = sa.select(t).where(t.c.session_id.in_(sessions), t.c.client_msg_id.in_(ids))
        rows = conn.execute(q).mappings().all()
    found: dict[tuple[str, str], Message] = {}
    for r in rows:
        key = (r["session_id"], r["client_msg_id"])
        if key in pairs:
            found[key] = message_from_row(r)
    return found


def _rows(
    msgs: list[NewMessage],
    records: dict[str, SessionRecord],
    fresh: dict[str, list[int]],
    out: list[Any],
    now: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The sessions' updates and the messages' rows for the ``fresh`` items (their
    ``out`` set to what they will be once stored)."""
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for session_id, idxs in fresh.items():
        record = records[session_id]
        reply = _ReplyClock(
            record.awaiting_reply_since,
            record.first_response_at,
            record.responses,
            record.response_total_ms,
        )
        for n, i in enumerate(idxs):
            m = msgs[i]
            # (pydantic's own validation is quicker than model_construct's Python loop)
            stored = Message(
                id=message_id(now),
                session_id=session_id,
                seq=record.last_seq + 1 + n,
                client_msg_id=m.client_msg_id,
                sender=m.sender,
                kind=m.kind,
                text=m.text,
                attachment=m.attachment,
                order=m.order,
                created_at=now,
            )
            out[i] = Stored(stored, True, record)
            reply.observe(m.sender.type, now, answered=record.accepted_at is not None)
            inserts.append(
                {
                    "id": stored.id,
                    "session_id": session_id,
                    "seq": stored.seq,
                    "client_msg_id": m.client_msg_id,
                    "sender_type": m.sender.type,
                    "sender_id": m.sender.id,
                    "sender_name": m.sender.name,
                    "kind": m.kind,
                    "text": m.text,
                    "attachment": m.attachment.model_dump() if m.attachment else None,
                    "order_card": m.order,
                    "created_at": now,
                }
            )
        updates.append(
            {
                "u_id": session_id,
                "u_last_seq": record.last_seq + len(idxs),
                "u_awaiting": reply.awaiting,
                "u_first": reply.first,
                "u_responses": reply.responses,
                "u_total": reply.total_ms,
            }
        )
    return updates, inserts


def _execute(
    conn: Connection, updates: list[dict[str, Any]], inserts: list[dict[str, Any]]
) -> None:
    if _plain_sql(conn):
        sqlite_rows(conn, _UPDATE_SQL, updates)
        sqlite_rows(conn, _INSERT_SQL, inserts)
        return
    if updates:
        t = service_sessions
        conn.execute(
            sa.update(t)
            .where(t.c.id == sa.bindparam("u_id"))
            .values(**{col: sa.bindparam(key) for key, col in _UPDATED.items()}),
            updates,
        )
    if inserts:
        conn.execute(sa.insert(session_messages), inserts)


def _plain_sql(conn: Connection) -> bool:
    """SQLite new enough for ``UPDATE … FROM (VALUES …)`` (3.33): the batch's statements
    are written as plain SQL and run through the driver (see ``storage/bulk.py``)."""
    return conn.dialect.name == "sqlite" and sqlite3.sqlite_version_info >= (3, 33)


# SQLite: each statement the driver steps gives the GIL up and must win it back from the
# busy event loop (up to the switch interval each time), so an executemany of n rows
# costs n hand-offs. The batch's update and insert are each one statement with many rows
# (a few for large batches), written as plain SQL: compiling them with SQLAlchemy cost
# more than it saved. Values go through the columns' own bind processors (JSON), so
# the rows are stored exactly as SQLAlchemy stores them.
_UPDATED = {  # parameter key -> service_sessions column
    "u_last_seq": "last_seq",
    "u_awaiting": "awaiting_reply_since",
    "u_first": "first_response_at",
    "u_responses": "responses",
    "u_total": "response_total_ms",
}


def _update_sql() -> RowsSql:
    sets = ", ".join(f"{col} = v.column{n}" for n, col in enumerate(_UPDATED.values(), 2))
    return RowsSql(
        f"UPDATE service_sessions SET {sets} FROM (VALUES ",
        ") AS v WHERE service_sessions.id = v.column1",
        ("u_id", *_UPDATED),
        (service_sessions.c.id, *(service_sessions.c[col] for col in _UPDATED.values())),
    )


_UPDATE_SQL = _update_sql()
_INSERT_SQL = insert_sql(session_messages)


# PostgreSQL (``_Postgres``)
_VERSION = "row_version"
_SEEN_MOST = 20_000  # sessions remembered (those being written to); forgotten all at once beyond
_PG_SESSIONS = sa.select(
    service_sessions, sa.cast(sa.literal_column("service_sessions.xmin"), sa.Text).label(_VERSION)
).where(service_sessions.c.id == sa.any_(sa.bindparam("ids", type_=sa.ARRAY(sa.String))))


def _pg_array_type(column: sa.Column[Any]) -> str:
    """The SQL type of the array a column's values are sent in (JSON as text)."""
    if isinstance(column.type, sa.JSON):
        return "text"
    if isinstance(column.type, sa.BigInteger):
        return "bigint"
    return "int" if isinstance(column.type, sa.Integer) else "text"


# session_messages column -> its array's SQL type; the JSON columns, cast back on insert
_PG_MESSAGE_TYPES = {c.name: _pg_array_type(c) for c in session_messages.c}
_PG_JSON = frozenset(c.name for c in session_messages.c if isinstance(c.type, sa.JSON))
_PG_SESSION_TYPES = {  # parameter key -> its array's SQL type
    "u_id": "text",
    "u_version": "text",
    **{key: "bigint" for key in _UPDATED},
}


def _pg_write() -> sa.TextClause:
    def unnest(types: dict[str, str], prefix: str) -> str:
        arrays = ", ".join(f"CAST(:{prefix}{key} AS {sql}[])" for key, sql in types.items())
        return f"unnest({arrays}) AS x({', '.join(types)})"

    sets = ", ".join(f"{col} = v.{key}" for key, col in _UPDATED.items())
    columns = ", ".join(_PG_MESSAGE_TYPES)
    values = ", ".join(
        f"CAST(r.{c} AS jsonb)" if c in _PG_JSON else f"r.{c}" for c in _PG_MESSAGE_TYPES
    )
    # The resend check is a look-up per message, a lateral sub-query with a limit: always
    # probes of the unique index, never turned into a join or a hashed sub-plan, which
    # read all of the table per batch when the planner's statistics still thought the
    # fast-growing table small.
    return sa.text(
        f"WITH v AS (SELECT * FROM {unnest(_PG_SESSION_TYPES, 'v_')}), "
        f"r AS (SELECT x.*, f.found IS NOT NULL AS resent FROM {unnest(_PG_MESSAGE_TYPES, 'r_')} "
        "LEFT JOIN LATERAL (SELECT 1 AS found FROM session_messages AS m "
        "WHERE m.session_id = x.session_id AND m.client_msg_id = x.client_msg_id LIMIT 1) "
        "AS f ON true), "
        f"u AS (UPDATE service_sessions AS s SET {sets} FROM v "
        "WHERE s.id = v.u_id AND CAST(s.xmin AS text) = v.u_version "
        "AND NOT EXISTS (SELECT 1 FROM r WHERE r.session_id = v.u_id AND r.resent) "
        "RETURNING s.id, CAST(s.xmin AS text) AS version), "
        f"stored AS (INSERT INTO session_messages ({columns}) SELECT {values} FROM r "
        "WHERE r.session_id IN (SELECT id FROM u) RETURNING 1) "
        "SELECT id, version FROM u"
    )


def _pg_params(plan: _Plan, versions: dict[str, str]) -> dict[str, list[Any]]:
    params: dict[str, list[Any]] = {f"v_{key}": [] for key in _PG_SESSION_TYPES}
    for update in plan.updates:
        params["v_u_version"].append(versions[update["u_id"]])
        for key in _PG_SESSION_TYPES:
            if key != "u_version":
                params[f"v_{key}"].append(update[key])
    for column in _PG_MESSAGE_TYPES:
        values = [row[column] for row in plan.inserts]
        if column in _PG_JSON:
            values = [None if v is None else fastjson.dumps(v) for v in values]
        params[f"r_{column}"] = values
    return params


_PG_WRITE = _pg_write()
