"""Operational endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from contactd.api.openapi import build_openapi
from contactd.api.registry import api
from contactd.keys import DB, DRAINING, ENGINE, METRICS, REDIS, SETTINGS
from contactd.storage.db import ping as db_ping


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, Any] = {}
    try:
        checks["redis"] = bool(await asyncio.wait_for(request.app[REDIS].ping(), 2))
    except Exception as exc:
        checks["redis"] = False
        checks["redis_error"] = type(exc).__name__
    checks["database"] = await db_ping(request.app[DB])
    draining = request.app[DRAINING][0]
    ready = checks["redis"] and checks["database"] and not draining
    body = {"status": "ready" if ready else ("draining" if draining else "not_ready"), **checks}
    return web.json_response(body, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    m = request.app[METRICS]
    depths = []
    for q in request.app[SETTINGS].queues:
        snap = await engine.queue_snapshot(q.id, head=0)
        depths.append((q.id, snap.waiting))
    m.set_queue_depths(depths)
    agents = await engine.agents()
    m.set_agent_states(dict(Counter(a.state for a in agents)))
    m.set_active_sessions(
        dict(Counter(s.channel for a in agents for s in a.slots if s.state == "active"))
    )
    return web.Response(body=m.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(build_openapi(api))


def install_ops(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
