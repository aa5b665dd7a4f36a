"""The embedded directory: customers, products and orders in contactd's own database
(tables ``dir_customers``, ``dir_products``, ``dir_orders``), filled by
``contactd seed-demo`` (see :mod:`contactd.directory.demo`) or by an import of your own
that writes rows through :func:`customer_row`, :func:`product_row` and :func:`order_row`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contactd.clock import to_datetime
from contactd.directory.base import DEFAULT_ORDERS_LIMIT, DEFAULT_SEARCH_LIMIT, clamp_limit
from contactd.directory.models import (
    Address,
    Customer,
    CustomerId,
    Logistics,
    MemberLevel,
    Order,
    OrderItem,
    OrderNo,
    OrderStatus,
    Product,
    Region,
    Sku,
    normalize_phone,
)
from contactd.storage.bulk import marks, select_rows
from contactd.storage.db import SqlLane, write_transaction
from contactd.storage.tables import dir_customers, dir_orders, dir_products

PHONE_CHARS = frozenset("0123456789+-() ")
MIN_PHONE_FRAGMENT = 4  # a search finds phone numbers containing at least this many digits


def _ms(value: datetime | None) -> int | None:
    """A model datetime as epoch milliseconds (``None`` stays ``None``)."""
    return None if value is None else int(value.timestamp() * 1000)


# models → rows ----------------------------------------------------------------------
def customer_row(c: Customer) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "phone": normalize_phone(c.phone),
        "member_level": c.member_level.value,
        "province": c.region.province if c.region else None,
        "city": c.region.city if c.region else None,
        "gender": c.gender,
        "birth_year": c.birth_year,
        "registered_at": _ms(c.registered_at),
        "tags": list(c.tags),
        "vip": c.vip,
    }


def product_row(p: Product) -> dict[str, Any]:
    return {"sku": p.sku, "name": p.name, "price": p.price, "category": p.category}


def order_row(o: Order) -> dict[str, Any]:
    lg = o.logistics
    return {
        "order_no": o.order_no,
        "customer_id": o.customer_id,
        "status": o.status.value,
        "items": [item.model_dump(mode="json") for item in o.items],
        "total": o.total,
        "created_at": _ms(o.created_at),
        "paid_at": _ms(o.paid_at),
        "shipped_at": _ms(o.shipped_at),
        "delivered_at": _ms(o.delivered_at),
        "finished_at": _ms(o.finished_at),
        "carrier": lg.carrier if lg else None,
        "tracking_no": lg.tracking_no if lg else None,
        "logistics_event": lg.last_event if lg else None,
        "logistics_event_at": _ms(lg.last_event_at) if lg else None,
        "address": o.address.model_dump(mode="json") if o.address else None,
    }


# rows → models ----------------------------------------------------------------------
def _dt_or_none(ms: int | None) -> datetime | None:
    return None if ms is None else to_datetime(ms)


def to_customer(row: Mapping[Any, Any]) -> Customer:
    region = None
    if row["province"] is not None and row["city"] is not None:
        region = Region(province=row["province"], city=row["city"])
    return Customer(
        id=CustomerId(row["id"]),
        name=row["name"],
        phone=row["phone"],
        member_level=MemberLevel(row["member_level"]),
        region=region,
        gender=row["gender"],
        birth_year=row["birth_year"],
        registered_at=to_datetime(row["registered_at"]),
        tags=tuple(row["tags"]),
        vip=bool(row["vip"]),
    )


def to_product(row: RowMapping) -> Product:
    return Product(
        sku=Sku(row["sku"]), name=row["name"], price=row["price"], category=row["category"]
    )


def to_order(row: RowMapping) -> Order:
    logistics = None
    if row["carrier"] is not None and row["tracking_no"] is not None:
        logistics = Logistics(
            carrier=row["carrier"],
            tracking_no=row["tracking_no"],
            last_event=row["logistics_event"],
            last_event_at=_dt_or_none(row["logistics_event_at"]),
        )
    return Order(
        order_no=OrderNo(row["order_no"]),
        customer_id=CustomerId(row["customer_id"]),
        status=OrderStatus(row["status"]),
        items=tuple(OrderItem.model_validate(item) for item in row["items"]),
        total=row["total"],
        created_at=to_datetime(row["created_at"]),
        paid_at=_dt_or_none(row["paid_at"]),
        shipped_at=_dt_or_none(row["shipped_at"]),
        delivered_at=_dt_or_none(row["delivered_at"]),
        finished_at=_dt_or_none(row["finished_at"]),
        logistics=logistics,
        address=None if row["address"] is None else Address.model_validate(row["address"]),
    )


# writing ----------------------------------------------------------------------------
async def insert_all(
    conn: AsyncConnection,
    customers: Sequence[Customer],
    products: Sequence[Product],
    orders: Sequence[Order],
) -> None:
    """Insert the records on the caller's connection (customers before their orders)."""
    if customers:
        await conn.execute(sa.insert(dir_customers), [customer_row(c) for c in customers])
    if products:
        await conn.execute(sa.insert(dir_products), [product_row(p) for p in products])
    if orders:
        await conn.execute(sa.insert(dir_orders), [order_row(o) for o in orders])


class EmbeddedDirectory:
    """The :class:`~contactd.directory.base.Directory` on contactd's own SQL tables."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._lane = SqlLane(engine, "directory")  # look-ups on the loop, searches on its thread

    async def customer(self, customer_id: str) -> Customer | None:
        row = await self._first(sa.select(dir_customers).where(dir_customers.c.id == customer_id))
        return None if row is None else to_customer(row)

    async def customer_by_phone(self, phone: str) -> Customer | None:
        digits = normalize_phone(phone)
        if not digits:
            return None
        stmt = (
            sa.select(dir_customers)
            .where(dir_customers.c.phone == digits)
            .order_by(dir_customers.c.id)
            .limit(1)
        )
        row = await self._first(stmt)
        return None if row is None else to_customer(row)

    async def customers_by_phone(self, phones: Sequence[str]) -> dict[str, Customer]:
        wanted = {p: d for p in phones if (d := normalize_phone(p))}
        if not wanted:
            return {}
        digits = sorted(set(wanted.values()))
        # the lowest id wins (the last one written below), as in customer_by_phone
        if self._engine.dialect.name == "sqlite":  # every call's caller: plain SQL
            where, order = f"phone IN ({marks(len(digits))})", "ORDER BY id DESC"
            rows: Sequence[Mapping[Any, Any]] = await self._lane.lookup(
                lambda conn: select_rows(conn, dir_customers, where, digits, order)
            )
        else:
            c = dir_customers.c
            rows = await self._rows(
                sa.select(dir_customers).where(c.phone.in_(digits)).order_by(c.id.desc())
            )
        by_digits = {row["phone"]: to_customer(row) for row in rows}
        return {p: by_digits[d] for p, d in wanted.items() if d in by_digits}

    async def orders_of(self, customer_id: str, limit: int = DEFAULT_ORDERS_LIMIT) -> list[Order]:
        stmt = (
            sa.select(dir_orders)
            .where(dir_orders.c.customer_id == customer_id)
            .order_by(dir_orders.c.created_at.desc(), dir_orders.c.order_no.desc())
            .limit(clamp_limit(limit))
        )
        return [to_order(row) for row in await self._rows(stmt)]

    async def order(self, order_no: str) -> Order | None:
        row = await self._first(sa.select(dir_orders).where(dir_orders.c.order_no == order_no))
        return None if row is None else to_order(row)

    async def product(self, sku: str) -> Product | None:
        row = await self._first(sa.select(dir_products).where(dir_products.c.sku == sku))
        return None if row is None else to_product(row)

    async def search_customers(
        self, query: str, limit: int = DEFAULT_SEARCH_LIMIT
    ) -> list[Customer]:
        q = query.strip()
        if not q:
            return []
        c = dir_customers.c
        exact = [c.id == q]
        matches = [c.id == q, c.name.icontains(q, autoescape=True)]
        digits = normalize_phone(q)
        if digits and all(ch in PHONE_CHARS for ch in q):  # looks like (part of) a phone
            exact.append(c.phone == digits)
            if len(digits) >= MIN_PHONE_FRAGMENT:
                matches.append(c.phone.contains(digits, autoescape=True))
        rank = sa.case((sa.or_(*exact), 0), else_=1)
        stmt = (
            sa.select(dir_customers)
            .where(sa.or_(*matches, *exact))
            .order_by(rank, c.id)
            .limit(clamp_limit(limit))
        )
        return [to_customer(row) for row in await self._rows(stmt, by_key=False)]

    async def add(
        self,
        customers: Sequence[Customer] = (),
        products: Sequence[Product] = (),
        orders: Sequence[Order] = (),
    ) -> None:
        """Insert records in one transaction (an import, or data a test needs)."""
        async with write_transaction(self._engine) as conn:
            await insert_all(conn, customers, products, orders)

    async def close(self) -> None:
        """The reading thread stops (the engine belongs to the caller)."""
        await self._lane.stop()

    async def _rows(self, stmt: sa.Select[Any], by_key: bool = True) -> Sequence[RowMapping]:
        """``by_key``: an indexed read of a few rows (``SqlLane.lookup``); else a search."""
        read = self._lane.lookup if by_key else self._lane.read
        return await read(lambda conn: conn.execute(stmt).mappings().all())

    async def _first(self, stmt: sa.Select[Any]) -> RowMapping | None:
        rows = await self._rows(stmt)  # (by a unique key, or with a limit)
        return rows[0] if rows else None
