"""The phone channel's start-up and tear-down (one cleanup_ctx in app.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from contactd.channels.ivr.cases import CaseDesk, NoCaseModule
from contactd.channels.ivr.delivery import Deliveries
from contactd.channels.ivr.repository import IvrRepository
from contactd.channels.ivr.service import IvrService
from contactd.channels.ivr.store import IvrStore
from contactd.keys import CLOCK, DB, DIRECTORY, ENGINE, IVR, METRICS, REDIS, SESSIONS, SETTINGS


async def ivr_ctx(app: web.Application, cases: CaseDesk | None = None) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    engine = app[ENGINE]
    store = IvrStore(app[REDIS], engine.keys, settings.ivr.event_ttl_s)
    service = IvrService(
        store,
        IvrRepository(app[DB]),
        app[SESSIONS],
        engine,
        app[DIRECTORY],
        cases or NoCaseModule(),
        settings,
        app[CLOCK],
    )
    app[IVR] = Deliveries(service, store, app[METRICS])
    batches = (service.opener.batch, service.callers.batch)
    for batch in batches:
        batch.start()
    yield
    for batch in batches:
        await batch.stop()
    await service.opener.lane.stop()
