"""Service sessions: numbers, lifecycle, messages, rating, search. Publishes session events."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any, Required, TypedDict, Unpack
from zoneinfo import ZoneInfo

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.bus import Bus
from contactd.clock import Clock
from contactd.errors import ContactdError, ErrorCode
from contactd.sessions import repository as repo
from contactd.sessions.events import CustomerNotice, MessageCreated, SessionChanged
from contactd.sessions.messages import MessageLog
from contactd.sessions.models import (
    Guard,
    Message,
    NewMessage,
    Sender,
    SessionDetail,
    SessionRecord,
    SessionState,
    metrics_of,
)
from contactd.settings import Settings
from contactd.storage.autopipe import auto_pipeline
from contactd.storage.db import write_transaction
from contactd.storage.keyspace import SiteKeys

_NUMBER_TTL_S = 3 * 86400
_RECENT_MAX = 5_000  # sessions whose last-seen record this process keeps (~4 KB each)
_RATE_MEMO_MS = 1000


class NewSession(TypedDict, total=False):
    """What a new session is opened with (``SessionService.open`` / ``new_values``)."""

    channel: Required[str]
    entry_point: Required[str]
    queue_id: Required[str]
    visitor_id: Required[str | None]
    customer_id: str | None
    customer_name: str | None
    customer_phone: str | None
    order_no: str | None
    meta: dict[str, Any] | None
    state: SessionState


def service_number(day: str, n: int) -> str:
    """``S20261123-000042``: the day's ``n``-th service number."""
    return f"S{day}-{n:06d}"


class SessionService:
    def __init__(
        self,
        engine: AsyncEngine,
        redis: Redis,
        keys: SiteKeys,
        settings: Settings,
        clock: Clock,
        bus: Bus,
        log: MessageLog,
    ) -> None:
        self.engine = engine
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.clock = clock
        self.bus = bus
        self.log = log
        self._tz = ZoneInfo(settings.timezone)
        # today's (start ms, end ms, key tuple) for number_counter: one date conversion a day
        self._today: tuple[int, int, tuple[str, str, int]] = (0, 0, ("", "", 0))
        # the last record this process saw of each session it served lately: read, changed
        # or stored a message for (possibly stale: see ``recent``)
        self._recent: OrderedDict[str, SessionRecord] = OrderedDict()
        self._rates: dict[str, tuple[int, float | None]] = {}  # queue → (measured at, per s)
        self._rates_running: dict[str, asyncio.Future[float | None]] = {}

    def _remember(self, record: SessionRecord) -> SessionRecord:
        self._recent[record.id] = record
        self._recent.move_to_end(record.id)
        if len(self._recent) > _RECENT_MAX:
            self._recent.popitem(last=False)
        return record

    async def recent(self, session_id: str) -> SessionRecord:
        """The session as this process last saw it, without a database read when it can.

        It may be stale when another process changed the session since. Use it only for
        checks that are repeated where it matters (the message log re-checks a ``Guard`` in
        its transaction) and for fields fixed at opening (visitor, customer); when a check
        fails on it, read the session fresh (``get``) before refusing."""
        record = self._recent.get(session_id)
        return record if record is not None else await self.get(session_id)

    async def next_number(self) -> str:
        """``S20261123-000042``: unique across processes (a Redis counter per day), sortable,
        easy to read out on the phone."""
        return (await self.next_numbers(1))[0]

    async def next_numbers(self, n: int) -> list[str]:
        """``n`` consecutive service numbers in one round trip (a batch of new sessions)."""
        day, key, ttl_s = self.number_counter()
        # MULTI/EXEC inside one caller's run of commands: atomic, and it shares the round
        # trip with whatever else is on its way to Redis
        *_, (last, _) = await auto_pipeline(self.redis).many(
            [("MULTI",), ("INCRBY", key, n), ("EXPIRE", key, ttl_s), ("EXEC",)]
        )
        return [service_number(day, i) for i in range(int(last) - n + 1, int(last) + 1)]

    def number_counter(self) -> tuple[str, str, int]:
        """Today's day (``YYYYMMDD``), its service-number counter's key and that key's TTL
        in s: for a Redis script that takes a number in the same step as other work (the
        phone channel's claim); format what it took with ``service_number``."""
        now = self.clock.now_ms()
        start, end, counter = self._today
        if start <= now < end:
            return counter
        local = datetime.fromtimestamp(now / 1000, self._tz)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        day = local.strftime("%Y%m%d")
        counter = (day, self.keys.service_numbers(day), _NUMBER_TTL_S)
        # (aware arithmetic is wall-clock: a day with a clock change lasts 23 or 25 hours)
        following = midnight + timedelta(days=1)
        self._today = (int(midnight.timestamp() * 1000), int(following.timestamp() * 1000), counter)
        return counter

    async def open(self, **fields: Unpack[NewSession]) -> SessionRecord:
        values = await self.new_values(**fields)
        async with write_transaction(self.engine) as conn:
            await repo.insert(conn, values)
            record = await repo.get(conn, values["id"])
        assert record is not None
        return self._remember(record)

    async def new_values(self, **fields: Unpack[NewSession]) -> dict[str, Any]:
        """The row of a new session, with its service number (not yet stored)."""
        return self.row(await self.next_number(), **fields)

    def row(self, sid: str, **fields: Unpack[NewSession]) -> dict[str, Any]:
        """The row of a new session numbered ``sid`` (``open`` stores one; the phone
        channel numbers and stores many at once)."""
        now = self.clock.now_ms()
        state = fields.get("state", "queued")
        return {
            "id": sid,
            "contact_id": sid,
            "channel": fields["channel"],
            "entry_point": fields["entry_point"],
            "queue_id": fields["queue_id"],
            "state": state,
            "visitor_id": fields["visitor_id"],
            "customer_id": fields.get("customer_id"),
            "customer_name": fields.get("customer_name"),
            "customer_phone": fields.get("customer_phone"),
            "order_no": fields.get("order_no"),
            "agent_id": None,
            "agent_name": None,
            "agents": [],
            "created_at": now,
            "queued_at": now if state == "queued" else None,
            "last_seq": 0,
            "transfers": 0,
            "responses": 0,
            "response_total_ms": 0,
            "meta": fields.get("meta"),
        }

    async def discard(self, session_id: str) -> None:
        """Remove a session that never entered a queue (refused at the cap)."""
        self._recent.pop(session_id, None)
        async with write_transaction(self.engine) as conn:
            await repo.delete(conn, session_id)

    async def get(self, session_id: str) -> SessionRecord:
        async with self.engine.connect() as conn:
            record = await repo.get(conn, session_id)
        if record is None:
            raise ContactdError(ErrorCode.not_found, f"no session {session_id}")
        return self._remember(record)

    async def open_for_visitor(self, visitor_id: str) -> SessionRecord | None:
        async with self.engine.connect() as conn:
            return await repo.open_for_visitor(conn, visitor_id)

    async def change(
        self, session_id: str, *, notify: bool = True, **values: Any
    ) -> SessionRecord | None:
        """Update fields of a session in one transaction and announce the change.

        ``_keep_first=("accepted_at", ...)``: those fields are only set when still empty.
        ``_append_agent="agent1"``: add to the list of agents who served it."""
        keep = values.pop("_keep_first", ())
        append_agent = values.pop("_append_agent", None)
        async with write_transaction(self.engine) as conn:
            before = await repo.get(conn, session_id, lock=True)
            if before is None:
                return None
            for field in keep:
                if getattr(before, field) is not None:
                    values.pop(field, None)
            if append_agent and (not before.agents or before.agents[-1] != append_agent):
                values["agents"] = [*before.agents, append_agent]
            if values:
                await repo.update(conn, session_id, values)
            after = await repo.get(conn, session_id)
        assert after is not None
        self._remember(after)
        if notify and after != before:
            await self.bus.publish(
                [SessionChanged(session=after, previous_agent_id=before.agent_id)]
            )
        return after

    async def post(self, msg: NewMessage, *, guard: Guard | None = None) -> Message:
        """Store a message (idempotent per client_msg_id) if ``guard`` allows it at the
        moment it is stored, and announce it — to the session's agent at that moment — when
        new."""
        stored = await self.log.append(msg, guard)
        self._remember(stored.session)
        if stored.created:
            session = stored.session
            await self.bus.publish(
                [
                    MessageCreated(
                        message=stored.message,
                        visitor_id=session.visitor_id,
                        agent_id=session.agent_id,
                    )
                ]
            )
        return stored.message

    async def system_message(self, session: SessionRecord | str, key: str, text: str) -> Message:
        """A system note in ``session`` (a record or its id), once per ``key``."""
        return await self.post(
            NewMessage(
                session_id=session if isinstance(session, str) else session.id,
                client_msg_id=f"sys.{key}".replace("~", "-")[:64],
                sender=Sender(type="system", name="系统 System"),
                kind="event",
                text=text,
            )
        )

    async def notify_customer(self, session_id: str, code: str, text: str) -> None:
        await self.bus.publish([CustomerNotice(session_id=session_id, code=code, text=text)])

    async def rate(self, session_id: str, score: int, comment: str | None) -> SessionRecord:
        record = await self.get(session_id)
        if record.state != "ended":
            raise ContactdError(ErrorCode.invalid_state, "rate a conversation after it ends")
        if record.rating is not None:
            raise ContactdError(ErrorCode.conflict, "this conversation was already rated")
        after = await self.change(session_id, rating=score, rating_comment=comment)
        assert after is not None
        return after

    async def messages(
        self, session_id: str, after_seq: int = 0, limit: int = 500
    ) -> list[Message]:
        return await self.log.since(session_id, after_seq, limit)

    async def detail(self, session_id: str) -> SessionDetail:
        record = await self.get(session_id)
        msgs = await self.log.since(session_id, 0, 5000)
        return SessionDetail(session=record, metrics=metrics_of(record), messages=msgs)

    async def search(self, **filters: Any) -> list[SessionRecord]:
        async with self.engine.connect() as conn:
            return await repo.search(conn, **filters)

    async def previous_of_customer(
        self,
        customer_id: str | None,
        visitor_id: str | None,
        exclude: str,
        limit: int = 5,
        since: int | None = None,
    ) -> list[SessionRecord]:
        """This customer's (or, anonymous, this visitor's) latest sessions but ``exclude``."""
        if customer_id:
            found = await self.search(customer_id=customer_id, since=since, limit=limit + 1)
        elif visitor_id:
            found = await self.search(visitor_id=visitor_id, since=since, limit=limit + 1)
        else:
            return []
        return [s for s in found if s.id != exclude][:limit]

    async def last_agent(
        self, customer_id: str | None, visitor_id: str | None, exclude: str, since: int
    ) -> str | None:
        """The agent who served this customer (or visitor) last, in a session created
        since ``since``."""
        previous = await self.previous_of_customer(customer_id, visitor_id, exclude, since=since)
        return next((s.agent_id for s in previous if s.agent_id), None)

    async def queue_wait_estimate(self, queue_id: str, position: int) -> int | None:
        """Seconds, from the queue's measured rate of accepted offers over the last 15
        minutes; None while there is no history to measure."""
        per_s = await self._dequeue_rate(queue_id)
        return None if per_s is None else max(1, round((position + 1) / per_s))

    async def _dequeue_rate(self, queue_id: str) -> float | None:
        """Accepted offers per second; measured at most once a second per queue in this
        process (every waiting customer's estimate and every call's announcement reads it;
        this process's own dequeues refresh it at once)."""
        now = self.clock.now_ms()
        memo = self._rates.get(queue_id)
        if memo is not None and now - memo[0] < _RATE_MEMO_MS:
            return memo[1]
        # one measurement at a time per queue: the calls arriving while it runs share it
        # (else every call in flight when the memo ran out measured again)
        running = self._rates_running.get(queue_id)
        if running is None:
            running = asyncio.ensure_future(self._measure_rate(queue_id, now))
            self._rates_running[queue_id] = running
            running.add_done_callback(lambda _: self._rates_running.pop(queue_id, None))
        return await asyncio.shield(running)

    async def _measure_rate(self, queue_id: str, now: int) -> float | None:
        window = 15 * 60 * 1000
        key = self.keys.dequeues(queue_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(key, "-inf", now - window)
            pipe.zcount(key, now - window, "+inf")
            pipe.zrange(key, 0, 0, withscores=True)
            _, count, oldest = await pipe.execute()
        per_s: float | None = None
        if count:
            span = max(now - int(oldest[0][1]), 60_000) if oldest else window
            per_s = int(count) / (span / 1000)
        self._rates[queue_id] = (now, per_s)
        return per_s

    async def record_dequeue(self, queue_id: str, contact_id: str) -> None:
        key = self.keys.dequeues(queue_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {contact_id: self.clock.now_ms()})
            pipe.expire(key, 3600)
            await pipe.execute()
        self._rates.pop(queue_id, None)
