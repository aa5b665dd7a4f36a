"""Self-service requests the bot takes (start a refund, change the delivery address).

Each is recorded here first, so nothing a customer asked for is lost. ``AfterSales`` is
the seam to the case module: once it is wired in, a refund request also opens an
after-sales ticket and the request remembers the ticket id. Until then the request is
``recorded`` and the agent sees it in the screen-pop and in ``GET /api/v1/bot/requests``.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.channels.bot.models import RequestKind, SelfServiceRequest
from contactd.clock import Clock
from contactd.storage.db import write_transaction
from contactd.storage.tables import bot_requests as t


class AfterSales(Protocol):
    """What the case module offers the bot: open a ticket for a recorded request and
    return its id (None when it declines to, e.g. a kind it does not handle)."""

    async def open_ticket(self, request: SelfServiceRequest) -> str | None: ...


class SelfServiceRequests:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        timezone: str,
        after_sales: AfterSales | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.tz = ZoneInfo(timezone)
        self.after_sales = after_sales

    async def open_one(self, kind: RequestKind, order_no: str) -> SelfServiceRequest | None:
        """An earlier request of this kind for this order, if any (one is enough)."""
        found = await self.search(order_no=order_no, kind=kind, limit=1)
        return found[0] if found else None

    async def record(
        self,
        kind: RequestKind,
        *,
        session_id: str,
        order_no: str,
        customer_id: str | None,
        details: dict[str, str],
    ) -> tuple[SelfServiceRequest, bool]:
        """Store the request (once per order and kind); returns (request, created)."""
        existing = await self.open_one(kind, order_no)
        if existing is not None:
            return existing, False
        now = self.clock.now_ms()
        day = datetime.fromtimestamp(now / 1000, self.tz).strftime("%Y%m%d")
        req = SelfServiceRequest(
            id=f"R{day}-{secrets.token_hex(4).upper()}",
            kind=kind,
            session_id=session_id,
            order_no=order_no,
            customer_id=customer_id,
            details=details,
            status="recorded",
            ticket_id=None,
            created_at=now,
        )
        async with write_transaction(self.engine) as conn:
            await conn.execute(sa.insert(t).values(**req.model_dump()))
        if self.after_sales is not None:
            ticket = await self.after_sales.open_ticket(req)
            if ticket is not None:
                async with write_transaction(self.engine) as conn:
                    await conn.execute(
                        sa.update(t)
                        .where(t.c.id == req.id)
                        .values(status="ticket_opened", ticket_id=ticket)
                    )
                req = req.model_copy(update={"status": "ticket_opened", "ticket_id": ticket})
        return req, True

    async def search(
        self,
        *,
        session_id: str | None = None,
        order_no: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[SelfServiceRequest]:
        q = sa.select(t)
        if session_id:
            q = q.where(t.c.session_id == session_id)
        if order_no:
            q = q.where(t.c.order_no == order_no)
        if kind:
            q = q.where(t.c.kind == kind)
        q = q.order_by(t.c.created_at.desc(), t.c.id).limit(limit).offset(offset)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        return [SelfServiceRequest.model_validate(dict(r)) for r in rows]
