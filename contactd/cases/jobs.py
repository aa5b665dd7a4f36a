"""Retried background jobs kept in SQL rows (payouts, the outbox): claim due rows under a
lease, then record success or schedule the next attempt with exponential backoff.

A row is claimed by ``UPDATE ... WHERE lease_until IS NULL OR lease_until < now``: two
workers (or processes) never hold the same row, and a worker that dies holding one lets
it go when the lease runs out, so another worker retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.storage.db import write_transaction

log = logging.getLogger(__name__)
PENDING = "pending"
MAX_ERROR_CHARS = 500


def backoff_ms(attempts: int, first_s: float, max_s: float) -> int:
    """Delay before the next try after ``attempts`` failed ones: first_s, 2×, 4×... ≤ max_s."""
    return int(min(first_s * (2 ** max(attempts - 1, 0)), max_s) * 1000)


async def claim_due(
    engine: AsyncEngine, table: sa.Table, now: int, lease_ms: int, limit: int
) -> list[RowMapping]:
    """Take up to ``limit`` due pending rows under a lease, counting the attempt."""
    free = sa.or_(table.c.lease_until.is_(None), table.c.lease_until < now)
    due = sa.and_(table.c.state == PENDING, table.c.next_attempt_at <= now, free)
    async with write_transaction(engine) as conn:
        ids = (
            (
                await conn.execute(
                    sa.select(table.c.id).where(due).order_by(table.c.next_attempt_at).limit(limit)
                )
            )
            .scalars()
            .all()
        )
        taken: list[Any] = []
        for row_id in ids:
            result = await conn.execute(
                sa.update(table)
                .where(table.c.id == row_id, due)
                .values(lease_until=now + lease_ms, attempts=table.c.attempts + 1)
            )
            if result.rowcount == 1:
                taken.append(row_id)
        claimed = (
            list((await conn.execute(sa.select(table).where(table.c.id.in_(taken)))).mappings())
            if taken
            else []
        )
    return claimed


def retry_values(
    attempts: int, max_attempts: int, now: int, error: str, first_s: float, max_s: float
) -> dict[str, Any]:
    """Release a failed row: due again after the backoff, or ``failed`` for good."""
    values: dict[str, Any] = {"lease_until": None, "last_error": error[:MAX_ERROR_CHARS]}
    if attempts >= max_attempts:
        values["state"] = "failed"
    else:
        values["next_attempt_at"] = now + backoff_ms(attempts, first_s, max_s)
    return values


async def next_due(engine: AsyncEngine, table: sa.Table) -> int | None:
    """When the earliest pending row falls due (ms), for the worker's sleep."""
    async with engine.connect() as conn:
        value = await conn.scalar(
            sa.select(sa.func.min(table.c.next_attempt_at)).where(table.c.state == PENDING)
        )
    return None if value is None else int(value)


async def run_forever(
    step: Callable[[], Awaitable[object]], wake: asyncio.Event, poll_s: float, name: str
) -> None:
    """Call ``step`` every ``poll_s`` seconds, or at once when ``wake`` is set; a failing
    pass is logged and tried again (the rows it left stay due)."""
    while True:
        try:
            await step()
        except Exception:
            log.exception("%s pass failed; trying again", name)
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), poll_s)
