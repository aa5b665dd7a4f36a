"""The directory: the embedded store with its demo data, and the HTTP adapter against a
small real web service that speaks the contract of docs/directory.md.

The embedded store runs on SQLite always and on PostgreSQL when CONTACTD_TEST_POSTGRES_URL
is set (each test in a schema of its own, dropped afterwards)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.clock import ManualClock
from contactd.directory.demo import seed_demo_directory
from contactd.directory.demo_catalog import CST, DEMO_NOW
from contactd.directory.embedded import EmbeddedDirectory, to_order
from contactd.directory.factory import build_directory
from contactd.directory.http import HttpDirectory
from contactd.directory.models import (
    Customer,
    DirectorySettings,
    MemberLevel,
    Order,
    OrderStatus,
    format_yuan,
    mask_phone,
    normalize_phone,
)
from contactd.errors import ContactdError, ErrorCode
from contactd.storage.db import migrate, open_database
from contactd.storage.tables import dir_customers, dir_orders, dir_products
from tests.conftest import free_port

DEMO_CUSTOMERS = 200
ServerFactory = Callable[..., Any]


@pytest.fixture
async def demo(db: AsyncEngine) -> EmbeddedDirectory:
    assert await seed_demo_directory(db) == DEMO_CUSTOMERS
    return EmbeddedDirectory(db)


async def dump(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    async with engine.connect() as conn:
        for table in (dir_customers, dir_products, dir_orders):
            pk = next(iter(table.primary_key.columns))
            rows = (await conn.execute(sa.select(table).order_by(pk))).mappings()
            out[table.name] = [dict(row) for row in rows]
    return out


async def all_orders(engine: AsyncEngine) -> list[Order]:
    async with engine.connect() as conn:
        return [to_order(row) for row in (await conn.execute(sa.select(dir_orders))).mappings()]


# mask_phone and friends (no I/O) -------------------------------------------------------
@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812341234", "138****1234"),
        ("+86 138-1234-1234", "138****1234"),
        ("008613812341234", "138****1234"),
        ("013812341234", "138****1234"),
        ("+14155552671", "141****2671"),
        ("02164881234", "021****1234"),
        ("12345678", "123****5678"),
        ("1234567", "****"),
        ("12", "****"),
        ("not a number", "****"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_mask_phone_keeps_first_three_and_last_four_digits(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_normalize_phone_and_labels() -> None:
    assert normalize_phone("+86 (138) 1234-1234") == "13812341234"
    assert normalize_phone("+14155552671") == "14155552671"
    assert MemberLevel.gold.label == "金卡会员"
    assert OrderStatus.shipped.label == "已发货"
    assert {s for s in OrderStatus if s.final} == {"completed", "cancelled", "refunded"}
    assert format_yuan(19900) == "¥199.00"
    assert format_yuan(123456789) == "¥1,234,567.89"


def test_models_refuse_unknown_fields_and_naive_datetimes() -> None:
    good = {"id": "c1", "name": "王五", "phone": "13700000000", "registered_at": DEMO_NOW}
    assert Customer.model_validate(good).member_level == MemberLevel.regular
    with pytest.raises(ValidationError):
        Customer.model_validate({**good, "nickname": "x"})
    with pytest.raises(ValidationError):
        Customer.model_validate({**good, "registered_at": "2026-11-23T16:00:00"})


def test_directory_settings() -> None:
    assert DirectorySettings().kind == "embedded"
    with pytest.raises(ValidationError, match="needs base_url"):
        DirectorySettings(kind="http")
    with pytest.raises(ValidationError, match="must start with http"):
        DirectorySettings(kind="http", base_url="ftp://crm")
    cfg = DirectorySettings(kind="http", base_url="http://crm.internal/api", token="t0k")
    assert "t0k" not in repr(cfg)


# the embedded store --------------------------------------------------------------------
async def test_build_directory_chooses_by_settings(db: AsyncEngine) -> None:
    assert isinstance(build_directory(DirectorySettings(), db), EmbeddedDirectory)
    http = build_directory(DirectorySettings(kind="http", base_url="http://127.0.0.1:9/"), db)
    assert isinstance(http, HttpDirectory)
    await http.close()


async def test_seeding_is_idempotent(db: AsyncEngine) -> None:
    assert await seed_demo_directory(db) == DEMO_CUSTOMERS
    before = await dump(db)
    assert await seed_demo_directory(db) == 0
    assert await seed_demo_directory(db, seed=99) == 0
    assert await dump(db) == before
    assert len(before["dir_customers"]) == DEMO_CUSTOMERS
    assert len(before["dir_products"]) >= 20


async def test_seeding_at_once_from_two_processes_seeds_once(db: AsyncEngine) -> None:
    results = await asyncio.gather(seed_demo_directory(db), seed_demo_directory(db))
    assert sorted(results) == [0, DEMO_CUSTOMERS]


async def test_seeding_is_deterministic(db: AsyncEngine, tmp_path: Path) -> None:
    assert await seed_demo_directory(db, seed=3, customers=50) == 50
    others = []
    for name, seed in (("same", 3), ("other", 4)):
        engine = await open_database(f"sqlite+aiosqlite:///{tmp_path / name}.sqlite3")
        await migrate(engine)
        await seed_demo_directory(engine, seed=seed, customers=50)
        others.append(await dump(engine))
        await engine.dispose()
    mine = await dump(db)
    assert mine == others[0]
    assert mine["dir_customers"] != others[1]["dir_customers"]
    # the well-known records do not depend on the seed
    assert mine["dir_customers"][:2] == others[1]["dir_customers"][:2]


async def test_well_known_records(demo: EmbeddedDirectory) -> None:
    zhang = await demo.customer("u1001")
    assert zhang is not None
    assert (zhang.name, zhang.phone, zhang.member_level) == ("张三", "13812341234", "gold")
    assert zhang.masked_phone == "138****1234"
    orders = await demo.orders_of("u1001")
    assert len(orders) >= 5
    assert len({o.status for o in orders}) >= 5
    li = await demo.customer("u1002")
    assert li is not None and li.member_level == MemberLevel.diamond and li.vip
    assert len(await demo.orders_of("u1002")) >= 3
    order = await demo.order("O2026112300000001")
    assert order is not None
    assert (order.customer_id, order.status) == ("u1001", OrderStatus.shipped)
    assert order.logistics is not None and order.logistics.tracking_no
    assert order.logistics.last_event == "【上海市】快件已到达 上海转运中心"
    assert order.items[0].name == "主动降噪蓝牙耳机" and order.total == 19900
    product = await demo.product("SKU10002")
    assert product is not None and product.price == 19900


async def test_lookups_by_id_phone_and_number(demo: EmbeddedDirectory) -> None:
    for spelling in ("13812341234", "+86 138 1234 1234", "008613812341234"):
        found = await demo.customer_by_phone(spelling)
        assert found is not None and found.id == "u1001"
    assert await demo.customer_by_phone("13800000000") is None
    assert await demo.customer_by_phone("") is None
    # many at once (the phone channel's burst of callers): one query, keyed as asked
    many = await demo.customers_by_phone(["+86 138 1234 1234", "13800000000", "", "13911112222"])
    assert {k: c.id for k, c in many.items()} == {
        "+86 138 1234 1234": "u1001",
        "13911112222": "u1002",
    }
    assert await demo.customers_by_phone([]) == {}
    assert await demo.customer("nobody") is None
    assert await demo.order("O0000") is None
    assert await demo.product("SKU-NOPE") is None
    assert await demo.orders_of("nobody") == []


async def test_sqlite_lookups_go_on_while_another_process_writes(
    db: AsyncEngine, demo: EmbeddedDirectory
) -> None:
    """Look-ups by key run on the event loop: SQLite's WAL lets them through at once while
    another process holds the write lock, and they see only what it committed."""
    if db.dialect.name != "sqlite":
        pytest.skip("SQLite's locks")
    assert db.url.database is not None
    other = sqlite3.connect(db.url.database, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE dir_customers SET name = 'X' WHERE id = 'u1002'")
        found = await asyncio.wait_for(demo.customers_by_phone(["13812341234"]), 2)
        assert found["13812341234"].id == "u1001"
        before = await asyncio.wait_for(demo.customer("u1002"), 2)
        assert before is not None and before.name != "X"
        other.execute("COMMIT")
    finally:
        other.close()
    after = await demo.customer("u1002")
    assert after is not None and after.name == "X"


async def test_orders_newest_first_and_limited(demo: EmbeddedDirectory) -> None:
    orders = await demo.orders_of("u1001")
    assert [o.created_at for o in orders] == sorted((o.created_at for o in orders), reverse=True)
    assert orders[0].order_no == "O2026112300000002"  # placed at 15:48, still unpaid
    assert [o.order_no for o in await demo.orders_of("u1001", limit=2)] == [
        o.order_no for o in orders[:2]
    ]
    assert len(await demo.orders_of("u1001", limit=0)) == 1  # clamped to at least one


async def test_demo_orders_cover_every_status_consistently(
    db: AsyncEngine, demo: EmbeddedDirectory
) -> None:
    orders = await all_orders(db)
    counts = Counter(o.status for o in orders)
    assert set(counts) == set(OrderStatus)
    carriers = set()
    for o in orders:
        assert o.order_no.startswith(f"O{o.created_at.astimezone(CST):%Y%m%d}"), o.order_no
        assert o.items and o.total == sum(i.amount for i in o.items)
        assert all(i.amount == i.unit_price * i.qty for i in o.items)
        times = [o.created_at, o.paid_at, o.shipped_at, o.delivered_at, o.finished_at]
        present = [t for t in times if t is not None]
        assert present == sorted(present) and present[-1] <= DEMO_NOW, o.order_no
        paid = o.status not in (OrderStatus.pending_payment, OrderStatus.cancelled)
        assert (o.paid_at is not None) == paid, o.order_no
        assert (o.finished_at is not None) == (
            o.status in (OrderStatus.completed, OrderStatus.cancelled, OrderStatus.refunded)
        ), o.order_no
        if o.status in (OrderStatus.shipped, OrderStatus.delivered, OrderStatus.completed):
            assert o.shipped_at is not None
        if o.status in (OrderStatus.delivered, OrderStatus.completed):
            assert o.delivered_at is not None
        if o.status in (OrderStatus.pending_payment, OrderStatus.paid, OrderStatus.picking):
            assert o.shipped_at is None
        if o.status == OrderStatus.pending_payment:
            assert DEMO_NOW - o.created_at < timedelta(minutes=30)
        assert (o.logistics is not None) == (o.shipped_at is not None), o.order_no
        if o.logistics is not None:
            carriers.add(o.logistics.carrier)
            assert o.logistics.last_event and o.logistics.last_event.startswith("【")
            assert o.logistics.last_event_at is not None
            assert o.shipped_at is not None and o.logistics.last_event_at >= o.shipped_at
            assert o.logistics.last_event_at <= DEMO_NOW
        if o.status == OrderStatus.delivered:
            assert o.logistics is not None and o.logistics.last_event is not None
            assert "签收" in o.logistics.last_event or "代收" in o.logistics.last_event
    assert {"顺丰速运", "中通快递", "京东物流"} <= carriers


async def test_demo_customers_look_real(db: AsyncEngine, demo: EmbeddedDirectory) -> None:
    async with db.connect() as conn:
        rows = (await conn.execute(sa.select(dir_customers))).mappings().all()
    phones = [r["phone"] for r in rows]
    assert len(set(phones)) == len(phones)
    assert all(len(p) == 11 and p.startswith("1") and p.isdigit() for p in phones)
    assert {r["member_level"] for r in rows} == {level.value for level in MemberLevel}
    assert all(r["vip"] for r in rows if r["member_level"] == "diamond")
    assert len({r["province"] for r in rows}) >= 8
    assert all(2 <= len(r["name"]) <= 3 for r in rows)


async def test_search_by_name_phone_or_id(demo: EmbeddedDirectory) -> None:
    assert [c.id for c in await demo.search_customers("张三")][:1] == ["u1001"]
    assert [c.id for c in await demo.search_customers("u1002")] == ["u1002"]
    assert [c.id for c in await demo.search_customers("+86 13812341234")] == ["u1001"]
    by_tail = await demo.search_customers("1234", limit=100)
    assert "u1001" in {c.id for c in by_tail}
    assert all("1234" in c.phone for c in by_tail)
    by_surname = await demo.search_customers("张", limit=3)
    assert 1 <= len(by_surname) <= 3 and all("张" in c.name for c in by_surname)
    assert await demo.search_customers("") == []
    assert await demo.search_customers("%") == []  # LIKE wildcards are literal
    assert await demo.search_customers("_") == []


async def test_add_round_trips_models(db: AsyncEngine) -> None:
    directory = EmbeddedDirectory(db)
    customer = Customer.model_validate(CUSTOMER_JSON)
    order = Order.model_validate(ORDER_JSON)
    await directory.add(customers=[customer], orders=[order])
    assert await directory.customer("c42") == customer
    assert await directory.order(order.order_no) == order
    assert await directory.orders_of("c42") == [order]


# the HTTP adapter against a real little service ---------------------------------------
CUSTOMER_JSON: dict[str, Any] = {
    "id": "c42",
    "name": "王芳",
    "phone": "13900004242",
    "member_level": "silver",
    "region": {"province": "浙江省", "city": "杭州市"},
    "gender": "female",
    "birth_year": 1992,
    "registered_at": "2024-05-01T10:00:00+08:00",
    "tags": ["宝妈"],
    "vip": False,
}
ORDER_JSON: dict[str, Any] = {
    "order_no": "O2026112000000042",
    "customer_id": "c42",
    "status": "shipped",
    "items": [{"sku": "SKU10003", "name": "保温杯", "qty": 2, "unit_price": 8900, "amount": 17800}],
    "total": 17800,
    "created_at": "2026-11-20T09:00:00+08:00",
    "paid_at": "2026-11-20T09:01:00+08:00",
    "shipped_at": "2026-11-20T18:00:00+08:00",
    "logistics": {
        "carrier": "中通快递",
        "tracking_no": "73500000000042",
        "last_event": "【杭州市】快件已到达 杭州转运中心",
        "last_event_at": "2026-11-21T06:00:00+08:00",
    },
    "address": {
        "receiver": "王芳",
        "phone": "13900004242",
        "province": "浙江省",
        "city": "杭州市",
        "district": "西湖区",
        "detail": "学府路1号",
    },
}
OLDER_ORDER_JSON = {
    **ORDER_JSON,
    "order_no": "O2026100100000041",
    "status": "completed",
    "created_at": "2026-10-01T09:00:00+08:00",
    "paid_at": None,
    "shipped_at": None,
    "logistics": None,
}
PRODUCT_JSON = {"sku": "SKU10003", "name": "保温杯", "price": 8900, "category": "家居"}
TOKEN = "s3cret"


class Company:
    """A company's systems: the six endpoints, with hit counts and injectable faults."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.fault: str | None = None  # "slow" | "500" | "html" | "shape" | "other"
        self.release = asyncio.Event()
        self.app = web.Application()
        get = self.app.router.add_get
        get("/api/customers", self.customers)
        get("/api/customers/{id}", self.customer)
        get("/api/customers/{id}/orders", self.orders)
        get("/api/orders/{no}", self.order)
        get("/api/products/{sku}", self.product)

    async def _answer(self, request: web.Request, body: Any) -> web.StreamResponse:
        self.hits[request.path_qs] += 1
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        if self.fault == "slow":
            await asyncio.wait_for(self.release.wait(), 5)
        elif self.fault == "500":
            return web.json_response({"error": "boom"}, status=500)
        elif self.fault == "html":
            return web.Response(text="<html>maintenance</html>", content_type="text/html")
        elif self.fault == "shape" and isinstance(body, dict):
            return web.json_response({**body, "surprise": 1} if "id" in body else {"items": 3})
        elif self.fault == "other" and isinstance(body, dict):  # someone else's record
            key = next(k for k in ("id", "order_no", "sku") if k in body)
            return web.json_response({**body, key: "someone-else"})
        if body is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(body)

    async def customers(self, request: web.Request) -> web.StreamResponse:
        phone, q = request.query.get("phone"), request.query.get("q", "")
        match = phone == CUSTOMER_JSON["phone"] or (q and q in CUSTOMER_JSON["name"])
        return await self._answer(request, {"items": [CUSTOMER_JSON] if match else []})

    async def customer(self, request: web.Request) -> web.StreamResponse:
        found = request.match_info["id"] == "c42"
        return await self._answer(request, CUSTOMER_JSON if found else None)

    async def orders(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["id"] != "c42":
            return await self._answer(request, None)
        limit = int(request.query.get("limit", "10"))
        return await self._answer(request, {"items": [OLDER_ORDER_JSON, ORDER_JSON][:limit]})

    async def order(self, request: web.Request) -> web.StreamResponse:
        found = request.match_info["no"] == ORDER_JSON["order_no"]
        return await self._answer(request, ORDER_JSON if found else None)

    async def product(self, request: web.Request) -> web.StreamResponse:
        found = request.match_info["sku"] == PRODUCT_JSON["sku"]
        return await self._answer(request, PRODUCT_JSON if found else None)


@pytest.fixture
async def company(aiohttp_server: ServerFactory) -> AsyncIterator[tuple[Company, TestServer]]:
    fake = Company()
    server = await aiohttp_server(fake.app)
    yield fake, server
    fake.release.set()


@pytest.fixture
async def remote(
    company: tuple[Company, TestServer], clock: ManualClock
) -> AsyncIterator[HttpDirectory]:
    _fake, server = company
    directory = HttpDirectory(
        str(server.make_url("/api/")), timeout_s=0.3, cache_ttl_s=30, token=TOKEN, clock=clock
    )
    yield directory
    await directory.close()


async def test_http_lookups(remote: HttpDirectory) -> None:
    customer = await remote.customer("c42")
    assert customer == Customer.model_validate(CUSTOMER_JSON)
    assert (await remote.customer_by_phone("+86 139 0000 4242")) == customer
    many = await remote.customers_by_phone(["+86 139 0000 4242", "13700000000"])
    assert many == {"+86 139 0000 4242": customer}
    orders = await remote.orders_of("c42")
    assert [o.order_no for o in orders] == ["O2026112000000042", "O2026100100000041"]
    assert [o.order_no for o in await remote.orders_of("c42", limit=1)] == ["O2026100100000041"]
    order = await remote.order("O2026112000000042")
    assert order is not None and order.logistics is not None
    assert order.logistics.carrier == "中通快递"
    product = await remote.product("SKU10003")
    assert product is not None and product.price == 8900
    assert [c.id for c in await remote.search_customers("王")] == ["c42"]
    assert await remote.search_customers("  ") == []


async def test_http_404_is_none(remote: HttpDirectory) -> None:
    assert await remote.customer("c404") is None
    assert await remote.customer_by_phone("13800000000") is None
    assert await remote.orders_of("c404") == []
    assert await remote.order("O404") is None
    assert await remote.product("SKU404") is None
    assert await remote.search_customers("赵") == []


async def test_http_timeout_is_unavailable_quickly(
    remote: HttpDirectory, company: tuple[Company, TestServer]
) -> None:
    company[0].fault = "slow"
    started = time.monotonic()
    with pytest.raises(ContactdError) as err:
        await remote.customer("c42")
    assert err.value.code == ErrorCode.unavailable
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("fault", ["500", "html", "shape", "other"])
async def test_http_bad_answers_are_unavailable(
    remote: HttpDirectory, company: tuple[Company, TestServer], fault: str
) -> None:
    company[0].fault = fault
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: remote.customer("c42"),
        lambda: remote.order("O2026112000000042"),
        lambda: remote.product("SKU10003"),
    ]
    if fault != "other":
        calls += [lambda: remote.customer_by_phone("13900004242"), lambda: remote.orders_of("c42")]
    for call in calls:
        with pytest.raises(ContactdError) as err:
            await call()
        assert err.value.code == ErrorCode.unavailable


async def test_http_wrong_token_and_no_server_are_unavailable(
    company: tuple[Company, TestServer], clock: ManualClock
) -> None:
    base = str(company[1].make_url("/api"))
    wrong = HttpDirectory(base, timeout_s=1, cache_ttl_s=0, token="nope", clock=clock)
    nobody = HttpDirectory(
        f"http://127.0.0.1:{free_port()}", timeout_s=1, cache_ttl_s=0, token=None, clock=clock
    )
    try:
        for directory in (wrong, nobody):
            with pytest.raises(ContactdError) as err:
                await directory.customer("c42")
            assert err.value.code == ErrorCode.unavailable
    finally:
        await wrong.close()
        await nobody.close()


async def test_http_cache_within_ttl(
    remote: HttpDirectory, company: tuple[Company, TestServer], clock: ManualClock
) -> None:
    hits = company[0].hits
    assert await remote.customer("c42") is not None
    assert await remote.customer("c42") is not None
    assert hits["/api/customers/c42"] == 1
    await remote.order("O2026112000000042")
    await remote.orders_of("c42")
    clock.advance(29)
    await remote.customer("c42")
    await remote.order("O2026112000000042")
    await remote.orders_of("c42")
    assert hits["/api/customers/c42"] == 1
    assert hits["/api/orders/O2026112000000042"] == 1
    assert hits["/api/customers/c42/orders?limit=10"] == 1
    clock.advance(2)
    await remote.customer("c42")
    await remote.order("O2026112000000042")
    assert hits["/api/customers/c42"] == 2
    assert hits["/api/orders/O2026112000000042"] == 2
    # misses are not cached: a customer created upstream shows up at once
    await remote.customer("c404")
    await remote.customer("c404")
    assert hits["/api/customers/c404"] == 2
