"""Every web.AppKey: the typed dependencies handlers and contexts share."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.auth.audit import AuditLog
from contactd.auth.service import AuthService
from contactd.bus import Bus
from contactd.clock import Clock
from contactd.metrics import Metrics
from contactd.routing.service import RoutingEngine
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
