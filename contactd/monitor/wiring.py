"""Start-up and tear-down of the monitor context (one cleanup_ctx in app.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from contactd.keys import AUDIT, BUS, CLOCK, DB, ENGINE, METRICS, MONITOR, SESSIONS, SETTINGS, SIO
from contactd.monitor.actions import SupervisorActions
from contactd.monitor.join import SessionWatch
from contactd.monitor.live import LiveMonitor
from contactd.monitor.reports import Reports
from contactd.monitor.service import Monitor
from contactd.monitor.store import EventRecorder, MonitorRepository
from contactd.realtime.supervisor import SupervisorNamespace
from contactd.routing.events import AnyRoutingEvent
from contactd.tasks import stop_tasks


async def monitor_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, db = app[SETTINGS], app[DB]
    recorder = EventRecorder(db)
    monitor = Monitor(
        recorder=recorder,
        live=LiveMonitor(settings, app[CLOCK], app[ENGINE], db),
        actions=SupervisorActions(settings, app[ENGINE], app[AUDIT]),
        reports=Reports(settings, app[CLOCK], MonitorRepository(db)),
        watch=SessionWatch(settings, app[SESSIONS], app[AUDIT]),
    )
    app[MONITOR] = monitor
    app[ENGINE].observe_call = app[METRICS].routing_call
    unsubscribe = app[BUS].subscribe(recorder.on_event, AnyRoutingEvent)
    namespace = app[SIO].namespace_handlers.get("/supervisor")
    if isinstance(namespace, SupervisorNamespace):
        namespace.attach(monitor)
        recorder.flushed.append(namespace.mark_dirty)
    task = asyncio.create_task(recorder.run(), name="monitor-recorder")
    yield
    unsubscribe()
    await stop_tasks([task])
    await recorder.flush()  # what is still buffered: nothing is lost at shutdown
    await recorder.lane.stop()
