"""The screen-pop an agent gets with every offer: who the customer is, their orders, their
previous sessions and what was said before an agent joined. The phone is always masked
here; an agent with ``pii.view`` unmasks it with a separate, audited action."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from contactd.directory.base import Directory
from contactd.directory.models import Customer, Order, mask_phone
from contactd.sessions.models import SessionRecord
from contactd.sessions.service import SessionService

_VISITOR = "访客 Visitor"
# the customer's open cases: {"tickets": [...], "compensations": [...]}
CaseLookup = Callable[[str | None], Awaitable[dict[str, list[dict[str, Any]]]]]


def customer_card(session: SessionRecord, customer: Customer | None) -> dict[str, Any]:
    if customer is None:
        phone = session.customer_phone
        return {
            "id": session.customer_id,
            "name": session.customer_name or _VISITOR,
            "phone": mask_phone(phone) if phone else None,
            "phone_masked": bool(phone),
            "member_level": None,
            "member_level_label": None,
            "region": None,
            "vip": False,
            "identified": session.customer_id is not None,
        }
    return {
        "id": customer.id,
        "name": customer.name,
        "phone": mask_phone(customer.phone),
        "phone_masked": True,
        "member_level": customer.member_level.value,
        "member_level_label": customer.member_level.label,
        "region": _region(customer),
        "vip": customer.vip,
        "identified": True,
    }


def _region(c: Customer) -> str | None:
    if c.region is None:
        return None
    return " ".join(p for p in (c.region.province, c.region.city) if p) or None


def order_card(o: Order) -> dict[str, Any]:
    """An order for agents' and customers' screens: phone numbers in it are masked."""
    card = o.model_dump(mode="json")
    card["status_label"] = o.status.label
    address = card.get("address")
    if isinstance(address, dict) and address.get("phone"):
        address["phone"] = mask_phone(str(address["phone"]))
    return card


async def build_screen_pop(
    session: SessionRecord,
    directory: Directory,
    sessions: SessionService,
    cases: CaseLookup | None = None,
) -> dict[str, Any]:
    customer = await directory.customer(session.customer_id) if session.customer_id else None
    if customer is None and session.customer_phone:
        customer = await directory.customer_by_phone(session.customer_phone)
    orders: list[Order] = await directory.orders_of(customer.id, 5) if customer else []
    if session.order_no and all(o.order_no != session.order_no for o in orders):
        linked = await directory.order(session.order_no)
        if linked is not None and (customer is None or linked.customer_id == customer.id):
            orders.insert(0, linked)
    previous = await sessions.previous_of_customer(
        customer.id if customer else session.customer_id, session.visitor_id, session.id
    )
    transcript = await sessions.messages(session.id, 0, 200)
    meta = session.meta or {}
    return {
        "customer": customer_card(session, customer),
        "orders": [order_card(o) for o in orders],
        "previous_sessions": [
            {
                "session_id": p.id,
                "created_at": p.created_at,
                "end_reason": p.end_reason,
                "agent_id": p.agent_id,
                "agent_name": p.agent_name,
                "queue_id": p.queue_id,
            }
            for p in previous
        ],
        "transcript": [m.model_dump(mode="json") for m in transcript],
        "entry_point": session.entry_point,
        "order_no": session.order_no,
        "transfer_note": meta.get("transfer_note"),
        "bot": meta.get("bot"),  # why the bot handed over, what it recorded (bot chats)
        "cases": await cases(customer.id if customer else session.customer_id)
        if cases is not None
        else {"tickets": [], "compensations": []},
    }
