"""A compensation order's facts checked against the directory and the chat: the customer
(by phone, or the chat's), the region, the order is theirs, items and quantities are on
it, cash or balance not above what was paid."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.auth.models import Principal
from contactd.cases.compensation_models import CompensationFields, Item
from contactd.directory.base import Directory
from contactd.directory.models import normalize_phone
from contactd.errors import ContactdError, ErrorCode
from contactd.storage.tables import service_sessions

UNKNOWN_REGION = "-"


class OrderFacts:
    def __init__(self, engine: AsyncEngine, directory: Directory) -> None:
        self._engine = engine
        self._directory = directory

    async def items(self, order_no: str, wanted: list[Item], *, all_when_empty: bool) -> list[Item]:
        """``wanted`` checked against the order's lines (sku on it, qty not above what
        was bought), with names and paid amounts filled in from the order."""
        order = await self._directory.order(order_no)
        if order is None:
            raise ContactdError(ErrorCode.validation_failed, f"unknown order {order_no!r}")
        lines = {str(line.sku): line for line in order.items}
        if not wanted and all_when_empty:
            wanted = [Item(sku=line.sku, qty=line.qty) for line in order.items]
        out: list[Item] = []
        for item in wanted:
            line = lines.get(item.sku)
            if line is None:
                raise ContactdError(
                    ErrorCode.validation_failed, f"{item.sku!r} is not on order {order_no}"
                )
            if item.qty > line.qty:
                raise ContactdError(
                    ErrorCode.validation_failed,
                    f"order {order_no} has {line.qty} of {item.sku!r}, not {item.qty}",
                )
            paid = line.amount * item.qty // line.qty
            out.append(Item(sku=item.sku, name=line.name, qty=item.qty, amount=paid))
        return out

    async def facts(self, fields: CompensationFields, known_phone: str | None) -> dict[str, Any]:
        """Customer, region and items as the directory knows them. Without a phone in the
        form, the one ``known_phone`` (the chat's customer, the order being edited)."""
        given = fields.customer_phone or known_phone
        if not given:
            raise ContactdError(
                ErrorCode.validation_failed,
                "customer_phone is required (the chat's customer is not identified)",
            )
        phone = normalize_phone(given)
        if len(phone) < 5:
            raise ContactdError(ErrorCode.validation_failed, "customer_phone is not a number")
        customer = await self._directory.customer_by_phone(phone)
        items = list(fields.items)
        if fields.order_no:
            order = await self._directory.order(fields.order_no)
            if order is None:
                raise ContactdError(
                    ErrorCode.validation_failed, f"unknown order {fields.order_no!r}"
                )
            if customer is not None and order.customer_id != customer.id:
                raise ContactdError(
                    ErrorCode.validation_failed,
                    f"order {fields.order_no} does not belong to this customer",
                )
            items = await self.items(fields.order_no, items, all_when_empty=False)
            if fields.asset_type != "coupon" and fields.amount > order.total:
                raise ContactdError(
                    ErrorCode.validation_failed,
                    f"the amount is above what the customer paid for order {fields.order_no}",
                )
        elif items:
            raise ContactdError(ErrorCode.validation_failed, "items need the order_no")
        region = fields.region or (
            customer.region.province if customer and customer.region else UNKNOWN_REGION
        )
        return {
            "customer_phone": phone,
            "customer_id": customer.id if customer else None,
            "region": region,
            "order_no": fields.order_no,
            "after_sales_no": fields.after_sales_no,
            "items": [i.model_dump() for i in items],
            "scene": fields.scene,
            "asset_type": fields.asset_type.value,
            "amount": fields.amount,
            "reason": fields.reason,
            "attachments": [a.model_dump() for a in fields.attachments],
        }

    async def session_phone(self, session_id: str, who: Principal) -> str | None:
        """Check the caller served the session; the customer's phone, when known."""
        s = service_sessions.c
        stmt = sa.select(s.agents, s.customer_id, s.customer_phone).where(s.id == session_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            raise ContactdError(ErrorCode.validation_failed, f"unknown session {session_id!r}")
        if not who.can("compensation.view") and who.name not in (row.agents or []):
            raise ContactdError(ErrorCode.forbidden, "you did not serve this session")
        if row.customer_id:
            customer = await self._directory.customer(row.customer_id)
            if customer is not None:
                return customer.phone
        return str(row.customer_phone) if row.customer_phone else None
