"""After-sales ticket use cases: create (from a session or the open API, checked against
the directory order), the new-ticket prefill for a chat, claiming from a pool, assign /
transfer / dispatch, state-machine actions, notes, priority, customer urging and stall
warnings. The write path they share is :class:`~contactd.cases.tickets_core.TicketCore`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from contactd.cases import tickets_repository as repo
from contactd.cases.tickets_config import TicketType
from contactd.cases.tickets_core import TicketCore
from contactd.cases.tickets_events import TicketChanged, TicketStalled, TicketUrged
from contactd.cases.tickets_models import (
    MAX_PRIORITY,
    ORDER_STATUSES,
    SYSTEM,
    Actor,
    CustomerTicket,
    Lang,
    PrefillOrder,
    TicketDetail,
    TicketDraft,
    TicketItem,
    TicketPrefill,
    TicketView,
    next_state,
    types_for_order,
)
from contactd.cases.tickets_rules import AUTO_NOTES, auto_actions, check_items
from contactd.directory.models import Customer
from contactd.errors import ContactdError, ErrorCode
from contactd.sessions.models import Attachment, SessionRecord
from contactd.storage.db import write_transaction

log = logging.getLogger(__name__)
E = ErrorCode


class TicketService(TicketCore):
    async def for_customer(
        self, customer_id: str | None, visitor_id: str | None, lang: Lang = "zh"
    ) -> list[CustomerTicket]:
        async with self._engine.connect() as conn:
            rows = await repo.of_customer(conn, customer_id, visitor_id)
        now, urge_ms = self._clock.now_ms(), int(self._cfg.urge_interval_s * 1000)
        return [repo.to_customer(r, now, urge_ms, lang) for r in rows]

    async def screen_pop(self, customer_id: str | None) -> list[dict[str, Any]]:
        """The customer's open tickets, for the agent's screen-pop."""
        if not customer_id:
            return []
        views = await self.search(customer_id=customer_id, open_only=True, limit=20)
        return [
            {**v.model_dump(mode="json"), "status_label": f"{v.type_label} · {v.state_label}"}
            for v in views
        ]

    async def prefill(self, session: SessionRecord) -> TicketPrefill:
        """The new-ticket form for a chat: its customer, the order it is about and the
        customer's recent orders, each with the ticket types it allows now."""
        draft = TicketDraft(type=TicketType.complaint, reason="-")
        customer = await self._customer(draft, session)
        orders = await self._directory.orders_of(customer.id, 10) if customer else []
        if session.order_no and all(o.order_no != session.order_no for o in orders):
            linked = await self._directory.order(session.order_no)
            if linked is not None and (customer is None or linked.customer_id == customer.id):
                orders.insert(0, linked)
        return TicketPrefill(
            session_id=session.id,
            queue_id=self._queue(
                session.queue_id if self._settings.queue(session.queue_id) else None
            ),
            customer_id=customer.id if customer else None,
            customer_name=customer.name if customer else session.customer_name,
            customer_phone=customer.masked_phone if customer else None,
            order_no=session.order_no,
            orders=[
                PrefillOrder(
                    order_no=o.order_no,
                    status=o.status.value,
                    status_label=o.status.label,
                    total=o.total,
                    created_at=o.created_at.isoformat(),
                    items=[
                        TicketItem(sku=i.sku, qty=i.qty, name=i.name, amount=i.amount)
                        for i in o.items
                    ],
                    types=types_for_order(o.status.value),
                )
                for o in orders
            ],
            types=list(TicketType),
            attachments=await self._files.of_session(session.id) if self._files else [],
        )

    async def _customer(self, draft: TicketDraft, session: SessionRecord | None) -> Customer | None:
        cid = draft.customer_id or (session.customer_id if session else None)
        if cid:
            customer = await self._directory.customer(cid)
            if customer is None:
                raise ContactdError(E.ticket_order_mismatch, f"no customer {cid!r}")
            return customer
        phone = draft.customer_phone or (session.customer_phone if session else None)
        return await self._directory.customer_by_phone(phone) if phone else None

    async def _evidence(self, ids: list[str], session: SessionRecord | None) -> list[Attachment]:
        """The chat files a new ticket refers to: each must have been sent in its chat."""
        if not ids:
            return []
        if session is None or self._files is None:
            raise ContactdError(
                E.validation_failed, "attachments come from a chat: give session_id"
            )
        if len(set(ids)) != len(ids):
            raise ContactdError(E.validation_failed, "an attachment is listed twice")
        return [await self._files.attachment(i, session.id) for i in ids]

    async def create(
        self,
        actor: Actor,
        draft: TicketDraft,
        session: SessionRecord | None = None,
        *,
        on_created: Callable[[AsyncConnection, TicketDetail], Awaitable[None]] | None = None,
    ) -> TicketDetail:
        """``on_created`` runs inside the creating transaction (an Idempotency-Key record
        commits with the ticket)."""
        queue_id = self._queue(draft.queue_id or (session.queue_id if session else None))
        customer = await self._customer(draft, session)
        order_no = draft.order_no or (session.order_no if session else None)
        allowed = ORDER_STATUSES[draft.type]
        order = None
        if order_no:
            order = await self._directory.order(order_no)
            if order is None:
                raise ContactdError(E.ticket_order_mismatch, f"no order {order_no!r}")
            if customer is not None and order.customer_id != customer.id:
                raise ContactdError(E.ticket_order_mismatch, "the order is not this customer's")
            if customer is None:
                customer = await self._directory.customer(order.customer_id)
        elif allowed is not None:
            raise ContactdError(E.validation_failed, f"a {draft.type.value} ticket needs an order")
        if order is not None and allowed is not None and order.status.value not in allowed:
            raise ContactdError(
                E.ticket_order_mismatch,
                f"a {draft.type.label} ticket is not possible on an order that is "
                f"{order.status.label} ({order.status.value})",
            )
        items, amount = check_items(draft.type, order, draft.items, draft.amount)
        evidence = await self._evidence(draft.attachments, session)
        now = self._clock.now_ms()
        ticket_id = self._new_id()
        values: dict[str, Any] = {
            "id": ticket_id,
            "version": 1,
            "type": draft.type.value,
            "state": "pending_review",
            "priority": draft.priority,
            "queue_id": queue_id,
            "owner_id": None,
            "owner_name": None,
            "customer_id": customer.id if customer else None,
            "customer_name": customer.name if customer else session and session.customer_name,
            "customer_phone": customer.phone if customer else draft.customer_phone,
            "visitor_id": session.visitor_id if session else None,
            "order_no": order.order_no if order else None,
            "session_id": session.id if session else None,
            "items": [i.model_dump(mode="json") for i in items],
            "attachments": [a.model_dump(mode="json") for a in evidence],
            "amount": amount,
            "reason": draft.reason,
            "auto_rule": None,
            "urges": 0,
            "last_urged_at": None,
            "created_by": actor.name or actor.id or "system",
            "created_at": now,
            "updated_at": now,
            "claimed_at": None,
            "first_action_at": None,
            "closed_at": None,
            "stall_warned_at": None,
        }
        rule, steps = auto_actions(self._cfg, draft.type, order, customer, amount)
        async with write_transaction(self._engine) as conn:
            if order is not None and draft.type.value != "complaint":
                dup = await repo.open_duplicate(conn, order.order_no, draft.type.value)
                if dup is not None:
                    raise ContactdError(
                        E.conflict,
                        f"order {order.order_no} already has an open {draft.type.label} "
                        f"ticket {dup['id']}",
                        ticket_id=dup["id"],
                    )
            await repo.insert(conn, values)
            await self._node(
                conn,
                ticket_id,
                actor,
                "create",
                None,
                "pending_review",
                draft.reason,
                {"amount": amount},
            )
            state, version = "pending_review", 1
            for action in steps:
                target = next_state(draft.type, state, action)
                assert target is not None, (draft.type, state, action)
                await repo.update(conn, ticket_id, version, {"state": target, "auto_rule": rule})
                await self._node(conn, ticket_id, SYSTEM, action, state, target, AUTO_NOTES[rule])
                state, version = target, version + 1
            view = self._view(
                {**values, "state": state, "version": version, "auto_rule": rule or None}
            )
            await self._record(conn, actor, "ticket.created", view, None)
            detail = TicketDetail(ticket=view, timeline=await repo.timeline(conn, ticket_id))
            if on_created is not None:
                await on_created(conn, detail)
        await self._publish(
            TicketChanged(action="create", ticket=view, visitor_id=values["visitor_id"])
        )
        return detail

    async def act(
        self,
        actor: Actor,
        ticket_id: str,
        action: str,
        note: str | None = None,
        version: int | None = None,
    ) -> TicketView:
        def check(t: TicketView) -> dict[str, Any]:
            self._may_act(actor, t)
            target = next_state(t.type, t.state, action)
            if target is None:
                raise ContactdError(
                    E.ticket_invalid_transition,
                    f"a {t.type_label} ticket that is {t.state_label} cannot {action}",
                    state=t.state,
                    allowed=t.actions,
                )
            return {"state": target}

        return await self._change(ticket_id, actor, action, check, version=version, note=note)

    async def note(self, actor: Actor, ticket_id: str, text: str) -> TicketView:
        def check(t: TicketView) -> dict[str, Any]:
            self._may_act(actor, t)
            return {}

        return await self._change(ticket_id, actor, "note", check, note=text)

    async def claim(self, actor: Actor, ticket_id: str) -> TicketView:
        def check(t: TicketView) -> dict[str, Any]:
            if t.final:
                raise ContactdError(E.ticket_closed, "the ticket is closed")
            if t.owner_id is not None:
                raise ContactdError(
                    E.ticket_already_claimed,
                    "you already hold it" if t.owner_id == actor.id else "someone claimed it first",
                )
            return {
                "owner_id": actor.id,
                "owner_name": actor.name,
                "claimed_at": self._clock.now_ms(),
            }

        try:
            return await self._change(ticket_id, actor, "claim", check)
        except ContactdError as exc:
            if exc.code is E.ticket_changed:  # lost the race
                raise ContactdError(E.ticket_already_claimed, "someone claimed it first") from exc
            raise

    async def assign(
        self, actor: Actor, ticket_id: str, agent_id: str, note: str | None = None
    ) -> TicketView:
        """Give the ticket to ``agent_id`` (from the pool or from its owner):
        ``tickets.assign``."""
        name = await self._target(agent_id)

        def check(t: TicketView) -> dict[str, Any]:
            if t.final:
                raise ContactdError(E.ticket_closed, "the ticket is closed")
            if t.owner_id == agent_id:
                raise ContactdError(E.conflict, f"{agent_id} already holds it")
            return {"owner_id": agent_id, "owner_name": name, "claimed_at": self._clock.now_ms()}

        return await self._change(
            ticket_id, actor, "assign", check, note=note, data={"to": agent_id}, progress=False
        )

    async def transfer(
        self,
        actor: Actor,
        ticket_id: str,
        agent_id: str,
        note: str | None = None,
        *,
        any_owner: bool = False,
    ) -> TicketView:
        """Hand one's own ticket on to a colleague (``any_owner``: anyone's)."""
        name = await self._target(agent_id)

        def check(t: TicketView) -> dict[str, Any]:
            if t.final:
                raise ContactdError(E.ticket_closed, "the ticket is closed")
            if t.owner_id is None:
                raise ContactdError(E.ticket_not_owner, "claim or assign a ticket in a pool")
            if not any_owner and t.owner_id != actor.id:
                raise ContactdError(E.ticket_not_owner, "only the owner may transfer it")
            if t.owner_id == agent_id:
                raise ContactdError(E.conflict, f"{agent_id} already holds it")
            return {"owner_id": agent_id, "owner_name": name, "claimed_at": self._clock.now_ms()}

        return await self._change(
            ticket_id, actor, "transfer", check, note=note, data={"to": agent_id}, progress=False
        )

    async def dispatch(
        self, actor: Actor, ticket_id: str, queue_id: str, note: str | None = None
    ) -> TicketView:
        """Put the ticket in ``queue_id``'s pool (unclaimed), from wherever it is."""
        queue_id = self._queue(queue_id)

        def check(t: TicketView) -> dict[str, Any]:
            if t.final:
                raise ContactdError(E.ticket_closed, "the ticket is closed")
            if t.owner_id is None and t.queue_id == queue_id:
                raise ContactdError(E.conflict, f"the ticket is already in the {queue_id} pool")
            return {"queue_id": queue_id, "owner_id": None, "owner_name": None, "claimed_at": None}

        return await self._change(
            ticket_id,
            actor,
            "dispatch",
            check,
            note=note,
            data={"queue_id": queue_id},
            progress=False,
        )

    async def set_priority(
        self, actor: Actor, ticket_id: str, priority: int, *, any_owner: bool = False
    ) -> TicketView:
        def check(t: TicketView) -> dict[str, Any]:
            if not any_owner:
                self._may_act(actor, t)
            elif t.final:
                raise ContactdError(E.ticket_closed, "the ticket is closed")
            return {"priority": priority}

        return await self._change(
            ticket_id, actor, "priority", check, data={"priority": priority}, progress=False
        )

    async def urge(
        self, visitor_id: str, customer_id: str | None, ticket_id: str, lang: Lang = "zh"
    ) -> CustomerTicket:
        """催单 from the widget: only the customer's own open ticket, once per
        ``urge_interval_s``; raises the priority and notifies the owner."""
        actor = Actor(kind="customer", id=customer_id or visitor_id, name="客户 Customer")
        interval = int(self._cfg.urge_interval_s * 1000)

        def check(t: TicketView) -> dict[str, Any]:
            if t.final:
                raise ContactdError(E.ticket_closed, "the ticket is already finished")
            now = self._clock.now_ms()
            if t.last_urged_at is not None and now - t.last_urged_at < interval:
                wait_s = (t.last_urged_at + interval - now + 999) // 1000
                raise ContactdError(
                    E.ticket_urge_throttled,
                    f"already urged: you can urge again in {wait_s} s",
                    retry_after_s=wait_s,
                )
            return {
                "urges": t.urges + 1,
                "last_urged_at": now,
                "priority": min(MAX_PRIORITY, t.priority + self._cfg.urge_priority_step),
            }

        async with self._engine.connect() as conn:
            row = await repo.get(conn, ticket_id)
        mine = row is not None and (
            row["visitor_id"] == visitor_id
            or (customer_id is not None and row["customer_id"] == customer_id)
        )
        if not mine:
            raise ContactdError(E.ticket_not_found, "no such ticket")  # no IDOR
        view = await self._change(ticket_id, actor, "urge", check, progress=False)
        await self._publish(TicketUrged(ticket=view))
        return next(
            t for t in await self.for_customer(customer_id, visitor_id, lang) if t.id == ticket_id
        )

    async def warn_stalled(self) -> list[TicketView]:
        """Warn once per stall about every open ticket without progress for
        ``stall_after_s`` (a timeline node, and an event for owners and supervisors)."""
        now = self._clock.now_ms()
        async with self._engine.connect() as conn:
            rows = await repo.stalled(conn, now - self._stall_ms)
        warned: list[TicketView] = []
        for row in rows:

            def check(t: TicketView, row: RowMapping = row) -> dict[str, Any]:
                if t.final or t.updated_at != row["updated_at"]:
                    raise ContactdError(E.ticket_changed, "moved on meanwhile")
                return {"stall_warned_at": self._clock.now_ms()}

            idle_s = (now - row["updated_at"]) // 1000
            try:
                view = await self._change(
                    row["id"], SYSTEM, "stalled", check, data={"idle_s": idle_s}, progress=False
                )
            except ContactdError:
                continue
            warned.append(view)
            await self._publish(TicketStalled(ticket=view, idle_s=idle_s))
        return warned
