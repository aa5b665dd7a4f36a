"""Supervisor actions in the routing engine (real Lua on real Redis): move, force-offer,
drain; their refusals change nothing; races leave the routing state consistent."""

from __future__ import annotations

import asyncio

import pytest

from contactd.errors import ContactdError, ErrorCode
from contactd.routing import events as ev
from contactd.routing.service import RoutingEngine
from contactd.settings import Settings
from tests.routing_invariants import check_structure, check_work_conservation, snapshot

QUEUES = ("sales", "support", "vip", "phone")


async def _consistent(engine: RoutingEngine, settings: Settings) -> None:
    snap = await snapshot(engine.redis, engine.keys, QUEUES)
    assert check_structure(snap, settings) == []


async def _code(coro: object) -> ErrorCode:
    with pytest.raises(ContactdError) as err:
        await coro  # type: ignore[misc]
    return err.value.code


# --- move ------------------------------------------------------------------------------


async def test_move_keeps_priority_and_wait_and_is_dispatched_in_the_new_queue(
    engine, clock, events, settings
):
    first = await engine.enqueue("sales", contact_id="m1", priority=3)
    await engine.enqueue("sales", contact_id="m2")
    clock.advance(12)
    moved = await engine.move_contact("m1", "support")
    assert (moved.queue_id, moved.state, moved.priority) == ("support", "queued", 3)
    assert moved.enqueued_at == first.enqueued_at  # the wait counts from its arrival
    assert (await engine.queue_snapshot("sales")).waiting == 1
    support = await engine.queue_snapshot("support")
    assert support.waiting == 1 and support.head[0].waited_ms == 12_000
    [move] = [e for e in events if isinstance(e, ev.ContactMoved)]
    assert (move.queue_id, move.to, move.waited_ms) == ("sales", "support", 12_000)
    # an agent of the new queue gets it at once
    await engine.login("s1", queues=["support"])
    assert (await engine.contact("m1")).state == "offered"
    await _consistent(engine, settings)


async def test_move_is_dispatched_at_once_when_an_agent_is_free(engine, settings):
    await engine.login("s1", queues=["support"])
    await engine.login("x1", queues=["sales"], state="away")
    await engine.enqueue("sales", contact_id="m1")
    moved = await engine.move_contact("m1", "support")
    assert (moved.state, moved.agent_id) == ("offered", "s1")
    await _consistent(engine, settings)


async def test_move_refusals_change_nothing(engine, settings):
    await engine.login("a1", queues=["sales"], capacity={"chat": 1})
    assert (await engine.enqueue("sales", contact_id="o1")).state == "offered"
    assert (await engine.enqueue("sales", contact_id="w1")).state == "queued"
    cases = {
        "offered contact": (engine.move_contact("o1", "support"), ErrorCode.contact_not_waiting),
        "voice queue": (engine.move_contact("w1", "phone"), ErrorCode.channel_mismatch),
        "same queue": (engine.move_contact("w1", "sales"), ErrorCode.invalid_state),
        "unknown queue": (engine.move_contact("w1", "nope"), ErrorCode.unknown_queue),
        "no contact": (engine.move_contact("ghost", "support"), ErrorCode.contact_not_found),
    }
    got = {name: await _code(coro) for name, (coro, _) in cases.items()}
    assert got == {name: code for name, (_, code) in cases.items()}
    assert [c.contact_id for c in (await engine.queue_snapshot("sales")).head] == ["w1"]
    assert (await engine.contact("o1")).state == "offered"
    await _consistent(engine, settings)


async def test_move_to_a_full_queue_is_refused(redis, site, clock):
    from contactd.bus import Bus
    from contactd.settings import QueueConfig
    from contactd.storage.keyspace import SiteKeys
    from tests.conftest import make_settings

    settings = make_settings(
        site, [QueueConfig(id="a", name="A"), QueueConfig(id="b", name="B", max_waiting=1)]
    )
    engine = RoutingEngine(redis, settings, clock, Bus(), SiteKeys(site))
    await engine.enqueue("a", contact_id="x")
    await engine.enqueue("b", contact_id="y")
    assert await _code(engine.move_contact("x", "b")) is ErrorCode.queue_full
    assert (await engine.contact("x")).queue_id == "a"


# --- force-offer -----------------------------------------------------------------------


async def test_force_offer_skips_the_queue_order_and_the_agents_state(engine, events, settings):
    await engine.enqueue("sales", contact_id="head")
    await engine.enqueue("sales", contact_id="later")
    await engine.login("boss_pick", queues=["support"], state="away")  # not even in sales
    view = await engine.force_offer("later", "boss_pick")
    assert (view.state, view.agent_id) == ("offered", "boss_pick")
    assert [c.contact_id for c in (await engine.queue_snapshot("sales")).head] == ["head"]
    offer = [e for e in events if isinstance(e, ev.OfferCreated)][-1]
    assert (offer.contact_id, offer.agent_id) == ("later", "boss_pick")
    accepted = await engine.accept(view.offer_id or "", "boss_pick")
    assert accepted.state == "active"
    # the away agent gets nothing else on their own
    assert (await engine.contact("head")).state == "queued"
    await _consistent(engine, settings)


async def test_force_offer_declined_goes_back_to_waiting(engine, settings):
    await engine.login("a1", queues=["sales"], state="away")
    await engine.enqueue("sales", contact_id="c1")
    view = await engine.force_offer("c1", "a1")
    back = await engine.decline(view.offer_id or "", "a1")
    assert back.state == "queued"
    # a supervisor may insist: the decline exclusion does not stop a forced offer
    again = await engine.force_offer("c1", "a1")
    assert again.state == "offered"
    await _consistent(engine, settings)


async def test_force_offer_refusals_change_nothing(engine, settings):
    await engine.login("full", queues=["sales"], capacity={"chat": 1})
    held = await engine.enqueue("sales", contact_id="held")
    assert held.agent_id == "full"
    await engine.enqueue("sales", contact_id="w1")
    await engine.login("gone", queues=["sales"])
    await engine.set_state("gone", "offline")
    await engine.login("nochat", queues=["sales"], capacity={"chat": 0})
    cases = {
        "agent full": (engine.force_offer("w1", "full"), ErrorCode.agent_busy),
        "agent offline": (engine.force_offer("w1", "gone"), ErrorCode.agent_offline),
        "agent unknown": (engine.force_offer("w1", "nobody"), ErrorCode.agent_not_found),
        "no chat slots": (engine.force_offer("w1", "nochat"), ErrorCode.channel_mismatch),
        "not waiting": (engine.force_offer("held", "nochat"), ErrorCode.contact_not_waiting),
    }
    got = {name: await _code(coro) for name, (coro, _) in cases.items()}
    assert got == {name: code for name, (_, code) in cases.items()}
    assert (await engine.contact("w1")).state == "queued"
    assert (await engine.queue_snapshot("sales")).waiting == 1
    await _consistent(engine, settings)


# --- drain -----------------------------------------------------------------------------


async def test_drain_finishes_current_work_takes_nothing_new_then_goes_offline(
    engine, events, settings
):
    await engine.login("a1", queues=["sales"], capacity={"chat": 3})
    c1 = await engine.enqueue("sales", contact_id="c1")
    await engine.accept(c1.offer_id or "", "a1")
    drained = await engine.drain("a1")
    assert (drained.state, drained.reason, drained.draining) == ("away", "draining", True)
    assert len(drained.slots) == 1  # keeps the chat it is in
    c2 = await engine.enqueue("sales", contact_id="c2")
    assert c2.state == "queued"  # a free slot, but nothing new while draining
    await engine.end("c1", agent_id="a1")
    after = await engine.agent("a1")
    assert (after.state, after.reason, after.draining, after.slots) == (
        "offline",
        "drained",
        False,
        [],
    )
    changes = [(e.state, e.reason) for e in events if isinstance(e, ev.AgentStateChanged)]
    assert changes[-2:] == [("away", "draining"), ("offline", "drained")]
    assert (await engine.contact("c2")).state == "queued"
    await _consistent(engine, settings)


async def test_drain_of_an_idle_agent_is_offline_at_once_and_available_cancels_a_drain(
    engine, settings
):
    await engine.login("idle", queues=["sales"])
    assert (await engine.drain("idle")).state == "offline"
    await engine.login("busy", queues=["sales"])
    c = await engine.enqueue("sales", contact_id="c1")
    await engine.accept(c.offer_id or "", "busy")
    await engine.drain("busy")
    back = await engine.set_state("busy", "available")
    assert (back.state, back.draining) == ("available", False)
    await engine.end("c1", agent_id="busy")
    assert (await engine.agent("busy")).state == "available"
    assert await _code(engine.drain("idle")) is ErrorCode.agent_offline
    assert await _code(engine.drain("nobody")) is ErrorCode.agent_not_found
    await _consistent(engine, settings)


async def test_drain_with_an_offer_pending_goes_offline_when_it_is_declined(engine, settings):
    await engine.login("a1", queues=["sales"])
    c = await engine.enqueue("sales", contact_id="c1")
    await engine.drain("a1")
    await engine.decline(c.offer_id or "", "a1")
    assert (await engine.agent("a1")).state == "offline"
    assert (await engine.contact("c1")).state == "queued"
    await _consistent(engine, settings)


# --- races -----------------------------------------------------------------------------


async def test_two_supervisors_force_offer_one_contact_exactly_one_wins(engine, settings):
    for a in ("a1", "a2", "a3", "a4"):
        await engine.login(a, queues=["support"], state="away")
    await engine.enqueue("sales", contact_id="c1")
    results = await asyncio.gather(
        *(engine.force_offer("c1", a) for a in ("a1", "a2", "a3", "a4")), return_exceptions=True
    )
    wins = [r for r in results if not isinstance(r, BaseException)]
    losses = [r for r in results if isinstance(r, ContactdError)]
    assert len(wins) == 1 and len(losses) == 3
    assert {e.code for e in losses} == {ErrorCode.contact_not_waiting}
    holders = [a.agent_id for a in await engine.agents() if a.slots]
    assert holders == [wins[0].agent_id]
    await _consistent(engine, settings)


async def test_move_racing_cancel_and_dispatch_never_loses_or_doubles_a_contact(engine, settings):
    for i in range(20):
        await engine.enqueue("sales", contact_id=f"c{i}")
    ops = []
    for i in range(20):
        ops.append(engine.move_contact(f"c{i}", "support"))
        if i % 3 == 0:
            ops.append(engine.cancel(f"c{i}"))
    ops.append(engine.login("s1", queues=["support"], capacity={"chat": 5}))
    ops.append(engine.login("s2", queues=["sales"], capacity={"chat": 5}))
    await asyncio.gather(*ops, return_exceptions=True)
    states = [await engine.contact(f"c{i}") for i in range(20)]
    sales = await engine.queue_snapshot("sales", head=50)
    support = await engine.queue_snapshot("support", head=50)
    waiting = {c.contact_id for c in sales.head} | {c.contact_id for c in support.head}
    held = {s.contact_id for a in await engine.agents() for s in a.slots}
    for c in states:
        places = (c.contact_id in waiting) + (c.contact_id in held)
        assert places == (0 if c.state == "abandoned" else 1), c
    # nobody waits in a queue whose agent has a free slot
    snap = await snapshot(engine.redis, engine.keys, QUEUES)
    assert check_work_conservation(snap, settings, engine.clock.now_ms()) == []
    await _consistent(engine, settings)
