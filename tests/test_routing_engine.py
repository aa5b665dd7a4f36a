"""Routing behaviour through the engine and its real Lua scripts on real Redis."""

from __future__ import annotations

import asyncio
import collections

import pytest

from contactd.errors import ContactdError, ErrorCode
from contactd.routing.service import RoutingEngine
from contactd.routing.sweeper import Sweeper
from contactd.settings import QueueConfig
from tests.conftest import make_settings


async def _offers_of(engine: RoutingEngine, agent_id: str) -> list[str]:
    a = await engine.agent(agent_id)
    return [s.contact_id for s in a.slots if s.state == "offered"]


# --- queue cap -------------------------------------------------------------------------


async def test_full_queue_refuses_at_once_and_contact_never_enters(redis, site, clock, events):
    from contactd.bus import Bus
    from contactd.storage.keyspace import SiteKeys

    settings = make_settings(site, [QueueConfig(id="small", name="Small", max_waiting=2)])
    engine = RoutingEngine(redis, settings, clock, Bus(), SiteKeys(site))
    await engine.enqueue("small", contact_id="c1")
    await engine.enqueue("small", contact_id="c2")
    with pytest.raises(ContactdError) as err:
        await engine.enqueue("small", contact_id="c3")
    assert err.value.code is ErrorCode.queue_full
    assert "2 waiting" in err.value.message
    snap = await engine.queue_snapshot("small")
    assert snap.waiting == 2
    with pytest.raises(ContactdError) as missing:
        await engine.contact("c3")
    assert missing.value.code is ErrorCode.contact_not_found
    # a slot frees when a waiting customer leaves
    await engine.cancel("c1")
    assert (await engine.enqueue("small", contact_id="c3")).state == "queued"


async def test_unknown_queue_is_refused(engine):
    with pytest.raises(ContactdError) as err:
        await engine.enqueue("nope")
    assert err.value.code is ErrorCode.unknown_queue


async def test_enqueue_retry_with_same_id_changes_nothing(engine):
    first = await engine.enqueue("sales", contact_id="c-retry")
    again = await engine.enqueue("sales", contact_id="c-retry")
    assert again.existing and again.contact_id == first.contact_id
    assert (await engine.queue_snapshot("sales")).waiting == 1


# --- idle strategy ---------------------------------------------------------------------


async def test_idle_picks_lowest_load_ratio_then_longest_idle(engine, clock):
    await engine.login("a-big", queues=["sales"], capacity={"chat": 4})
    clock.advance(1)
    await engine.login("a-small", queues=["sales"], capacity={"chat": 2})
    # equal load 0: a-big has been idle longer
    c1 = await engine.enqueue("sales")
    assert c1.agent_id == "a-big"
    # a-big 1/4 < a-small 0/2? no: 0/2 = 0 is lower
    c2 = await engine.enqueue("sales")
    assert c2.agent_id == "a-small"
    # a-big 1/4=.25, a-small 1/2=.5
    c3 = await engine.enqueue("sales")
    assert c3.agent_id == "a-big"
    c4 = await engine.enqueue("sales")  # a-big 2/4=.5 ties a-small .5: a-big idle longer
    assert c4.agent_id == "a-big"
    c5 = await engine.enqueue("sales")  # a-big 3/4, a-small 1/2
    assert c5.agent_id == "a-small"


async def test_agent_at_capacity_is_locked_until_a_slot_frees(engine):
    await engine.login("a1", queues=["sales"], capacity={"chat": 1})
    c1 = await engine.enqueue("sales")
    await engine.accept(c1.offer_id, "a1")
    c2 = await engine.enqueue("sales")
    assert c2.state == "queued" and c2.position == 0
    await engine.end(c1.contact_id, agent_id="a1")  # wrap_up_s=0 in this queue
    assert (await engine.contact(c2.contact_id)).agent_id == "a1"


# --- round robin -----------------------------------------------------------------------


async def test_round_robin_rotates_regardless_of_load_and_spreads_evenly(engine):
    agents = [f"rr{i}" for i in range(5)]
    for a in agents:
        await engine.login(a, queues=["support"], capacity={"chat": 50})
    handled: collections.Counter[str] = collections.Counter()
    order = []
    for _ in range(103):
        c = await engine.enqueue("support")
        await engine.accept(c.offer_id, c.agent_id)
        handled[c.agent_id] += 1
        order.append(c.agent_id)
    assert order[:6] == ["rr0", "rr1", "rr2", "rr3", "rr4", "rr0"]
    assert max(handled.values()) - min(handled.values()) <= 1


async def test_round_robin_skips_unavailable_and_full_and_survives_joins(engine):
    for a in ("r1", "r2", "r3"):
        await engine.login(a, queues=["support"], capacity={"chat": 1})
    first = await engine.enqueue("support")
    assert first.agent_id == "r1"
    await engine.set_state("r2", "away", "lunch")
    second = await engine.enqueue("support")
    assert second.agent_id == "r3"  # r2 away
    await engine.login("r0", queues=["support"], capacity={"chat": 1})  # joins before cursor
    third = await engine.enqueue("support")
    assert third.agent_id == "r0"  # wraps around past r3 to r0; r1 is full
    fourth = await engine.enqueue("support")
    assert fourth.state == "queued"  # everyone available is at their hard limit


# --- designated ------------------------------------------------------------------------


async def test_designated_waits_for_target_then_falls_back(engine, clock):
    sweeper = Sweeper(engine, 0.1)
    await engine.login("target", queues=["vip"], capacity={"chat": 1})
    await engine.login("other", queues=["vip"], capacity={"chat": 1})
    busy = await engine.enqueue("vip", target_agent_id="target")
    assert busy.agent_id == "target"
    await engine.accept(busy.offer_id, "target")
    waiting = await engine.enqueue("vip", target_agent_id="target")
    assert waiting.state == "queued"  # other is free but this one waits for target
    assert (await engine.agent("other")).slots == []
    clock.advance(29)
    await sweeper.sweep_once()
    assert (await engine.contact(waiting.contact_id)).state == "queued"
    await engine.heartbeat("target")
    await engine.heartbeat("other")
    clock.advance(2)
    await sweeper.sweep_once()
    after = await engine.contact(waiting.contact_id)
    assert after.state == "offered" and after.agent_id == "other"


async def test_designated_goes_to_target_as_soon_as_free(engine):
    await engine.login("target", queues=["vip"], capacity={"chat": 1})
    c1 = await engine.enqueue("vip", target_agent_id="target")
    await engine.accept(c1.offer_id, "target")
    c2 = await engine.enqueue("vip", target_agent_id="target")
    assert c2.state == "queued"
    await engine.end(c1.contact_id, agent_id="target")
    c2_now = await engine.contact(c2.contact_id)
    assert c2_now.state == "offered" and c2_now.agent_id == "target"


async def test_a_contact_waits_for_its_agent_only_as_long_as_it_was_told(engine, clock):
    """A returning customer's last agent: a short wait of the contact's own (not the
    queue's fallback_after_s, 60 s here), then the queue; declined by that agent, it joins
    the queue at once instead of waiting for them again."""
    sweeper = Sweeper(engine, 0.1)
    await engine.login("last", queues=["sales"], capacity={"chat": 1})
    await engine.login("other", queues=["sales"], capacity={"chat": 1})
    busy = await engine.enqueue("sales", target_agent_id="last", target_wait_s=20)
    assert busy.agent_id == "last"  # free: offered at once
    await engine.accept(busy.offer_id, "last")
    waiting = await engine.enqueue("sales", target_agent_id="last", target_wait_s=20)
    assert waiting.state == "queued" and (await engine.agent("other")).slots == []
    clock.advance(19)
    await sweeper.sweep_once()
    assert (await engine.contact(waiting.contact_id)).state == "queued"
    for a in ("last", "other"):
        await engine.heartbeat(a)
    clock.advance(2)
    await sweeper.sweep_once()
    after = await engine.contact(waiting.contact_id)
    assert (after.state, after.agent_id, after.target_agent_id) == ("offered", "other", None)

    await engine.accept(after.offer_id, "other")
    await engine.end(busy.contact_id, agent_id="last")
    again = await engine.enqueue("sales", target_agent_id="last", target_wait_s=20)
    assert again.agent_id == "last"
    await engine.decline(again.offer_id, "last")
    assert (await engine.contact(again.contact_id)).target_agent_id is None  # in the queue
    await engine.end(after.contact_id, agent_id="other")  # other frees up: it goes there
    moved = await engine.contact(again.contact_id)
    assert (moved.state, moved.agent_id) == ("offered", "other")


async def test_designated_queue_requires_a_target(engine):
    with pytest.raises(ContactdError) as err:
        await engine.enqueue("vip")
    assert err.value.code is ErrorCode.designated_target_required


# --- priority and FIFO -----------------------------------------------------------------


async def test_priority_first_then_fifo(engine, clock):
    ids = []
    for prio in (0, 0, 5, 9, 5):
        ids.append((await engine.enqueue("sales", priority=prio)).contact_id)
        clock.advance(1)
    snap = await engine.queue_snapshot("sales")
    assert [w.contact_id for w in snap.head] == [ids[3], ids[2], ids[4], ids[0], ids[1]]
    await engine.login("a1", queues=["sales"], capacity={"chat": 1})
    assert await _offers_of(engine, "a1") == [ids[3]]


# --- offers ----------------------------------------------------------------------------


async def test_decline_keeps_original_time_and_offers_next_agent(engine, clock):
    await engine.login("a1", queues=["sales"], capacity={"chat": 1})
    c1 = await engine.enqueue("sales")
    clock.advance(5)
    c2 = await engine.enqueue("sales")  # waits: a1 full
    await engine.login("a2", queues=["sales"], capacity={"chat": 1})
    assert (await engine.contact(c2.contact_id)).agent_id == "a2"
    again = await engine.decline(c1.offer_id, "a1")
    # c1 is back with its original time, ahead of everything newer; a1 will not get it again
    # for reoffer_after_s, so it waits (a2 is busy)
    assert again.state == "queued" and again.enqueued_at == c1.enqueued_at
    c3 = await engine.enqueue("sales")
    assert c3.agent_id == "a1"  # a1 takes the next one instead
    snap = await engine.queue_snapshot("sales")
    assert snap.head[0].contact_id == c1.contact_id


async def test_offer_timeout_moves_on_and_max_no_answer_sets_agent_away(redis, site, clock):
    from contactd.bus import Bus
    from contactd.storage.keyspace import SiteKeys

    q = QueueConfig(
        id="q", name="Q", offer_timeout_s=10, max_no_answer=2, reoffer_after_s=0, wrap_up_s=0
    )
    engine = RoutingEngine(redis, make_settings(site, [q]), clock, Bus(), SiteKeys(site))
    sweeper = Sweeper(engine, 0.1)
    await engine.login("sleepy", queues=["q"], capacity={"chat": 1})
    c = await engine.enqueue("q")
    assert c.agent_id == "sleepy"
    clock.advance(11)
    await sweeper.sweep_once()
    second = await engine.contact(c.contact_id)
    assert second.state == "offered" and second.offers == 2  # reoffered (only agent)
    clock.advance(11)
    await sweeper.sweep_once()
    agent = await engine.agent("sleepy")
    assert agent.state == "away" and agent.reason == "no_answer"
    assert (await engine.contact(c.contact_id)).state == "queued"
    # a late accept of the expired offer is refused and changes nothing
    with pytest.raises(ContactdError) as err:
        await engine.accept(second.offer_id, "sleepy")
    assert err.value.code is ErrorCode.offer_expired


async def test_accept_by_another_agent_is_refused(engine):
    await engine.login("a1", queues=["sales"])
    await engine.login("a2", queues=["sales"])
    c = await engine.enqueue("sales")
    with pytest.raises(ContactdError) as err:
        await engine.accept(c.offer_id, "a2" if c.agent_id == "a1" else "a1")
    assert err.value.code is ErrorCode.not_your_offer
    assert (await engine.contact(c.contact_id)).state == "offered"


async def test_cancel_revokes_the_offer_at_once(engine, events):
    await engine.login("a1", queues=["sales"], capacity={"chat": 1})
    c = await engine.enqueue("sales")
    gone = await engine.cancel(c.contact_id)
    assert gone.state == "abandoned"
    assert (await engine.agent("a1")).slots == []
    assert [e.type for e in events[-2:]] == ["offer.revoked", "contact.abandoned"]
    with pytest.raises(ContactdError):
        await engine.accept(c.offer_id, "a1")


# --- wrap-up ---------------------------------------------------------------------------


async def test_wrap_up_holds_the_slot_then_frees_it(engine, clock):
    sweeper = Sweeper(engine, 0.1)
    await engine.login("v1", queues=["phone"])
    call = await engine.enqueue("phone")
    await engine.accept(call.offer_id, "v1")
    nxt = await engine.enqueue("phone")
    assert nxt.state == "queued"
    await engine.end(call.contact_id, agent_id="v1")
    assert (await engine.agent("v1")).state == "wrap_up"
    assert (await engine.contact(nxt.contact_id)).state == "queued"
    clock.advance(5.1)
    await sweeper.sweep_once()
    assert (await engine.agent("v1")).state == "available"
    assert (await engine.contact(nxt.contact_id)).agent_id == "v1"


# --- lost agents -----------------------------------------------------------------------


async def test_lost_agent_contacts_go_back_to_the_head_of_the_queue(engine, clock, events):
    sweeper = Sweeper(engine, 0.1)
    await engine.login("gone", queues=["sales"], capacity={"chat": 2})
    held = await engine.enqueue("sales")
    await engine.accept(held.offer_id, "gone")
    clock.advance(1)
    offered = await engine.enqueue("sales")
    clock.advance(1)
    later = await engine.enqueue("sales")
    assert later.state == "queued"
    clock.advance(31)  # heartbeat_ttl_s = 30
    await sweeper.sweep_once()
    agent = await engine.agent("gone")
    assert agent.state == "offline" and agent.slots == []
    snap = await engine.queue_snapshot("sales")
    assert [w.contact_id for w in snap.head] == [
        held.contact_id,
        offered.contact_id,
        later.contact_id,
    ]
    kinds = [e.type for e in events if e.type in ("contact.requeued", "agent.lost")]
    assert kinds.count("contact.requeued") == 2 and "agent.lost" in kinds


async def test_heartbeat_keeps_the_agent(engine, clock):
    sweeper = Sweeper(engine, 0.1)
    await engine.login("alive", queues=["sales"])
    for _ in range(4):
        clock.advance(20)
        await engine.heartbeat("alive")
        await sweeper.sweep_once()
    assert (await engine.agent("alive")).state == "available"


async def test_voice_call_blocks_new_chats(engine):
    await engine.login("blend", queues=["sales", "phone"], capacity={"chat": 3, "voice": 1})
    call = await engine.enqueue("phone")
    await engine.accept(call.offer_id, "blend")
    chat = await engine.enqueue("sales")
    assert chat.state == "queued"


# --- overflow --------------------------------------------------------------------------


async def test_max_wait_overflows_to_another_queue_then_to_a_message(redis, site, clock):
    from contactd.bus import Bus
    from contactd.storage.keyspace import SiteKeys

    qs = [
        QueueConfig(id="first", name="F", max_wait_s=10, overflow_to="second"),
        QueueConfig(id="second", name="S", max_wait_s=10, overflow_to="message"),
    ]
    engine = RoutingEngine(redis, make_settings(site, qs), clock, Bus(), SiteKeys(site))
    sweeper = Sweeper(engine, 0.1)
    c = await engine.enqueue("first")
    clock.advance(10.5)
    await sweeper.sweep_once()
    moved = await engine.contact(c.contact_id)
    assert moved.queue_id == "second" and moved.state == "queued"
    clock.advance(10.5)
    await sweeper.sweep_once()
    final = await engine.contact(c.contact_id)
    assert final.state == "left_message" and final.final_reason == "max_wait"


# --- races -----------------------------------------------------------------------------


async def test_concurrent_accepts_of_one_offer_exactly_one_wins(engine):
    await engine.login("a1", queues=["sales"])
    c = await engine.enqueue("sales")
    results = await asyncio.gather(
        *(engine.accept(c.offer_id, "a1") for _ in range(20)), return_exceptions=True
    )
    assert all(not isinstance(r, Exception) for r in results)  # retries of the same accept
    assert len((await engine.agent("a1")).slots) == 1


async def test_concurrent_accept_and_decline_one_wins(engine):
    await engine.login("a1", queues=["sales"])
    c = await engine.enqueue("sales")
    results = await asyncio.gather(
        engine.accept(c.offer_id, "a1"), engine.decline(c.offer_id, "a1"), return_exceptions=True
    )
    final = await engine.contact(c.contact_id)
    failures = [r for r in results if isinstance(r, ContactdError)]
    assert len(failures) == 1 and failures[0].code is ErrorCode.offer_expired
    assert final.state in ("active", "queued")


async def test_many_concurrent_enqueues_never_overfill_agents(engine):
    for i in range(10):
        await engine.login(f"a{i}", queues=["sales"], capacity={"chat": 2})
    views = await asyncio.gather(*(engine.enqueue("sales") for _ in range(60)))
    holders = collections.Counter(v.agent_id for v in views if v.state == "offered")
    assert sum(holders.values()) == 20 and max(holders.values()) == 2
    snap = await engine.queue_snapshot("sales")
    assert snap.waiting == 40
