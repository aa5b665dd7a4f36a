"""The chat over real sockets: a real aiohttp server (pytest-aiohttp) with the real app,
real Redis, real SQLite, and python-socketio's AsyncClient as customers and agents.
The contract is docs/protocol.md."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from contactd.app import create_app
from contactd.directory.demo import seed_demo_directory
from contactd.keys import AUTH, DB
from contactd.settings import QueueConfig
from tests.chat_helpers import (
    Payload,
    Peer,
    connect_refused,
    identity,
    login,
    paths_containing,
    recancel_swallowed,
    refusal_code,
    rest_get,
    seqs,
    wait_for,
)
from tests.conftest import make_settings

SECRET = "identity-secret-for-tests"
PASSWORD = "correct horse battery"
ORDER = "O2026112300000001"
STAFF = {
    "agent1": ("agent", "客服一 Agent One"),
    "agent2": ("agent", "客服二 Agent Two"),
    "super1": ("supervisor", "主管 Supervisor"),
    "review1": ("reviewer", "审核 Reviewer"),
}


def _queues() -> list[QueueConfig]:
    return [
        QueueConfig(id="sales", name="Sales", strategy="idle", wrap_up_s=0),
        QueueConfig(id="support", name="Support", strategy="idle", wrap_up_s=0),
        QueueConfig(id="tiny", name="Tiny", strategy="idle", wrap_up_s=0, max_waiting=1),
    ]


class Chat:
    """One running server and the peers a test opened on it."""

    def __init__(self, base: str, app: Any) -> None:
        self.base = base
        self.app = app
        self.peers: list[Peer] = []
        self.tokens: dict[str, str] = {}

    async def token(self, username: str) -> str:
        if username not in self.tokens:
            self.tokens[username] = await login(self.base, username, PASSWORD)
        return self.tokens[username]

    async def peer(self, namespace: str, auth: Payload | None) -> Peer:
        peer = Peer(namespace)
        self.peers.append(peer)
        return await peer.connect(self.base, auth)

    async def agent(
        self, username: str, queues: list[str] | None = None, chat_slots: int | None = None
    ) -> Peer:
        """An agent's workspace socket, signed in to routing when ``queues`` is given."""
        peer = await self.peer("/agent", {"token": await self.token(username)})
        if queues is not None:
            req: Payload = {"queues": queues}
            if chat_slots is not None:
                req["capacity"] = {"chat": chat_slots}
            ack = await peer.ok("agent.login", req)
            assert ack["agent"]["state"] == "available"
        return peer

    async def customer(self, auth: Payload | None = None) -> Peer:
        peer = await self.peer("/customer", auth or {})
        await peer.wait("hello")
        return peer

    async def rest(self, path: str, username: str) -> tuple[int, Any]:
        return await rest_get(self.base, path, await self.token(username))

    async def start(self, customer: Peer, **req: Any) -> Payload:
        ack = await customer.ok("chat.start", {"entry_point": "home", **req})
        session: Payload = ack["session"]
        return session

    async def connected_pair(
        self, customer_auth: Payload | None = None, queue: str = "sales", agent: str = "agent1"
    ) -> tuple[Peer, Peer, str]:
        """A customer and ``agent`` in an active chat; returns (customer, agent, session id)."""
        ag = await self.agent(agent, [queue])
        cust = await self.customer(customer_auth)
        sid = (await self.start(cust, queue_id=queue))["session_id"]
        offer = await ag.wait("offer", lambda d: d["session"]["session_id"] == sid)
        await ag.ok("offer.accept", {"offer_id": offer["offer_id"]})
        await cust.wait("session.updated", lambda d: d["session"]["state"] == "active")
        return cust, ag, sid

    async def close(self) -> None:
        for peer in self.peers:
            await peer.disconnect()


MakeChat = Callable[..., Awaitable[Chat]]


@pytest.fixture
async def shutdown_guard() -> AsyncIterator[None]:
    """Set up before (so torn down after) the server: see recancel_swallowed."""
    task = asyncio.create_task(recancel_swallowed())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
async def make_chat(
    shutdown_guard: None,
    aiohttp_server: Callable[..., Any],
    redis_url: str,
    site: str,
    tmp_path: Path,
    redis: Any,
) -> AsyncIterator[MakeChat]:
    chats: list[Chat] = []

    async def make(
        *,
        im: Payload | None = None,
        routing: Payload | None = None,
        queues: list[QueueConfig] | None = None,
    ) -> Chat:
        assert not chats, "one server per test (the site's keys are cleaned per test)"
        settings = make_settings(
            site,
            queues or _queues(),
            redis_url=redis_url,
            data_dir=tmp_path,
            im={
                "identity_secret": SECRET,
                "entry_points": {"order_page": "sales", "home": "sales"},
                **(im or {}),
            },
            routing={"sweep_interval_s": 0.05, "disconnect_grace_s": 0.5, **(routing or {})},
        )
        server = await aiohttp_server(create_app(settings))
        app = server.app
        for username, (role, name) in STAFF.items():
            await app[AUTH].create_user(username, PASSWORD, role, name)
        await seed_demo_directory(app[DB], customers=2)
        chat = Chat(f"http://{server.host}:{server.port}", app)
        chats.append(chat)
        return chat

    yield make
    for chat in chats:
        await chat.close()


def _assert_contiguous(messages: list[Payload], first: int) -> None:
    assert seqs(messages) == list(range(first, first + len(messages))), seqs(messages)


# 1 -------------------------------------------------------------------------------------
@pytest.mark.parametrize("identified", [True, False], ids=["u1001", "anonymous"])
async def test_full_chat_flow(make_chat: MakeChat, identified: bool) -> None:
    chat = await make_chat()
    cust = await chat.customer(identity(SECRET, "u1001", "张三") if identified else None)
    hello = cust.got("hello")[0]
    assert hello["visitor_token"].startswith("v1.") and hello["session"] is None
    assert hello["customer"] == ({"id": "u1001", "name": "张三"} if identified else None)

    # queued while nobody is signed in
    question = "我的快递到哪了？"
    session = await chat.start(
        cust,
        entry_point="order_page",
        question=question,
        **({"order_no": ORDER} if identified else {}),
    )
    sid = session["session_id"]
    assert session["state"] == "queued" and session["queue_id"] == "sales"
    assert session["position"] == 0 and session["entry_point"] == "order_page"
    assert session["last_seq"] == 1  # the question is the first message

    agent = await chat.agent("agent1", ["sales"])
    offer = await agent.wait("offer")
    assert offer["session"]["session_id"] == sid and offer["session"]["state"] == "offered"
    pop = offer["screen_pop"]
    assert pop["entry_point"] == "order_page"
    assert [m["text"] for m in pop["transcript"]] == [question]
    card = pop["customer"]
    if identified:
        assert card["id"] == "u1001" and card["name"] == "张三"
        assert card["phone"] == "138****1234" and card["phone_masked"] is True
        assert card["member_level"] == "gold" and card["member_level_label"] == "金卡会员"
        assert pop["order_no"] == ORDER
        orders = {o["order_no"]: o for o in pop["orders"]}
        assert orders[ORDER]["status"] == "shipped" and orders[ORDER]["status_label"] == "已发货"
        assert all(o["status"] and o["status_label"] for o in pop["orders"])
        assert len({o["status"] for o in pop["orders"]}) > 1  # orders in several states
        # "The phone is always masked here" (sessions/screenpop.py; agent1 has no pii.view)
        assert paths_containing(offer, "13812341234") == []
    else:
        assert card["name"] == "访客 Visitor" and card["id"] is None
        assert card["phone"] is None and card["member_level"] is None
        assert pop["orders"] == [] and pop["previous_sessions"] == []

    ack = await agent.ok("offer.accept", {"offer_id": offer["offer_id"]})
    assert ack["session"]["state"] == "active"
    assert ack["session"]["agent"] == {"id": "agent1", "name": "客服一 Agent One"}
    assert ack["messages"][0]["text"] == question
    updated = await cust.wait("session.updated", lambda d: d["session"]["state"] == "active")
    assert updated["session"]["agent"]["id"] == "agent1"

    # messages both ways, in order, with increasing seq on both sides
    sent: list[Payload] = []
    for i, (who, text) in enumerate(
        [(agent, "您好，请问有什么可以帮您？"), (cust, "订单还没到"), (agent, "我帮您查一下")]
    ):
        m = (
            await who.ok(
                "message.send", {"session_id": sid, "client_msg_id": f"m{i}", "text": text}
            )
        )["message"]
        assert m["text"] == text and m["session_id"] == sid
        assert m["sender"]["type"] == ("agent" if who is agent else "customer")
        sent.append(m)
    assert seqs(sent) == sorted(seqs(sent)) and len(set(seqs(sent))) == 3
    for peer in (cust, agent):
        await peer.wait("message", lambda d: d["message"]["id"] == sent[-1]["id"])
        got = [d["message"] for d in peer.got("message")]
        assert seqs(got) == sorted(seqs(got)) and len(set(seqs(got))) == len(got)
        assert [m["id"] for m in got if m["client_msg_id"].startswith("m")] == [
            m["id"] for m in sent
        ]

    # typing both ways
    await cust.ok("typing", {"session_id": sid, "on": True})
    t = await agent.wait("typing")
    assert t["session_id"] == sid and t["on"] is True and t["sender"]["type"] == "customer"
    await agent.ok("typing", {"session_id": sid, "on": True})
    t = await cust.wait("typing")
    assert t == {
        "session_id": sid,
        "on": True,
        "sender": {"type": "agent", "name": "客服一 Agent One"},
    }

    # the agent ends; the customer is told and rates
    ended = await agent.ok("session.end", {"session_id": sid, "disposition": "answered"})
    assert ended["session"]["state"] == "ended"
    upd = await cust.wait("session.updated", lambda d: d["session"]["state"] == "ended")
    assert upd["session"]["end_reason"] == "resolved" and upd["session"]["ended_at"]
    await cust.ok("rating.submit", {"session_id": sid, "score": 5, "comment": "很好"})
    assert await cust.error("rating.submit", {"session_id": sid, "score": 1}) == "conflict"

    status, detail = await chat.rest(f"/api/v1/sessions/{sid}", "agent1")
    assert status == 200, detail
    rec, metrics, messages = detail["session"], detail["metrics"], detail["messages"]
    assert rec["state"] == "ended" and rec["agent_id"] == "agent1" and rec["agents"] == ["agent1"]
    assert rec["rating"] == 5 and rec["rating_comment"] == "很好"
    assert rec["end_reason"] == "resolved" and rec["disposition"] == "answered"
    assert rec["customer_id"] == ("u1001" if identified else None)
    stamps = [rec[k] for k in ("created_at", "offered_at", "accepted_at", "first_response_at")]
    assert all(stamps) and stamps == sorted(stamps) and rec["ended_at"] >= stamps[-1]
    assert metrics["wait_ms"] is not None and metrics["wait_ms"] >= 0
    assert metrics["first_response_ms"] is not None and metrics["first_response_ms"] >= 0
    assert metrics["avg_response_ms"] is not None and metrics["handle_ms"] is not None
    _assert_contiguous(messages, 1)
    texts = [m["text"] for m in messages if m["sender"]["type"] != "system"]
    assert texts == [question, *(m["text"] for m in sent)]
    assert rec["last_seq"] == len(messages)


# 2 -------------------------------------------------------------------------------------
async def test_queue_full_refuses_without_a_session_and_frees_up(make_chat: MakeChat) -> None:
    chat = await make_chat()
    first, second = await chat.customer(), await chat.customer()
    s1 = await chat.start(first, queue_id="tiny")
    assert s1["state"] == "queued"
    ack = await second.call("chat.start", {"entry_point": "home", "queue_id": "tiny"})
    assert ack["ok"] is False and ack["error"]["code"] == "queue_full"
    status, page = await chat.rest("/api/v1/sessions?limit=50", "super1")
    assert status == 200 and [s["id"] for s in page["items"]] == [s1["session_id"]]

    left = await first.ok("chat.end", {"session_id": s1["session_id"]})
    assert left["session"]["state"] == "ended"
    s2 = await chat.start(second, queue_id="tiny")
    assert s2["state"] == "queued" and s2["position"] == 0
    _, page = await chat.rest("/api/v1/sessions?limit=50", "super1")
    assert {s["id"]: s["state"] for s in page["items"]} == {
        s1["session_id"]: "ended",
        s2["session_id"]: "queued",
    }


# 3 -------------------------------------------------------------------------------------
def _position(peer: Peer, sid: str) -> int | None:
    updates = [d for d in peer.got("queue.position") if d["session_id"] == sid]
    return int(updates[-1]["position"]) if updates else None


async def test_queue_positions_are_pushed_and_move_up(make_chat: MakeChat) -> None:
    chat = await make_chat()
    customers: list[tuple[Peer, str]] = []
    for expected in range(3):
        c = await chat.customer()
        s = await chat.start(c)
        assert s["position"] == expected
        customers.append((c, s["session_id"]))
        # each customer is told their own place (and the earlier ones keep theirs)
        for pos, (peer, sid) in enumerate(customers):
            await wait_for(lambda p=peer, s=sid, e=pos: _position(p, s) == e, 3, f"position {pos}")
    for peer, sid in customers:
        assert all(d["session_id"] == sid for d in peer.got("queue.position"))
    # a newcomer at the back moves nobody: those ahead were told their place once
    first_peer = customers[0][0]
    assert [d["position"] for d in first_peer.got("queue.position")] == [0]

    (c1, s1), (c2, s2), (c3, s3) = customers
    await c1.ok("chat.end", {"session_id": s1})
    await wait_for(lambda: _position(c2, s2) == 0 and _position(c3, s3) == 1, 3, "moved up")
    update = c3.got("queue.position")[-1]
    assert set(update) == {"session_id", "position", "estimated_wait_s"}


# 4 -------------------------------------------------------------------------------------
async def test_reconnect_replays_exactly_what_was_missed(make_chat: MakeChat) -> None:
    chat = await make_chat()
    cust, agent, sid = await chat.connected_pair()
    token = cust.got("hello")[0]["visitor_token"]
    hi = await agent.ok("message.send", {"session_id": sid, "client_msg_id": "hi", "text": "hi"})
    await cust.wait("message", lambda d: d["message"]["id"] == hi["message"]["id"])
    last_seen = max(seqs([d["message"] for d in cust.got("message")]))
    await cust.disconnect()

    sent = []
    for i in range(20):
        ack = await agent.ok(
            "message.send", {"session_id": sid, "client_msg_id": f"a{i}", "text": f"第{i}条"}
        )
        sent.append(ack["message"])
    _assert_contiguous(sent, last_seen + 1)

    back = await chat.customer({"visitor_token": token})
    hello = back.got("hello")[0]
    assert hello["visitor_token"] == token
    assert hello["session"]["session_id"] == sid and hello["session"]["state"] == "active"
    assert hello["session"]["agent"]["id"] == "agent1"
    assert hello["session"]["last_seq"] == last_seen + 20
    synced = await back.ok("sync", {"session_id": sid, "after_seq": last_seen})
    assert [m["id"] for m in synced["messages"]] == [m["id"] for m in sent]
    assert [m["text"] for m in synced["messages"]] == [f"第{i}条" for i in range(20)]
    assert synced["session"]["agent"]["id"] == "agent1"

    # still the same conversation: live messages flow again, continuing the seq
    more = await agent.ok("message.send", {"session_id": sid, "client_msg_id": "z", "text": "在吗"})
    got = await back.wait("message")
    assert got["message"]["id"] == more["message"]["id"]
    assert got["message"]["seq"] == last_seen + 21
    reply = await back.ok("message.send", {"session_id": sid, "client_msg_id": "c", "text": "在"})
    await agent.wait("message", lambda d: d["message"]["id"] == reply["message"]["id"])
    _, detail = await chat.rest(f"/api/v1/sessions/{sid}", "agent1")
    assert detail["session"]["agents"] == ["agent1"] and detail["session"]["state"] == "active"
    _assert_contiguous(detail["messages"], 1)


# 5 -------------------------------------------------------------------------------------
async def test_resent_client_msg_id_is_stored_once(make_chat: MakeChat) -> None:
    chat = await make_chat()
    cust, agent, sid = await chat.connected_pair()
    body = {"session_id": sid, "client_msg_id": "c-171-1", "text": "谢谢"}
    first = (await cust.ok("message.send", body))["message"]
    again = (await cust.ok("message.send", body))["message"]
    assert again == first
    a_body = {"session_id": sid, "client_msg_id": "a-1", "text": "不客气"}
    a1 = (await agent.ok("message.send", a_body))["message"]
    assert (await agent.ok("message.send", a_body))["message"] == a1
    assert a1["seq"] == first["seq"] + 1

    # pushed once too: the agent saw the customer's message once before its own reply
    await cust.wait("message", lambda d: d["message"]["id"] == a1["id"])
    assert [d["message"]["id"] for d in agent.got("message")].count(first["id"]) == 1
    assert [d["message"]["id"] for d in cust.got("message")].count(a1["id"]) == 1
    _, detail = await chat.rest(f"/api/v1/sessions/{sid}", "agent1")
    ids = [m["client_msg_id"] for m in detail["messages"]]
    assert ids.count("c-171-1") == 1 and ids.count("a-1") == 1
    _assert_contiguous(detail["messages"], 1)


# 6 -------------------------------------------------------------------------------------
async def test_unauthorised_connects_are_refused(make_chat: MakeChat) -> None:
    chat = await make_chat()
    visitor_token = (await chat.customer()).got("hello")[0]["visitor_token"]
    agent_token = await chat.token("agent1")
    refusals: dict[str, tuple[str, Payload | None, str]] = {
        "agent without token": ("/agent", None, "unauthenticated"),
        "agent with empty auth": ("/agent", {}, "unauthenticated"),
        "agent with a forged token": ("/agent", {"token": "forged"}, "unauthenticated"),
        "agent with a visitor token": ("/agent", {"token": visitor_token}, "unauthenticated"),
        "staff without agent.work": ("/agent", {"token": await chat.token("review1")}, "forbidden"),
        "forged visitor token": (
            "/customer",
            {"visitor_token": visitor_token[:-1] + ("1" if visitor_token[-1] == "0" else "0")},
            "unauthenticated",
        ),
        "made-up visitor token": (
            "/customer",
            {"visitor_token": "v1.v_0123456789abcdef.00112233445566778899aabbccddeeff"},
            "unauthenticated",
        ),
        "identity with a wrong signature": (
            "/customer",
            {"identity": {**identity(SECRET, "u1002", "李娜")["identity"], "customer_id": "u1001"}},
            "unauthenticated",
        ),
        "identity signed with another secret": (
            "/customer",
            identity("not-the-secret", "u1001", "张三"),
            "unauthenticated",
        ),
        # docs/protocol.md: "A bad or expired signature refuses the connection
        # (connect_error with {"code": "unauthenticated"})"
        "expired identity": (
            "/customer",
            identity(SECRET, "u1001", "张三", age_s=86400 + 60),
            "unauthenticated",
        ),
        "supervisor feed with an agent token": ("/supervisor", {"token": agent_token}, "forbidden"),
        "supervisor feed without token": ("/supervisor", None, "unauthenticated"),
    }
    codes = {}
    for name, (ns, auth, _) in refusals.items():
        codes[name] = refusal_code(await connect_refused(chat.base, ns, auth))
    assert codes == {name: code for name, (_, _, code) in refusals.items()}

    # the right credentials do get in
    await chat.agent("agent1")
    sup = await chat.peer("/supervisor", {"token": await chat.token("super1")})
    snap = await sup.wait("snapshot")
    assert {q["queue_id"] for q in snap["queues"]} == {"sales", "support", "tiny"}
    back = await chat.customer(identity(SECRET, "u1001", "张三"))
    assert back.got("hello")[0]["customer"]["id"] == "u1001"


# 7 -------------------------------------------------------------------------------------
async def test_nobody_reads_or_acts_on_someone_elses_session(make_chat: MakeChat) -> None:
    chat = await make_chat()
    cust, agent1, sid = await chat.connected_pair()
    agent2 = await chat.agent("agent2", ["support"])
    intruder = await chat.customer()
    for peer, event, body in [
        (agent2, "sync", {"session_id": sid, "after_seq": 0}),
        (agent2, "message.send", {"session_id": sid, "client_msg_id": "x", "text": "hi"}),
        (agent2, "typing", {"session_id": sid, "on": True}),
        (agent2, "session.end", {"session_id": sid}),
        (agent2, "session.transfer", {"session_id": sid, "queue_id": "support", "note": "x"}),
        (agent2, "wrapup.done", {"session_id": sid}),
        (intruder, "sync", {"session_id": sid, "after_seq": 0}),
        (intruder, "message.send", {"session_id": sid, "client_msg_id": "x", "text": "hi"}),
        (intruder, "typing", {"session_id": sid, "on": True}),
        (intruder, "chat.end", {"session_id": sid}),
        (intruder, "rating.submit", {"session_id": sid, "score": 1}),
    ]:
        assert await peer.error(event, body) == "not_found", (peer.namespace, event)
    # same answer as for a session that does not exist at all
    assert await agent2.error("sync", {"session_id": "S20000101-000001"}) == "not_found"

    status, body = await chat.rest(f"/api/v1/sessions/{sid}", "agent2")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, page = await chat.rest("/api/v1/sessions", "agent2")
    assert status == 200 and page["items"] == []

    # nothing leaked and nothing changed
    assert not [d for d in intruder.got("message") + intruder.got("typing")]
    assert not agent2.got("message") and not agent2.got("session.updated")
    _, detail = await chat.rest(f"/api/v1/sessions/{sid}", "agent1")
    assert detail["session"]["state"] == "active" and detail["session"]["agent_id"] == "agent1"
    assert all(m["sender"]["type"] == "system" for m in detail["messages"])
    assert not [d for d in cust.got("typing")]
    await agent1.ok("message.send", {"session_id": sid, "client_msg_id": "ok", "text": "好"})


# 8 -------------------------------------------------------------------------------------
async def test_malformed_and_oversized_events(make_chat: MakeChat) -> None:
    chat = await make_chat(im={"max_text_chars": 50, "max_event_bytes": 4096})
    cust, agent, sid = await chat.connected_pair()
    token = cust.got("hello")[0]["visitor_token"]

    assert await cust.error("chat.bogus", {}) == "unknown_event"
    assert await agent.error("offer.steal", {"offer_id": "x"}) == "unknown_event"
    for payload in ["hello", [1, 2], 42, None]:
        assert await cust.error("sync", payload) == "validation_failed", payload
    bad = await cust.call("sync", {"session_id": sid, "after_seq": 0, "colour": "red"})
    assert bad["error"]["code"] == "validation_failed"
    assert any(p["field"] == "colour" for p in bad["error"]["details"]["problems"])
    missing = await cust.call("message.send", {"session_id": sid, "text": "no id"})
    assert missing["error"]["code"] == "validation_failed"
    assert any(p["field"] == "client_msg_id" for p in missing["error"]["details"]["problems"])
    assert await agent.error("agent.login", {"queues": "sales"}) == "validation_failed"
    assert await cust.error("rating.submit", {"session_id": sid, "score": 6}) == "validation_failed"

    long_text = {"session_id": sid, "client_msg_id": "long", "text": "长" * 51}
    assert await cust.error("message.send", long_text) in ("payload_too_large", "too_large")
    assert await agent.error("message.send", long_text) in ("payload_too_large", "too_large")
    # still healthy: a valid call on the same connection works
    fine = await cust.ok("message.send", {**long_text, "text": "长" * 50})
    assert fine["message"]["seq"] > 0 and cust.connected

    # a frame larger than im.max_event_bytes: no ack — the server closes the websocket
    # (aiohttp's max_msg_size, close code 1009) and the client sees a disconnect
    huge = {"session_id": sid, "client_msg_id": "huge", "text": "x" * 8000}
    await cust.client.emit("message.send", huge, namespace="/customer")
    await wait_for(lambda: not cust.connected, 3, "the server to drop the oversized sender")
    assert cust.disconnects == 1
    # the agent's connection is unaffected and the customer can come back
    await agent.ok("typing", {"session_id": sid, "on": False})
    back = await chat.customer({"visitor_token": token})
    assert back.got("hello")[0]["session"]["session_id"] == sid
    synced = await back.ok("sync", {"session_id": sid, "after_seq": 0})
    assert "huge" not in [m["client_msg_id"] for m in synced["messages"]]
    assert "long" in [m["client_msg_id"] for m in synced["messages"]]  # the 50-char one
    await back.ok("message.send", {"session_id": sid, "client_msg_id": "after", "text": "ok"})


async def test_flooding_is_rate_limited_per_connection(make_chat: MakeChat) -> None:
    chat = await make_chat(im={"events_burst": 5, "events_per_s": 5})
    flooder, other = await chat.customer(), await chat.customer()
    body = {"session_id": "S20000101-000001", "after_seq": 0}
    acks = await asyncio.gather(*(flooder.call("sync", body) for _ in range(20)))
    codes = [a["error"]["code"] for a in acks]
    assert codes.count("rate_limited") >= 10 and set(codes) <= {"rate_limited", "not_found"}
    assert codes.count("not_found") >= 1
    # another connection is not affected
    assert await other.error("sync", body) == "not_found"
    # the bucket refills: within a second the flooder is served again
    for _ in range(100):
        code = await flooder.error("sync", body)
        if code != "rate_limited":
            break
        await asyncio.sleep(0.05)
    assert code == "not_found"


# 9 -------------------------------------------------------------------------------------
async def test_transfer_to_another_queue(make_chat: MakeChat) -> None:
    chat = await make_chat()
    cust, agent1, sid = await chat.connected_pair(identity(SECRET, "u1001", "张三"))
    agent2 = await chat.agent("agent2", ["support"])
    await cust.ok("message.send", {"session_id": sid, "client_msg_id": "c1", "text": "我要退货"})
    await agent1.ok("message.send", {"session_id": sid, "client_msg_id": "a1", "text": "好的"})
    note = "客户要退货，请售后跟进"
    ack = await agent1.ok(
        "session.transfer", {"session_id": sid, "queue_id": "support", "note": note}
    )
    assert ack["session"]["state"] in ("queued", "offered")
    assert ack["session"]["queue_id"] == "support" and ack["session"]["agent"] is None

    offer = await agent2.wait("offer")
    assert offer["session"]["session_id"] == sid
    pop = offer["screen_pop"]
    assert pop["transfer_note"] == note and pop["customer"]["id"] == "u1001"
    texts = [m["text"] for m in pop["transcript"]]
    assert "我要退货" in texts and "好的" in texts
    system = await cust.wait(
        "message",
        lambda d: d["message"]["sender"]["type"] == "system" and "转接" in d["message"]["text"],
    )
    assert system["message"]["kind"] == "event"

    # the first agent is out of it
    assert (
        await agent1.error(
            "message.send", {"session_id": sid, "client_msg_id": "a2", "text": "还在吗"}
        )
        == "not_found"
    )
    assert await agent1.error("session.end", {"session_id": sid}) == "not_found"

    await agent2.ok("offer.accept", {"offer_id": offer["offer_id"]})
    upd = await cust.wait(
        "session.updated",
        lambda d: d["session"]["state"] == "active" and d["session"]["agent"]["id"] == "agent2",
    )
    assert upd["session"]["queue_id"] == "support"
    hello = await agent2.ok(
        "message.send", {"session_id": sid, "client_msg_id": "b1", "text": "您好"}
    )
    got = await cust.wait("message", lambda d: d["message"]["id"] == hello["message"]["id"])
    assert got["message"]["sender"]["id"] == "agent2"
    assert not [d for d in agent1.got("message") if d["message"]["id"] == hello["message"]["id"]]
    _, detail = await chat.rest(f"/api/v1/sessions/{sid}", "agent2")
    assert detail["session"]["agents"] == ["agent1", "agent2"]
    assert detail["session"]["transfers"] == 1
    _assert_contiguous(detail["messages"], 1)
    # the first agent can still read the history of a chat they served
    assert (await agent1.ok("sync", {"session_id": sid}))["session"]["agent"]["id"] == "agent2"


# 10 ------------------------------------------------------------------------------------
async def test_lost_agent_chat_goes_back_to_the_head_of_the_queue(make_chat: MakeChat) -> None:
    chat = await make_chat()
    cust, agent1, sid = await chat.connected_pair()
    waiting = await chat.customer()
    other = (await chat.start(waiting))["session_id"]  # behind nobody, no free agent
    m = cust.mark()
    await agent1.disconnect()

    notice = await cust.wait("notice", since=m, timeout=5)
    assert notice["session_id"] == sid and notice["code"] == "agent_reconnecting"
    await cust.wait("session.updated", lambda d: d["session"]["state"] == "queued", since=m)
    # back at the head: the next free agent gets this chat before the one that was waiting
    agent2 = await chat.agent("agent2", ["sales"], chat_slots=1)
    offer = await agent2.wait("offer")
    assert offer["session"]["session_id"] == sid
    assert sid != other
    await agent2.ok("offer.accept", {"offer_id": offer["offer_id"]})
    await cust.wait(
        "session.updated",
        lambda d: d["session"]["state"] == "active" and d["session"]["agent"]["id"] == "agent2",
    )
    sync = await waiting.ok("sync", {"session_id": other})
    assert sync["session"]["state"] == "queued" and sync["session"]["position"] == 0


async def test_agent_back_within_the_grace_keeps_the_chat(make_chat: MakeChat) -> None:
    chat = await make_chat()
    cust, agent1, sid = await chat.connected_pair()
    m = cust.mark()
    await agent1.disconnect()
    again = await chat.agent("agent1")  # a fresh socket, same staff member, within 0.5 s
    # the grace is 0.5 s and the sweeper runs every 0.05 s: well past it, nothing happened
    await asyncio.sleep(1.5)
    assert not cust.got("notice", since=m)
    assert not [
        d for d in cust.got("session.updated", since=m) if d["session"]["state"] != "active"
    ]
    ack = await again.ok(
        "message.send", {"session_id": sid, "client_msg_id": "back", "text": "我在"}
    )
    await cust.wait("message", lambda d: d["message"]["id"] == ack["message"]["id"])
    _, detail = await chat.rest(f"/api/v1/sessions/{sid}", "agent1")
    assert detail["session"]["state"] == "active" and detail["session"]["agents"] == ["agent1"]


# 11 ------------------------------------------------------------------------------------
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


async def _upload(
    base: str, token: str, sid: str, data: bytes, content_type: str, name: str = "a.png"
) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("session_id", sid)
    form.add_field("file", data, filename=name, content_type=content_type)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            base + "/api/v1/im/uploads", data=form, headers={"Authorization": f"Visitor {token}"}
        ) as r,
    ):
        return r.status, await r.json()


async def test_image_upload_reaches_the_agent(make_chat: MakeChat) -> None:
    chat = await make_chat(im={"upload_max_bytes": 2048})
    cust, agent, sid = await chat.connected_pair()
    token = cust.got("hello")[0]["visitor_token"]

    status, att = await _upload(chat.base, token, sid, PNG, "image/png", "截图.png")
    assert status == 201, att
    assert att["content_type"] == "image/png" and att["size"] == len(PNG)
    ack = await cust.ok(
        "message.send",
        {"session_id": sid, "client_msg_id": "img", "kind": "image", "attachment_id": att["id"]},
    )
    assert ack["message"]["kind"] == "image"
    got = await agent.wait("message", lambda d: d["message"]["client_msg_id"] == "img")
    url = got["message"]["attachment"]["url"]
    assert got["message"]["attachment"]["id"] == att["id"]
    async with aiohttp.ClientSession() as http, http.get(chat.base + url) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "image/png"
        assert await r.read() == PNG
    async with aiohttp.ClientSession() as http, http.get(chat.base + url[:-3] + "abc") as r:
        assert r.status == 404  # the signature is checked

    status, body = await _upload(
        chat.base, token, sid, b"MZ" + b"\0" * 100, "application/x-msdownload"
    )
    assert status == 415 and body["error"]["code"] == "unsupported_media_type"
    status, body = await _upload(chat.base, token, sid, b"not a png at all", "image/png")
    assert status == 415
    status, body = await _upload(chat.base, token, sid, PNG * 3, "image/png")
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    for bad_type, body_bytes in (
        ("multipart/form-data", b"--x\r\n"),  # no boundary
        ("multipart/form-data; boundary=zz", b"garbage without any boundary"),
    ):
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                chat.base + "/api/v1/im/uploads",
                data=body_bytes,
                headers={"Authorization": f"Visitor {token}", "Content-Type": bad_type},
            ) as r,
        ):
            assert r.status in (400, 422), await r.text()
            assert (await r.json())["error"]["code"] in ("bad_request", "validation_failed")
    # another visitor cannot upload into this chat
    other = (await chat.customer()).got("hello")[0]["visitor_token"]
    status, body = await _upload(chat.base, other, sid, PNG, "image/png")
    assert status == 404
    _, detail = await chat.rest(f"/api/v1/sessions/{sid}", "agent1")
    assert [m["client_msg_id"] for m in detail["messages"] if m["kind"] == "image"] == ["img"]


async def test_a_returning_customer_goes_to_their_last_agent_first(make_chat: MakeChat) -> None:
    """Sticky routing: back within im.sticky_within_s, a customer is offered to the agent
    who served them last — ahead of a colleague idle for longer — if that agent is online
    in the queue; busy, they are waited for im.sticky_wait_s; on a break, not at all."""
    chat = await make_chat(im={"sticky_wait_s": 0.5})
    agent1 = await chat.agent("agent1", ["sales"])
    await asyncio.sleep(0.01)
    agent2 = await chat.agent("agent2", ["sales"], chat_slots=1)
    cust = await chat.customer()
    first = (await chat.start(cust, queue_id="sales"))["session_id"]
    offer = await agent1.wait("offer", lambda d: d["session"]["session_id"] == first)
    await agent1.ok("offer.accept", {"offer_id": offer["offer_id"]})
    token = cust.got("hello")[0]["visitor_token"]
    await agent1.ok("session.end", {"session_id": first, "disposition": "answered"})
    await cust.disconnect()  # agent2 has now been idle the longest

    async def next_chat() -> tuple[Peer, str, Payload]:
        back = await chat.customer({"visitor_token": token})
        sid = (await chat.start(back, queue_id="sales"))["session_id"]
        return back, sid, await agent1_or_2(sid)

    async def agent1_or_2(sid: str) -> Payload:
        done, pending = await asyncio.wait(
            [
                asyncio.ensure_future(a.wait("offer", lambda d: d["session"]["session_id"] == sid))
                for a in (agent1, agent2)
            ],
            return_when=asyncio.FIRST_COMPLETED,
        )
        for waiting in pending:
            waiting.cancel()
        return next(iter(done)).result()

    # 1. agent2 has waited longer, yet the customer's last agent gets the chat, and sees
    # (an anonymous visitor's) earlier session of theirs in the screen-pop
    back, sid, offer = await next_chat()
    assert offer["offer_id"] in [o["offer_id"] for o in agent1.got("offer")]
    [earlier] = offer["screen_pop"]["previous_sessions"]
    assert (earlier["session_id"], earlier["agent_id"]) == (first, "agent1")
    await agent1.ok("offer.accept", {"offer_id": offer["offer_id"]})
    await agent1.ok("session.end", {"session_id": sid, "disposition": "answered"})
    await back.disconnect()

    # 2. the last agent busy at their limit: waited for half a second, then agent2
    await agent1.ok("agent.login", {"queues": ["sales"], "capacity": {"chat": 1}})
    await agent2.ok("agent.state", {"state": "away"})
    newcomer = await chat.customer()  # a new customer takes agent1's only slot
    other = (await chat.start(newcomer, queue_id="sales"))["session_id"]
    offer = await agent1.wait("offer", lambda d: d["session"]["session_id"] == other)
    await agent1.ok("offer.accept", {"offer_id": offer["offer_id"]})
    await agent2.ok("agent.state", {"state": "available"})
    back, sid, offer = await next_chat()
    assert offer["offer_id"] in [o["offer_id"] for o in agent2.got("offer")]
    _, detail = await chat.rest(f"/api/v1/sessions/{sid}", "super1")
    assert detail["session"]["offered_at"] - detail["session"]["queued_at"] >= 400
    await agent2.ok("offer.accept", {"offer_id": offer["offer_id"]})
    await agent2.ok("session.end", {"session_id": sid, "disposition": "answered"})
    await agent1.ok("session.end", {"session_id": other, "disposition": "answered"})
    await back.disconnect()

    # 3. agent2 served them last, but is on a break: the queue, at once, to agent1
    await agent2.ok("agent.state", {"state": "away", "reason": "lunch"})
    back, sid, offer = await next_chat()
    assert offer["offer_id"] in [o["offer_id"] for o in agent1.got("offer")]
    _, detail = await chat.rest(f"/api/v1/sessions/{sid}", "super1")
    assert detail["session"]["offered_at"] - detail["session"]["queued_at"] < 400
