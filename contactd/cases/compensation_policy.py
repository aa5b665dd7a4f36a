"""The review policy in force: the configuration file's, until the admin API replaces it
(versioned like the orders, audited, one row in ``compensation_policy``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contactd.auth.audit import AuditLog
from contactd.auth.models import AuditContext
from contactd.cases.compensation_config import CompensationPolicy
from contactd.cases.compensation_store import version_conflict
from contactd.clock import Clock
from contactd.storage.db import write_transaction
from contactd.storage.tables import compensation_policy


class PolicyStore:
    def __init__(
        self, engine: AsyncEngine, default: CompensationPolicy, clock: Clock, audit: AuditLog
    ) -> None:
        self._engine = engine
        self._default = default
        self._clock = clock
        self._audit = audit

    async def get(self, conn: AsyncConnection | None = None) -> tuple[CompensationPolicy, int]:
        """The policy in force and its version (0 = the configuration file's)."""
        stmt = sa.select(compensation_policy).where(compensation_policy.c.id == 1)
        if conn is None:
            async with self._engine.connect() as own:
                row = (await own.execute(stmt)).mappings().first()
        else:
            row = (await conn.execute(stmt)).mappings().first()
        if row is None:
            return self._default, 0
        return CompensationPolicy.model_validate(row["data"]), int(row["version"])

    async def put(
        self, policy: CompensationPolicy, version: int, ctx: AuditContext
    ) -> tuple[CompensationPolicy, int]:
        who = ctx.actor.name if ctx.actor else "system"
        async with write_transaction(self._engine) as conn:
            before, current = await self.get(conn)
            if current != version:
                raise version_conflict(current)
            data: dict[str, Any] = policy.model_dump(mode="json")
            values = {
                "version": current + 1,
                "data": data,
                "updated_at": self._clock.now_ms(),
                "updated_by": who,
            }
            if current == 0:
                await conn.execute(sa.insert(compensation_policy).values(id=1, **values))
            else:
                await conn.execute(
                    sa.update(compensation_policy)
                    .where(compensation_policy.c.id == 1, compensation_policy.c.version == current)
                    .values(**values)
                )
            await self._audit.record(
                ctx.actor,
                "compensation.policy_changed",
                "compensation_policy",
                "1",
                before=before.model_dump(mode="json"),
                after=data,
                ip=ctx.ip,
                request_id=ctx.request_id,
                conn=conn,
            )
        return policy, current + 1
