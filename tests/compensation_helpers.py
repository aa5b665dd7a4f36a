"""Shared pieces of the compensation tests: a customer with an order in the embedded
directory, principals of each role, and the compensation context without its workers
(tests run the payout and outbox passes themselves)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.auth.audit import AuditLog
from contactd.auth.models import AuditContext, Principal
from contactd.bus import Bus
from contactd.cases.compensation_app import Compensation, compensation_running
from contactd.cases.compensation_models import CompensationCreate
from contactd.clock import Clock
from contactd.directory.embedded import EmbeddedDirectory
from contactd.directory.models import Customer, Order, OrderItem, OrderStatus, Region
from contactd.settings import Settings
from contactd.storage.tables import service_sessions

PHONE = "13800138000"
OTHER_PHONE = "13900139000"
ORDER_NO = "O2026112300001234"
OTHER_ORDER_NO = "O2026112300009999"
WHEN = datetime(2026, 11, 1, tzinfo=UTC)

CUSTOMERS = (
    Customer(
        id="c1",
        name="张三",
        phone=PHONE,
        region=Region(province="广东省", city="深圳市"),
        registered_at=WHEN,
    ),
    Customer(id="c2", name="李四", phone=OTHER_PHONE, registered_at=WHEN),
)
ORDERS = (
    Order(
        order_no=ORDER_NO,
        customer_id="c1",
        status=OrderStatus.delivered,
        items=(
            OrderItem(sku="SKU-1", name="马克杯 Mug", qty=2, unit_price=10_000, amount=20_000),
            OrderItem(sku="SKU-2", name="餐盘 Plate", qty=1, unit_price=50_000, amount=45_000),
        ),
        total=65_000,
        created_at=WHEN,
    ),
    Order(
        order_no=OTHER_ORDER_NO,
        customer_id="c2",
        status=OrderStatus.completed,
        items=(OrderItem(sku="SKU-3", name="Tea", qty=1, unit_price=3_000, amount=3_000),),
        total=3_000,
        created_at=WHEN,
    ),
)

ROLES = {
    "ag1": "agent",
    "ag2": "agent",
    "rev1": "reviewer",
    "rev2": "reviewer",
    "fin1": "finance",
    "fin2": "finance",
    "sup1": "supervisor",
    "boss": "admin",
}


def staff(settings: Settings, name: str) -> Principal:
    role = ROLES[name]
    return Principal(
        kind="staff",
        id=str(sorted(ROLES).index(name) + 1),
        name=name,
        role=role,
        permissions=settings.permissions_of(role),
    )


def as_(settings: Settings, name: str) -> AuditContext:
    return AuditContext(actor=staff(settings, name))


def order_body(**kw: Any) -> CompensationCreate:
    data: dict[str, Any] = {
        "customer_phone": PHONE,
        "order_no": ORDER_NO,
        "items": [{"sku": "SKU-1", "qty": 1}],
        "scene": "defect",
        "asset_type": "balance",
        "amount": 5_000,
        "reason": "杯子有裂纹",
    }
    data.update(kw)
    return CompensationCreate.model_validate(data)


async def seed_directory(engine: AsyncEngine) -> EmbeddedDirectory:
    directory = EmbeddedDirectory(engine)
    await directory.add(customers=CUSTOMERS, orders=ORDERS)
    return directory


@asynccontextmanager
async def compensation(
    settings: Settings, db: AsyncEngine, clock: Clock, bus: Bus | None = None
) -> AsyncIterator[Compensation]:
    directory = await seed_directory(db)
    async with compensation_running(
        settings, db, clock, bus or Bus(), AuditLog(db, clock), directory, workers=False
    ) as comp:
        yield comp


async def add_session(
    db: AsyncEngine,
    session_id: str,
    agent: str,
    customer_id: str | None = None,
    visitor_id: str | None = None,
) -> None:
    """A service session row as the chat would have left it."""
    async with db.begin() as conn:
        await conn.execute(
            sa.insert(service_sessions).values(
                id=session_id,
                contact_id=session_id,
                channel="chat",
                entry_point="home",
                queue_id="sales",
                state="active",
                customer_id=customer_id,
                visitor_id=visitor_id,
                agents=[agent],
                created_at=0,
                last_seq=0,
                transfers=0,
                responses=0,
                response_total_ms=0,
            )
        )
