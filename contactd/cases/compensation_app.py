"""Wiring of the compensation context: services, connectors and the two workers (payouts,
outbox), owned by one cleanup_ctx (``compensation_ctx`` in app.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.auth.audit import AuditLog
from contactd.bus import Bus
from contactd.cases.compensation_events import PayoutsDue
from contactd.cases.compensation_service import CompensationService
from contactd.cases.connectors import build_connectors
from contactd.cases.idempotency import IdempotencyKeys
from contactd.cases.jobs import run_forever
from contactd.cases.ledger import Ledger
from contactd.cases.outbox import OutboxWorker
from contactd.cases.payouts import PayoutWorker
from contactd.clock import Clock
from contactd.directory.base import Directory
from contactd.settings import Settings
from contactd.tasks import stop_tasks

PURGE_EVERY_S = 3600.0  # expired Idempotency-Key records are deleted this often


@dataclass
class Compensation:
    service: CompensationService
    ledger: Ledger
    payouts: PayoutWorker
    outbox: OutboxWorker
    idempotency: IdempotencyKeys


@asynccontextmanager
async def compensation_running(
    settings: Settings,
    engine: AsyncEngine,
    clock: Clock,
    bus: Bus,
    audit: AuditLog,
    directory: Directory,
    *,
    workers: bool = True,
) -> AsyncIterator[Compensation]:
    """Build the context; with ``workers`` run the payout and outbox workers meanwhile."""
    cfg = settings.compensation
    async with aiohttp.ClientSession() as http:
        service = CompensationService(engine, cfg, clock, bus, audit, directory, settings.timezone)
        ledger = Ledger(engine, clock)
        connectors = build_connectors(cfg.payout, engine, ledger, clock, http)
        payouts = PayoutWorker(engine, cfg.payout, clock, connectors, service.record_payout)
        outbox = OutboxWorker(engine, cfg, clock, bus, http)
        keys = IdempotencyKeys(engine, clock, cfg.idempotency_ttl_s)
        ctx = Compensation(service, ledger, payouts, outbox, keys)

        def wake(event: BaseModel) -> None:
            if isinstance(event, PayoutsDue):
                payouts.wake.set()
                outbox.wake.set()

        unsubscribe = bus.subscribe(wake, PayoutsDue)
        tasks = (
            [
                asyncio.create_task(payouts.run(), name="compensation-payouts"),
                asyncio.create_task(outbox.run(), name="compensation-outbox"),
                asyncio.create_task(
                    run_forever(keys.purge, asyncio.Event(), PURGE_EVERY_S, "idempotency purge"),
                    name="compensation-idempotency-purge",
                ),
            ]
            if workers
            else []
        )
        try:
            yield ctx
        finally:
            await stop_tasks(tasks)
            unsubscribe()
