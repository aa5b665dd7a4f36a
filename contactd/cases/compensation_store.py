"""SQL of compensation orders: rows to views, reads, filtered lists, versioned updates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from contactd.cases.compensation_models import (
    Attachment,
    CompensationView,
    Item,
    Status,
)
from contactd.clock import to_datetime
from contactd.errors import ContactdError, ErrorCode
from contactd.storage.tables import compensations as t

MAX_PAGE = 500


def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else to_datetime(ms)


def to_view(row: RowMapping) -> CompensationView:
    status = Status(row["status"])
    return CompensationView(
        id=row["id"],
        version=row["version"],
        status=status,
        status_label=status.label,
        stage=row["stage"],
        needs_l1=row["needs_l1"],
        needs_l2=row["needs_l2"],
        manual_review=bool(row["needs_l1"] or row["needs_l2"]),
        region=row["region"],
        customer_phone=row["customer_phone"],
        customer_id=row["customer_id"],
        order_no=row["order_no"],
        after_sales_no=row["after_sales_no"],
        items=[Item.model_validate(i) for i in row["items"]],
        scene_group=row["scene_group"],
        scene=row["scene"],
        asset_type=row["asset_type"],
        amount=row["amount"],
        reason=row["reason"],
        attachments=[Attachment.model_validate(a) for a in row["attachments"]],
        session_id=row["session_id"],
        creator_id=row["creator_id"],
        creator_name=row["creator_name"],
        creator_kind=row["creator_kind"],
        submissions=row["submissions"],
        l1_by=row["l1_by"],
        l1_at=_dt(row["l1_at"]),
        l2_by=row["l2_by"],
        l2_at=_dt(row["l2_at"]),
        rejected_by=row["rejected_by"],
        reject_reason=row["reject_reason"],
        created_at=to_datetime(row["created_at"]),
        updated_at=to_datetime(row["updated_at"]),
        approved_at=_dt(row["approved_at"]),
        paid_at=_dt(row["paid_at"]),
        closed_at=_dt(row["closed_at"]),
        payout_id=row["payout_id"],
        payout_state=row["payout_state"],
    )


async def fetch(conn: AsyncConnection, order_id: str) -> RowMapping:
    row = (await conn.execute(sa.select(t).where(t.c.id == order_id))).mappings().first()
    if row is None:
        raise ContactdError(ErrorCode.compensation_not_found, "no such compensation order")
    return row


async def update_versioned(
    conn: AsyncConnection, order_id: str, seen_version: int, values: dict[str, Any]
) -> RowMapping:
    """Apply ``values`` only if the order is still at ``seen_version``; bump the version.
    Someone else's change in between → version_conflict (nothing written)."""
    result = await conn.execute(
        sa.update(t)
        .where(t.c.id == order_id, t.c.version == seen_version)
        .values(**values, version=seen_version + 1)
        .returning(*t.c)
    )
    row = result.mappings().first()
    if row is None:
        current = await fetch(conn, order_id)
        raise version_conflict(current["version"])
    return row


def version_conflict(current: int) -> ContactdError:
    return ContactdError(
        ErrorCode.version_conflict,
        "the order changed since you loaded it; reload and try again",
        current_version=current,
    )


@dataclass(frozen=True)
class ListFilter:
    status: Status | None = None
    stage: str | None = None
    scene: str | None = None
    creator: str | None = None
    asset_type: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    query: str | None = None  # order no., after-sales no. or phone
    only_creator_id: str | None = None  # restrict to one creator (callers without .view)
    session_id: str | None = None
    limit: int = 50
    offset: int = 0


async def page(conn: AsyncConnection, f: ListFilter) -> tuple[list[CompensationView], int]:
    conds: list[sa.ColumnElement[bool]] = []
    equal = {
        t.c.status: f.status.value if f.status else None,
        t.c.stage: f.stage,
        t.c.scene: f.scene,
        t.c.creator_name: f.creator,
        t.c.asset_type: f.asset_type,
        t.c.creator_id: f.only_creator_id,
        t.c.session_id: f.session_id,
    }
    conds += [col == value for col, value in equal.items() if value is not None]
    if f.since_ms is not None:
        conds.append(t.c.created_at >= f.since_ms)
    if f.until_ms is not None:
        conds.append(t.c.created_at < f.until_ms)
    if f.query:
        q = f.query.strip()
        conds.append(sa.or_(t.c.order_no == q, t.c.after_sales_no == q, t.c.customer_phone == q))
    where = sa.and_(sa.true(), *conds)
    total = (await conn.execute(sa.select(sa.func.count()).select_from(t).where(where))).scalar()
    rows = (
        await conn.execute(
            sa.select(t)
            .where(where)
            .order_by(t.c.created_at.desc(), t.c.id.desc())
            .limit(f.limit)
            .offset(f.offset)
        )
    ).mappings()
    return [to_view(r) for r in rows], int(total or 0)
