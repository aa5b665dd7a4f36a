"""create_app(settings): wiring only. Start-up and tear-down are paired in cleanup_ctx."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

import contactd.api.routes_case_config  # (registers)  # --- cases-money ---
import contactd.api.routes_compensation
import contactd.api.routes_monitor  # registers --- monitor ---
import contactd.api.routes_reports  # noqa: F401  (registers) --- monitor ---
from contactd.api import (  # noqa: F401  (registers the routes)
    routes_auth,
    routes_bot,
    routes_im,
    routes_ivr,
    routes_routing,
    routes_twilio,
)
from contactd.api.edge import edge_middleware
from contactd.api.registry import api
from contactd.api.routes_im import install_im
from contactd.api.routes_ops import install_ops
from contactd.api.routes_web import install_web
from contactd.auth.audit import AuditLog
from contactd.auth.passwords import password_hasher
from contactd.auth.service import AuthService
from contactd.auth.visitors import VisitorAuth, load_secret_key
from contactd.bus import Bus
from contactd.cases.compensation_ctx import compensation_ctx  # --- cases-money ---
from contactd.cases.phone_desk import PhoneCaseDesk
from contactd.cases.screenpop import CasePop  # --- cases ---
from contactd.cases.tickets_app import tickets_context  # --- cases ---
from contactd.cases.tickets_bot import BotAfterSales  # --- bot + cases ---
from contactd.channels.bot.wiring import bot_ctx
from contactd.channels.im import ChatService
from contactd.channels.ivr.wiring import ivr_ctx  # --- voice ---
from contactd.channels.uploads import Uploads
from contactd.clock import Clock, SystemClock
from contactd.directory.factory import build_directory
from contactd.keys import (
    AUDIT,
    AUTH,
    BUS,
    CASE_POP,
    CHAT,
    CLOCK,
    DB,
    DIRECTORY,
    DRAINING,
    ENGINE,
    METRICS,
    REDIS,
    SESSIONS,
    SETTINGS,
    SIO,
    TICKETS,
    UPLOADS,
    VISITORS,
)
from contactd.metrics import Metrics
from contactd.monitor.definitions import rules_of
from contactd.monitor.wiring import monitor_ctx
from contactd.realtime.presence import CustomerPresence
from contactd.realtime.server import build_realtime, make_server, running
from contactd.routing.events import AnyRoutingEvent
from contactd.routing.service import RoutingEngine
from contactd.routing.sweeper import Sweeper
from contactd.sessions.events import MessageCreated
from contactd.sessions.messages import MessageLog
from contactd.sessions.recorder import SessionRecorder
from contactd.sessions.service import SessionService
from contactd.sessions.timeouts import ChatTimeouts
from contactd.settings import Settings
from contactd.storage.autopipe import close_auto_pipeline
from contactd.storage.db import migrate, open_database
from contactd.storage.keyspace import SiteKeys
from contactd.storage.redis import EmbeddedRedis, connect
from contactd.tasks import stop_tasks

log = logging.getLogger(__name__)


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    embedded: EmbeddedRedis | None = None
    url = settings.redis_url
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        url = await embedded.start()
    client = connect(url)
    await client.ping()
    app[REDIS] = client
    app[ENGINE] = RoutingEngine(client, settings, app[CLOCK], app[BUS], SiteKeys(settings.site))
    yield
    await close_auto_pipeline(client)
    await client.aclose()
    if embedded is not None:
        await embedded.stop()


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    engine = await open_database(settings.effective_database_url)
    await migrate(engine)
    app[DB] = engine
    app[AUDIT] = AuditLog(engine, app[CLOCK])
    app[AUTH] = AuthService(
        engine, settings, app[CLOCK], audit=app[AUDIT], passwords=password_hasher(settings)
    )
    directory = build_directory(settings, engine, clock=app[CLOCK])
    app[DIRECTORY] = directory
    key = load_secret_key(settings)
    app[VISITORS] = VisitorAuth(key, settings, app[CLOCK])
    app[UPLOADS] = Uploads(engine, settings, app[CLOCK], key)
    yield
    await directory.close()
    log.info("closing database")
    await engine.dispose()
    log.info("database closed")


async def chat_ctx(app: web.Application) -> AsyncIterator[None]:
    """Sessions, the message log, chat use cases and the socket namespaces."""
    settings, clock, bus = app[SETTINGS], app[CLOCK], app[BUS]
    log_ = MessageLog(app[DB], clock)
    log_.start()
    sessions = SessionService(app[DB], app[REDIS], app[ENGINE].keys, settings, clock, bus, log_)
    app[SESSIONS] = sessions
    chat = ChatService(sessions, app[ENGINE], app[DIRECTORY], app[UPLOADS], app[AUDIT], settings)
    app[CHAT] = chat
    names: dict[str, str] = {}

    async def agent_name(agent_id: str) -> str:
        if agent_id not in names:
            try:
                names[agent_id] = (await app[AUTH].get_user_by_username(agent_id)).display_name
            except Exception:
                return agent_id
        return names[agent_id]

    recorder = SessionRecorder(sessions, app[DIRECTORY], bus, agent_name, app[CASE_POP])
    unsubscribe = bus.subscribe(recorder.on_event, *SessionRecorder.EVENTS)
    customers = CustomerPresence(
        app[REDIS], app[ENGINE].keys, clock, settings, app[ENGINE], sessions
    )
    timeouts = ChatTimeouts(
        app[REDIS], app[ENGINE].keys, clock, settings, sessions, app[ENGINE], bus
    )
    unsubscribe_timeouts = bus.subscribe(timeouts.on_event, MessageCreated)
    timeouts_task = asyncio.create_task(timeouts.run(), name="chat-timeouts")
    rt = build_realtime(
        app[SIO],
        settings,
        app[METRICS],
        bus,
        chat,
        app[AUTH],
        app[ENGINE],
        app[VISITORS],
        customers,
    )
    async with running(rt):
        yield
    await stop_tasks([timeouts_task])
    unsubscribe_timeouts()
    unsubscribe()
    await log_.stop()


async def tickets_ctx(app: web.Application) -> AsyncIterator[None]:  # --- cases ---
    """After-sales tickets: service, screen-pop provider, socket listeners, stall task."""
    async for _ in tickets_context(app):
        yield


async def bot_front_ctx(app: web.Application) -> AsyncIterator[None]:  # --- bot ---
    """The bot, with the case module's after-sales desk: a refund it takes opens a ticket."""
    desk = BotAfterSales(app[TICKETS], app[SESSIONS], app[DIRECTORY])
    async for _ in bot_ctx(app, desk):
        yield


async def phone_ctx(app: web.Application) -> AsyncIterator[None]:  # --- voice ---
    desk = PhoneCaseDesk(app, app[TICKETS], app[SETTINGS].ivr.language)
    async for _ in ivr_ctx(app, desk):
        yield


async def sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
    sweeper = Sweeper(app[ENGINE], app[SETTINGS].routing.sweep_interval_s)
    task = asyncio.create_task(sweeper.run(), name="routing-sweeper")
    yield
    await stop_tasks([task])


async def _start_draining(app: web.Application) -> None:
    app[DRAINING][0] = True
    log.info("shutting down: not ready any more, finishing requests in flight")
    # close every socket now (aiohttp would otherwise wait for them): clients reconnect to
    # another node, agents within their disconnect grace period
    if app[SIO].eio.sockets:  # (engine.io fails on an empty set)
        await app[SIO].eio.disconnect()


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    app = web.Application(
        middlewares=[edge_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[BUS] = Bus()
    app[METRICS] = Metrics(rules_of(settings))  # --- monitor: SL rules ---
    app[DRAINING] = [False]
    app[BUS].subscribe(app[METRICS].observe, AnyRoutingEvent)
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(database_ctx)
    app[CASE_POP] = CasePop()  # --- cases ---
    app.cleanup_ctx.append(tickets_ctx)  # --- cases ---
    app.cleanup_ctx.append(chat_ctx)
    app.cleanup_ctx.append(bot_front_ctx)  # --- bot (with the case module's desk) ---
    app.cleanup_ctx.append(phone_ctx)  # --- voice (with the case module's desk) ---
    app.cleanup_ctx.append(sweeper_ctx)
    app.cleanup_ctx.append(monitor_ctx)  # --- monitor ---
    app.cleanup_ctx.append(compensation_ctx)  # --- cases-money ---
    redis_url = settings.redis_url or EmbeddedRedis(settings.data_dir).url
    app[SIO] = make_server(redis_url, settings, app)
    app.on_shutdown.append(_start_draining)
    install_ops(app)
    install_web(app)
    install_im(app)
    api.install(app)
    return app
