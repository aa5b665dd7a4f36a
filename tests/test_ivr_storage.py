"""The phone channel's SQL on SQLite and PostgreSQL: group-committed call sessions, the
call record written once, callback requests one per call."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.bus import Bus
from contactd.channels.ivr.batch import Batcher
from contactd.channels.ivr.models import CallState, MenuStep
from contactd.channels.ivr.opener import SessionOpener
from contactd.channels.ivr.repository import IvrRepository
from contactd.clock import ManualClock
from contactd.sessions.messages import MessageLog
from contactd.sessions.service import SessionService
from contactd.settings import Settings
from contactd.storage.keyspace import SiteKeys


def _state(call_id: str, **kw: object) -> CallState:
    return CallState(
        call_id=call_id, caller="13812341234", dialled="4008001234", started_at=1, **kw
    )


async def test_sessions_of_calls_arriving_together_share_a_commit(
    db: AsyncEngine, redis: Redis, settings: Settings, clock: ManualClock
) -> None:
    sessions = SessionService(
        db, redis, SiteKeys(settings.site), settings, clock, Bus(), MessageLog(db, clock)
    )
    opener = SessionOpener(sessions)
    opener.batch.start()
    try:
        ids = await asyncio.gather(
            *(
                opener.open(
                    channel="voice",
                    entry_point="phone",
                    queue_id="phone",
                    visitor_id=None,
                    customer_phone=f"1390000{n:04d}",
                    meta={"call_id": f"CA{n}"},
                )
                for n in range(40)
            )
        )
    finally:
        await opener.batch.stop()
    assert len(set(ids)) == 40
    for n, sid in enumerate(ids):  # each caller was given its own stored session
        stored = await sessions.get(sid)
        assert stored.customer_phone == f"1390000{n:04d}" and stored.meta == {"call_id": f"CA{n}"}
        assert stored.channel == "voice" and stored.state == "queued" and stored.agents == []
    # not started (a tool): still stored, one transaction of its own
    lone = await SessionOpener(sessions).open(
        channel="voice", entry_point="phone", queue_id="phone", visitor_id=None
    )
    assert (await sessions.get(lone)).id == lone


async def test_call_record_and_callback_are_written_once(db: AsyncEngine) -> None:
    repo = IvrRepository(db)
    state = _state(
        "CA1", log=[MenuStep(menu="main", input="9", answer="voicemail")], outcome="voicemail"
    )
    await repo.record_call(state, 5)
    await repo.record_call(state, 9)  # the platform told us twice
    first, created = await repo.add_callback(state, "menu", "https://r.example/1", 12, 3)
    again, created_again = await repo.add_callback(state, "menu", "https://r.example/2", 99, 4)
    assert created and not created_again and again == first
    assert first.recording_url == "https://r.example/1" and first.state == "open"
    await repo.add_callback(_state("CA2"), "queue_full", None, 0, 4)
    assert [c.call_id for c in await repo.callbacks("open", 10, 0)] == ["CA2", "CA1"]
    await repo.set_ticket(first.id, "T2026-1")
    done = await repo.close_callback(first.id)
    assert done is not None and done.state == "done" and done.ticket_id == "T2026-1"
    assert [c.call_id for c in await repo.callbacks("open", 10, 0)] == ["CA2"]
    assert await repo.close_callback(999_999) is None
    [call] = await repo.calls_of("13812341234")
    assert call["outcome"] == "voicemail" and call["ended_at"] == 5
    assert call["menu_log"] == [{"menu": "main", "input": "9", "answer": "voicemail"}]


async def test_batcher_groups_waiting_work_and_reports_failures_to_each_caller() -> None:
    seen: list[list[int]] = []
    started = asyncio.Event()

    async def work(items: Sequence[int]) -> list[int]:
        seen.append(list(items))
        if items == [2]:
            started.set()
        await asyncio.sleep(0.01)
        if 13 in items:
            raise ValueError("unlucky batch")
        return [i * 2 for i in items]

    batcher: Batcher[int, int] = Batcher(work, "test-batcher")
    assert await batcher.submit(1) == 2  # not started: a batch of its own
    batcher.start()
    try:
        first = asyncio.ensure_future(batcher.submit(2))
        await started.wait()  # the first batch is under way: these wait for the next one
        rest = await asyncio.gather(*(batcher.submit(i) for i in (3, 4, 5)))
        assert await first == 4 and rest == [6, 8, 10]
        assert seen[-2:] == [[2], [3, 4, 5]]
        results = await asyncio.gather(
            *(batcher.submit(i) for i in (12, 13)), return_exceptions=True
        )
        assert all(isinstance(r, ValueError) for r in results)
        assert await batcher.submit(21) == 42  # the loop goes on
    finally:
        await batcher.stop()


async def test_service_numbers_start_again_at_local_midnight(
    db: AsyncEngine, redis: Redis, settings: Settings
) -> None:
    """Numbers are per day of the site's time zone (Asia/Shanghai here): the day the
    counter belongs to changes exactly at local midnight, not at UTC's."""
    # 2026-11-23 23:59:59 in Shanghai (UTC+8) = 15:59:59 UTC
    clock = ManualClock(1_795_449_599_000)
    sessions = SessionService(
        db, redis, SiteKeys(settings.site), settings, clock, Bus(), MessageLog(db, clock)
    )
    assert sessions.number_counter()[0] == "20261123"
    late = await sessions.next_numbers(2)
    assert [n[:10] for n in late] == ["S20261123-"] * 2
    clock.advance(1)  # midnight in Shanghai
    assert sessions.number_counter()[0] == "20261124"
    assert await sessions.next_number() == "S20261124-000001"
    clock.advance(86_399)  # 23:59:59 the same day
    assert sessions.number_counter()[0] == "20261124"
    clock.advance(1)
    assert sessions.number_counter()[0] == "20261125"
