"""Signed webhooks on status changes and customer notifications, from the outbox, on
SQLite and PostgreSQL: delivered to small aiohttp services in the test, retried with
backoff, logged; the widget notice goes on the bus only for an order from a session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.bus import Bus
from contactd.cases.compensation_events import CustomerNotified
from contactd.cases.webhooks import SIGNATURE_HEADER, sign, verify
from contactd.clock import ManualClock
from contactd.settings import QueueConfig
from tests.compensation_helpers import add_session, as_, compensation, order_body
from tests.conftest import make_settings

SECRET = "whsec-test"


class Receiver:
    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, Any], bool]] = []
        self.answers: list[int] = []  # status codes to answer first, then 200

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        signature = request.headers.get(SIGNATURE_HEADER, "")
        t = int(signature.split(",")[0].removeprefix("t=") or 0) if signature else 0
        self.got.append(
            (
                request.headers["X-Contactd-Event"],
                await request.json(),
                verify(SECRET, raw, signature, t),
            )
        )
        status = self.answers.pop(0) if self.answers else 200
        return web.json_response({}, status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    server = TestServer(app)
    await server.start_server()
    yield rec, str(server.make_url("/hook"))
    await server.close()


def test_signatures_verify_and_tampering_fails() -> None:
    header = sign(SECRET, b'{"a":1}', 1_700_000_000)
    assert verify(SECRET, b'{"a":1}', header, 1_700_000_100)
    assert not verify(SECRET, b'{"a":2}', header, 1_700_000_100)
    assert not verify("other", b'{"a":1}', header, 1_700_000_100)
    assert not verify(SECRET, b'{"a":1}', header, 1_700_009_000)  # too old: a replay
    assert not verify(SECRET, b'{"a":1}', "garbage", 1_700_000_000)


async def test_status_changes_reach_subscribers_signed_and_retried(
    site: str,
    queues: list[QueueConfig],
    db: AsyncEngine,
    clock: ManualClock,
    receiver: tuple[Receiver, str],
) -> None:
    rec, url = receiver
    settings = make_settings(
        site,
        queues,
        compensation={
            "webhooks": [{"url": url, "secret": SECRET}],
            "notifier": {"webhook_url": url, "webhook_secret": SECRET},
            "payout": {"backoff_s": 2},
        },
    )
    events: list[BaseModel] = []
    bus = Bus()
    bus.subscribe(events.append)
    await add_session(db, "S20261123-000001", "ag1")
    async with compensation(settings, db, clock, bus) as comp:
        order = await comp.service.create(
            order_body(amount=5_000, session_id="S20261123-000001"), as_(settings, "ag1")
        )
        rec.answers = [500]
        assert await comp.outbox.run_once() == 0  # the receiver failed: retried later
        [log] = await comp.outbox.deliveries(order.id, 10)
        assert (log.state, log.attempts, log.last_status) == ("pending", 1, 500)
        clock.advance(2)
        assert await comp.outbox.run_once() == 1
        order = await comp.service.approve(order.id, order.version, as_(settings, "rev1"))
        await comp.payouts.run_once()
        assert await comp.outbox.run_once() == 4  # approved, paid, SMS gateway, widget
        log = await comp.outbox.deliveries(order.id, 10)
    assert {d.state for d in log} == {"delivered"}
    hooks = [(topic, body) for topic, body, good in rec.got if good and "event" in body]
    assert [t for t, _ in hooks] == [
        "compensation.created",
        "compensation.created",
        "compensation.approved",
        "compensation.paid",
    ]
    assert hooks[-1][1]["data"]["status"] == "paid" and hooks[-1][1]["data"]["id"] == order.id
    [sms] = [body for _, body, good in rec.got if good and "to" in body]
    assert sms["to"] == "13800138000" and "已到账" in sms["text"] and "¥50.00" in sms["text"]
    assert all(good for _, _, good in rec.got)
    [notice] = [e for e in events if isinstance(e, CustomerNotified)]
    assert notice.session_id == "S20261123-000001"
    assert (notice.notice.label, notice.notice.amount) == ("已到账", 5_000)


async def test_a_receiver_refusing_for_good_is_not_hammered(
    site: str,
    queues: list[QueueConfig],
    db: AsyncEngine,
    clock: ManualClock,
    receiver: tuple[Receiver, str],
) -> None:
    rec, url = receiver
    settings = make_settings(
        site,
        queues,
        compensation={
            "webhooks": [{"url": url, "secret": SECRET, "events": ["compensation.created"]}]
        },
    )
    async with compensation(settings, db, clock) as comp:
        order = await comp.service.create(order_body(amount=5_000), as_(settings, "ag1"))
        rec.answers = [410]
        assert await comp.outbox.run_once() == 0
        [log] = await comp.outbox.deliveries(order.id, 10)
        assert (log.state, log.last_status) == ("failed", 410)
        clock.advance(3600)
        assert await comp.outbox.run_once() == 0
    assert len(rec.got) == 1


async def test_orders_without_a_session_send_no_widget_notice(
    site: str, queues: list[QueueConfig], db: AsyncEngine, clock: ManualClock
) -> None:
    settings = make_settings(site, queues)
    events: list[BaseModel] = []
    bus = Bus()
    bus.subscribe(events.append)
    async with compensation(settings, db, clock, bus) as comp:
        order = await comp.service.create(order_body(amount=5_000), as_(settings, "ag1"))
        await comp.service.approve(order.id, order.version, as_(settings, "rev1"))
        assert await comp.payouts.run_once() == 1
        assert await comp.outbox.run_once() == 0
    assert not [e for e in events if isinstance(e, CustomerNotified)]


async def test_staff_hear_of_orders_waiting_for_them_and_creators_of_theirs(
    site: str,
    queues: list[QueueConfig],
    db: AsyncEngine,
    clock: ManualClock,
    receiver: tuple[Receiver, str],
) -> None:
    rec, url = receiver
    settings = make_settings(
        site,
        queues,
        compensation={"notifier": {"staff_webhook_url": url, "staff_webhook_secret": SECRET}},
    )
    async with compensation(settings, db, clock) as comp:
        order = await comp.service.create(order_body(amount=15_000), as_(settings, "ag1"))
        order = await comp.service.approve(order.id, order.version, as_(settings, "rev1"))
        await comp.service.reject(order.id, order.version, "缺照片", as_(settings, "fin1"))
        assert await comp.outbox.run_once() == 3
    got = [(body.get("to_roles"), body.get("to_user"), body["text"]) for _, body, good in rec.got]
    assert all(good for _, _, good in rec.got)
    assert got == [
        (
            ["reviewer", "supervisor", "admin"],
            None,
            f"赔付单 {order.id}（¥150.00，余额）待业务审核",
        ),
        (["finance", "admin"], None, f"赔付单 {order.id}（¥150.00，余额）待财务审核"),
        (None, "ag1", f"赔付单 {order.id}（¥150.00，余额）被驳回"),
    ]
