"""A refund the bot takes becomes an after-sales ticket: through the customer's socket, the
REST API, the widget's ticket list and the agent's screen-pop, on real Redis, SQLite and
PostgreSQL. Contract: docs/protocol.md ("Bot front line") and docs/architecture.md."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa

from contactd.channels.bot import requests as bot_requests
from contactd.errors import ContactdError, ErrorCode
from contactd.keys import DB, TICKETS
from contactd.storage.db import write_transaction
from contactd.storage.tables import bot_requests as requests_table
from tests import test_bot, tickets_helpers
from tests.chat_helpers import Peer
from tests.test_bot import bot_says, send
from tests.tickets_helpers import Desk, MakeDesk

# the fixtures this module uses
shutdown_guard = test_bot.bot_shutdown_guard
database_url = tickets_helpers.database_url
make_desk = tickets_helpers.make_desk

PAID = "O2026112300001002"  # u1002, 9900: fast review approves it at once
PICKING = "O2026112300001003"  # u1002, 25900: waits for review in the pool
UNPAID = "O2026112300000002"  # u1001
SHIPPED = "O2026112300000001"  # u1001
DELIVERED = "O2026111900000003"  # u1001, SKU10004 x1, 39900
BOT_FIRST = {"bot": {"first_queues": ["sales"]}}


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def bot_chat(desk: Desk, customer_id: str) -> tuple[Peer, str, str]:
    """An identified customer talking to the bot: (peer, session id, visitor token)."""
    cust = await desk.customer(customer_id)
    ack = await cust.ok("chat.start", {"entry_point": "home", "queue_id": "sales"})
    assert ack["session"]["state"] == "bot"
    await bot_says(cust, lambda t: "人工" in t)
    return cust, ack["session"]["session_id"], cust.got("hello")[0]["visitor_token"]


async def ask_refund(cust: Peer, sid: str, order_no: str, reason: str | None) -> str:
    """申请退款 → the order → (the reason): what the bot says last."""
    await send(cust, sid, "申请退款")
    await bot_says(cust, lambda t: "选择" in t)
    mark = cust.mark()
    await send(cust, sid, order_no)
    if reason is None:
        return str((await bot_says(cust, lambda t: order_no in t, since=mark))["text"])
    await bot_says(cust, lambda t: "原因" in t, since=mark)
    mark = cust.mark()
    await send(cust, sid, reason)
    return str((await bot_says(cust, lambda t: order_no in t, since=mark))["text"])


async def tickets_on(desk: Desk, order_no: str) -> list[dict[str, Any]]:
    found = await desk.ok("GET", f"/api/v1/tickets?order_no={order_no}", "super1")
    return list(found["items"])


async def requests_on(desk: Desk, order_no: str) -> list[dict[str, Any]]:
    return list(await desk.ok("GET", f"/api/v1/bot/requests?order_no={order_no}", "super1"))


async def test_a_refund_in_chat_opens_one_ticket_everyone_sees(make_desk: MakeDesk) -> None:
    desk = await make_desk(**BOT_FIRST)
    cust, sid, visitor = await bot_chat(desk, "u1002")
    said = await ask_refund(cust, sid, PICKING, "不想要了")

    [ticket] = await tickets_on(desk, PICKING)
    assert ticket["id"] in said and "我的售后" in said
    assert (ticket["type"], ticket["state"], ticket["amount"]) == (
        "refund",
        "pending_review",
        25900,
    )
    assert (ticket["session_id"], ticket["customer_id"], ticket["reason"]) == (
        sid,
        "u1002",
        "不想要了",
    )
    assert ticket["queue_id"] == "sales" and ticket["owner_id"] is None
    detail = await desk.ok("GET", f"/api/v1/tickets/{ticket['id']}", "super1")
    first = detail["timeline"][0]
    assert (first["action"], first["actor_type"], first["actor_id"]) == ("create", "system", "bot")
    [req] = await requests_on(desk, PICKING)
    assert (req["status"], req["ticket_id"], req["session_id"]) == (
        "ticket_opened",
        ticket["id"],
        sid,
    )

    # the customer: pushed live to the widget, and in 我的售后
    pushed = await cust.wait("ticket.updated", lambda d: d["ticket"]["id"] == ticket["id"])
    assert pushed["ticket"]["status"] == "退款中"
    status, mine = await desk.call(
        "GET", f"/api/v1/im/tickets?session_id={sid}", auth="Visitor " + visitor
    )
    assert status == 200 and [(t["id"], t["status"]) for t in mine["items"]] == [
        (ticket["id"], "退款中")
    ]
    # the ticket desk: waiting in the sales pool
    pool = await desk.ok("GET", "/api/v1/tickets/pools/sales", "agent2")
    assert [t["id"] for t in pool["items"]] == [ticket["id"]]

    # asking again names the same ticket and opens nothing
    said = await ask_refund(cust, sid, PICKING, None)
    assert ticket["id"] in said and "无需重复" in said
    assert len(await tickets_on(desk, PICKING)) == 1 and len(await requests_on(desk, PICKING)) == 1

    # the agent who takes over sees it in the screen-pop
    agent = await desk.agent("agent1", ["sales"])
    await cust.ok("bot.handoff", {"session_id": sid})
    offer = await agent.wait("offer", lambda d: d["session"]["session_id"] == sid)
    pop = offer["screen_pop"]
    assert [t["id"] for t in pop["cases"]["tickets"]] == [ticket["id"]]
    assert pop["bot"]["tickets"] == [ticket["id"]] and pop["bot"]["requests"] == [req["id"]]


async def test_the_order_s_state_decides_the_ticket(make_desk: MakeDesk) -> None:
    desk = await make_desk(**BOT_FIRST)
    cust, sid, _ = await bot_chat(desk, "u1001")
    # not refundable: the bot says so, nothing is recorded or opened
    said = await ask_refund(cust, sid, UNPAID, None)
    assert "不能在线申请退款" in said
    assert await requests_on(desk, UNPAID) == [] and await tickets_on(desk, UNPAID) == []
    # on its way: no ticket type fits, the request is kept for a person
    said = await ask_refund(cust, sid, SHIPPED, "太慢了")
    [req] = await requests_on(desk, SHIPPED)
    assert (req["status"], req["ticket_id"]) == ("recorded", None) and req["id"] in said
    assert await tickets_on(desk, SHIPPED) == []
    # delivered: the goods come back first — a return-and-refund of the whole order
    said = await ask_refund(cust, sid, DELIVERED, "质量问题")
    [ticket] = await tickets_on(desk, DELIVERED)
    assert ticket["id"] in said
    assert (ticket["type"], ticket["amount"], ticket["reason"]) == (
        "return_refund",
        39900,
        "质量问题",
    )
    assert [(i["sku"], i["qty"]) for i in ticket["items"]] == [("SKU10004", 1)]
    listed = await desk.ok("GET", "/api/v1/tickets?customer_id=u1001", "super1")
    assert [t["id"] for t in listed["items"]] == [ticket["id"]]


async def test_a_ticket_that_fails_to_open_is_kept_and_opened_once_later(
    make_desk: MakeDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot_requests, "RETRY_EVERY_S", 0.05)
    monkeypatch.setattr(bot_requests, "RETRY_AFTER_MS", 0)
    desk = await make_desk(**BOT_FIRST)
    tickets = desk.app[TICKETS]
    real_create = tickets.create
    broken = [True]

    async def flaky_create(*args: Any, **kw: Any) -> Any:
        if broken[0]:
            raise ConnectionError("the database went away")
        return await real_create(*args, **kw)

    monkeypatch.setattr(tickets, "create", flaky_create)
    cust, sid, visitor = await bot_chat(desk, "u1002")
    said = await ask_refund(cust, sid, PAID, "拍错了")
    [req] = await requests_on(desk, PAID)
    assert req["status"] == "ticket_pending" and req["id"] in said and "正在生成" in said
    assert await tickets_on(desk, PAID) == []

    broken[0] = False  # the retry task opens it
    opened = await eventually(
        lambda: desk.ok("GET", "/api/v1/bot/requests?status=ticket_opened", "super1"),
        "the retried ticket",
    )
    [ticket] = await tickets_on(desk, PAID)
    assert opened[0]["ticket_id"] == ticket["id"] and ticket["session_id"] == sid
    assert ticket["state"] == "approved" and ticket["auto_rule"] == "fast_review"
    await cust.wait("ticket.updated", lambda d: d["ticket"]["id"] == ticket["id"])

    # a process that died after opening the ticket but before noting it on the request:
    # the retry finds the same ticket instead of opening a second
    async with write_transaction(desk.app[DB]) as conn:
        await conn.execute(
            sa.update(requests_table)
            .where(requests_table.c.id == req["id"])
            .values(status="ticket_pending", ticket_id=None)
        )
    again = await eventually(
        lambda: desk.ok("GET", "/api/v1/bot/requests?status=ticket_opened", "super1"),
        "the request to find its ticket again",
    )
    assert again[0]["ticket_id"] == ticket["id"]
    assert len(await tickets_on(desk, PAID)) == 1
    status, mine = await desk.call(
        "GET", f"/api/v1/im/tickets?session_id={sid}", auth="Visitor " + visitor
    )
    assert status == 200 and [t["id"] for t in mine["items"]] == [ticket["id"]]


async def test_a_refused_ticket_goes_to_a_person_with_the_reason(
    make_desk: MakeDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = await make_desk(**BOT_FIRST)

    async def refuse(*args: Any, **kw: Any) -> Any:
        raise ContactdError(ErrorCode.ticket_order_mismatch, "the order moved on meanwhile")

    monkeypatch.setattr(desk.app[TICKETS], "create", refuse)
    cust, sid, _ = await bot_chat(desk, "u1002")
    said = await ask_refund(cust, sid, PICKING, "不想要了")
    failed = await desk.ok("GET", "/api/v1/bot/requests?status=ticket_failed", "super1")
    assert [(r["order_no"], r["details"]["ticket_error"]) for r in failed] == [
        (PICKING, "the order moved on meanwhile")
    ]
    assert failed[0]["id"] in said and "24 小时" in said  # a person handles it
    assert await tickets_on(desk, PICKING) == []


async def test_the_desk_follows_up_what_the_bot_could_not_finish_once(
    make_desk: MakeDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused refund waits in the follow-up list of the after-sales desk (agents have
    tickets.handle, not contacts.view) until one person marks it handled — with what they
    did and the ticket they opened by hand; a second try is told who did it; bad input
    changes nothing; the change is audited."""
    desk = await make_desk(**BOT_FIRST)

    async def refuse(*args: Any, **kw: Any) -> Any:
        raise ContactdError(ErrorCode.ticket_order_mismatch, "the order moved on meanwhile")

    monkeypatch.setattr(desk.app[TICKETS], "create", refuse)
    cust, sid, _ = await bot_chat(desk, "u1002")
    await ask_refund(cust, sid, PICKING, "不想要了")
    waiting = "/api/v1/bot/requests?status=recorded,ticket_failed"
    [req] = await desk.ok("GET", waiting, "agent1")
    assert (req["status"], req["order_no"], req["handled_by"]) == ("ticket_failed", PICKING, None)
    path = f"/api/v1/bot/requests/{req['id']}/handled"

    assert await desk.error("GET", waiting, None) == (401, "unauthenticated")
    assert len(await desk.ok("GET", waiting, "qa1")) == 1  # quality control reads it
    assert await desk.error("POST", path, "qa1", {"note": "x"}) == (403, "forbidden")
    assert await desk.error("GET", "/api/v1/bot/requests?status=nope", "agent1") == (
        422,
        "validation_failed",
    )
    for bad in ({}, {"note": "   "}, {"note": "x" * 1001}, {"note": "ok", "extra": 1}):
        assert await desk.error("POST", path, "agent1", bad) == (422, "validation_failed")
    assert await desk.error("POST", "/api/v1/bot/requests/R0/handled", "agent1", {"note": "x"}) == (
        404,
        "bot_request_not_found",
    )
    assert [r["status"] for r in await desk.ok("GET", waiting, "agent1")] == ["ticket_failed"]

    note = "已电话联系客户，改为换货"
    done = await desk.ok("POST", path, "agent1", {"note": f"  {note} ", "ticket_id": "T-by-hand"})
    assert (done["status"], done["handled_by"], done["handled_note"], done["ticket_id"]) == (
        "handled",
        "agent1",
        note,
        "T-by-hand",
    )
    assert done["handled_at"] and done["details"]["ticket_error"] == "the order moved on meanwhile"
    status, again = await desk.call("POST", path, "agent2", {"note": "我也处理了"})
    assert (status, again["error"]["code"]) == (409, "conflict")
    assert "agent1" in again["error"]["message"]
    assert await desk.ok("GET", waiting, "agent1") == []
    [kept] = await desk.ok("GET", f"/api/v1/bot/requests?order_no={PICKING}", "super1")
    assert (kept["handled_note"], kept["handled_by"]) == (note, "agent1")
    audit = await desk.ok("GET", f"/api/v1/audit?target_id={req['id']}", "admin1")
    assert [(e["action"], e["actor_id"] is not None) for e in audit] == [
        ("bot_request.handled", True)
    ]


async def test_a_request_with_its_ticket_is_not_for_a_person(make_desk: MakeDesk) -> None:
    desk = await make_desk(**BOT_FIRST)
    cust, sid, _ = await bot_chat(desk, "u1002")
    await ask_refund(cust, sid, PAID, "拍错了")
    [req] = await requests_on(desk, PAID)
    assert req["status"] == "ticket_opened"
    status, data = await desk.call(
        "POST", f"/api/v1/bot/requests/{req['id']}/handled", "agent1", {"note": "x"}
    )
    assert (status, data["error"]["code"]) == (409, "conflict")
    assert req["ticket_id"] in data["error"]["message"]
    [same] = await requests_on(desk, PAID)
    assert same == req


async def test_an_open_ticket_on_the_order_is_the_request_s_ticket(make_desk: MakeDesk) -> None:
    desk = await make_desk(**BOT_FIRST)
    body = {"type": "refund", "order_no": PICKING, "customer_id": "u1002", "reason": "电话申请"}
    made = await desk.ok("POST", "/api/v1/tickets", "agent1", body)
    cust, sid, _ = await bot_chat(desk, "u1002")
    said = await ask_refund(cust, sid, PICKING, "不想要了")
    assert made["ticket"]["id"] in said
    [req] = await requests_on(desk, PICKING)
    assert (req["status"], req["ticket_id"]) == ("ticket_opened", made["ticket"]["id"])
    assert len(await tickets_on(desk, PICKING)) == 1
