"""Payouts, exactly once, on SQLite and PostgreSQL: the embedded ledger and coupon
connectors, the HTTP connector against a small aiohttp service, and injected failures
(connector errors, timeouts, a worker dying between the call and the record)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.cases import jobs
from contactd.cases.compensation_app import Compensation
from contactd.cases.compensation_config import AssetType
from contactd.cases.compensation_models import CompensationView, Status
from contactd.cases.connectors import AssetConnector, PayoutJob
from contactd.cases.webhooks import SIGNATURE_HEADER, verify
from contactd.clock import ManualClock
from contactd.errors import ContactdError, ErrorCode
from contactd.settings import QueueConfig, Settings
from contactd.storage.tables import coupons, ledger_txns, payouts
from tests.compensation_helpers import as_, compensation, order_body, staff
from tests.conftest import make_settings

SECRET = "s3cret-for-tests"


class Counting:
    """Wraps a connector: counts calls, can fail before or after the real call."""

    def __init__(self, inner: AssetConnector) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self.fail_before = 0  # this many calls raise before paying
        self.hang_after_paying = 0.0  # pay, then hang this long (a timeout after success)
        self.refuse = False

    async def pay(self, payout: PayoutJob) -> str:
        self.calls.append(payout.id)
        if self.refuse:
            raise ContactdError(ErrorCode.insufficient_funds, "the asset system refused")
        if self.fail_before > 0:
            self.fail_before -= 1
            raise RuntimeError("connection reset by peer")
        ref = await self.inner.pay(payout)
        if self.hang_after_paying:
            await asyncio.sleep(self.hang_after_paying)
        return ref


def settings_with(site: str, queues: list[QueueConfig], **payout: Any) -> Settings:
    cfg: dict[str, Any] = {"payout": {"backoff_s": 2, "backoff_max_s": 60, **payout}}
    return make_settings(site, queues, compensation=cfg)


@pytest.fixture
def settings(site: str, queues: list[QueueConfig]) -> Settings:
    return settings_with(site, queues, timeout_s=0.5, max_attempts=4)


@pytest.fixture
async def comp(
    settings: Settings, db: AsyncEngine, clock: ManualClock
) -> AsyncIterator[Compensation]:
    async with compensation(settings, db, clock) as c:
        yield c


def wrap(comp: Compensation, asset: AssetType) -> Counting:
    counting = Counting(comp.payouts.connectors[asset])
    comp.payouts.connectors[asset] = counting
    return counting


async def approved(comp: Compensation, settings: Settings, **kw: Any) -> CompensationView:
    order = await comp.service.create(order_body(**kw), as_(settings, "ag1"))
    order = await comp.service.approve(order.id, order.version, as_(settings, "rev1"))
    if order.stage == "l2":
        order = await comp.service.approve(order.id, order.version, as_(settings, "fin1"))
    assert order.status == Status.approved
    return order


async def current(comp: Compensation, settings: Settings, order_id: str) -> CompensationView:
    return await comp.service.get(order_id, staff(settings, "fin1"))


async def ledger_refs(db: AsyncEngine) -> list[str]:
    async with db.connect() as conn:
        return list((await conn.execute(sa.select(ledger_txns.c.ref))).scalars())


async def payout_row(db: AsyncEngine, payout_id: str) -> dict[str, Any]:
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(payouts).where(payouts.c.id == payout_id))).mappings()
        return dict(row.one())


async def test_an_approved_balance_order_is_paid_once_into_the_ledger(
    comp: Compensation, settings: Settings, db: AsyncEngine
) -> None:
    order = await approved(comp, settings, amount=5_000)
    assert await comp.payouts.run_once() == 1
    assert await comp.payouts.run_once() == 0
    paid = await current(comp, settings, order.id)
    assert paid.status == Status.paid and paid.payout_state == "succeeded" and paid.paid_at
    assert (await comp.ledger.balances("c1")).available == 5_000
    assert await ledger_refs(db) == [order.payout_id]
    rec = await comp.ledger.reconcile()
    assert rec.ok and rec.transactions == 1 and rec.total_balance == 0


@pytest.mark.parametrize("asset", ["coupon", "cash"])
async def test_coupons_and_cash_are_paid_once_too(
    comp: Compensation, settings: Settings, db: AsyncEngine, asset: str
) -> None:
    order = await approved(comp, settings, amount=3_000, asset_type=asset)
    counting = wrap(comp, AssetType(asset))
    assert await comp.payouts.run_once() == 1
    # a second call with the same payout id (as after a crash) pays nothing new
    job = PayoutJob(order.payout_id or "", order.id, AssetType(asset), 3_000, "c1")
    first = (await payout_row(db, job.id))["external_ref"]
    assert await counting.inner.pay(job) == first
    if asset == "coupon":
        async with db.connect() as conn:
            rows = (await conn.execute(sa.select(coupons))).mappings().all()
        assert [(r["payout_id"], r["value"], r["account"]) for r in rows] == [(job.id, 3_000, "c1")]
    else:
        assert (await comp.ledger.balances("c1")).cash == 3_000
        assert await ledger_refs(db) == [job.id]


async def test_a_failing_connector_is_retried_with_backoff_until_it_pays_once(
    comp: Compensation, settings: Settings, db: AsyncEngine, clock: ManualClock
) -> None:
    order = await approved(comp, settings, amount=5_000)
    counting = wrap(comp, AssetType.balance)
    counting.fail_before = 2
    assert await comp.payouts.run_once() == 0
    row = await payout_row(db, order.payout_id or "")
    assert row["attempts"] == 1 and "connection reset" in row["last_error"]
    assert row["next_attempt_at"] == clock.now_ms() + 2_000
    assert (await current(comp, settings, order.id)).status == Status.approved
    assert await comp.payouts.run_once() == 0 and len(counting.calls) == 1  # not due yet
    clock.advance(2)
    assert await comp.payouts.run_once() == 0
    assert (await payout_row(db, order.payout_id or ""))[
        "next_attempt_at"
    ] == clock.now_ms() + 4_000
    clock.advance(4)
    assert await comp.payouts.run_once() == 1
    assert counting.calls == [order.payout_id] * 3
    assert await ledger_refs(db) == [order.payout_id]
    assert (await current(comp, settings, order.id)).status == Status.paid


async def test_a_timeout_after_the_money_moved_still_pays_once(
    comp: Compensation, settings: Settings, db: AsyncEngine, clock: ManualClock
) -> None:
    order = await approved(comp, settings, amount=5_000)
    counting = wrap(comp, AssetType.balance)
    counting.hang_after_paying = 5  # pays, then never answers within timeout_s=0.5
    assert await comp.payouts.run_once() == 0
    row = await payout_row(db, order.payout_id or "")
    assert row["state"] == "pending" and "did not answer" in row["last_error"]
    assert (await comp.ledger.balances("c1")).available == 5_000  # it did move...
    counting.hang_after_paying = 0
    clock.advance(2)
    assert await comp.payouts.run_once() == 1
    assert (await comp.ledger.balances("c1")).available == 5_000  # ...once
    assert await ledger_refs(db) == [order.payout_id]


async def test_a_worker_dying_between_the_call_and_the_record_pays_once(
    comp: Compensation, settings: Settings, db: AsyncEngine, clock: ManualClock
) -> None:
    order = await approved(comp, settings, amount=5_000)
    counting = wrap(comp, AssetType.balance)
    lease = int(settings.compensation.payout.lease_s * 1000)
    [row] = await jobs.claim_due(db, payouts, clock.now_ms(), lease, 10)
    outcome = await comp.payouts.call(row)  # the money moves...
    assert outcome.ref is not None
    # ...and the worker dies here, before recording anything
    assert await comp.payouts.run_once() == 0  # still leased: nobody else takes it
    assert (await current(comp, settings, order.id)).status == Status.approved
    clock.advance(settings.compensation.payout.lease_s + 1)
    assert await comp.payouts.run_once() == 1  # the lease ran out: retried, same id
    assert counting.calls == [order.payout_id, order.payout_id]
    assert await ledger_refs(db) == [order.payout_id]
    assert (await comp.ledger.balances("c1")).available == 5_000
    paid = await current(comp, settings, order.id)
    assert paid.status == Status.paid
    assert (await comp.ledger.reconcile()).ok


async def test_two_workers_at_once_call_the_connector_once(
    comp: Compensation, settings: Settings, db: AsyncEngine
) -> None:
    order = await approved(comp, settings, amount=5_000)
    counting = wrap(comp, AssetType.balance)
    results = await asyncio.gather(*(comp.payouts.run_once() for _ in range(4)))
    assert sum(results) == 1 and counting.calls == [order.payout_id]
    assert await ledger_refs(db) == [order.payout_id]


async def test_a_refusal_fails_the_payout_visibly_and_finance_can_retry_it(
    comp: Compensation, settings: Settings, db: AsyncEngine
) -> None:
    order = await approved(comp, settings, amount=5_000)
    counting = wrap(comp, AssetType.balance)
    counting.refuse = True
    assert await comp.payouts.run_once() == 0
    failed = await current(comp, settings, order.id)
    assert failed.status == Status.approved and failed.payout_state == "failed"
    view = await comp.payouts.get(order.payout_id or "")
    assert view.state == "failed" and "insufficient_funds" in (view.last_error or "")
    with pytest.raises(ContactdError) as info:
        await comp.payouts.retry("po_missing")
    assert info.value.code == ErrorCode.payout_not_found
    counting.refuse = False
    await comp.payouts.retry(view.id)
    await comp.service.payout_requeued(order.id, as_(settings, "fin1"))
    with pytest.raises(ContactdError) as info:
        await comp.payouts.retry(view.id)  # only failed payouts
    assert info.value.code == ErrorCode.invalid_state
    assert await comp.payouts.run_once() == 1
    assert (await current(comp, settings, order.id)).status == Status.paid
    assert await ledger_refs(db) == [order.payout_id]


async def test_after_max_attempts_the_payout_is_failed(
    comp: Compensation, settings: Settings, db: AsyncEngine, clock: ManualClock
) -> None:
    order = await approved(comp, settings, amount=5_000)
    counting = wrap(comp, AssetType.balance)
    counting.fail_before = 100
    for _ in range(4):
        await comp.payouts.run_once()
        clock.advance(60)
    assert len(counting.calls) == 4
    assert (await payout_row(db, order.payout_id or ""))["state"] == "failed"
    assert (await current(comp, settings, order.id)).payout_state == "failed"
    assert await comp.payouts.run_once() == 0 and len(counting.calls) == 4
    deliveries = await comp.outbox.deliveries(order.id, 100)
    assert deliveries == []  # no webhooks configured: nothing queued


# --- the HTTP connector against a small asset service -------------------------------------


class AssetService:
    """An external asset system honouring Idempotency-Key; fails its first N requests."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.requests: list[tuple[str, dict[str, Any], bool]] = []
        self.paid: dict[str, int] = {}

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = await request.json()
        good = verify(SECRET, raw, request.headers.get(SIGNATURE_HEADER, ""), int(body["now"]))
        key = request.headers["Idempotency-Key"]
        self.requests.append((key, body, good))
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.json_response({"error": "busy"}, status=503)
        self.paid.setdefault(key, body["amount"])
        return web.json_response({"ref": f"EXT-{key[-6:]}"})


@pytest.fixture
async def asset_service() -> AsyncIterator[tuple[AssetService, str]]:
    service = AssetService(fail_first=1)
    app = web.Application()
    app.router.add_post("/payouts", service.handle)
    server = TestServer(app)
    await server.start_server()
    yield service, str(server.make_url("/payouts"))
    await server.close()


async def test_the_http_connector_retries_with_the_same_idempotency_key(
    site: str,
    queues: list[QueueConfig],
    db: AsyncEngine,
    clock: ManualClock,
    asset_service: tuple[AssetService, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service, url = asset_service
    settings = settings_with(
        site, queues, balance="http", http_url=url, http_secret=SECRET, timeout_s=5
    )
    add_now: Callable[..., Any] = _stamp_now(clock)
    monkeypatch.setattr("contactd.cases.connectors.post_signed", add_now)
    async with compensation(settings, db, clock) as comp:
        order = await approved(comp, settings, amount=5_000)
        assert await comp.payouts.run_once() == 0  # 503: retried later
        assert "HTTP 503" in ((await comp.payouts.get(order.payout_id or "")).last_error or "")
        clock.advance(2)
        assert await comp.payouts.run_once() == 1
        paid = await current(comp, settings, order.id)
        assert paid.status == Status.paid
        view = await comp.payouts.get(order.payout_id or "")
        assert view.external_ref == f"EXT-{(order.payout_id or '')[-6:]}"
    keys = [k for k, _, _ in service.requests]
    assert keys == [order.payout_id, order.payout_id]
    assert all(good for _, _, good in service.requests)  # every request signed
    assert service.paid == {order.payout_id: 5_000}
    assert await ledger_refs(db) == []  # the external system holds the money


def _stamp_now(clock: ManualClock) -> Callable[..., Any]:
    """post_signed with the signing time also in the body, so the test service can check
    the signature against the test's manual clock."""
    from contactd.cases import webhooks

    async def post(http: Any, url: str, payload: dict[str, Any], **kw: Any) -> Any:
        return await webhooks.post_signed(http, url, {**payload, "now": kw["now_s"]}, **kw)

    return post
