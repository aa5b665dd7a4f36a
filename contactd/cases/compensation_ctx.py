"""The compensation context's cleanup_ctx: app.py appends it after the database."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from contactd.cases.compensation_app import compensation_running
from contactd.cases.compensation_events import CompensationChanged
from contactd.cases.compensation_metrics import CompensationMetrics
from contactd.keys import (
    AUDIT,
    AUTH,
    BUS,
    CLOCK,
    COMPENSATION,
    DB,
    DIRECTORY,
    METRICS,
    SETTINGS,
    SIO,
)
from contactd.realtime import compensation as realtime


async def compensation_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, bus = app[SETTINGS], app[BUS]
    unsubscribe = realtime.install(app[SIO], settings, app[METRICS], app[AUTH], bus)
    unsubscribe_metrics = bus.subscribe(
        CompensationMetrics(app[METRICS].registry, app[METRICS].payouts).observe,
        CompensationChanged,
    )
    async with compensation_running(
        settings, app[DB], app[CLOCK], bus, app[AUDIT], app[DIRECTORY]
    ) as ctx:
        app[COMPENSATION] = ctx
        yield
    unsubscribe_metrics()
    unsubscribe()
