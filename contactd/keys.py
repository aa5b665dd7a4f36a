"""Every web.AppKey: the typed dependencies handlers and contexts share."""

from __future__ import annotations

import socketio
from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.auth.audit import AuditLog
from contactd.auth.service import AuthService
from contactd.auth.visitors import VisitorAuth
from contactd.bus import Bus
from contactd.cases.compensation_app import Compensation  # --- cases-money ---
from contactd.cases.screenpop import CasePop  # --- cases ---
from contactd.cases.tickets_service import TicketService  # --- cases ---
from contactd.channels.bot.context import Bot
from contactd.channels.im import ChatService
from contactd.channels.ivr.delivery import Deliveries
from contactd.channels.uploads import Uploads
from contactd.clock import Clock
from contactd.directory.base import Directory
from contactd.metrics import Metrics
from contactd.monitor.service import Monitor
from contactd.routing.service import RoutingEngine
from contactd.sessions.service import SessionService
from contactd.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
BUS = web.AppKey("bus", Bus)
METRICS = web.AppKey("metrics", Metrics)
REDIS = web.AppKey("redis", Redis)
ENGINE = web.AppKey("engine", RoutingEngine)
DB = web.AppKey("db", AsyncEngine)
AUTH = web.AppKey("auth", AuthService)
AUDIT = web.AppKey("audit", AuditLog)
DRAINING = web.AppKey("draining", list[bool])
SESSIONS = web.AppKey("sessions", SessionService)
CHAT = web.AppKey("chat", ChatService)
DIRECTORY = web.AppKey("directory", Directory)
UPLOADS = web.AppKey("uploads", Uploads)
VISITORS = web.AppKey("visitors", VisitorAuth)
SIO = web.AppKey("sio", socketio.AsyncServer)
MONITOR = web.AppKey("monitor", Monitor)  # --- monitor ---

# --- voice ---
IVR = web.AppKey("ivr", Deliveries)
BOT = web.AppKey("bot", Bot)  # --- bot ---

# --- cases: after-sales tickets ---
TICKETS = web.AppKey("tickets", TicketService)
CASE_POP = web.AppKey("case_pop", CasePop)
# --- end cases ---

# --- cases-money: compensation orders, payouts, ledger ---
COMPENSATION = web.AppKey("compensation", Compensation)
# --- end cases-money ---
