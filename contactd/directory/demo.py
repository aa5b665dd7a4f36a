"""Demo data for the embedded directory: a Chinese online shop's customers, products and
orders in every state, with consistent timestamps and logistics.

The same ``seed`` always gives the same data (all times are relative to the fixed
``DEMO_NOW``). Records tests and docs can rely on:

* ``u1001`` 张三, phone ``13812341234``, 金卡会员 (gold), orders in seven states;
* ``u1002`` 李娜, 钻石会员 (diamond), VIP;
* ``O2026112300000001``: u1001's 蓝牙耳机, shipped (顺丰速运), at 上海转运中心;
* products ``SKU10001`` … ``SKU10022`` (``SKU10002`` is the 蓝牙耳机 at ¥199.00).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.directory import demo_catalog as cat
from contactd.directory.demo_catalog import CST, DEMO_NOW
from contactd.directory.embedded import insert_all
from contactd.directory.models import (
    Address,
    Customer,
    CustomerId,
    Gender,
    Logistics,
    MemberLevel,
    Order,
    OrderItem,
    OrderNo,
    OrderStatus,
    Product,
    Region,
    Sku,
)
from contactd.storage.db import write_transaction
from contactd.storage.tables import dir_customers

T = TypeVar("T")
FIXED_CUSTOMERS = 2  # u1001 and u1002
FIRST_SERIAL = 1001  # generated order numbers end in 00001001, 00001002, …
PRODUCTS: dict[str, Product] = {
    sku: Product(sku=Sku(sku), name=name, price=price, category=category)
    for sku, name, price, category in cat.PRODUCTS
}


async def seed_demo_directory(engine: AsyncEngine, *, seed: int = 7, customers: int = 200) -> int:
    """Fill the embedded directory with ``customers`` customers in all (the fixed ones
    included) and their orders. Returns how many customers it added: 0 when the
    directory already has customers (so running it again changes nothing)."""
    rng = random.Random(seed)
    people, orders = _world(rng, max(customers, FIXED_CUSTOMERS))
    try:
        async with write_transaction(engine) as conn:
            if (await conn.execute(sa.select(dir_customers.c.id).limit(1))).first():
                return 0
            await insert_all(conn, people, list(PRODUCTS.values()), orders)
    except IntegrityError:  # another process seeded at the same moment and won
        return 0
    return len(people)


def _world(rng: random.Random, total: int) -> tuple[list[Customer], list[Order]]:
    people = [_zhang_san(), _li_na()]
    orders = _zhang_san_orders()
    phones = {p.phone for p in people}
    serial = FIRST_SERIAL
    forced = list(OrderStatus)  # the first generated orders take every status in turn
    for n in range(FIXED_CUSTOMERS, total):
        people.append(_customer(rng, CustomerId(f"u{1001 + n}"), phones))
    for person in people[1:]:
        count = rng.choices(range(9), weights=(10, 20, 18, 14, 12, 9, 7, 5, 5))[0]
        if person.id == "u1002":
            count = max(count, 3)
        for _ in range(count):
            status = forced.pop(0) if forced else _weighted(rng, cat.STATUS_WEIGHTS)
            orders.append(_order(rng, person, status, serial))
            serial += 1
    return people, orders


def _weighted(rng: random.Random, weights: dict[T, int]) -> T:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


# customers --------------------------------------------------------------------------
def _customer(rng: random.Random, cid: CustomerId, phones: set[str]) -> Customer:
    gender: Gender = rng.choices(("male", "female", "unknown"), weights=(47, 48, 5))[0]
    given = cat.MALE_GIVEN if gender == "male" else cat.FEMALE_GIVEN
    if gender == "unknown":
        given = rng.choice((cat.MALE_GIVEN, cat.FEMALE_GIVEN))
    phone = _mobile(rng)
    while phone in phones:
        phone = _mobile(rng)
    phones.add(phone)
    province, city, _districts = rng.choice(cat.REGIONS)
    level = _weighted(rng, cat.LEVEL_WEIGHTS)
    tags = tuple(rng.sample(cat.TAGS, rng.choices((0, 1, 2), weights=(50, 35, 15))[0]))
    if level in (MemberLevel.gold, MemberLevel.diamond) and "高价值" not in tags:
        tags = (*tags, "高价值")
    return Customer(
        id=cid,
        name=rng.choice(cat.SURNAMES) + rng.choice(given),
        phone=phone,
        member_level=level,
        region=Region(province=province, city=city),
        gender=gender,
        birth_year=rng.randint(1960, 2006),
        registered_at=DEMO_NOW
        - timedelta(days=rng.randint(200, 2600), minutes=rng.randint(0, 1439)),
        tags=tags,
        vip=level == MemberLevel.diamond or (level == MemberLevel.gold and rng.random() < 0.2),
    )


def _mobile(rng: random.Random) -> str:
    return rng.choice(cat.MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


# orders -----------------------------------------------------------------------------
def _order(rng: random.Random, person: Customer, status: OrderStatus, serial: int) -> Order:
    t = _timeline(rng, status)
    picks = rng.sample(list(PRODUCTS.values()), rng.choices((1, 2, 3), weights=(70, 22, 8))[0])
    items = tuple(_item(p, rng.choices((1, 2, 3), weights=(80, 15, 5))[0]) for p in picks)
    region = person.region or Region(province="上海市", city="上海市")
    districts = next((ds for _p, city, ds in cat.REGIONS if city == region.city), ("",))
    district = rng.choice(districts)
    street = f"{rng.choice(cat.STREETS)}{rng.randint(1, 999)}号{rng.choice(cat.COMMUNITIES)}"
    building = rng.randint(1, 30)
    room = f"{rng.randint(1, 33)}0{rng.randint(1, 4)}"
    address = Address(
        receiver=person.name,
        phone=person.phone,
        province=region.province,
        city=region.city,
        district=district,
        detail=f"{street}{building}栋{rng.randint(1, 4)}单元{room}室",
    )
    logistics = None
    if t.shipped is not None:
        logistics = _logistics(rng, status, t.shipped, t, address)
    return Order(
        order_no=_order_no(t.created, serial),
        customer_id=person.id,
        status=status,
        items=items,
        total=sum(i.amount for i in items),
        created_at=t.created,
        paid_at=t.paid,
        shipped_at=t.shipped,
        delivered_at=t.delivered,
        finished_at=t.finished,
        logistics=logistics,
        address=address,
    )


def _item(product: Product, qty: int) -> OrderItem:
    return OrderItem(
        sku=product.sku,
        name=product.name,
        qty=qty,
        unit_price=product.price,
        amount=product.price * qty,
    )


def _order_no(created: datetime, serial: int) -> OrderNo:
    return OrderNo(f"O{created.astimezone(CST):%Y%m%d}{serial:08d}")


@dataclass
class Timeline:
    created: datetime
    paid: datetime | None = None
    shipped: datetime | None = None
    delivered: datetime | None = None
    finished: datetime | None = None


def _timeline(rng: random.Random, status: OrderStatus) -> Timeline:
    """When the order was created, paid, shipped, delivered and finished, consistent
    with ``status`` and all before ``DEMO_NOW``."""

    def minutes(lo: int, hi: int) -> timedelta:
        return timedelta(minutes=rng.randint(lo, hi))

    created = DEMO_NOW - minutes(*cat.ORDER_AGE_MINUTES[status])
    t = Timeline(created=created)
    if status == OrderStatus.pending_payment:
        return t
    if status == OrderStatus.cancelled:  # never paid: the customer or the 30-minute timeout
        t.finished = created + minutes(3, 30)
        return t
    paid = t.paid = created + minutes(1, 15)
    if status in (OrderStatus.paid, OrderStatus.picking):
        return t
    before_shipping = status in (OrderStatus.refunding, OrderStatus.refunded) and rng.random() < 0.4
    if before_shipping:  # refund asked for before the parcel left
        if status == OrderStatus.refunded:
            t.finished = paid + minutes(30, 20 * 60)
        return t
    shipped = t.shipped = paid + minutes(3 * 60, 28 * 60)
    if status == OrderStatus.shipped:
        return t
    delivered = t.delivered = shipped + minutes(20 * 60, 72 * 60)
    if status == OrderStatus.completed:
        t.finished = delivered + minutes(1 * 1440, 7 * 1440)
    elif status == OrderStatus.refunded:
        t.finished = delivered + minutes(1 * 1440, 3 * 1440)  # the return came back
    return t


def _logistics(
    rng: random.Random, status: OrderStatus, shipped: datetime, t: Timeline, to: Address
) -> Logistics:
    carrier, prefix, digits = rng.choice(cat.CARRIERS)
    origin = rng.choice([c for c in cat.WAREHOUSE_CITIES if c != to.city])
    words = {
        "carrier": carrier,
        "courier": rng.choice(cat.COURIERS),
        "origin": origin,
        "origin_hub": origin.removesuffix("市"),
        "city": to.city,
        "hub": to.city.removesuffix("市"),
        "district": to.district,
    }
    if status == OrderStatus.shipped:
        stage = rng.randrange(len(cat.IN_TRANSIT_EVENTS))
        text = cat.IN_TRANSIT_EVENTS[stage]
        at = shipped + (DEMO_NOW - shipped) * (stage + rng.random()) / (
            len(cat.IN_TRANSIT_EVENTS) + 1
        )
    elif status == OrderStatus.refunded and t.finished is not None:
        text, at = cat.RETURN_RECEIVED_EVENT, t.finished - timedelta(hours=rng.randint(2, 20))
    else:
        text, at = rng.choice(cat.DELIVERED_EVENTS), t.delivered or shipped
    return Logistics(
        carrier=carrier,
        tracking_no=prefix + "".join(str(rng.randrange(10)) for _ in range(digits)),
        last_event=text.format(**words),
        last_event_at=at.replace(microsecond=0),
    )


# the well-known records --------------------------------------------------------------
def _at(month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=CST)


ZHANG_SAN_ADDRESS = Address(
    receiver="张三",
    phone="13812341234",
    province="上海市",
    city="上海市",
    district="浦东新区",
    detail="张江路88号汤臣豪园3栋2单元1201室",
)


def _zhang_san() -> Customer:
    return Customer(
        id=CustomerId("u1001"),
        name="张三",
        phone="13812341234",
        member_level=MemberLevel.gold,
        region=Region(province="上海市", city="上海市"),
        gender="male",
        birth_year=1990,
        registered_at=_at(3, 14, 20, 31) - timedelta(days=5 * 365),
        tags=("老客", "高价值"),
        vip=False,
    )


def _li_na() -> Customer:
    return Customer(
        id=CustomerId("u1002"),
        name="李娜",
        phone="13911112222",
        member_level=MemberLevel.diamond,
        region=Region(province="北京市", city="北京市"),
        gender="female",
        birth_year=1986,
        registered_at=_at(6, 18, 9, 5) - timedelta(days=8 * 365),
        tags=("高价值", "投诉敏感"),
        vip=True,
    )


def _fixed(
    no: str,
    status: OrderStatus,
    lines: tuple[tuple[str, int], ...],
    times: tuple[datetime | None, ...],
    logistics: Logistics | None = None,
) -> Order:
    created, paid, shipped, delivered, finished = (*times, None, None, None, None)[:5]
    assert created is not None
    items = tuple(_item(PRODUCTS[sku], qty) for sku, qty in lines)
    return Order(
        order_no=OrderNo(no),
        customer_id=CustomerId("u1001"),
        status=status,
        items=items,
        total=sum(i.amount for i in items),
        created_at=created,
        paid_at=paid,
        shipped_at=shipped,
        delivered_at=delivered,
        finished_at=finished,
        logistics=logistics,
        address=ZHANG_SAN_ADDRESS,
    )


def _signed(carrier: str, tracking_no: str, at: datetime) -> Logistics:
    text = f"【上海市】快件已签收，签收人：本人。感谢使用{carrier}，期待再次为您服务"
    return Logistics(carrier=carrier, tracking_no=tracking_no, last_event=text, last_event_at=at)


def _zhang_san_orders() -> list[Order]:
    s = OrderStatus
    in_shanghai = Logistics(
        carrier="顺丰速运",
        tracking_no="SF1402365987412",
        last_event="【上海市】快件已到达 上海转运中心",
        last_event_at=_at(11, 23, 15, 10),
    )
    return [
        _fixed(
            "O2026112300000001",
            s.shipped,
            (("SKU10002", 1),),
            (_at(11, 23, 0, 35), _at(11, 23, 0, 36), _at(11, 23, 11, 20)),
            in_shanghai,
        ),
        _fixed("O2026112300000002", s.pending_payment, (("SKU10003", 1),), (_at(11, 23, 15, 48),)),
        _fixed(
            "O2026111900000003",
            s.delivered,
            (("SKU10004", 1),),
            (_at(11, 19, 20, 15), _at(11, 19, 20, 17), _at(11, 20, 10, 5), _at(11, 21, 14, 32)),
            _signed("中通快递", "73526184950271", _at(11, 21, 14, 32)),
        ),
        _fixed(
            "O2026111500000005",
            s.refunding,
            (("SKU10005", 1),),
            (_at(11, 15, 21, 40), _at(11, 15, 21, 41), _at(11, 16, 16, 0), _at(11, 18, 10, 20)),
            _signed("圆通速递", "YT7512349876543", _at(11, 18, 10, 20)),
        ),
        _fixed(
            "O2026111100000004",
            s.completed,
            (("SKU10007", 2), ("SKU10018", 1)),
            (
                *(_at(11, 11, 0, 2), _at(11, 11, 0, 3), _at(11, 12, 9, 30)),
                *(_at(11, 13, 11, 5), _at(11, 20, 11, 5)),
            ),
            _signed("京东物流", "JDV018273645091", _at(11, 13, 11, 5)),
        ),
        _fixed(
            "O2026102800000006",
            s.cancelled,
            (("SKU10009", 1),),
            (_at(10, 28, 22, 10), None, None, None, _at(10, 28, 22, 40)),
        ),
        _fixed(
            "O2026100500000007",
            s.refunded,
            (("SKU10006", 2),),
            (_at(10, 5, 13, 2), _at(10, 5, 13, 4), None, None, _at(10, 5, 15, 30)),
        ),
    ]
