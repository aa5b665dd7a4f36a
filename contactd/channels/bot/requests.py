"""Self-service requests the bot takes (start a refund, change the delivery address).

Each is recorded here first, so nothing a customer asked for is lost. ``AfterSales`` is
the seam to the case module (``contactd.cases.tickets_bot``): with it wired in, a request
is stored ``ticket_pending`` and then handed to it; the outcome is stored on the request —
the ticket it opened (``ticket_opened`` + ``ticket_id``), none that fits (``recorded``: a
person takes it from the screen-pop and the ticket desk's follow-up list), or a refusal
(``ticket_failed``, the reason in ``details.ticket_error``: a person again). A person who
dealt with one of those marks it ``handled`` (``handle``: who, when, what they did, and
the ticket they opened by hand, if any; audited). A passing
failure (the database, the directory) leaves it ``ticket_pending``; ``retry_pending``
(a task of the bot context) tries again until ``GIVE_UP_MS``, then marks it failed. The
case module opens at most one ticket per request however often it is asked.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.auth.audit import AuditLog
from contactd.auth.models import AuditContext
from contactd.channels.bot.models import (
    NEEDS_PERSON,
    HandleRequest,
    RequestKind,
    SelfServiceRequest,
)
from contactd.clock import Clock
from contactd.errors import ContactdError, ErrorCode
from contactd.storage.db import write_transaction
from contactd.storage.tables import bot_requests as t
from contactd.tasks import every

log = logging.getLogger(__name__)
RETRY_AFTER_MS = 30_000  # a pending request this old is tried again (the first try is done)
RETRY_EVERY_S = 60.0
GIVE_UP_MS = 12 * 3600 * 1000  # then a person handles it (ticket_failed)
_BATCH = 100


class AfterSales(Protocol):
    """What the case module offers the bot: open a ticket for a recorded request and
    return its id — the same ticket however often it is asked for the same request; None
    when no ticket fits (e.g. a kind it does not handle). A ``ContactdError`` is a refusal
    (except ``idempotency_in_progress``: another try is running); anything else is a
    passing failure, tried again later."""

    async def open_ticket(self, request: SelfServiceRequest) -> str | None: ...


class SelfServiceRequests:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        timezone: str,
        after_sales: AfterSales | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.tz = ZoneInfo(timezone)
        self.after_sales = after_sales
        self.audit = audit

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
        """Store the request (once per order and kind), then ask the case module for its
        ticket; returns (request, created)."""
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
            status="recorded" if self.after_sales is None else "ticket_pending",
            ticket_id=None,
            created_at=now,
        )
        async with write_transaction(self.engine) as conn:
            await conn.execute(sa.insert(t).values(**req.model_dump()))
        return await self.open_ticket(req), True

    async def open_ticket(self, req: SelfServiceRequest) -> SelfServiceRequest:
        """Hand a ``ticket_pending`` request to the case module and store the outcome."""
        if self.after_sales is None or req.status != "ticket_pending":
            return req
        try:
            ticket = await self.after_sales.open_ticket(req)
        except ContactdError as exc:
            if exc.code is ErrorCode.idempotency_in_progress:
                return req  # another try (another process) is opening it right now
            log.info("no ticket for bot request %s: %s %s", req.id, exc.code, exc.message)
            return await self._failed(req, exc.message)
        except Exception:
            log.exception("opening the ticket of bot request %s failed; tried again", req.id)
            return req
        if ticket is None:
            return await self._settle(req, {"status": "recorded"})
        return await self._settle(req, {"status": "ticket_opened", "ticket_id": ticket})

    async def _failed(self, req: SelfServiceRequest, error: str) -> SelfServiceRequest:
        details = {**req.details, "ticket_error": error[:500]}
        return await self._settle(req, {"status": "ticket_failed", "details": details})

    async def _settle(self, req: SelfServiceRequest, changes: dict[str, Any]) -> SelfServiceRequest:
        """Store the outcome, unless another try stored one first."""
        async with write_transaction(self.engine) as conn:
            await conn.execute(
                sa.update(t)
                .where(t.c.id == req.id, t.c.status == "ticket_pending")
                .values(**changes)
            )
        return req.model_copy(update=changes)

    async def retry_pending(self) -> int:
        """Try again the requests still waiting for their ticket (a passing failure, or a
        process that stopped half-way); those waiting longer than ``GIVE_UP_MS`` go to a
        person. Returns how many it looked at."""
        now = self.clock.now_ms()
        q = (
            sa.select(t)
            .where(t.c.status == "ticket_pending", t.c.created_at <= now - RETRY_AFTER_MS)
            .order_by(t.c.created_at)
            .limit(_BATCH)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        for row in rows:
            req = SelfServiceRequest.model_validate(dict(row))
            if req.created_at < now - GIVE_UP_MS:
                await self._failed(req, "no ticket could be opened in time: handle it by hand")
            else:
                await self.open_ticket(req)
        return len(rows)

    async def run_retries(self) -> None:
        await every(RETRY_EVERY_S, self.retry_pending, "retrying the bot requests' tickets")

    async def handle(
        self, request_id: str, body: HandleRequest, ctx: AuditContext
    ) -> SelfServiceRequest:
        """Mark a request the bot could not finish (``recorded`` or ``ticket_failed``) as
        dealt with by ``ctx.actor``; once only: a second person is told who did it."""
        changes: dict[str, Any] = {
            "status": "handled",
            "handled_by": ctx.actor.name if ctx.actor else "system",
            "handled_at": self.clock.now_ms(),
            "handled_note": body.note,
        }
        if body.ticket_id is not None:
            changes["ticket_id"] = body.ticket_id
        async with write_transaction(self.engine) as conn:
            done = await conn.execute(
                sa.update(t)
                .where(t.c.id == request_id, t.c.status.in_(NEEDS_PERSON))
                .values(**changes)
            )
            row = (await conn.execute(sa.select(t).where(t.c.id == request_id))).mappings().first()
            if row is None:
                raise ContactdError(ErrorCode.bot_request_not_found, f"no bot request {request_id}")
            after = SelfServiceRequest.model_validate(dict(row))
            if done.rowcount != 1:
                raise ContactdError(ErrorCode.conflict, _not_open(after), status=after.status)
            if self.audit is not None:
                await self.audit.record(
                    ctx.actor,
                    "bot_request.handled",
                    "bot_request",
                    request_id,
                    after=changes,
                    ip=ctx.ip,
                    request_id=ctx.request_id,
                    conn=conn,
                )
        return after

    async def search(
        self,
        *,
        session_id: str | None = None,
        order_no: str | None = None,
        kind: str | None = None,
        status: str | None = None,
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
        if status:  # one status, or several separated by commas
            q = q.where(t.c.status.in_([s for s in status.split(",") if s]))
        q = q.order_by(t.c.created_at.desc(), t.c.id).limit(limit).offset(offset)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        return [SelfServiceRequest.model_validate(dict(r)) for r in rows]


def _not_open(req: SelfServiceRequest) -> str:
    if req.status == "handled":
        return f"{req.handled_by} already handled this request"
    if req.status == "ticket_opened":
        return f"this request has its ticket already: {req.ticket_id}"
    return "a ticket is still being opened for this request"
