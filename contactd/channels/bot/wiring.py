"""Start-up and tear-down of the bot context (one cleanup_ctx in contactd/app.py, which
passes the case module's ``AfterSales`` when it is wired in)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from contactd.channels.bot.context import Bot
from contactd.channels.bot.flows import FaqBot
from contactd.channels.bot.knowledge import KnowledgeBase
from contactd.channels.bot.requests import AfterSales, SelfServiceRequests
from contactd.channels.bot.service import BotService, Engine
from contactd.channels.bot.webhook import WebhookBot
from contactd.keys import (
    AUDIT,
    BOT,
    CHAT,
    CLOCK,
    DB,
    DIRECTORY,
    ENGINE,
    METRICS,
    REDIS,
    SETTINGS,
    SIO,
)
from contactd.realtime.bot import install_bot_realtime
from contactd.tasks import stop_tasks


async def bot_ctx(
    app: web.Application, after_sales: AfterSales | None = None
) -> AsyncIterator[None]:
    settings, clock = app[SETTINGS], app[CLOCK]
    cfg = settings.bot
    keys = app[ENGINE].keys
    kb = KnowledgeBase(app[DB], app[REDIS], keys, clock, cfg, app[AUDIT])
    requests = SelfServiceRequests(app[DB], clock, settings.timezone, after_sales, app[AUDIT])
    http = aiohttp.ClientSession() if cfg.engine == "webhook" else None
    engine: Engine = (
        WebhookBot(http, cfg, clock)
        if http is not None
        else FaqBot(kb, app[DIRECTORY], requests, cfg.suggestions, app[REDIS], keys)
    )
    chat = app[CHAT]
    service = BotService(
        chat, engine, kb, app[REDIS], keys, clock, chat.sessions.bus, settings, app[METRICS]
    )
    app[BOT] = Bot(kb, requests, service)
    chat.front = service
    unsubscribe = install_bot_realtime(app[SIO], chat.sessions.bus, service)
    idle = asyncio.create_task(service.run_idle(), name="bot-idle")
    counts = asyncio.create_task(kb.run_flusher(), name="bot-faq-counts")
    tasks = [idle, counts]
    if after_sales is not None:
        tasks.append(asyncio.create_task(requests.run_retries(), name="bot-request-tickets"))
    yield
    await stop_tasks(tasks)
    await kb.flush_counts()
    unsubscribe()
    chat.front = None
    if http is not None:
        await http.close()
