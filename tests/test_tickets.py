"""After-sales tickets through the interfaces: REST as staff, API keys and the widget, socket
pushes to agents and customers; real Redis, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import socketio

from contactd.cases.tickets_config import TicketType
from contactd.cases.tickets_models import FINAL_STATES, TRANSITIONS, customer_status, next_state
from tests import test_chat_sockets, tickets_helpers
from tests.chat_helpers import wait_for
from tests.tickets_helpers import Desk, MakeDesk

# the fixtures this module uses
shutdown_guard = test_chat_sockets.shutdown_guard
database_url = tickets_helpers.database_url
make_desk = tickets_helpers.make_desk

DELIVERED = "O2026111900000003"  # u1001, SKU10004 x1, 39900
COMPLETED = "O2026111100000004"  # u1001, SKU10007 x2 (25600) + SKU10018 x1 (1990)
SHIPPED = "O2026112300000001"  # u1001
PAID = "O2026112300001002"  # u1002 (diamond), 9900
PICKING = "O2026112300001003"  # u1002, 25900
T = "/api/v1/tickets"


def _partial(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "partial_refund",
        "order_no": COMPLETED,
        "items": [{"sku": "SKU10007", "qty": 1}],
        "amount": 5000,
        "reason": "一件破损",
    }
    body.update(kw)
    return body


async def _ticket(desk: Desk, who: str = "agent1", **kw: Any) -> dict[str, Any]:
    body = _partial(customer_id="u1001", **kw)
    detail = await desk.ok("POST", T, who, body)
    return dict(detail["ticket"])


# --- the state machines (pure) ---------------------------------------------------------


def _walk(kind: TicketType) -> set[str]:
    seen, todo = {"pending_review"}, ["pending_review"]
    while todo:
        state = todo.pop()
        for (s, _action), target in TRANSITIONS[kind].items():
            if s == state and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


@pytest.mark.parametrize("kind", list(TicketType))
def test_every_state_machine_is_closed_and_reaches_an_end(kind: TicketType) -> None:
    reachable = _walk(kind)
    assert reachable & FINAL_STATES - {"rejected", "cancelled"}, "no successful end"
    for (state, action), target in TRANSITIONS[kind].items():
        assert state in reachable and state not in FINAL_STATES, (state, action)
        assert next_state(kind, state, action) == target
    # every other (state, action) pair is illegal, including anything out of a final state
    actions = {a for (_s, a) in TRANSITIONS[kind]} | {"approve", "resolve", "ship"}
    for state in reachable:
        for action in actions:
            if (state, action) not in TRANSITIONS[kind]:
                assert next_state(kind, state, action) is None


# --- creating ---------------------------------------------------------------------------


async def test_ticket_from_a_chat_is_prefilled_and_checked_against_the_order(
    make_desk: MakeDesk,
) -> None:
    desk = await make_desk()
    _cust, _ag, sid, _visitor = await desk.chat("u1001", order_no=DELIVERED)
    body = {
        "type": "partial_refund",
        "session_id": sid,
        "items": [{"sku": "SKU10004", "qty": 1}],
        "amount": 1500,
        "reason": "部分损坏",
    }
    detail = await desk.ok("POST", T, "agent1", body)
    t = detail["ticket"]
    assert t["customer_id"] == "u1001" and t["customer_name"] == "张三"
    assert t["order_no"] == DELIVERED and t["session_id"] == sid and t["queue_id"] == "sales"
    assert t["customer_phone"] == "138****1234"  # masked
    assert t["items"] == [
        {"sku": "SKU10004", "qty": 1, "name": t["items"][0]["name"], "amount": 39900}
    ]
    assert t["state"] == "pending_review" and t["owner_id"] is None
    assert t["customer_status"] == "退款中"
    assert [n["action"] for n in detail["timeline"]] == ["create"]
    assert detail["timeline"][0]["actor_id"] == "agent1"

    # the same again while it is open: refused, nothing added
    assert await desk.error("POST", T, "agent1", body) == (409, "conflict")
    bad = [
        ({**body, "items": [{"sku": "SKU99999", "qty": 1}]}, "ticket_order_mismatch"),
        ({**body, "items": [{"sku": "SKU10004", "qty": 2}]}, "ticket_order_mismatch"),
        ({**body, "amount": 39901}, "ticket_order_mismatch"),
        ({**body, "type": "refund"}, "ticket_order_mismatch"),  # delivered: not before picking
        ({**body, "order_no": PAID}, "ticket_order_mismatch"),  # another customer's order
        ({**body, "amount": -1}, "validation_failed"),
        ({**body, "type": "teleport"}, "validation_failed"),
        ({**body, "hack": 1}, "validation_failed"),
        ({**body, "type": "reshipment", "order_no": COMPLETED}, "ticket_order_mismatch"),
    ]
    for wrong, code in bad:
        status, got = await desk.error("POST", T, "agent1", wrong)
        assert got == code, (wrong, status, got)
    # agent2 was not in that chat: the session does not exist for them
    assert (await desk.error("POST", T, "agent2", body))[1] == "not_found"
    listed = await desk.ok("GET", T + "?order_no=" + DELIVERED, "super1")
    assert len(listed["items"]) == 1


async def test_amount_rules_per_type(make_desk: MakeDesk) -> None:
    desk = await make_desk()
    # return-refund covers at most the chosen lines' share of what was charged (12800)
    _status, code = await desk.error(
        "POST", T, "agent1", _partial(type="return_refund", customer_id="u1001", amount=12801)
    )
    assert code == "ticket_order_mismatch"
    t = await _ticket(desk, type="return_refund", amount=12800)
    assert t["items"][0]["amount"] == 12800 and t["customer_status"] == "退货申请已受理"
    # reshipment carries no money, complaint needs no order
    await desk.error(
        "POST", T, "agent1", _partial(type="reshipment", customer_id="u1001", amount=10)
    )
    t = await _ticket(desk, type="reshipment", amount=None)
    assert t["amount"] == 0
    c = await desk.ok(
        "POST", T, "agent1", {"type": "complaint", "customer_id": "u1001", "reason": "态度差"}
    )
    assert c["ticket"]["order_no"] is None and c["ticket"]["customer_status"] == "已受理"
    # refund before picking: always the whole order
    r = await desk.ok(
        "POST", T, "agent1", {"type": "refund", "order_no": PICKING, "reason": "买错"}
    )
    assert r["ticket"]["amount"] == 25900 and r["ticket"]["customer_id"] == "u1002"


# --- pool, claim, ownership ------------------------------------------------------------


async def test_pool_claim_and_only_the_owner_acts(make_desk: MakeDesk) -> None:
    desk = await make_desk()
    t = await _ticket(desk)
    tid = t["id"]
    pools = {p["queue_id"]: p for p in (await desk.ok("GET", T + "/pools", "agent2"))["pools"]}
    assert pools["sales"]["count"] == 1 and pools["aftersales"]["count"] == 0
    assert pools["sales"]["oldest_age_s"] is not None
    pool = await desk.ok("GET", T + "/pools/sales", "agent2")
    assert [x["id"] for x in pool["items"]] == [tid]

    # nobody may act on a pool ticket before claiming it
    assert await desk.error("POST", f"{T}/{tid}/actions", "agent1", {"action": "approve"}) == (
        403,
        "ticket_not_owner",
    )
    # two agents claim at once: exactly one wins
    results = await asyncio.gather(
        desk.call("POST", f"{T}/{tid}/claim", "agent1"),
        desk.call("POST", f"{T}/{tid}/claim", "agent2"),
    )
    statuses = sorted(s for s, _ in results)
    assert statuses == [200, 409], results
    winner = next(d for s, d in results if s == 200)["owner_id"]
    loser = "agent2" if winner == "agent1" else "agent1"
    assert next(d for s, d in results if s == 409)["error"]["code"] == "ticket_already_claimed"

    assert (await desk.ok("GET", T + "/pools/sales", "agent2"))["items"] == []
    mine = await desk.ok("GET", T + "/mine", winner)
    assert [x["id"] for x in mine["items"]] == [tid]
    assert (await desk.ok("GET", T + "/mine", loser))["items"] == []

    # the loser can neither read nor act on it (no IDOR: 404 like a ticket that is not there)
    assert await desk.error("GET", f"{T}/{tid}", loser) == (404, "ticket_not_found")
    assert (await desk.error("POST", f"{T}/{tid}/actions", loser, {"action": "approve"}))[1] == (
        "ticket_not_found"
    )
    assert (await desk.ok("GET", T, loser))["items"] == []  # search shows only one's own

    # the owner walks the partial refund to its end; an illegal step is refused
    assert await desk.error("POST", f"{T}/{tid}/actions", winner, {"action": "ship"}) == (
        409,
        "ticket_invalid_transition",
    )
    v = await desk.ok("POST", f"{T}/{tid}/actions", winner, {"action": "approve", "version": 2})
    assert v["state"] == "approved" and v["actions"] == ["start_refund", "cancel"]
    assert await desk.error(
        "POST", f"{T}/{tid}/actions", winner, {"action": "start_refund", "version": 2}
    ) == (409, "ticket_changed")
    await desk.ok("POST", f"{T}/{tid}/actions", winner, {"action": "start_refund"})
    done = await desk.ok("POST", f"{T}/{tid}/actions", winner, {"action": "complete_refund"})
    assert done["final"] and done["customer_status"] == "退款成功 已到账"
    assert done["closed_at"] is not None
    assert await desk.error("POST", f"{T}/{tid}/actions", winner, {"action": "cancel"}) == (
        409,
        "ticket_closed",
    )
    detail = await desk.ok("GET", f"{T}/{tid}", "super1")
    nodes = [
        (n["action"], n["from_state"], n["to_state"], n["actor_id"]) for n in detail["timeline"]
    ]
    assert [n["to_state_label"] for n in detail["timeline"]][-1] == "退款完成"
    assert nodes == [
        ("create", None, "pending_review", "agent1"),
        ("claim", "pending_review", "pending_review", winner),
        ("approve", "pending_review", "approved", winner),
        ("start_refund", "approved", "refunding", winner),
        ("complete_refund", "refunding", "refunded", winner),
    ]


async def test_assign_transfer_dispatch_are_separate_permissions(make_desk: MakeDesk) -> None:
    desk = await make_desk()
    tid = (await _ticket(desk))["id"]
    to_agent2 = {"agent_id": "agent2"}
    assert await desk.error("POST", f"{T}/{tid}/assign", "agent1", to_agent2) == (403, "forbidden")
    assert await desk.error("POST", f"{T}/{tid}/dispatch", "lead1", {"queue_id": "aftersales"}) == (
        403,
        "forbidden",
    )
    assert await desk.error("POST", f"{T}/{tid}/claim", "qa1") == (403, "forbidden")
    assert (await desk.error("POST", f"{T}/{tid}/assign", "lead1", {"agent_id": "qa1"}))[1] == (
        "agent_not_found"  # QA does not handle tickets
    )
    v = await desk.ok("POST", f"{T}/{tid}/assign", "lead1", to_agent2)
    assert v["owner_id"] == "agent2" and v["owner_name"] == "客服二 Agent Two"
    # an agent cannot transfer (no permission); a senior agent only their own tickets
    assert await desk.error("POST", f"{T}/{tid}/transfer", "agent2", {"agent_id": "agent1"}) == (
        403,
        "forbidden",
    )
    assert (await desk.error("POST", f"{T}/{tid}/transfer", "senior1", {"agent_id": "agent1"}))[
        1
    ] == "ticket_not_found"
    await desk.ok("POST", f"{T}/{tid}/assign", "lead1", {"agent_id": "senior1"})
    v = await desk.ok(
        "POST", f"{T}/{tid}/transfer", "senior1", {"agent_id": "agent1", "note": "你来"}
    )
    assert v["owner_id"] == "agent1"
    # dispatch puts it back in a pool (another queue's)
    v = await desk.ok("POST", f"{T}/{tid}/dispatch", "super1", {"queue_id": "aftersales"})
    assert v["owner_id"] is None and v["queue_id"] == "aftersales"
    assert (await desk.error("POST", f"{T}/{tid}/dispatch", "super1", {"queue_id": "nope"}))[
        1
    ] == "unknown_queue"
    # priority: the owner, or anyone who may assign
    await desk.ok("POST", f"{T}/{tid}/claim", "agent1")
    assert (await desk.ok("PUT", f"{T}/{tid}/priority", "agent1", {"priority": 7}))["priority"] == 7
    assert (await desk.error("PUT", f"{T}/{tid}/priority", "agent2", {"priority": 1}))[1] == (
        "ticket_not_found"
    )
    assert (await desk.ok("PUT", f"{T}/{tid}/priority", "lead1", {"priority": 3}))["priority"] == 3
    actions = [n["action"] for n in (await desk.ok("GET", f"{T}/{tid}", "super1"))["timeline"]]
    assert actions == [
        "create",
        "assign",
        "assign",
        "transfer",
        "dispatch",
        "claim",
        "priority",
        "priority",
    ]


# --- automatic approval ----------------------------------------------------------------


async def test_fast_review_and_lightning_refund(make_desk: MakeDesk) -> None:
    desk = await make_desk(tickets={"lightning_refund": {"order_nos": [PICKING]}})
    fast = await desk.ok(
        "POST", T, "agent1", {"type": "refund", "order_no": PAID, "reason": "买错"}
    )
    t = fast["ticket"]
    assert t["state"] == "approved" and t["auto_rule"] == "fast_review"
    assert [(n["action"], n["actor_type"]) for n in fast["timeline"]] == [
        ("create", "staff"),
        ("approve", "system"),
    ]
    lightning = await desk.ok(
        "POST", T, "agent1", {"type": "refund", "order_no": PICKING, "reason": "不想要了"}
    )
    t = lightning["ticket"]
    assert t["state"] == "refunding" and t["auto_rule"] == "lightning_refund"
    # over the fast-review amount and not a lightning order: a person reviews it
    slow = await desk.ok("POST", T, "agent1", _partial(customer_id="u1001", amount=12000))
    assert slow["ticket"]["state"] == "pending_review" and slow["ticket"]["auto_rule"] is None


# --- the customer: status in the widget, urging -----------------------------------------


async def test_customer_sees_status_and_urges_with_throttle(make_desk: MakeDesk) -> None:
    desk = await make_desk(tickets={"urge_interval_s": 1.0})
    cust, ag, sid, visitor = await desk.chat("u1001", order_no=DELIVERED)
    body = {
        "type": "partial_refund",
        "session_id": sid,
        "items": [{"sku": "SKU10004", "qty": 1}],
        "amount": 2000,
        "reason": "坏了",
    }
    tid = (await desk.ok("POST", T, "agent1", body))["ticket"]["id"]
    vauth = "Visitor " + visitor
    status, listed = await desk.call("GET", f"/api/v1/im/tickets?session_id={sid}", auth=vauth)
    assert status == 200
    assert [(x["id"], x["status"], x["can_urge"]) for x in listed["items"]] == [
        (tid, "退款中", True)
    ]
    assert "customer_phone" not in listed["items"][0]  # only the simple view
    assert [(s["label"], s["current"]) for s in listed["items"][0]["steps"]] == [
        ("退款中", True),
        ("退款成功 已到账", False),
    ]
    assert (await desk.call("GET", "/api/v1/im/tickets"))[0] == 401
    _, english = await desk.call("GET", f"/api/v1/im/tickets?session_id={sid}&lang=en", auth=vauth)
    x = english["items"][0]
    assert (x["type_label"], x["status"]) == ("Partial refund", "Refund in progress")
    assert [s["label"] for s in x["steps"]] == ["Refund in progress", "Refunded, credited"]

    await desk.ok("POST", f"{T}/{tid}/claim", "agent1")
    mark = ag.mark()
    status, urged = await desk.call("POST", f"/api/v1/im/tickets/{tid}/urge", auth=vauth)
    assert status == 200 and urged["can_urge"] is False and urged["urge_available_at"]
    got = await ag.wait("ticket.urged", since=mark)
    assert got["ticket"]["id"] == tid and got["ticket"]["priority"] == 1
    status, again = await desk.call("POST", f"/api/v1/im/tickets/{tid}/urge", auth=vauth)
    assert status == 429 and again["error"]["code"] == "ticket_urge_throttled"
    # another visitor cannot urge (or see) it
    other = await desk.customer()
    other_auth = "Visitor " + other.got("hello")[0]["visitor_token"]
    status, nope = await desk.call("POST", f"/api/v1/im/tickets/{tid}/urge", auth=other_auth)
    assert status == 404 and nope["error"]["code"] == "ticket_not_found"
    assert (await desk.call("GET", "/api/v1/im/tickets", auth=other_auth))[1]["items"] == []

    await asyncio.sleep(1.05)  # the throttle window passes
    status, urged = await desk.call("POST", f"/api/v1/im/tickets/{tid}/urge", auth=vauth)
    assert status == 200
    t = await desk.ok("GET", f"{T}/{tid}", "agent1")
    assert t["ticket"]["urges"] == 2 and t["ticket"]["priority"] == 2

    # the customer's widget follows the ticket live
    mark = cust.mark()
    await desk.ok("POST", f"{T}/{tid}/actions", "agent1", {"action": "approve"})
    await desk.ok("POST", f"{T}/{tid}/actions", "agent1", {"action": "start_refund"})
    await desk.ok("POST", f"{T}/{tid}/actions", "agent1", {"action": "complete_refund"})
    pushed = await cust.wait(
        "ticket.updated", lambda d: d["ticket"]["status"] == "退款成功 已到账", since=mark
    )
    assert [s["done"] for s in pushed["ticket"]["steps"]] == [True, True]
    assert pushed["ticket"]["final"] and not pushed["ticket"]["can_urge"]
    status, closed = await desk.call("POST", f"/api/v1/im/tickets/{tid}/urge", auth=vauth)
    assert status == 409 and closed["error"]["code"] == "ticket_closed"


# --- stall warnings, screen-pop, open API, audit ------------------------------------------


async def test_stalled_tickets_warn_supervisors_once(make_desk: MakeDesk) -> None:
    desk = await make_desk(tickets={"stall_after_s": 0.3, "stall_check_s": 0.1})
    sup = await desk.peer("/supervisor", {"token": await desk.token("super1")})
    tid = (await _ticket(desk))["id"]
    got = await sup.wait("ticket.stalled", lambda d: d["ticket"]["id"] == tid)
    assert got["idle_s"] >= 0 and got["ticket"]["stalled"]
    stalled = await desk.ok("GET", T + "/stalled", "super1")
    assert [x["id"] for x in stalled["items"]] == [tid]
    await asyncio.sleep(0.5)  # more checks run: no second warning for the same stall
    assert len([d for d in sup.got("ticket.stalled") if d["ticket"]["id"] == tid]) == 1
    # progress clears it
    await desk.ok("POST", f"{T}/{tid}/claim", "agent1")
    await desk.ok("POST", f"{T}/{tid}/actions", "agent1", {"action": "approve"})
    t = await desk.ok("GET", f"{T}/{tid}", "agent1")
    assert t["ticket"]["stalled"] is False


async def test_screen_pop_shows_the_customers_open_tickets(make_desk: MakeDesk) -> None:
    desk = await make_desk()
    tid = (await _ticket(desk))["id"]
    comp = {
        "customer_phone": "13812341234",
        "order_no": SHIPPED,
        "items": [{"sku": "SKU10002", "qty": 1}],
        "scene": "defect",
        "asset_type": "coupon",
        "amount": 800,
        "reason": "瑕疵",
    }
    cid = (await desk.ok("POST", "/api/v1/compensations", "agent1", comp))["id"]
    ag = await desk.agent("agent2", ["sales"])
    cust = await desk.customer("u1001")
    await cust.ok("chat.start", {"entry_point": "home", "queue_id": "sales"})
    offer = await ag.wait("offer")
    tickets = offer["screen_pop"]["cases"]["tickets"]
    assert [t["id"] for t in tickets] == [tid]
    assert tickets[0]["customer_status"] == "退款中"
    assert tickets[0]["status_label"] == "部分退款 · 待审核"
    comps = offer["screen_pop"]["cases"]["compensations"]
    assert [(c["id"], c["status"], c["status_label"]) for c in comps] == [
        (cid, "pending_review", "待审核")
    ]


async def test_open_api_creates_and_queries_tickets_with_scoped_keys(make_desk: MakeDesk) -> None:
    desk = await make_desk()
    key = await desk.ok(
        "POST",
        "/api/v1/api-keys",
        "admin1",
        {"name": "after-sales", "scopes": ["tickets.create", "tickets.view"]},
    )
    ro = await desk.ok(
        "POST", "/api/v1/api-keys", "admin1", {"name": "ro", "scopes": ["tickets.view"]}
    )
    auth, ro_auth = "Bearer " + key["secret"], "Bearer " + ro["secret"]
    body = {
        "type": "compensation",
        "customer_phone": "+86 138-1234-1234",
        "order_no": SHIPPED,
        "amount": 1000,
        "reason": "延迟发货",
        "queue_id": "aftersales",
    }
    status, created = await desk.call("POST", T, body=body, auth=auth)
    assert status == 201, created
    t = created["ticket"]
    assert t["customer_id"] == "u1001" and t["queue_id"] == "aftersales"
    assert t["customer_status"] == "赔付审核中" and t["created_by"] == "after-sales"
    status, err = await desk.call("POST", T, body=body, auth=ro_auth)
    assert status == 403 and err["error"]["code"] == "forbidden"
    status, got = await desk.call("GET", f"{T}/{t['id']}", auth=ro_auth)
    assert status == 200 and got["ticket"]["id"] == t["id"]
    status, found = await desk.call("GET", f"{T}?customer_id=u1001", auth=ro_auth)
    assert [x["id"] for x in found["items"]] == [t["id"]]
    assert (await desk.call("GET", T, auth="Bearer nope"))[0] == 401


async def test_every_ticket_operation_is_audited_with_before_and_after(make_desk: MakeDesk) -> None:
    desk = await make_desk()
    tid = (await _ticket(desk))["id"]
    await desk.ok("POST", f"{T}/{tid}/claim", "agent1")
    await desk.ok("POST", f"{T}/{tid}/actions", "agent1", {"action": "approve"})
    entries = await desk.ok("GET", f"/api/v1/audit?target_type=ticket&target_id={tid}", "admin1")
    by_action = {e["action"]: e for e in entries}
    assert set(by_action) == {"ticket.created", "ticket.claim", "ticket.approve"}
    approve = by_action["ticket.approve"]
    assert approve["actor_name"] == "agent1"
    assert (
        approve["before"]["state"] == "pending_review" and approve["after"]["state"] == "approved"
    )
    assert by_action["ticket.claim"]["after"]["owner_id"] == "agent1"
    assert await desk.error("GET", "/api/v1/audit", "agent1") == (403, "forbidden")


async def test_owner_gets_live_updates_others_do_not(make_desk: MakeDesk) -> None:
    desk = await make_desk()
    a1 = await desk.agent("agent1")
    a2 = await desk.agent("agent2")
    tid = (await _ticket(desk))["id"]
    pool = await a2.wait("tickets.pool", lambda d: any(p["count"] for p in d["pools"]))
    assert "customer_name" not in str(pool)  # counts only
    await desk.ok("POST", f"{T}/{tid}/claim", "agent1")
    await a1.wait("ticket.updated", lambda d: d["ticket"]["id"] == tid)
    await desk.ok("POST", f"{T}/{tid}/actions", "agent1", {"action": "approve"})
    await a1.wait("ticket.updated", lambda d: d["ticket"]["state"] == "approved")
    await wait_for(lambda: a2.got("tickets.pool"), what="pool counts")
    assert a2.got("ticket.updated") == []


async def test_prefill_offers_the_chats_customer_orders_and_allowed_types(
    make_desk: MakeDesk,
) -> None:
    desk = await make_desk()
    _cust, _ag, sid, _visitor = await desk.chat("u1001", order_no=SHIPPED)
    pre = await desk.ok("GET", f"{T}/prefill?session_id={sid}", "agent1")
    assert pre["customer_id"] == "u1001" and pre["customer_phone"] == "138****1234"
    assert pre["order_no"] == SHIPPED and pre["queue_id"] == "sales"
    orders = {o["order_no"]: o for o in pre["orders"]}
    assert orders[SHIPPED]["types"] == ["compensation", "complaint"]
    assert set(orders[DELIVERED]["types"]) == {
        "partial_refund",
        "return_refund",
        "reshipment",
        "exchange",
        "compensation",
        "complaint",
    }
    assert orders[COMPLETED]["items"][0]["amount"] == 25600
    # only for a chat one handles
    assert await desk.error("GET", f"{T}/prefill?session_id={sid}", "agent2") == (404, "not_found")
    assert (await desk.error("GET", f"{T}/prefill", "agent1"))[1] == "validation_failed"
    assert await desk.error("GET", f"{T}/prefill?session_id={sid}", "qa1") == (403, "forbidden")


NEW_OF_TYPE: dict[str, dict[str, Any]] = {
    "refund": {"order_no": PICKING},
    "partial_refund": {
        "order_no": COMPLETED,
        "items": [{"sku": "SKU10018", "qty": 1}],
        "amount": 990,
    },
    "return_refund": {
        "order_no": DELIVERED,
        "items": [{"sku": "SKU10004", "qty": 1}],
        "amount": 39900,
    },
    "reshipment": {"order_no": COMPLETED, "items": [{"sku": "SKU10007", "qty": 1}]},
    "exchange": {"order_no": DELIVERED, "items": [{"sku": "SKU10004", "qty": 1}]},
    "compensation": {"order_no": SHIPPED, "amount": 500},
    "complaint": {"customer_id": "u1001"},
}


async def test_every_type_walks_its_path_over_rest_and_refuses_the_rest(
    make_desk: MakeDesk,
) -> None:
    desk = await make_desk()
    every_action = {a for graph in TRANSITIONS.values() for (_s, a) in graph}
    for kind in TicketType:
        body = {"type": kind.value, "reason": "测试", **NEW_OF_TYPE[kind.value]}
        t = (await desk.ok("POST", T, "agent1", body))["ticket"]
        tid = t["id"]
        assert t["state"] == "pending_review", kind
        await desk.ok("POST", f"{T}/{tid}/claim", "agent1")
        seen = []
        while not t["final"]:
            seen.append(t["customer_status"])
            assert t["customer_status"] == customer_status(kind, t["state"])
            for wrong in sorted(every_action - set(t["actions"]))[:3]:
                status, code = await desk.error(
                    "POST", f"{T}/{tid}/actions", "agent1", {"action": wrong}
                )
                assert (status, code) == (409, "ticket_invalid_transition"), (kind, wrong)
            step = next(a for a in t["actions"] if a not in ("reject", "cancel"))
            t = await desk.ok("POST", f"{T}/{tid}/actions", "agent1", {"action": step})
        assert t["state"] in FINAL_STATES - {"rejected", "cancelled"}, kind
        assert t["customer_status"] == customer_status(kind, t["state"]) and t["actions"] == []
        detail = await desk.ok("GET", f"{T}/{tid}", "agent1")
        assert len(detail["timeline"]) == len(seen) + 2  # create, claim, every step


async def test_reject_and_cancel_end_a_ticket_for_the_customer_too(make_desk: MakeDesk) -> None:
    desk = await make_desk()
    a = (await _ticket(desk))["id"]
    b = (await _ticket(desk, type="return_refund", amount=12800))["id"]
    for tid in (a, b):
        await desk.ok("POST", f"{T}/{tid}/claim", "agent1")
    rejected = await desk.ok(
        "POST", f"{T}/{a}/actions", "agent1", {"action": "reject", "note": "照片不清楚"}
    )
    assert rejected["state"] == "rejected" and rejected["customer_status"] == "申请未通过"
    await desk.ok("POST", f"{T}/{b}/actions", "agent1", {"action": "approve"})
    await desk.ok("POST", f"{T}/{b}/actions", "agent1", {"action": "start_pickup"})
    cancelled = await desk.ok("POST", f"{T}/{b}/actions", "agent1", {"action": "cancel"})
    assert cancelled["customer_status"] == "已取消" and cancelled["final"]
    # a closed ticket no longer blocks a new one of its type on the order
    again = await _ticket(desk)
    assert again["id"] not in (a, b)
    note = (await desk.ok("GET", f"{T}/{a}", "agent1"))["timeline"][-1]
    assert (note["action"], note["note"]) == ("reject", "照片不清楚")


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cf00000301010018dd8db40000000049454e44ae426082"
)


async def _upload(desk: Desk, visitor: str, sid: str, name: str) -> str:
    form = aiohttp.FormData()
    form.add_field("session_id", sid)
    form.add_field("file", PNG, filename=name, content_type="image/png")
    async with desk.http.post(
        desk.base + "/api/v1/im/uploads", data=form, headers={"Authorization": "Visitor " + visitor}
    ) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["id"])


async def test_ticket_carries_photos_from_its_chat(make_desk: MakeDesk) -> None:
    desk = await make_desk()
    cust, _ag, sid, visitor = await desk.chat("u1001", order_no=DELIVERED)
    photo = await _upload(desk, visitor, sid, "broken.png")
    sent = {"session_id": sid, "client_msg_id": "c-photo-1", "kind": "image"}
    await cust.ok("message.send", {**sent, "attachment_id": photo})
    pre = await desk.ok("GET", f"{T}/prefill?session_id={sid}", "agent1")
    assert [(a["id"], a["name"]) for a in pre["attachments"]] == [(photo, "broken.png")]
    body = {
        "type": "partial_refund",
        "session_id": sid,
        "items": [{"sku": "SKU10004", "qty": 1}],
        "amount": 2000,
        "reason": "外壳破损",
        "attachments": [photo],
    }
    t = (await desk.ok("POST", T, "agent1", body))["ticket"]
    assert [(a["id"], a["content_type"]) for a in t["attachments"]] == [(photo, "image/png")]
    async with desk.http.get(desk.base + t["attachments"][0]["url"]) as r:
        assert r.status == 200 and await r.read() == PNG

    # only files of the ticket's own chat, each once, and only from a chat
    _c2, _a2, other_sid, other_visitor = await desk.chat("u1002", agent="agent2")
    foreign = await _upload(desk, other_visitor, other_sid, "other.png")
    bad = [
        ({**body, "type": "return_refund", "attachments": [foreign]}, "not_found"),
        ({**body, "type": "return_refund", "attachments": [photo, photo]}, "validation_failed"),
        ({**body, "type": "return_refund", "attachments": ["x" * 11] * 11}, "validation_failed"),
    ]
    for wrong, code in bad:
        assert (await desk.error("POST", T, "agent1", wrong))[1] == code, wrong
    no_chat = {"type": "complaint", "customer_id": "u1001", "reason": "r", "attachments": [photo]}
    assert (await desk.error("POST", T, "agent1", no_chat))[1] == "validation_failed"


async def test_the_desk_listens_to_ticket_events_without_keeping_the_agent_present(
    make_desk: MakeDesk,
) -> None:
    """The ticket desk holds a listening (passive) socket: it gets the staff member's
    ticket events live, may send none, is open to desk staff who do not take chats — and
    it does not keep an agent who closed the workspace present in routing."""
    desk = await make_desk(routing={"sweep_interval_s": 0.05, "disconnect_grace_s": 0.5})
    listener = await desk.peer("/agent", {"token": await desk.token("agent1"), "passive": True})
    assert await listener.error("agent.login", {"queues": ["sales"]}) == "forbidden"
    assert listener.connected  # refused events leave it connected

    tid = (await _ticket(desk))["id"]
    await listener.wait("tickets.pool", lambda p: sum(x["count"] for x in p["pools"]) == 1)
    await desk.ok("POST", f"{T}/{tid}/assign", "lead1", {"agent_id": "agent1"})
    got = await listener.wait("ticket.updated", lambda p: p["action"] == "assign")
    assert got["ticket"]["id"] == tid and got["ticket"]["owner_id"] == "agent1"

    reviewer = await desk.peer("/agent", {"token": await desk.token("review1"), "passive": True})
    assert reviewer.connected  # no chats, but tickets of their own
    with pytest.raises(socketio.exceptions.ConnectionError):
        await desk.peer("/agent", {"token": await desk.token("review1")})

    workspace = await desk.agent("agent1", ["sales"])
    assert (await desk.ok("GET", "/api/v1/agents/agent1", "agent1"))["state"] == "available"
    await workspace.disconnect()
    await asyncio.sleep(1.5)  # the grace is 0.5 s; the desk's socket is still open
    assert listener.connected
    assert (await desk.ok("GET", "/api/v1/agents/agent1", "agent1"))["state"] == "offline"
