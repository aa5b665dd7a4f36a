"""Pure ticket policy (no I/O): which items and amount a new ticket may carry given its
directory order, and which automatic approval rule (极速审核 / 闪电退款) applies."""

from __future__ import annotations

from contactd.cases.tickets_config import TicketSettings, TicketType
from contactd.cases.tickets_models import ORDER_STATUSES, TicketItem
from contactd.directory.models import Customer, Order
from contactd.errors import ContactdError, ErrorCode

T = TicketType
E = ErrorCode
AUTO_NOTES = {"fast_review": "极速审核 自动通过", "lightning_refund": "闪电退款 自动通过并受理退款"}
_ITEM_TYPES = {T.partial_refund, T.return_refund, T.reshipment, T.exchange}
_NO_MONEY = {T.reshipment, T.exchange, T.complaint}


def _mismatch(message: str) -> ContactdError:
    return ContactdError(E.ticket_order_mismatch, message)


def check_items(
    kind: TicketType, order: Order | None, items: list[TicketItem], amount: int | None
) -> tuple[list[TicketItem], int]:
    """The ticket's items (named and priced from the order) and amount, or a refusal.

    Every SKU must be on the order, at most the quantity bought (each SKU once); a line's
    value is its share of what was actually charged for it. A refund before picking covers
    the whole order; partial and return refunds at most the chosen lines; compensation at
    most the order total; reshipment, exchange and complaints carry no money.
    """
    if order is None:
        if items:
            raise _mismatch("items need an order")
        if amount:
            raise _mismatch("an amount needs an order")
        return [], 0
    lines = {line.sku: line for line in order.items}
    if kind is T.refund and not items:
        items = [TicketItem(sku=line.sku, qty=line.qty) for line in order.items]
    if kind in _ITEM_TYPES and not items:
        raise ContactdError(E.validation_failed, f"a {kind.label} ticket needs the items")
    seen: set[str] = set()
    checked: list[TicketItem] = []
    for item in items:
        line = lines.get(item.sku)
        if line is None:
            raise _mismatch(f"{item.sku} is not on order {order.order_no}")
        if item.sku in seen:
            raise _mismatch(f"{item.sku} is listed twice")
        seen.add(item.sku)
        if item.qty > line.qty:
            raise _mismatch(f"{item.sku}: {item.qty} asked, {line.qty} bought")
        value = line.amount * item.qty // line.qty
        checked.append(TicketItem(sku=item.sku, qty=item.qty, name=line.name, amount=value))
    covered = sum(i.amount or 0 for i in checked)
    if kind is T.refund:
        if len(seen) != len(lines) or any(i.qty != lines[i.sku].qty for i in checked):
            raise _mismatch("a refund before picking covers the whole order")
        if amount is not None and amount != order.total:
            raise _mismatch(f"a refund before picking is the order total, {order.total} fen")
        return checked, order.total
    if kind in _NO_MONEY:
        if amount:
            raise _mismatch(f"a {kind.label} ticket carries no amount")
        return checked, 0
    if not amount:
        raise ContactdError(E.validation_failed, f"a {kind.label} ticket needs an amount")
    ceiling = order.total if kind is T.compensation else covered
    if amount > ceiling:
        raise _mismatch(f"{amount} fen is more than the {ceiling} fen the items are worth")
    return checked, amount


def auto_actions(
    cfg: TicketSettings,
    kind: TicketType,
    order: Order | None,
    customer: Customer | None,
    amount: int,
) -> tuple[str, list[str]]:
    """The automatic rule that applies to a new ticket and the actions the system takes at
    once; ("", []) when a person must review it."""
    lightning = cfg.lightning_refund
    refund = kind in (T.refund, T.partial_refund)
    if order is not None and refund and amount <= lightning.max_amount:
        chosen = order.order_no in lightning.order_nos or (
            customer is not None and customer.member_level.value in lightning.member_levels
        )
        if chosen:
            return "lightning_refund", ["approve", "start_refund"]
    for rule in cfg.fast_review:
        if kind not in rule.types or amount > rule.max_amount:
            continue
        if rule.order_statuses and (order is None or order.status.value not in rule.order_statuses):
            continue
        return "fast_review", ["approve"]
    return "", []


def refund_type_for(order_status: str) -> TicketType | None:
    """The ticket a customer's plain "I want my money back" opens on an order in this
    status: the whole order refunded before picking is done (refund), returned and refunded
    once delivered (return_refund); none while it is on its way or already being refunded
    (a person decides)."""
    for kind in (T.refund, T.return_refund):
        if order_status in (ORDER_STATUSES[kind] or ()):
            return kind
    return None
