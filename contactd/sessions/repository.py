"""SQL for service sessions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from contactd.sessions.models import SessionRecord
from contactd.storage.tables import service_sessions as t


def record_from_row(row: Mapping[Any, Any]) -> SessionRecord:
    """A session row as read: SQLAlchemy's (``RowMapping``) or the message log's plain one."""
    data = dict(row)
    data["agents"] = list(data.get("agents") or [])
    return SessionRecord.model_validate(data)


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(sa.insert(t).values(**values))


async def get(
    conn: AsyncConnection, session_id: str, *, lock: bool = False
) -> SessionRecord | None:
    q = sa.select(t).where(t.c.id == session_id)
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = (await conn.execute(q)).mappings().first()
    return None if row is None else record_from_row(row)


async def update(conn: AsyncConnection, session_id: str, values: dict[str, Any]) -> None:
    await conn.execute(sa.update(t).where(t.c.id == session_id).values(**values))


async def delete(conn: AsyncConnection, session_id: str) -> None:
    await conn.execute(sa.delete(t).where(t.c.id == session_id))


async def open_for_visitor(conn: AsyncConnection, visitor_id: str) -> SessionRecord | None:
    row = (
        (
            await conn.execute(
                sa.select(t)
                .where(t.c.visitor_id == visitor_id, t.c.state != "ended")
                .order_by(t.c.created_at.desc())
                .limit(1)
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else record_from_row(row)


async def search(
    conn: AsyncConnection,
    *,
    session_id: str | None = None,
    phone: str | None = None,
    order_no: str | None = None,
    agent_id: str | None = None,
    customer_id: str | None = None,
    visitor_id: str | None = None,
    since: int | None = None,
    until: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[SessionRecord]:
    q = sa.select(t)
    if session_id:
        q = q.where(t.c.id == session_id)
    if phone:
        q = q.where(t.c.customer_phone == phone)
    if order_no:
        q = q.where(t.c.order_no == order_no)
    if agent_id:
        # the current agent, or any agent who accepted it (agents is a JSON list)
        q = q.where(
            sa.or_(
                t.c.agent_id == agent_id, sa.cast(t.c.agents, sa.String).contains(f'"{agent_id}"')
            )
        )
    if customer_id:
        q = q.where(t.c.customer_id == customer_id)
    if visitor_id:
        q = q.where(t.c.visitor_id == visitor_id)
    if since is not None:
        q = q.where(t.c.created_at >= since)
    if until is not None:
        q = q.where(t.c.created_at < until)
    q = q.order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit).offset(offset)
    return [record_from_row(r) for r in (await conn.execute(q)).mappings().all()]
