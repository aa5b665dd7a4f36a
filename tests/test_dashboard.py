"""The case dashboard and the audit export, through REST on a running server (real Redis,
SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta

from contactd.cases.dashboard import age_band
from contactd.directory.embedded import EmbeddedDirectory
from contactd.directory.models import Order, OrderItem, OrderStatus
from contactd.keys import CLOCK, DB
from tests import test_chat_sockets, tickets_helpers
from tests.tickets_helpers import Desk, MakeDesk

shutdown_guard = test_chat_sockets.shutdown_guard
database_url = tickets_helpers.database_url
make_desk = tickets_helpers.make_desk

T = "/api/v1/tickets"
SHIPPED = "O2026112300000001"  # u1001 (张三, 上海市, male, born 1990)
COMPLETED = "O2026111100000004"  # u1001


def test_age_bands() -> None:
    assert [age_band(y, 2026) for y in (2005, 2001, 1992, 1982, 1972, 1960, None)] == [
        "<25",
        "25-34",
        "25-34",
        "35-44",
        "45-54",
        "55+",
        "unknown",
    ]


async def _compensated_ticket(desk: Desk, amount: int) -> str:
    body = {
        "type": "compensation",
        "order_no": SHIPPED,
        "amount": amount,
        "reason": "延迟发货",
        "customer_id": "u1001",
    }
    tid = str((await desk.ok("POST", T, "agent1", body))["ticket"]["id"])
    await desk.ok("POST", f"{T}/{tid}/claim", "agent1")
    for action in ("approve", "start_payout", "complete_payout"):
        await desk.ok("POST", f"{T}/{tid}/actions", "agent1", {"action": action})
    return tid


async def test_dashboard_counts_times_repeat_purchase_and_breakdown(make_desk: MakeDesk) -> None:
    desk = await make_desk()
    await _compensated_ticket(desk, 1500)
    await desk.ok(
        "POST",
        T,
        "agent1",
        {
            "type": "partial_refund",
            "customer_id": "u1001",
            "order_no": COMPLETED,
            "items": [{"sku": "SKU10018", "qty": 1}],
            "amount": 990,
            "reason": "少发",
        },
    )
    # a compensation order through the compensation API counts as well
    status, comp = await desk.call(
        "POST",
        "/api/v1/compensations",
        "agent1",
        {
            "customer_phone": "13812341234",
            "order_no": SHIPPED,
            "items": [{"sku": "SKU10002", "qty": 1}],
            "scene": "defect",
            "asset_type": "coupon",
            "amount": 800,
            "reason": "瑕疵",
        },
    )
    assert status == 201, comp
    # 张三 buys again two days later (the directory is the company's order system)
    now = desk.app[CLOCK].now_ms()
    later = datetime.fromtimestamp(now / 1000, tz=UTC) + timedelta(days=2)
    item = OrderItem(sku="SKU10002", name="再来一单", qty=1, unit_price=1000, amount=1000)
    await EmbeddedDirectory(desk.app[DB]).add(
        orders=[
            Order(
                order_no="O2026112500009999",
                customer_id="u1001",
                status=OrderStatus.paid,
                items=(item,),
                total=1000,
                created_at=later,
            )
        ]
    )

    d = await desk.ok("GET", "/api/v1/dashboard/cases", "super1")
    by_type = {c["key"]: (c["count"], c["amount"]) for c in d["tickets_by_type"]}
    assert by_type == {"compensation": (1, 1500), "partial_refund": (1, 990)}
    assert {c["key"]: c["count"] for c in d["tickets_by_state"]} == {
        "paid": 1,
        "pending_review": 1,
    }
    assert {c["label"] for c in d["tickets_by_type"]} == {"赔付", "部分退款"}
    assert [(c["key"], c["count"]) for c in d["compensations_by_status"]] == [("pending_review", 1)]
    assert [(c["key"], c["count"], c["amount"]) for c in d["compensations_by_scene"]] == [
        ("defect", 1, 800)
    ]
    assert d["amounts_by_asset"] == []  # nothing approved yet
    assert sum(s["tickets"] for s in d["series"]) == 2
    assert sum(s["compensations"] for s in d["series"]) == 1
    assert d["series"][-1]["tickets"] == 2  # all today
    timing = d["ticket_timing"]
    assert timing["responded"] == 1 and timing["resolved"] == 1
    assert timing["avg_response_s"] >= 0 and timing["avg_resolution_s"] >= 0
    repeat = {r["group"]: r for r in d["repeat_purchase"]}
    assert repeat["compensated"] == {
        "group": "compensated",
        "customers": 1,
        "within_7d": 1,
        "within_30d": 1,
        "rate_7d": 1.0,
        "rate_30d": 1.0,
    }
    assert repeat["all"]["customers"] >= 1
    assert 0 <= repeat["all"]["within_7d"] <= repeat["all"]["within_30d"]
    assert [(c["key"], c["count"], c["amount"]) for c in d["by_region"]] == [("上海市", 1, 1500)]
    assert [(c["key"], c["label"]) for c in d["by_gender"]] == [("male", "男")]
    year = datetime.fromtimestamp(now / 1000, tz=UTC).year
    assert [c["key"] for c in d["by_age_band"]] == [age_band(1990, year)]
    assert d["directory_rows"] is True

    # a window before any of it is empty
    old = await desk.ok(
        "GET",
        "/api/v1/dashboard/cases?since=2020-01-01T00:00:00%2B08:00&until=2020-01-03T00:00:00%2B08:00",
        "super1",
    )
    assert old["tickets_by_type"] == [] and len(old["series"]) == 2
    hourly = await desk.ok("GET", "/api/v1/dashboard/cases?bucket=hour", "super1")
    assert sum(s["tickets"] for s in hourly["series"]) == 2

    for query, code in (
        ("?bucket=week", "validation_failed"),
        ("?since=yesterday", "validation_failed"),
        ("?since=2026-01-01T00:00:00", "validation_failed"),  # no timezone
        ("?since=2000&until=1000", "validation_failed"),
        ("?since=0", "validation_failed"),  # over a year
    ):
        assert (await desk.error("GET", "/api/v1/dashboard/cases" + query, "super1"))[1] == code
    assert await desk.error("GET", "/api/v1/dashboard/cases", "agent1") == (403, "forbidden")


async def test_audit_export_is_csv_with_before_after_and_is_itself_audited(
    make_desk: MakeDesk,
) -> None:
    desk = await make_desk()
    tid = await _compensated_ticket(desk, 700)
    status, text = await desk.call(
        "GET", f"/api/v1/audit/export?target_type=ticket&target_id={tid}", "admin1"
    )
    assert status == 200 and text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    actions = [r["action"] for r in rows]
    assert actions == [  # newest first
        "ticket.complete_payout",
        "ticket.start_payout",
        "ticket.approve",
        "ticket.claim",
        "ticket.created",
    ]
    done = rows[0]
    assert done["actor_name"] == "agent1" and done["target_id"] == tid
    assert json.loads(done["before"])["state"] == "paying"
    assert json.loads(done["after"])["state"] == "paid"
    assert json.loads(rows[-1]["after"])["reason"] == "延迟发货"  # Chinese survives

    assert await desk.error("GET", "/api/v1/audit/export", "super1") == (403, "forbidden")
    assert (await desk.error("GET", "/api/v1/audit/export?since=soon", "admin1"))[1] == (
        "validation_failed"
    )
    exports = await desk.ok("GET", "/api/v1/audit?action=audit.exported", "admin1")
    assert len(exports) == 1 and exports[0]["actor_name"] == "admin1"
    assert exports[0]["after"]["target_id"] == tid


async def test_a_paid_compensation_order_counts_in_amounts_and_repeat_purchase(
    make_desk: MakeDesk,
) -> None:
    desk = await make_desk()
    body = {
        "customer_phone": "13812341234",
        "order_no": SHIPPED,
        "items": [{"sku": "SKU10002", "qty": 1}],
        "scene": "defect",
        "asset_type": "balance",
        "amount": 1200,
        "reason": "瑕疵",
    }
    comp = await desk.ok("POST", "/api/v1/compensations", "agent1", body)
    path = f"/api/v1/compensations/{comp['id']}"
    while comp["status"] == "pending_review":  # business review, then finance if needed
        who = "review1" if comp["stage"] == "l1" else "finance1"
        comp = await desk.ok("POST", path + "/approve", who, {"version": comp["version"]})

    async def paid() -> bool:
        return (await desk.ok("GET", path, "finance1"))["status"] == "paid"

    for _ in range(200):  # the payout worker pays it out
        if await paid():
            break
        await asyncio.sleep(0.05)
    assert await paid()
    d = await desk.ok("GET", "/api/v1/dashboard/cases", "super1")
    assert [(c["key"], c["count"], c["amount"]) for c in d["amounts_by_asset"]] == [
        ("balance", 1, 1200)
    ]
    assert [(c["key"], c["count"]) for c in d["compensations_by_status"]] == [("paid", 1)]
    repeat = {r["group"]: r for r in d["repeat_purchase"]}
    assert repeat["compensated"]["customers"] == 1  # 张三, compensated in the window
    assert [c["key"] for c in d["by_region"]] == ["上海市"]
    assert d["compensation_timing"]["resolved"] == 1
