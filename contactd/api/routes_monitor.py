"""REST surface of the supervisor monitor: the live snapshot and the actions."""

from __future__ import annotations

from aiohttp import web

from contactd.api.edge import audit_context, json_model, principal, read_body
from contactd.api.registry import api
from contactd.errors import ErrorCode
from contactd.keys import MONITOR, SETTINGS
from contactd.monitor.actions import ForceOfferBody, MoveBody, SetStateBody
from contactd.monitor.live import MonitorSnapshot, scoped
from contactd.monitor.scope import scope_of
from contactd.routing.models import AgentView, ContactView

E = ErrorCode
AUTH_ERRORS = (E.unauthenticated, E.token_expired, E.forbidden)
TAG = "monitor"


@api.route(
    "GET",
    "/api/v1/monitor",
    summary="Live monitor snapshot (queues, agents, waiting contacts, active sessions)",
    tag=TAG,
    response=MonitorSnapshot,
    permission="monitor.view",
    errors=AUTH_ERRORS,
)
async def monitor_snapshot(request: web.Request) -> web.Response:
    who = await principal(request, "monitor.view")
    snap = await request.app[MONITOR].live.snapshot()
    return json_model(scoped(snap, scope_of(request.app[SETTINGS], who)))


@api.route(
    "POST",
    "/api/v1/monitor/agents/{agent_id}/state",
    summary="Set an agent's state, with a reason (audited)",
    tag=TAG,
    body=SetStateBody,
    response=AgentView,
    permission="monitor.act",
    errors=(*AUTH_ERRORS, E.agent_not_found, E.agent_offline, E.out_of_scope, E.validation_failed),
    example={"state": "away", "reason": "meeting"},
)
async def monitor_agent_state(request: web.Request) -> web.Response:
    who = await principal(request, "monitor.act")
    body = await read_body(request, SetStateBody)
    view = await request.app[MONITOR].actions.set_agent_state(
        audit_context(request, who), request.match_info["agent_id"], body
    )
    return json_model(view)


@api.route(
    "POST",
    "/api/v1/monitor/agents/{agent_id}/drain",
    summary="Drain an agent: finish current work, take nothing new, then go offline",
    tag=TAG,
    response=AgentView,
    permission="monitor.act",
    errors=(*AUTH_ERRORS, E.agent_not_found, E.agent_offline, E.out_of_scope),
)
async def monitor_agent_drain(request: web.Request) -> web.Response:
    who = await principal(request, "monitor.act")
    view = await request.app[MONITOR].actions.drain(
        audit_context(request, who), request.match_info["agent_id"]
    )
    return json_model(view)


@api.route(
    "POST",
    "/api/v1/monitor/contacts/{contact_id}/move",
    summary="Move a waiting contact to another queue (keeps its priority and wait)",
    tag=TAG,
    body=MoveBody,
    response=ContactView,
    permission="monitor.act",
    errors=(
        *AUTH_ERRORS,
        E.contact_not_found,
        E.contact_not_waiting,
        E.unknown_queue,
        E.channel_mismatch,
        E.queue_full,
        E.out_of_scope,
        E.validation_failed,
    ),
    example={"queue_id": "aftersales"},
)
async def monitor_contact_move(request: web.Request) -> web.Response:
    who = await principal(request, "monitor.act")
    body = await read_body(request, MoveBody)
    view = await request.app[MONITOR].actions.move(
        audit_context(request, who), request.match_info["contact_id"], body
    )
    return json_model(view)


@api.route(
    "POST",
    "/api/v1/monitor/contacts/{contact_id}/offer",
    summary="Offer a waiting contact to a named agent now (force-offer)",
    tag=TAG,
    body=ForceOfferBody,
    response=ContactView,
    permission="monitor.act",
    errors=(
        *AUTH_ERRORS,
        E.contact_not_found,
        E.contact_not_waiting,
        E.agent_not_found,
        E.agent_offline,
        E.agent_busy,
        E.channel_mismatch,
        E.out_of_scope,
        E.validation_failed,
    ),
    example={"agent_id": "alice"},
)
async def monitor_force_offer(request: web.Request) -> web.Response:
    who = await principal(request, "monitor.act")
    body = await read_body(request, ForceOfferBody)
    view = await request.app[MONITOR].actions.force_offer(
        audit_context(request, who), request.match_info["contact_id"], body
    )
    return json_model(view)
