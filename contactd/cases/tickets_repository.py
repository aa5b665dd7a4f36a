"""SQL of after-sales tickets (SQLAlchemy Core; SQLite and PostgreSQL alike)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from contactd.cases.tickets_config import TicketType
from contactd.cases.tickets_models import (
    ACTION_LABELS,
    FINAL_STATES,
    STATE_LABELS,
    CustomerTicket,
    Lang,
    PoolSummary,
    TicketItem,
    TicketView,
    TimelineNode,
    actions_from,
    customer_status,
    customer_steps,
)
from contactd.directory.models import mask_phone
from contactd.sessions.models import Attachment
from contactd.storage.tables import ticket_events, tickets

URGENT_PRIORITY = 5


def to_view(row: Mapping[Any, Any], now: int, stall_ms: int) -> TicketView:
    kind = TicketType(row["type"])
    state = str(row["state"])
    final = state in FINAL_STATES
    phone = row["customer_phone"]
    return TicketView(
        id=row["id"],
        version=row["version"],
        type=kind,
        type_label=kind.label,
        state=state,
        state_label=STATE_LABELS.get(state, state),
        customer_status=customer_status(kind, state),
        final=final,
        priority=row["priority"],
        queue_id=row["queue_id"],
        owner_id=row["owner_id"],
        owner_name=row["owner_name"],
        customer_id=row["customer_id"],
        customer_name=row["customer_name"],
        customer_phone=mask_phone(phone) if phone else None,
        order_no=row["order_no"],
        session_id=row["session_id"],
        items=[TicketItem.model_validate(i) for i in row["items"] or []],
        attachments=[Attachment.model_validate(a) for a in row["attachments"] or []],
        amount=row["amount"],
        reason=row["reason"],
        auto_rule=row["auto_rule"],
        urges=row["urges"],
        last_urged_at=row["last_urged_at"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        claimed_at=row["claimed_at"],
        first_action_at=row["first_action_at"],
        closed_at=row["closed_at"],
        stalled=not final and now - row["updated_at"] >= stall_ms,
        actions=[] if final else actions_from(kind, state),
    )


def to_customer(row: RowMapping, now: int, urge_ms: int, lang: Lang = "zh") -> CustomerTicket:
    kind = TicketType(row["type"])
    state = str(row["state"])
    final = state in FINAL_STATES
    last = row["last_urged_at"]
    available = None if last is None or now - last >= urge_ms else last + urge_ms
    return CustomerTicket(
        id=row["id"],
        type=kind,
        type_label=kind.label_en if lang == "en" else kind.label,
        status=customer_status(kind, state, lang),
        final=final,
        order_no=row["order_no"],
        amount=row["amount"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        can_urge=not final and available is None,
        urge_available_at=None if final else available,
        steps=customer_steps(kind, state, lang),
    )


def to_node(row: RowMapping) -> TimelineNode:
    return TimelineNode(
        at=row["at"],
        action=row["action"],
        label=ACTION_LABELS.get(row["action"], row["action"]),
        actor_type=row["actor_type"],
        actor_id=row["actor_id"],
        actor_name=row["actor_name"],
        from_state=row["from_state"],
        to_state=row["to_state"],
        to_state_label=STATE_LABELS.get(row["to_state"]) if row["to_state"] else None,
        note=row["note"],
        data=row["data"],
    )


async def get(conn: AsyncConnection, ticket_id: str) -> RowMapping | None:
    row = (await conn.execute(sa.select(tickets).where(tickets.c.id == ticket_id))).mappings()
    return row.first()


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(sa.insert(tickets).values(**values))


async def update(
    conn: AsyncConnection, ticket_id: str, version: int, values: dict[str, Any]
) -> bool:
    """Apply ``values`` when the ticket is still at ``version`` (bumping it); False when
    someone else changed it first."""
    result = await conn.execute(
        sa.update(tickets)
        .where(tickets.c.id == ticket_id, tickets.c.version == version)
        .values(version=version + 1, **values)
    )
    return result.rowcount == 1


async def add_event(conn: AsyncConnection, ticket_id: str, values: dict[str, Any]) -> None:
    await conn.execute(sa.insert(ticket_events).values(ticket_id=ticket_id, **values))


async def timeline(conn: AsyncConnection, ticket_id: str) -> list[TimelineNode]:
    rows = await conn.execute(
        sa.select(ticket_events)
        .where(ticket_events.c.ticket_id == ticket_id)
        .order_by(ticket_events.c.id)
    )
    return [to_node(r) for r in rows.mappings()]


def _open() -> sa.ColumnElement[bool]:
    return tickets.c.closed_at.is_(None)


async def search(
    conn: AsyncConnection,
    *,
    queue_id: str | None = None,
    owner_id: str | None = None,
    pool: bool = False,
    open_only: bool = False,
    state: str | None = None,
    type_: str | None = None,
    customer_id: str | None = None,
    order_no: str | None = None,
    session_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[RowMapping]:
    stmt = sa.select(tickets)
    equal = {
        tickets.c.queue_id: queue_id,
        tickets.c.owner_id: owner_id,
        tickets.c.state: state,
        tickets.c.type: type_,
        tickets.c.customer_id: customer_id,
        tickets.c.order_no: order_no,
        tickets.c.session_id: session_id,
    }
    for column, value in equal.items():
        if value is not None:
            stmt = stmt.where(column == value)
    if pool:
        stmt = stmt.where(tickets.c.owner_id.is_(None))
    if open_only or pool:
        stmt = stmt.where(_open())
    stmt = stmt.order_by(tickets.c.priority.desc(), tickets.c.created_at, tickets.c.id)
    rows = await conn.execute(stmt.limit(limit).offset(offset))
    return list(rows.mappings())


async def of_customer(
    conn: AsyncConnection, customer_id: str | None, visitor_id: str | None, limit: int = 20
) -> list[RowMapping]:
    who = []
    if customer_id:
        who.append(tickets.c.customer_id == customer_id)
    if visitor_id:
        who.append(tickets.c.visitor_id == visitor_id)
    if not who:
        return []
    rows = await conn.execute(
        sa.select(tickets)
        .where(sa.or_(*who))
        .order_by(tickets.c.created_at.desc(), tickets.c.id.desc())
        .limit(limit)
    )
    return list(rows.mappings())


async def pools(conn: AsyncConnection, now: int) -> list[PoolSummary]:
    urgent = sa.func.sum(sa.case((tickets.c.priority >= URGENT_PRIORITY, 1), else_=0))
    rows = await conn.execute(
        sa.select(
            tickets.c.queue_id,
            sa.func.count().label("n"),
            sa.func.min(tickets.c.created_at).label("oldest"),
            urgent.label("urgent"),
        )
        .where(tickets.c.owner_id.is_(None), _open())
        .group_by(tickets.c.queue_id)
    )
    return [
        PoolSummary(
            queue_id=r["queue_id"],
            count=r["n"],
            oldest_created_at=r["oldest"],
            oldest_age_s=(now - r["oldest"]) // 1000 if r["oldest"] is not None else None,
            urgent=int(r["urgent"] or 0),
        )
        for r in rows.mappings()
    ]


async def open_duplicate(conn: AsyncConnection, order_no: str, type_: str) -> RowMapping | None:
    rows = await conn.execute(
        sa.select(tickets.c.id)
        .where(tickets.c.order_no == order_no, tickets.c.type == type_, _open())
        .limit(1)
    )
    return rows.mappings().first()


async def stalled(conn: AsyncConnection, before: int, limit: int = 500) -> list[RowMapping]:
    """Open tickets without progress since ``before`` and not warned since their last
    progress."""
    rows = await conn.execute(
        sa.select(tickets)
        .where(
            _open(),
            tickets.c.updated_at <= before,
            sa.or_(
                tickets.c.stall_warned_at.is_(None),
                tickets.c.stall_warned_at < tickets.c.updated_at,
            ),
        )
        .order_by(tickets.c.updated_at)
        .limit(limit)
    )
    return list(rows.mappings())
