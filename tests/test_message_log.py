"""The message log on SQLite and PostgreSQL: gap-free per-session sequence numbers under
concurrent senders, resends stored once (also inside one batch), reply-time bookkeeping."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.clock import ManualClock
from contactd.sessions import repository as repo
from contactd.sessions.messages import MessageLog
from contactd.sessions.models import NewMessage, Sender
from contactd.storage.db import write_transaction

CUSTOMER = Sender(type="customer", id="u1", name="张三")
AGENT = Sender(type="agent", id="agent1", name="客服一")


async def open_session(db: AsyncEngine, sid: str, now: int, accepted: bool) -> None:
    async with write_transaction(db) as conn:
        await repo.insert(
            conn,
            {
                "id": sid,
                "contact_id": sid,
                "channel": "chat",
                "entry_point": "home",
                "queue_id": "q",
                "state": "active" if accepted else "queued",
                "agents": [],
                "created_at": now,
                "accepted_at": now if accepted else None,
                "last_seq": 0,
                "transfers": 0,
                "responses": 0,
                "response_total_ms": 0,
            },
        )


async def test_concurrent_senders_get_gap_free_seqs_and_resends_are_stored_once(
    db: AsyncEngine,
) -> None:
    clock = ManualClock()
    log = MessageLog(db, clock)
    log.start()
    try:
        sessions = [f"S20261123-{i:06d}" for i in range(1, 6)]
        for sid in sessions:
            await open_session(db, sid, clock.now_ms(), accepted=True)
        rng = random.Random(3)
        sends = [
            NewMessage(
                session_id=sid,
                client_msg_id=f"{sid}-{n}",
                sender=CUSTOMER,
                kind="text",
                text=f"第{n}条",
            )
            for sid in sessions
            for n in range(40)
        ]
        resends = rng.sample(sends, 60)  # the same ids again, some inside the same batch
        results = await asyncio.gather(*(log.append(m) for m in sends + resends))
        created = [stored for stored, new in results if new]
        assert len(created) == len(sends)
        by_id = {(s.session_id, s.client_msg_id): s for s in created}
        for stored, _new in results:
            assert by_id[(stored.session_id, stored.client_msg_id)] == stored
        for sid in sessions:
            seqs = sorted(s.seq for s in created if s.session_id == sid)
            assert seqs == list(range(1, 41))
            assert [m.seq for m in await log.since(sid, 0)] == list(range(1, 41))
            assert [m.seq for m in await log.since(sid, 37)] == [38, 39, 40]
    finally:
        await log.stop()


async def test_reply_times_are_measured_from_the_first_unanswered_customer_message(
    db: AsyncEngine,
) -> None:
    clock = ManualClock()
    log = MessageLog(db, clock)
    log.start()
    sid = "S20261123-000009"
    try:
        await open_session(db, sid, clock.now_ms(), accepted=True)
        for n, (sender, wait) in enumerate(
            [(CUSTOMER, 0), (CUSTOMER, 3), (AGENT, 7), (CUSTOMER, 2), (AGENT, 4)]
        ):
            clock.advance(wait)
            await log.append(
                NewMessage(
                    session_id=sid, client_msg_id=f"m{n}", sender=sender, kind="text", text="x"
                )
            )
        async with db.connect() as conn:
            record = await repo.get(conn, sid)
        assert record is not None
        assert record.responses == 2 and record.response_total_ms == (10 + 4) * 1000
        assert record.first_response_at == record.accepted_at + 10_000
        assert record.awaiting_reply_since is None and record.last_seq == 5
    finally:
        await log.stop()
