"""The append-only audit log: who did what to which thing, with before/after snapshots.

The table refuses UPDATE and DELETE (database triggers, see migration 0001); this module
only ever inserts and reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic_core import to_jsonable_python
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contactd.auth.models import AuditEntry, Principal
from contactd.clock import Clock, to_datetime
from contactd.errors import ContactdError, ErrorCode
from contactd.storage.db import write_transaction
from contactd.storage.tables import audit_log

MAX_QUERY_LIMIT = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _snapshot(data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if data is None:
        return None
    jsonable: dict[str, Any] = to_jsonable_python(dict(data))
    return jsonable


def _ms(value: datetime) -> int:
    if value.tzinfo is None:
        raise ContactdError(ErrorCode.validation_failed, "audit time bounds must carry a timezone")
    return (value - EPOCH) // timedelta(milliseconds=1)


def _entry(row: RowMapping) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        at=to_datetime(row["at"]),
        actor_type=row["actor_type"],
        actor_id=row["actor_id"],
        actor_name=row["actor_name"],
        action=row["action"],
        target_type=row["target_type"],
        target_id=row["target_id"],
        before=row["before"],
        after=row["after"],
        ip=row["ip"],
        request_id=row["request_id"],
    )


class AuditLog:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def record(
        self,
        actor: Principal | None,
        action: str,
        target_type: str,
        target_id: str,
        *,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        ip: str | None = None,
        request_id: str | None = None,
        conn: AsyncConnection | None = None,
    ) -> None:
        """Append one entry. ``actor`` None is the system. Pass ``conn`` to write the entry
        in the caller's transaction, so the change and its record commit together."""
        values = {
            "at": self._clock.now_ms(),
            "actor_type": "system" if actor is None else actor.kind,
            "actor_id": None if actor is None else actor.id,
            "actor_name": None if actor is None else actor.name,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "before": _snapshot(before),
            "after": _snapshot(after),
            "ip": ip,
            "request_id": request_id,
        }
        if conn is not None:
            await conn.execute(sa.insert(audit_log).values(**values))
            return
        async with write_transaction(self._engine) as own:
            await own.execute(sa.insert(audit_log).values(**values))

    async def query(
        self,
        *,
        actor_id: str | None = None,
        target_type: str | None = None,
        target_id: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEntry]:
        """Entries matching every given filter, newest first. ``since`` is inclusive,
        ``until`` exclusive."""
        if not 1 <= limit <= MAX_QUERY_LIMIT:
            raise ContactdError(
                ErrorCode.validation_failed, f"limit must be between 1 and {MAX_QUERY_LIMIT}"
            )
        if offset < 0:
            raise ContactdError(ErrorCode.validation_failed, "offset must not be negative")
        stmt = sa.select(audit_log)
        equal = {
            audit_log.c.actor_id: actor_id,
            audit_log.c.target_type: target_type,
            audit_log.c.target_id: target_id,
            audit_log.c.action: action,
        }
        for column, value in equal.items():
            if value is not None:
                stmt = stmt.where(column == value)
        if since is not None:
            stmt = stmt.where(audit_log.c.at >= _ms(since))
        if until is not None:
            stmt = stmt.where(audit_log.c.at < _ms(until))
        stmt = stmt.order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
        stmt = stmt.limit(limit).offset(offset)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [_entry(row) for row in rows]
