"""Paying approved orders exactly once.

The payout row (and its id) is written in the same transaction that approves the order,
before any connector is called. This worker claims due payouts under a lease, calls the
order's asset connector with the payout id, then records the result. Failures and
timeouts are retried with exponential backoff; after ``max_attempts`` the payout is
``failed`` (visible on the order and in the finance view, where finance can retry it).

Exactly once: connectors are idempotent by payout id (see ``connectors``). If the worker
dies after the call and before the record, the lease runs out, another pass calls again
with the same id, the connector answers with the first result, and only then is the
order marked paid. A payout already ``succeeded`` is never claimed again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contactd.cases import jobs
from contactd.cases.compensation_config import AssetType, PayoutSettings
from contactd.cases.compensation_models import PayoutView
from contactd.cases.connectors import AssetConnector, PayoutJob
from contactd.cases.webhooks import DeliveryFailed
from contactd.clock import Clock, to_datetime
from contactd.errors import ContactdError, ErrorCode
from contactd.storage.db import write_transaction
from contactd.storage.tables import payouts as t

log = logging.getLogger(__name__)
BATCH = 20

# (transaction, payout row, external ref or None, gave up for good) → record it on the order
# in the same transaction; returns what to announce after the commit
Recorder = Callable[
    [AsyncConnection, RowMapping, str | None, bool],
    Awaitable[Callable[[], Awaitable[None]] | None],
]


@dataclass(frozen=True)
class Outcome:
    ref: str | None = None
    error: str | None = None
    retry: bool = True


def to_view(row: RowMapping) -> PayoutView:
    return PayoutView(
        id=row["id"],
        compensation_id=row["compensation_id"],
        asset_type=row["asset_type"],
        amount=row["amount"],
        account=row["account"],
        connector=row["connector"],
        state=row["state"],
        attempts=row["attempts"],
        next_attempt_at=to_datetime(row["next_attempt_at"]),
        last_error=row["last_error"],
        external_ref=row["external_ref"],
        created_at=to_datetime(row["created_at"]),
        paid_at=None if row["paid_at"] is None else to_datetime(row["paid_at"]),
    )


def new_payout_values(
    payout_id: str, order: RowMapping, account: str, cfg: PayoutSettings, now: int
) -> dict[str, Any]:
    asset = AssetType(order["asset_type"])
    return {
        "id": payout_id,
        "compensation_id": order["id"],
        "asset_type": asset.value,
        "amount": order["amount"],
        "account": account,
        "connector": cfg.connector(asset),
        "state": jobs.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


class PayoutWorker:
    def __init__(
        self,
        engine: AsyncEngine,
        cfg: PayoutSettings,
        clock: Clock,
        connectors: dict[AssetType, AssetConnector],
        record: Recorder,
    ) -> None:
        self._engine = engine
        self._cfg = cfg
        self._clock = clock
        self.connectors = connectors
        self._record = record
        self.wake = asyncio.Event()

    async def run(self) -> None:
        await jobs.run_forever(self.run_once, self.wake, self._cfg.poll_s, "payouts")

    async def run_once(self) -> int:
        """Try every due payout once; the number paid."""
        lease = int(self._cfg.lease_s * 1000)
        rows = await jobs.claim_due(self._engine, t, self._clock.now_ms(), lease, BATCH)
        paid = await asyncio.gather(*(self.process(r) for r in rows))
        return sum(paid)

    async def call(self, row: RowMapping) -> Outcome:
        job = PayoutJob(
            id=row["id"],
            compensation_id=row["compensation_id"],
            asset_type=AssetType(row["asset_type"]),
            amount=row["amount"],
            account=row["account"],
        )
        try:
            async with asyncio.timeout(self._cfg.timeout_s):
                ref = await self.connectors[job.asset_type].pay(job)
        except TimeoutError:
            return Outcome(error=f"the connector did not answer within {self._cfg.timeout_s}s")
        except DeliveryFailed as exc:
            return Outcome(error=str(exc), retry=exc.retry)
        except ContactdError as exc:  # e.g. a refusal by the ledger: retrying cannot help
            return Outcome(error=f"{exc.code.value}: {exc.message}", retry=False)
        except Exception as exc:
            log.exception("payout %s: connector failed", job.id)
            return Outcome(error=f"{type(exc).__name__}: {exc}")
        return Outcome(ref=ref)

    async def process(self, row: RowMapping) -> bool:
        outcome = await self.call(row)
        now = self._clock.now_ms()
        if outcome.ref is not None:
            values: dict[str, Any] = {
                "state": "succeeded",
                "lease_until": None,
                "external_ref": outcome.ref,
                "last_error": None,
                "paid_at": now,
            }
        else:
            attempts = row["attempts"] if outcome.retry else self._cfg.max_attempts
            values = jobs.retry_values(
                attempts,
                self._cfg.max_attempts,
                now,
                outcome.error or "failed",
                self._cfg.backoff_s,
                self._cfg.backoff_max_s,
            )
        announce = None
        async with write_transaction(self._engine) as conn:
            await conn.execute(
                sa.update(t).where(t.c.id == row["id"], t.c.state == jobs.PENDING).values(**values)
            )
            fresh = (await conn.execute(sa.select(t).where(t.c.id == row["id"]))).mappings().one()
            if outcome.ref is not None or fresh["state"] == "failed":
                announce = await self._record(conn, fresh, outcome.ref, fresh["state"] == "failed")
        if announce is not None:
            await announce()
        return outcome.ref is not None

    async def retry(self, payout_id: str) -> RowMapping:
        """Finance: put a failed payout back in the queue (same payout id)."""
        async with write_transaction(self._engine) as conn:
            row = (await conn.execute(sa.select(t).where(t.c.id == payout_id))).mappings().first()
            if row is None:
                raise ContactdError(ErrorCode.payout_not_found, "no such payout")
            if row["state"] != "failed":
                raise ContactdError(
                    ErrorCode.invalid_state,
                    f"only failed payouts can be retried (it is {row['state']})",
                )
            await conn.execute(
                sa.update(t)
                .where(t.c.id == payout_id, t.c.state == "failed")
                .values(state=jobs.PENDING, attempts=0, next_attempt_at=self._clock.now_ms())
            )
            fresh = (await conn.execute(sa.select(t).where(t.c.id == payout_id))).mappings().one()
        self.wake.set()
        return fresh

    async def search(
        self, *, state: str | None, asset_type: str | None, limit: int, offset: int
    ) -> tuple[list[PayoutView], int]:
        conds = [c == v for c, v in ((t.c.state, state), (t.c.asset_type, asset_type)) if v]
        where = sa.and_(sa.true(), *conds)
        async with self._engine.connect() as conn:
            total = await conn.scalar(sa.select(sa.func.count()).select_from(t).where(where))
            rows = (
                await conn.execute(
                    sa.select(t)
                    .where(where)
                    .order_by(t.c.created_at.desc())
                    .limit(limit)
                    .offset(offset)
                )
            ).mappings()
            return [to_view(r) for r in rows], int(total or 0)

    async def get(self, payout_id: str) -> PayoutView:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(t).where(t.c.id == payout_id))).mappings().first()
        if row is None:
            raise ContactdError(ErrorCode.payout_not_found, "no such payout")
        return to_view(row)
