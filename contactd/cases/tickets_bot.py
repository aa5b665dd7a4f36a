"""The case module as the bot sees it (``channels.bot.requests.AfterSales``): a refund the
bot takes becomes an after-sales ticket, opened by the system actor "bot" for the chat's
customer, order and session with the customer's reason, through the same
``TicketService.create`` (and so the same order-state rules, pools and automatic review)
as a ticket an agent opens.

Exactly once: the ticket is created under an idempotency key of the system caller "bot"
per order and kind (the bot records one request per order and kind), so a retry — after a
failure, from the bot's retry task, in another process, or two at once — gets the same
ticket; an open ticket of that type already on the order (an agent's) is the request's
ticket too.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from contactd.cases.idempotency import Remember, Replay
from contactd.cases.tickets_config import TicketType
from contactd.cases.tickets_models import Actor, TicketDetail, TicketDraft, TicketItem
from contactd.cases.tickets_rules import refund_type_for
from contactd.cases.tickets_service import TicketService
from contactd.channels.bot.models import SelfServiceRequest
from contactd.directory.base import Directory
from contactd.errors import ContactdError, ErrorCode
from contactd.sessions.models import SessionRecord

BOT = Actor(kind="system", id="bot", name="智能助手 Bot")
_CALLER = "system:bot"  # whose idempotency keys these are
_NO_REASON = "（客户未说明原因）"


class Sessions(Protocol):
    async def get(self, session_id: str) -> SessionRecord: ...


class BotAfterSales:
    def __init__(self, tickets: TicketService, sessions: Sessions, directory: Directory) -> None:
        self._tickets = tickets
        self._sessions = sessions
        self._directory = directory

    async def open_ticket(self, request: SelfServiceRequest) -> str | None:
        """The request's ticket id; None when no ticket type fits (an address change, an
        order on its way): the request stays for a person."""
        if request.kind != "refund":
            return None
        order = await self._directory.order(request.order_no)
        kind = refund_type_for(order.status.value) if order is not None else None
        if order is None or kind is None:
            return None
        draft = TicketDraft(
            type=kind,
            order_no=order.order_no,
            reason=request.details.get("reason", "").strip() or _NO_REASON,
            # a return covers the whole order, like a refund before picking
            items=[TicketItem(sku=i.sku, qty=i.qty) for i in order.items]
            if kind is TicketType.return_refund
            else [],
            amount=sum(i.amount for i in order.items) if kind is TicketType.return_refund else None,
        )
        session = await self._sessions.get(request.session_id)

        async def create(remember: Remember) -> str:
            async def stored(conn: AsyncConnection, detail: TicketDetail) -> None:
                await remember(conn, 201, {"ticket_id": detail.ticket.id})

            detail = await self._tickets.create(BOT, draft, session, on_created=stored)
            return detail.ticket.id

        key = f"bot:{request.kind}:{order.order_no}"
        digest = hashlib.sha256(key.encode()).hexdigest()
        try:
            out = await self._tickets.idempotency.once(_CALLER, key, digest, create)
        except ContactdError as exc:
            existing = exc.details.get("ticket_id")
            if exc.code is ErrorCode.conflict and isinstance(existing, str):
                return existing  # already open on the order: that is the request's ticket
            raise
        return str(out.body["ticket_id"]) if isinstance(out, Replay) else out
