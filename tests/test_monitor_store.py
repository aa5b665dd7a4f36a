"""The monitor's persisted events on SQLite and PostgreSQL: the recorder writes what the
metrics need, the reads give the computation what it needs (state before the window,
rows topped up by id), and the interval arithmetic behind time in state."""

from __future__ import annotations

from contactd.monitor.definitions import EventRow, Rules, Window, compute
from contactd.monitor.intervals import clip, subtract, total, union
from contactd.monitor.store import EventCache, EventRecorder, MonitorRepository
from contactd.routing import events as ev

RULES = Rules(service_level_ms={"q": 20_000}, short_abandon_ms=5_000)
H = 3_600_000


def _state(at: int, agent: str, state: str, previous: str) -> ev.AgentStateChanged:
    return ev.AgentStateChanged(
        type="agent.state_changed",
        at=at,
        agent_id=agent,
        state=state,
        reason="",
        previous=previous,  # type: ignore[arg-type]
    )


async def test_recorded_events_come_back_for_any_window(db) -> None:  # type: ignore[no-untyped-def]
    recorder = EventRecorder(db)
    repo = MonitorRepository(db)
    t0 = 1_795_000_000_000
    events = [
        _state(t0 - 20 * H, "a1", "available", "offline"),  # long before: state at the start
        ev.ContactEnqueued(
            type="contact.enqueued",
            at=t0,
            contact_id="c1",
            queue_id="q",
            channel="chat",
            priority=0,
        ),
        ev.OfferAccepted(
            type="offer.accepted",
            at=t0 + 15_000,
            offer_id="c1~1",
            contact_id="c1",
            agent_id="a1",
            queue_id="q",
            channel="chat",
            waited_ms=15_000,
        ),
        ev.ContactEnded(
            type="contact.ended",
            at=t0 + 75_000,
            contact_id="c1",
            queue_id="q",
            agent_id="a1",
            reason="resolved",
            handle_ms=60_000,
            wrap_up_ms=0,
        ),
        ev.ContactEnqueued(
            type="contact.enqueued",
            at=t0 + H,
            contact_id="c2",
            queue_id="q",
            channel="chat",
            priority=0,
        ),
        ev.ContactAbandoned(
            type="contact.abandoned",
            at=t0 + H + 2_000,
            contact_id="c2",
            queue_id="q",
            reason="customer_left",
            waited_ms=2_000,
            was="queued",
        ),
    ]
    for e in events:
        recorder.on_event(e)
    recorder.on_event(ev.AgentLoggedIn(type="agent.logged_in", at=t0, agent_id="a1", queues=[]))
    await recorder.flush()

    rows = await repo.rows(t0, t0 + 2 * H)
    assert sorted(r.type for r in rows) == sorted(e.type for e in events)  # not logged_in
    [out] = compute(rows, [Window(t0, t0 + 2 * H)], RULES, now=t0 + 2 * H)
    q = out.queues["q"]
    assert (q.offered, q.answered, q.answered_in_sl, q.abandoned, q.abandoned_short) == (
        2,
        1,
        1,
        1,
        1,
    )
    assert q.service_level == 1.0 and q.service_level2 == 1.0 and q.asa_s == 15.0
    a1 = out.agents["a1"]
    # available the whole window (the change 20 h before was found), busy for one minute
    assert a1.time_in_state_ms["available"] == 2 * H
    assert (a1.busy_ms, a1.idle_ms) == (60_000, 2 * H - 60_000)
    assert a1.occupancy == 60_000 / (2 * H)

    # the live cache tops up by id: a later event appears without re-reading everything
    cache = EventCache(repo)
    first = await cache.rows(t0 - H, t0 + 2 * H)
    assert len(first) == 6
    recorder.on_event(_state(t0 + H + 5_000, "a1", "away", "available"))
    await recorder.flush()
    again = await cache.rows(t0 - H, t0 + 2 * H)
    assert len(again) == 7 and max(r.at for r in again) == t0 + H + 5_000


def test_interval_arithmetic() -> None:
    merged = union([(5, 10), (0, 3), (2, 4), (10, 12), (20, 20)])
    assert merged == [(0, 4), (5, 12)]
    assert clip(merged, 3, 6) == [(3, 4), (5, 6)]
    assert subtract([(0, 20)], merged) == [(4, 5), (12, 20)]
    assert total(subtract([(0, 20)], [(0, 20)])) == 0


def test_nothing_counts_into_the_future() -> None:
    rows = [
        EventRow(
            at=0, type="agent.state_changed", agent_id="a", detail="away", previous="offline", id=1
        )
    ]
    [out] = compute(rows, [Window(0, 24 * H)], RULES, now=H)
    assert out.agents["a"].time_in_state_ms["away"] == H


async def test_live_cache_finds_a_batch_committed_late_with_lower_ids(db) -> None:  # type: ignore[no-untyped-def]
    """On PostgreSQL two nodes' batches can commit out of id order."""
    from contactd.storage.tables import monitor_events

    now = 1_795_000_000_000
    row = {
        "type": "contact.enqueued",
        "queue_id": "q",
        "agent_id": None,
        "contact_id": "c",
        "value_ms": None,
        "detail": "0",
        "previous": None,
    }
    async with db.begin() as conn:
        await conn.execute(
            monitor_events.insert(),
            [{**row, "id": 1000 + i, "at": now - 600_000 + i} for i in range(300)],
        )
    cache = EventCache(MonitorRepository(db))
    assert len(await cache.rows(now - H, now)) == 300
    async with db.begin() as conn:  # the other node's batch: ids below what was read
        await conn.execute(monitor_events.insert(), [{**row, "id": 10, "at": now - 1_000}])
    rows = await cache.rows(now - H, now)
    assert len(rows) == 301 and 10 in {r.id for r in rows}
