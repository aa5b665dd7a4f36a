"""Supervisor actions and the monitor's scoping through the real interfaces: REST actions do
what they say and are audited, refusals change nothing, each supervisor sees and acts on
only their queues and teams, and the socket view is fresh within a second (measured)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from contactd.keys import AUDIT, ENGINE, MONITOR
from tests.chat_helpers import Peer
from tests.monitor_helpers import MakeFloor, floor_guard, make_floor  # noqa: F401  (fixtures)

AGENTS = ("a1", "a2", "a3", "a4")


async def _audit(floor: Any, action: str) -> list[Any]:
    return await floor.app[AUDIT].query(action=action)


async def test_each_action_does_what_it_says_and_is_audited(make_floor: MakeFloor) -> None:  # noqa: F811
    floor = await make_floor()
    engine = floor.app[ENGINE]
    for a in AGENTS:
        await engine.login(a, queues=["sales"], state="away")

    # set state, with a reason
    status, agent = await floor.call(
        "POST", "/api/v1/monitor/agents/a1/state", "sup", {"state": "away", "reason": "meeting"}
    )
    assert status == 200 and (agent["state"], agent["reason"]) == ("away", "meeting")
    [entry] = await _audit(floor, "monitor.agent_state_set")
    assert (entry.actor_name, entry.target_id) == ("sup", "a1")
    assert entry.before == {"state": "away", "reason": ""}
    assert entry.after == {"state": "away", "reason": "meeting"}

    # move a waiting contact
    await engine.enqueue("sales", contact_id="w1", priority=2)
    status, moved = await floor.call(
        "POST", "/api/v1/monitor/contacts/w1/move", "sup", {"queue_id": "support"}
    )
    assert status == 200 and (moved["queue_id"], moved["priority"]) == ("support", 2)
    assert (await engine.queue_snapshot("support")).head[0].contact_id == "w1"
    [entry] = await _audit(floor, "monitor.contact_moved")
    assert entry.before["queue_id"] == "sales" and entry.after["queue_id"] == "support"

    # force-offer it to a named (away) agent
    status, offered = await floor.call(
        "POST", "/api/v1/monitor/contacts/w1/offer", "sup", {"agent_id": "a2"}
    )
    assert status == 200 and (offered["state"], offered["agent_id"]) == ("offered", "a2")
    assert [s.contact_id for s in (await engine.agent("a2")).slots] == ["w1"]
    [entry] = await _audit(floor, "monitor.offer_forced")
    assert entry.after["agent_id"] == "a2" and entry.after["offer_id"] == offered["offer_id"]

    # drain the agent: keeps the offer, then offline once it is declined
    status, drained = await floor.call("POST", "/api/v1/monitor/agents/a2/drain", "sup")
    assert status == 200 and drained["draining"] and drained["state"] == "away"
    await engine.decline(offered["offer_id"], "a2")
    assert (await engine.agent("a2")).state == "offline"
    [entry] = await _audit(floor, "monitor.agent_drained")
    assert entry.before == {"state": "away", "slots": 1}


async def test_refusals_are_clear_and_change_nothing(make_floor: MakeFloor) -> None:  # noqa: F811
    floor = await make_floor()
    engine = floor.app[ENGINE]
    await engine.login("a1", queues=["sales"], state="away")
    await engine.enqueue("sales", contact_id="w1")
    cases = {
        "agent may not act": ("a1", "/api/v1/monitor/contacts/w1/move", {"queue_id": "support"}),
        "qa may not act": ("qa1", "/api/v1/monitor/contacts/w1/move", {"queue_id": "support"}),
        "unknown field": ("sup", "/api/v1/monitor/contacts/w1/move", {"queue": "support"}),
        "bad queue id": ("sup", "/api/v1/monitor/contacts/w1/move", {"queue_id": "No Such"}),
        "unknown queue": ("sup", "/api/v1/monitor/contacts/w1/move", {"queue_id": "nope"}),
        "voice queue": ("sup", "/api/v1/monitor/contacts/w1/move", {"queue_id": "phone"}),
        "no contact": ("sup", "/api/v1/monitor/contacts/zz/move", {"queue_id": "support"}),
        "bad state": ("sup", "/api/v1/monitor/agents/a1/state", {"state": "asleep"}),
        "no agent": ("sup", "/api/v1/monitor/agents/zz/drain", None),
        "offer to nobody": ("sup", "/api/v1/monitor/contacts/w1/offer", {"agent_id": "zz"}),
        "out of scope queue": ("lead", "/api/v1/monitor/contacts/w1/offer", {"agent_id": "a3"}),
        "out of scope agent": ("lead", "/api/v1/monitor/agents/a1/drain", None),
    }
    got = {}
    for name, (who, path, body) in cases.items():
        status, reply = await floor.call("POST", path, who, body)
        got[name] = (status, reply["error"]["code"])
        assert reply["error"]["message"], name
    assert got == {
        "agent may not act": (403, "forbidden"),
        "qa may not act": (403, "forbidden"),
        "unknown field": (422, "validation_failed"),
        "bad queue id": (422, "validation_failed"),
        "unknown queue": (404, "unknown_queue"),
        "voice queue": (422, "channel_mismatch"),
        "no contact": (404, "contact_not_found"),
        "bad state": (422, "validation_failed"),
        "no agent": (404, "agent_not_found"),
        "offer to nobody": (404, "agent_not_found"),
        "out of scope queue": (404, "contact_not_found"),  # outside the scope it is not there
        "out of scope agent": (403, "out_of_scope"),
    }
    contact = await engine.contact("w1")
    assert (contact.state, contact.queue_id) == ("queued", "sales")
    assert (await engine.agent("a1")).state == "away"
    for action in ("monitor.contact_moved", "monitor.offer_forced", "monitor.agent_drained"):
        assert await _audit(floor, action) == []


async def test_a_team_lead_sees_and_acts_on_only_their_queues_and_team(
    make_floor: MakeFloor,  # noqa: F811
) -> None:
    floor = await make_floor()
    engine = floor.app[ENGINE]
    for a in AGENTS:
        await engine.login(a, queues=["sales", "support"], state="away")
    await engine.enqueue("sales", contact_id="s1")
    await engine.enqueue("support", contact_id="p1")
    lead = await floor.supervisor("lead")
    sup = await floor.supervisor("sup")
    lead_view = await lead.wait("snapshot")
    sup_view = await sup.wait("snapshot")
    assert [q["queue_id"] for q in lead_view["queues"]] == ["support"]
    assert [a["agent_id"] for a in lead_view["agents"]] == ["a3", "a4"]
    assert [q["queue_id"] for q in sup_view["queues"]] == ["sales", "support", "phone"]
    assert [a["agent_id"] for a in sup_view["agents"]] == list(AGENTS)
    status, rest_view = await floor.call("GET", "/api/v1/monitor", "lead")
    assert status == 200 and [q["queue_id"] for q in rest_view["queues"]] == ["support"]

    # pushes keep to the scope too: an offer in sales reaches the supervisor, not the lead
    status, _ = await floor.call(
        "POST", "/api/v1/monitor/contacts/p1/offer", "lead", {"agent_id": "a3"}
    )
    assert status == 200
    pushed = await lead.wait("snapshot", lambda d: d["agents"][0]["offered"] == 1)
    assert [a["agent_id"] for a in pushed["agents"]] == ["a3", "a4"]
    assert all(s["queue_id"] == "support" for s in pushed["sessions"])
    status, reply = await floor.call("GET", "/api/v1/monitor", "a1")
    assert (status, reply["error"]["code"]) == (403, "forbidden")


async def test_the_live_view_is_fresh_within_a_second_on_every_node(
    make_floor: MakeFloor,  # noqa: F811
) -> None:
    """Measured through the socket: from a change made on one node to the supervisor's
    screen on another (Redis fan-out), including the windowed counters (database)."""
    node_a = await make_floor()
    node_b = await make_floor(users=False)
    sup = await node_a.supervisor("sup")
    await sup.wait("snapshot")
    worst = 0.0
    for i in range(5):
        mark = sup.mark()
        started = time.monotonic()
        await node_b.app[ENGINE].enqueue("sales", contact_id=f"f{i}")

        def arrived(d: dict[str, Any], n: int = i + 1) -> bool:
            sales = d["queues"][0]
            return bool(sales["waiting"] == n and sales["stats"]["today"]["offered"] == n)

        await sup.wait("snapshot", arrived, since=mark)
        worst = max(worst, time.monotonic() - started)
    assert worst <= 1.0, f"the monitor was {worst:.3f} s behind"


async def test_a_floor_nobody_watches_computes_no_snapshots(make_floor: MakeFloor) -> None:  # noqa: F811
    """Routing changes cost no live-monitor work while no supervisor is connected anywhere;
    one who connects (here, to the other node) gets every change from then on."""
    node_a = await make_floor()
    node_b = await make_floor(users=False)
    live = node_a.app[MONITOR].live
    computed = 0
    real = live.snapshot

    async def counting() -> Any:
        nonlocal computed
        computed += 1
        return await real()

    live.snapshot = counting  # type: ignore[method-assign]
    engine = node_a.app[ENGINE]
    for i in range(5):
        await engine.enqueue("sales", contact_id=f"u{i}")
    await asyncio.sleep(1.5)  # three push intervals
    assert computed == 0

    sup = await node_b.supervisor("sup")
    first = await sup.wait("snapshot")
    assert first["queues"][0]["waiting"] == 5
    mark = sup.mark()
    await engine.enqueue("sales", contact_id="u5")  # on the node without supervisors
    seen = await sup.wait("snapshot", lambda d: d["queues"][0]["waiting"] == 6, since=mark)
    assert seen["queues"][0]["stats"]["today"]["offered"] == 6
    assert computed >= 1


async def test_supervisor_joins_a_chat_silently_then_visibly(make_floor: MakeFloor) -> None:  # noqa: F811
    floor = await make_floor()
    customer = Peer("/customer")
    floor.peers.append(customer)
    await customer.connect(floor.base, {})
    await customer.wait("hello")
    start = await customer.ok("chat.start", {"entry_point": "home", "question": "能开发票吗"})
    sid = start["session"]["session_id"]
    agent = Peer("/agent")
    floor.peers.append(agent)
    await agent.connect(floor.base, {"token": await floor.token("a1")})
    await agent.ok("agent.login", {"queues": ["sales"]})
    offer = await agent.wait("offer")
    await agent.ok("offer.accept", {"offer_id": offer["offer_id"]})
    sup = await floor.supervisor("sup")

    # silent: the transcript so far and every new message, nobody told
    joined = await sup.ok("session.join", {"session_id": sid, "mode": "silent"})
    assert [m["text"] for m in joined["messages"] if m["sender"]["type"] == "customer"] == [
        "能开发票吗"
    ]
    assert await sup.error(
        "session.say", {"session_id": sid, "client_msg_id": "s0", "text": "x"}
    ) == ("invalid_state")
    mark = customer.mark()
    await customer.ok("message.send", {"session_id": sid, "client_msg_id": "c1", "text": "在吗"})
    seen = await sup.wait("message", lambda d: d["message"]["text"] == "在吗")
    assert seen["message"]["session_id"] == sid
    assert not [
        d for d in customer.got("message", mark) if d["message"]["sender"]["type"] == "system"
    ]

    # visible: customer and agent are told, and the supervisor's words reach both
    await sup.ok("session.leave", {"session_id": sid})
    await sup.ok("session.join", {"session_id": sid, "mode": "visible"})
    await customer.wait(
        "message", lambda d: "supervisor sup joined" in (d["message"]["text"] or "")
    )
    await sup.ok(
        "session.say", {"session_id": sid, "client_msg_id": "s1", "text": "您好，我是主管"}
    )
    said = await customer.wait("message", lambda d: d["message"]["text"] == "您好，我是主管")
    assert said["message"]["sender"]["id"] == "sup"
    await agent.wait("message", lambda d: d["message"]["text"] == "您好，我是主管")

    # scope and permission: a team lead of another queue cannot find it; bad input refused
    lead = await floor.supervisor("lead")
    assert await lead.error("session.join", {"session_id": sid}) == "session_not_found"
    assert await sup.error("session.join", {"session_id": sid, "mode": "loud"}) == (
        "validation_failed"
    )
    assert await sup.error("session.join", {"session_id": "S0"}) == "session_not_found"
    entries = await _audit(floor, "monitor.session_joined")
    assert sorted(e.after["mode"] for e in entries) == ["silent", "visible"]
    assert {e.actor_name for e in entries} == {"sup"}


async def test_reply_overdue_alerts_reach_only_supervisors_who_see_the_agent(
    make_floor: MakeFloor,  # noqa: F811
) -> None:
    floor = await make_floor(im={"agent_response_alert_s": 0.5})
    sup = await floor.supervisor("sup")
    lead = await floor.supervisor("lead")  # team north: a3, a4
    customer = Peer("/customer")
    floor.peers.append(customer)
    await customer.connect(floor.base, {})
    await customer.wait("hello")
    start = await customer.ok("chat.start", {"entry_point": "home"})
    sid = start["session"]["session_id"]
    agent = Peer("/agent")
    floor.peers.append(agent)
    await agent.connect(floor.base, {"token": await floor.token("a1")})  # team south
    await agent.ok("agent.login", {"queues": ["sales"]})
    offer = await agent.wait("offer")
    await agent.ok("offer.accept", {"offer_id": offer["offer_id"]})
    await customer.ok("message.send", {"session_id": sid, "client_msg_id": "c1", "text": "在吗"})
    alert = await sup.wait("alert")
    assert (alert["session_id"], alert["agent_id"]) == (sid, "a1")
    await agent.wait("alert")  # the agent is told too
    assert lead.got("alert") == []
