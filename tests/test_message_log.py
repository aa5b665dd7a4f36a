"""The message log on SQLite and PostgreSQL: gap-free per-session sequence numbers under
concurrent senders, resends stored once (also inside one batch), reply-time bookkeeping."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.clock import ManualClock
from contactd.errors import ContactdError, ErrorCode
from contactd.sessions import repository as repo
from contactd.sessions.messages import MessageLog
from contactd.sessions.models import Attachment, Guard, NewMessage, Sender
from contactd.storage.db import write_transaction
from contactd.storage.tables import service_sessions, session_messages
from tests.conftest import while_another_process_writes

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


@pytest.fixture
async def log(db: AsyncEngine) -> AsyncIterator[MessageLog]:
    """A running message log on a manual clock (``log.clock``)."""
    running = MessageLog(db, ManualClock())
    running.start()
    try:
        yield running
    finally:
        await running.stop()


async def refusal(log: MessageLog, msg: NewMessage, guard: Guard) -> ErrorCode:
    with pytest.raises(ContactdError) as refused:
        await log.append(msg, guard)
    return refused.value.code


async def stored(db: AsyncEngine, log: MessageLog, sid: str) -> tuple[list[str], int]:
    """The session's stored messages (client ids, in order) and its ``last_seq``."""
    async with db.connect() as conn:
        record = await repo.get(conn, sid)
    assert record is not None
    return [m.client_msg_id for m in await log.since(sid, 0)], record.last_seq


def text(sid: str, cmid: str, sender: Sender) -> NewMessage:
    return NewMessage(session_id=sid, client_msg_id=cmid, sender=sender, kind="text", text="x")


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
        created = [r.message for r in results if r.created]
        assert len(created) == len(sends)
        by_id = {(s.session_id, s.client_msg_id): s for s in created}
        for r in results:
            assert by_id[(r.message.session_id, r.message.client_msg_id)] == r.message
        for sid in sessions:
            seqs = sorted(s.seq for s in created if s.session_id == sid)
            assert seqs == list(range(1, 41))
            assert [m.seq for m in await log.since(sid, 0)] == list(range(1, 41))
            assert [m.seq for m in await log.since(sid, 37)] == [38, 39, 40]
    finally:
        await log.stop()


async def test_reply_times_are_measured_from_the_first_unanswered_customer_message(
    db: AsyncEngine, log: MessageLog
) -> None:
    clock = log.clock
    assert isinstance(clock, ManualClock)
    sid = "S20261123-000009"
    await open_session(db, sid, clock.now_ms(), accepted=True)
    for n, (sender, wait) in enumerate(
        [(CUSTOMER, 0), (CUSTOMER, 3), (AGENT, 7), (CUSTOMER, 2), (AGENT, 4)]
    ):
        clock.advance(wait)
        await log.append(text(sid, f"m{n}", sender))
    async with db.connect() as conn:
        record = await repo.get(conn, sid)
    assert record is not None
    assert record.responses == 2 and record.response_total_ms == (10 + 4) * 1000
    assert record.first_response_at == record.accepted_at + 10_000
    assert record.awaiting_reply_since is None and record.last_seq == 5


async def test_a_guard_is_checked_against_the_session_as_it_is_when_storing(
    db: AsyncEngine, log: MessageLog
) -> None:
    """The chat service posts without reading the session fresh; the log refuses a message
    whose sender lost the right to post meanwhile, and a resend never reaches a stranger."""
    sid = "S20261123-000011"
    await open_session(db, sid, log.clock.now_ms(), accepted=True)
    async with write_transaction(db) as conn:
        await repo.update(conn, sid, {"visitor_id": "v1", "agent_id": "agent1"})

    first = await log.append(text(sid, "c1", CUSTOMER), Guard(visitor_id="v1"))
    assert first.created and first.session.agent_id == "agent1"
    # another visitor resending the same client message id gets nothing back
    assert (
        await refusal(log, text(sid, "c1", CUSTOMER), Guard(visitor_id="v2")) == ErrorCode.not_found
    )
    assert (
        await refusal(log, text(sid, "a1", AGENT), Guard(agent_id="agent2")) == ErrorCode.not_found
    )

    # moved to agent2 and then ended (as another process would): agent1 and the
    # customer are refused, and nothing was stored for them
    async with write_transaction(db) as conn:
        await repo.update(conn, sid, {"agent_id": "agent2"})
    assert (
        await refusal(log, text(sid, "a2", AGENT), Guard(agent_id="agent1")) == ErrorCode.not_found
    )
    moved = await log.append(text(sid, "a3", AGENT), Guard(agent_id="agent2"))
    assert moved.created and moved.message.seq == 2
    async with write_transaction(db) as conn:
        await repo.update(conn, sid, {"state": "ended"})
    assert (
        await refusal(log, text(sid, "c2", CUSTOMER), Guard(visitor_id="v1"))
        == ErrorCode.contact_finished
    )
    assert (
        await refusal(log, text(sid, "a4", AGENT), Guard(agent_id="agent2"))
        == ErrorCode.contact_not_active
    )
    assert [m.client_msg_id for m in await log.since(sid, 0)] == ["c1", "a3"]


async def test_a_message_sent_while_another_writer_ends_the_session_is_refused(
    db: AsyncEngine, log: MessageLog
) -> None:
    """The session is ended by another writer whose transaction is still open when the
    agent's message arrives: the message waits for it, then is refused against the ended
    session, and nothing is stored (on PostgreSQL the log read the row before the end
    was committed, so its write must notice the row changed)."""
    sid = "S20261123-000012"
    await open_session(db, sid, log.clock.now_ms(), accepted=True)
    async with write_transaction(db) as conn:
        await repo.update(conn, sid, {"agent_id": "agent1"})
    async with write_transaction(db) as conn:
        await repo.update(conn, sid, {"state": "ended"})
        pending = asyncio.ensure_future(
            log.append(text(sid, "a1", AGENT), Guard(agent_id="agent1"))
        )
        await asyncio.sleep(0.3)
        assert not pending.done()
    with pytest.raises(ContactdError) as refused:
        await asyncio.wait_for(pending, 10)
    assert refused.value.code == ErrorCode.contact_not_active
    assert await stored(db, log, sid) == ([], 0)


async def test_a_message_is_judged_by_the_session_as_it_is_now_not_as_last_stored(
    db: AsyncEngine, log: MessageLog
) -> None:
    """The log remembers the sessions it writes to; what others change meanwhile (the
    chat accepted, then ended) counts for the next message all the same."""
    sid = "S20261123-000014"
    await open_session(db, sid, log.clock.now_ms(), accepted=False)
    async with write_transaction(db) as conn:
        await repo.update(conn, sid, {"visitor_id": "v1"})
    waiting = await log.append(text(sid, "c1", CUSTOMER), Guard(visitor_id="v1"))
    assert waiting.session.state == "queued"
    assert (
        await refusal(log, text(sid, "a0", AGENT), Guard(agent_id="agent1")) == ErrorCode.not_found
    )
    async with write_transaction(db) as conn:  # accepted elsewhere
        await repo.update(conn, sid, {"state": "active", "agent_id": "agent1"})
    answer = await log.append(text(sid, "a1", AGENT), Guard(agent_id="agent1"))
    assert (answer.created, answer.message.seq, answer.session.state) == (True, 2, "active")
    again = await log.append(text(sid, "c2", CUSTOMER), Guard(visitor_id="v1"))
    assert (again.message.seq, again.session.last_seq) == (3, 2)  # the row before its write
    async with write_transaction(db) as conn:  # ended elsewhere
        await repo.update(conn, sid, {"state": "ended"})
    assert (
        await refusal(log, text(sid, "c3", CUSTOMER), Guard(visitor_id="v1"))
        == ErrorCode.contact_finished
    )
    assert await stored(db, log, sid) == (["c1", "a1", "c2"], 3)


async def test_a_large_batch_of_mixed_messages_is_stored_whole_and_replays_as_sent(
    db: AsyncEngine, log: MessageLog
) -> None:
    """Attachments, order cards and plain text in one batch larger than one statement's
    rows (many sessions at once): every message comes back as it was sent, in order, and
    an absent attachment or card is stored as SQL NULL."""
    sessions = [f"S20261124-{i:06d}" for i in range(1, 121)]
    for sid in sessions:
        await open_session(db, sid, log.clock.now_ms(), accepted=True)
    pic = Attachment(id="a1", name="发票.png", content_type="image/png", size=12, url="/u/a1")
    sends = []
    for n, sid in enumerate(sessions):
        sends.append(text(sid, "t1", CUSTOMER))
        sends.append(
            NewMessage(
                session_id=sid, client_msg_id="p1", sender=AGENT, kind="image", attachment=pic
            )
            if n % 2
            else NewMessage(
                session_id=sid,
                client_msg_id="o1",
                sender=AGENT,
                kind="order_card",
                order={"order_no": f"O{n}", "items": ["茶叶", 2], "paid": True},
            )
        )
    stored = await asyncio.gather(*(log.append(m) for m in sends))
    assert [s.message.seq for s in stored] == [1, 2] * len(sessions)
    for n, sid in enumerate(sessions):
        replay = await log.since(sid, 0)
        assert [(m.seq, m.kind, m.text, m.attachment, m.order) for m in replay] == [
            (1, "text", "x", None, None),
            (2, sends[2 * n + 1].kind, None, sends[2 * n + 1].attachment, sends[2 * n + 1].order),
        ]
        assert replay == [s.message for s in stored[2 * n : 2 * n + 2]]
    async with db.connect() as conn:
        nulls = await conn.execute(
            sa.select(sa.func.count()).where(
                session_messages.c.kind == "text",
                session_messages.c.attachment.is_(None),
                session_messages.c.order_card.is_(None),
                session_messages.c.session_id.in_(sessions),
            )
        )
        assert nulls.scalar_one() == len(sessions)
        seqs = await conn.execute(
            sa.select(service_sessions.c.last_seq).where(service_sessions.c.id.in_(sessions))
        )
        assert set(seqs.scalars().all()) == {2}


async def test_the_session_returned_with_a_stored_message_is_the_row_as_it_was_read(
    db: AsyncEngine, log: MessageLog
) -> None:
    """What the log hands back (and the message is announced with) is the whole session
    row, JSON columns included, exactly as a plain read gives it."""
    sid = "S20261125-000001"
    await open_session(db, sid, log.clock.now_ms(), accepted=True)
    async with write_transaction(db) as conn:
        await repo.update(
            conn,
            sid,
            {
                "agent_id": "agent1",
                "agents": ["agent9", "agent1"],
                "meta": {"question": "退款", "bot": {"turns": [1, 2]}, "vip": True},
                "customer_name": "张三",
                "visitor_id": "v1",
            },
        )
    async with db.connect() as conn:
        before = await repo.get(conn, sid)
    stored = await log.append(text(sid, "c1", CUSTOMER), Guard(visitor_id="v1"))
    assert stored.session == before
    assert stored.session.agents == ["agent9", "agent1"]


async def test_a_resend_is_matched_by_its_own_session_and_id_only(
    db: AsyncEngine, log: MessageLog
) -> None:
    """(session A, id c2) stored earlier: in a later batch (A, c1) and (B, c2) are new
    messages, not resends, while (A, c2) again is the earlier message."""
    a, b = "S20261126-000001", "S20261126-000002"
    for sid in (a, b):
        await open_session(db, sid, log.clock.now_ms(), accepted=True)
    first = await log.append(text(a, "c2", CUSTOMER))
    again, new_a, new_b = await asyncio.gather(
        log.append(text(a, "c2", CUSTOMER)),
        log.append(text(a, "c1", CUSTOMER)),
        log.append(text(b, "c2", CUSTOMER)),
    )
    assert (again.created, again.message) == (False, first.message)
    assert (new_a.created, new_a.message.seq) == (True, 2)
    assert (new_b.created, new_b.message.seq) == (True, 1)
    assert [m.client_msg_id for m in await log.since(a, 0)] == ["c2", "c1"]


async def test_sqlite_a_batch_waits_for_another_process_writing_without_blocking_the_loop(
    db: AsyncEngine, log: MessageLog
) -> None:
    """While another process holds SQLite's write lock, a batch waits for it (on the log's
    thread) and is stored once the lock is free; the event loop runs on meanwhile."""
    if db.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")
    sid = "S20261126-000003"
    await open_session(db, sid, log.clock.now_ms(), accepted=True)
    assert db.url.database is not None
    stored = await while_another_process_writes(
        db.url.database, log.append(text(sid, "c1", CUSTOMER))
    )
    assert (stored.created, stored.message.seq) == (True, 1)
    again = await log.append(text(sid, "c2", CUSTOMER))  # and the next batch as usual
    assert again.message.seq == 2


async def test_message_ids_are_unique_and_sort_in_the_order_messages_were_stored(
    db: AsyncEngine, log: MessageLog
) -> None:
    """Ids grow with time (the primary-key index is appended to, not written at random)."""
    assert isinstance(log.clock, ManualClock)
    await open_session(db, "S20261123-000001", log.clock.now_ms(), accepted=True)
    await open_session(db, "S20261123-000002", log.clock.now_ms(), accepted=True)
    ids: list[str] = []
    for i in range(30):
        batch = await asyncio.gather(
            *(log.append(text(f"S20261123-00000{n}", f"c{i}-{n}", CUSTOMER)) for n in (1, 2))
        )
        ids += sorted(stored.message.id for stored in batch)  # (same millisecond: any order)
        log.clock.advance((1 + i % 3) / 1000)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(i.startswith("m_") and len(i) == 26 for i in ids)


async def test_two_logs_writing_to_the_same_sessions_keep_one_gap_free_order(
    db: AsyncEngine,
) -> None:
    """Two message logs (as two serving processes have) store into the same sessions at
    once: each message once, every session's sequence gap-free, and each sender's
    messages in the order it sent them — also when the other log changed a session
    between one log's read and its write."""
    clock = ManualClock()
    logs = [MessageLog(db, clock), MessageLog(db, clock)]
    for running in logs:
        running.start()
    try:
        sessions = [f"S20261127-{i:06d}" for i in range(1, 4)]
        for sid in sessions:
            await open_session(db, sid, clock.now_ms(), accepted=True)

        async def sender(n: int, sid: str) -> list[int]:
            """One sender's 30 messages, each sent once the previous one is stored,
            through alternating logs; then the first five again (resends)."""
            seqs = []
            for k in range(30):
                msg = text(sid, f"s{n}-{k}", CUSTOMER if n % 2 else AGENT)
                seqs.append((await logs[(n + k) % 2].append(msg)).message.seq)
            for k in range(5):
                again = await logs[k % 2].append(text(sid, f"s{n}-{k}", CUSTOMER))
                assert (again.created, again.message.seq) == (False, seqs[k])
            return seqs

        per_sender = await asyncio.gather(*(sender(n, sid) for sid in sessions for n in range(4)))
        for seqs in per_sender:
            assert seqs == sorted(seqs)
        for i, sid in enumerate(sessions):
            stored = await logs[0].since(sid, 0)
            assert [m.seq for m in stored] == list(range(1, 121))
            assert sorted(s for seqs in per_sender[i * 4 : i * 4 + 4] for s in seqs) == list(
                range(1, 121)
            )
            async with db.connect() as conn:
                record = await repo.get(conn, sid)
            assert record is not None and record.last_seq == 120
    finally:
        for running in logs:
            await running.stop()


async def test_postgres_a_lost_database_connection_loses_no_message(
    db: AsyncEngine, log: MessageLog
) -> None:
    """The log's own connection is cut (a database restart, a proxy timing out): the next
    batch is stored all the same, in order, and the log connects again for the one after."""
    if db.dialect.name != "postgresql":
        pytest.skip("the PostgreSQL log's own connection")
    sid = "S20261123-000013"
    await open_session(db, sid, log.clock.now_ms(), accepted=True)
    await log.append(text(sid, "c1", CUSTOMER))
    assert log._postgres is not None and log._postgres._conn is not None
    pid = (await log._postgres._conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar()
    await log._postgres._conn.commit()
    async with db.connect() as conn:
        await conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    second = await log.append(text(sid, "c2", CUSTOMER))
    third = await log.append(text(sid, "c3", CUSTOMER))
    assert (second.created, second.message.seq) == (True, 2)
    assert (third.created, third.message.seq) == (True, 3)
    assert [m.client_msg_id for m in await log.since(sid, 0)] == ["c1", "c2", "c3"]
