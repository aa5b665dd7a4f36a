"""Persisted metric events: the recorder (bus → monitor_events, batched) and the reads the
reports and the live monitor make."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.monitor.definitions import FIRST_RESPONSE, EventRow
from contactd.routing import events as ev
from contactd.storage.bulk import insert_rows
from contactd.storage.db import SqlLane
from contactd.storage.tables import monitor_events, service_sessions

log = logging.getLogger(__name__)

LOOKBACK_MS = 12 * 3600 * 1000  # how far back state and open contacts are looked for
_BATCH = 500
# each poll re-reads the last ids and the last seconds: rows committed out of id order
# (PostgreSQL sequences, several nodes writing) are not missed
_OVERLAP = 200
_RECENT_MS = 30_000


def row_of(event: BaseModel) -> dict[str, Any] | None:
    """The monitor_events row of a routing event, or None when no metric counts it."""
    match event:
        case ev.ContactEnqueued():
            return _row(event, queue_id=event.queue_id, detail=str(event.priority))
        case ev.OfferCreated():
            return _row(event, queue_id=event.queue_id, agent_id=event.agent_id)
        case ev.OfferAccepted():
            return _row(
                event, queue_id=event.queue_id, agent_id=event.agent_id, value_ms=event.waited_ms
            )
        case ev.OfferDeclined() | ev.OfferExpired():
            return _row(event, queue_id=event.queue_id, agent_id=event.agent_id)
        case ev.OfferRevoked():
            return _row(
                event, queue_id=event.queue_id, agent_id=event.agent_id, detail=event.reason[:64]
            )
        case ev.ContactRequeued():
            return _row(
                event,
                queue_id=event.queue_id,
                agent_id=event.agent_id,
                detail=event.reason[:64],
                previous=event.was,
            )
        case ev.ContactAbandoned():
            return _row(
                event,
                queue_id=event.queue_id,
                value_ms=event.waited_ms,
                detail=event.reason[:64],
                previous=event.was,
            )
        case ev.ContactEnded():
            return _row(
                event,
                queue_id=event.queue_id,
                agent_id=event.agent_id,
                value_ms=event.handle_ms,
                detail=event.reason[:64],
            )
        case ev.ContactOverflowed() | ev.ContactMoved():
            return _row(event, queue_id=event.queue_id, value_ms=event.waited_ms, detail=event.to)
        case ev.WrapUpEnded():
            return _row(event, agent_id=event.agent_id, detail="expired" if event.expired else "")
        case ev.AgentStateChanged():
            return _row(event, agent_id=event.agent_id, detail=event.state, previous=event.previous)
        case _:
            return None


def _row(event: Any, **cols: Any) -> dict[str, Any]:
    return {
        "at": event.at,
        "type": event.type,
        "contact_id": getattr(event, "contact_id", None),
        "queue_id": None,
        "agent_id": None,
        "value_ms": None,
        "detail": None,
        "previous": None,
        **cols,
    }


_GATHER_S = 0.1  # well inside the live view's one second


class EventRecorder:
    """Bus listener: routing events → monitor_events rows, written in batches by one task.
    ``flushed`` callbacks run after every write (the live monitor pushes then)."""

    def __init__(self, db: AsyncEngine) -> None:
        self.db = db
        self.lane = SqlLane(db, "monitor-recorder")
        self._buffer: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.flushed: list[Callable[[], None]] = []

    def on_event(self, event: BaseModel) -> None:
        row = row_of(event)
        if row is not None:
            self._buffer.append(row)
            self._wake.set()

    async def flush(self) -> None:
        async with self._lock:
            while self._buffer:
                batch, self._buffer = self._buffer[:_BATCH], self._buffer[_BATCH:]
                try:
                    await self.lane.write(partial(_insert_events, batch))
                except Exception:
                    self._buffer[:0] = batch  # kept for the next try: nothing is lost
                    raise
        for callback in self.flushed:
            callback()

    async def run(self) -> None:
        """Write batches as they come; the owner calls flush() once more after stopping."""
        while True:
            await self._wake.wait()
            # gather a moment: one transaction (one commit) for a burst of events instead
            # of one per event, and fewer turns at the process's SQLite write lock
            await asyncio.sleep(_GATHER_S)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("writing monitor events failed; retrying")
                await asyncio.sleep(1.0)
                self._wake.set()


def _insert_events(rows: list[dict[str, Any]], conn: Connection) -> None:
    insert_rows(conn, monitor_events, rows)


def _event_row(r: Any) -> EventRow:
    return EventRow(
        id=r.id,
        at=r.at,
        type=r.type,
        queue_id=r.queue_id,
        agent_id=r.agent_id,
        contact_id=r.contact_id,
        value_ms=r.value_ms,
        detail=r.detail,
        previous=r.previous,
    )


class MonitorRepository:
    def __init__(self, db: AsyncEngine) -> None:
        self.db = db

    async def rows(self, start: int, end: int, lookback_ms: int = LOOKBACK_MS) -> list[EventRow]:
        """Rows a computation over [start, end) needs: events from ``start - lookback``,
        each agent's last state before that, and first responses in the range."""
        since = start - lookback_ms
        t = monitor_events
        async with self.db.connect() as conn:
            res = await conn.execute(sa.select(t).where(t.c.at >= since, t.c.at < end))
            rows = [_event_row(r) for r in res]
        rows += await self.last_states_before(since)
        return rows + await self.first_responses(start, end)

    async def rows_after(self, id_floor: int, since: int, recent: int) -> list[EventRow]:
        """Rows from ``since`` with an id above ``id_floor`` or stamped from ``recent`` on
        (a batch committed late, with lower ids than rows already read, is still found)."""
        t = monitor_events
        async with self.db.connect() as conn:
            res = await conn.execute(
                sa.select(t)
                .where(t.c.at >= since, sa.or_(t.c.id > id_floor, t.c.at >= recent))
                .order_by(t.c.id)
            )
            return [_event_row(r) for r in res]

    async def last_states_before(self, at: int) -> list[EventRow]:
        t = monitor_events
        ids = (
            sa.select(sa.func.max(t.c.id))
            .where(t.c.type == "agent.state_changed", t.c.at < at)
            .group_by(t.c.agent_id)
        )
        async with self.db.connect() as conn:
            res = await conn.execute(sa.select(t).where(t.c.id.in_(ids)))
            return [_event_row(r) for r in res]

    async def first_responses(self, start: int, end: int) -> list[EventRow]:
        """A session's first agent reply, as a row: value = reply time − accept time."""
        s = service_sessions
        async with self.db.connect() as conn:
            res = await conn.execute(
                sa.select(
                    s.c.contact_id,
                    s.c.queue_id,
                    s.c.agent_id,
                    s.c.accepted_at,
                    s.c.first_response_at,
                ).where(
                    s.c.first_response_at >= start,
                    s.c.first_response_at < end,
                    s.c.accepted_at.is_not(None),
                )
            )
            return [
                EventRow(
                    at=r.first_response_at,
                    type=FIRST_RESPONSE,
                    queue_id=r.queue_id,
                    agent_id=r.agent_id,
                    contact_id=r.contact_id,
                    value_ms=max(0, r.first_response_at - r.accepted_at),
                )
                for r in res
            ]


class EventCache:
    """The live monitor's copy of recent rows, topped up by id (cheap to poll)."""

    def __init__(self, repo: MonitorRepository) -> None:
        self.repo = repo
        self._rows: dict[int, EventRow] = {}
        self._since = -1
        self._max_id = 0

    async def rows(self, since: int, now: int) -> Sequence[EventRow]:
        if since != self._since:
            # a new day (or first use): start again from what the window needs
            self._rows = {r.id: r for r in await self.repo.last_states_before(since)}
            self._max_id = 0
            self._since = since
        floor = max(0, self._max_id - _OVERLAP)
        for r in await self.repo.rows_after(floor, since, now - _RECENT_MS):
            self._rows[r.id] = r
            self._max_id = max(self._max_id, r.id)
        return list(self._rows.values())
