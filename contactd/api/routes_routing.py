"""REST surface of the routing engine: agents, contacts, offers, queues."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from contactd.api.edge import audit_context, json_model, principal, read_body
from contactd.api.registry import api
from contactd.api.schemas import (
    AgentLoginBody,
    AgentStateBody,
    CancelBody,
    EndBody,
    EnqueueBody,
    HeartbeatOut,
    WrapOut,
)
from contactd.auth.models import Principal
from contactd.errors import ContactdError, ErrorCode
from contactd.keys import AUDIT, ENGINE, SETTINGS
from contactd.routing.models import AgentView, ContactView, QueueSnapshot

E = ErrorCode
AUTH_ERRORS = (E.unauthenticated, E.token_expired, E.forbidden)


async def _audit(
    request: web.Request,
    who: Principal,
    action: str,
    target_type: str,
    target_id: str,
    before: BaseModel | None = None,
    after: BaseModel | None = None,
) -> None:
    ctx = audit_context(request, who)
    await request.app[AUDIT].record(
        who,
        action,
        target_type,
        target_id,
        before=before.model_dump(mode="json") if before else None,
        after=after.model_dump(mode="json") if after else None,
        ip=ctx.ip,
        request_id=ctx.request_id,
    )


def _agent_id(who: Principal) -> str:
    if who.kind != "staff":
        raise ContactdError(ErrorCode.forbidden, "only staff accounts can work as agents")
    return str(who.name)


# --- agents ----------------------------------------------------------------------------


@api.route(
    "POST",
    "/api/v1/agents/me/login",
    summary="Sign in to routing (go available or away)",
    tag="agents",
    body=AgentLoginBody,
    response=AgentView,
    permission="agent.work",
    errors=(*AUTH_ERRORS, E.unknown_queue, E.validation_failed),
)
async def agent_login(request: web.Request) -> web.Response:
    who = await principal(request, "agent.work")
    body = await read_body(request, AgentLoginBody)
    settings = request.app[SETTINGS]
    queues = body.queues if body.queues is not None else [q.id for q in settings.queues]
    cap = {k: v for k, v in body.capacity.model_dump().items() if v is not None}
    view = await request.app[ENGINE].login(
        _agent_id(who), queues=queues, capacity=cap, state=body.state, reason=body.reason
    )
    await _audit(request, who, "agent.logged_in", "agent", view.agent_id, after=view)
    return json_model(view)


@api.route(
    "PUT",
    "/api/v1/agents/{agent_id}/state",
    summary="Change an agent's state",
    tag="agents",
    body=AgentStateBody,
    response=AgentView,
    permission="agent.work",
    errors=(*AUTH_ERRORS, E.agent_not_found, E.agent_offline, E.validation_failed),
)
async def agent_state(request: web.Request) -> web.Response:
    who = await principal(request)
    agent_id = request.match_info["agent_id"]
    own = who.kind == "staff" and who.name == agent_id
    if not (who.can("agent.state.any") or (own and who.can("agent.work"))):
        raise ContactdError(ErrorCode.forbidden, "you may only change your own state")
    body = await read_body(request, AgentStateBody)
    engine = request.app[ENGINE]
    before = await engine.agent(agent_id)
    view = await engine.set_state(agent_id, body.state, body.reason)
    await _audit(request, who, "agent.state_changed", "agent", agent_id, before, view)
    return json_model(view)


@api.route(
    "POST",
    "/api/v1/agents/me/heartbeat",
    summary="Keep the routing session alive",
    tag="agents",
    response=HeartbeatOut,
    permission="agent.work",
    errors=(*AUTH_ERRORS, E.agent_not_found, E.agent_offline),
)
async def agent_heartbeat(request: web.Request) -> web.Response:
    who = await principal(request, "agent.work")
    deadline = await request.app[ENGINE].heartbeat(_agent_id(who))
    return json_model(HeartbeatOut(deadline=deadline))


@api.route(
    "GET",
    "/api/v1/agents/{agent_id}",
    summary="An agent's routing state and slots",
    tag="agents",
    response=AgentView,
    errors=(*AUTH_ERRORS, E.agent_not_found),
)
async def agent_get(request: web.Request) -> web.Response:
    who = await principal(request)
    agent_id = request.match_info["agent_id"]
    if not (who.can("agents.view") or (who.kind == "staff" and who.name == agent_id)):
        raise ContactdError(ErrorCode.forbidden, "this needs the permission 'agents.view'")
    return json_model(await request.app[ENGINE].agent(agent_id))


# --- contacts and offers ---------------------------------------------------------------


@api.route(
    "POST",
    "/api/v1/contacts",
    summary="Put a contact in a queue",
    tag="contacts",
    body=EnqueueBody,
    response=ContactView,
    status=201,
    permission="contacts.create",
    errors=(
        *AUTH_ERRORS,
        E.unknown_queue,
        E.queue_full,
        E.contact_exists,
        E.designated_target_required,
        E.validation_failed,
    ),
    example={"queue_id": "presales", "priority": 0, "customer": {"id": "u1001"}},
)
async def contact_create(request: web.Request) -> web.Response:
    who = await principal(request, "contacts.create")
    body = await read_body(request, EnqueueBody)
    view = await request.app[ENGINE].enqueue(
        body.queue_id,
        priority=body.priority,
        contact_id=body.contact_id,
        target_agent_id=body.target_agent_id,
        meta=body.customer,
    )
    if not view.existing:
        await _audit(request, who, "contact.enqueued", "contact", view.contact_id, after=view)
    return json_model(view, status=200 if view.existing else 201)


async def _contact_for(request: web.Request, who: Principal) -> ContactView:
    view = await request.app[ENGINE].contact(request.match_info["contact_id"])
    if who.can("contacts.view") or (who.kind == "staff" and view.agent_id == who.name):
        return view
    raise ContactdError(ErrorCode.contact_not_found, "no such contact")


@api.route(
    "GET",
    "/api/v1/contacts/{contact_id}",
    summary="A contact's routing state",
    tag="contacts",
    response=ContactView,
    errors=(*AUTH_ERRORS, E.contact_not_found),
)
async def contact_get(request: web.Request) -> web.Response:
    who = await principal(request)
    view = await _contact_for(request, who)
    if view.state == "queued":
        pos = await request.app[ENGINE].position(view.contact_id, view.queue_id)
        view = view.model_copy(update={"position": pos})
    return json_model(view)


@api.route(
    "POST",
    "/api/v1/contacts/{contact_id}/cancel",
    summary="The customer left: cancel (revokes any offer at once)",
    tag="contacts",
    body=CancelBody,
    response=ContactView,
    permission="contacts.cancel",
    errors=(*AUTH_ERRORS, E.contact_not_found),
)
async def contact_cancel(request: web.Request) -> web.Response:
    who = await principal(request, "contacts.cancel")
    body = await read_body(request, CancelBody)
    cid = request.match_info["contact_id"]
    view = await request.app[ENGINE].cancel(cid, body.reason)
    await _audit(request, who, "contact.cancelled", "contact", cid, after=view)
    return json_model(view)


@api.route(
    "POST",
    "/api/v1/contacts/{contact_id}/end",
    summary="End an active contact",
    tag="contacts",
    body=EndBody,
    response=ContactView,
    permission="agent.work",
    errors=(
        *AUTH_ERRORS,
        E.contact_not_found,
        E.contact_not_active,
        E.contact_finished,
        E.not_your_contact,
    ),
)
async def contact_end(request: web.Request) -> web.Response:
    who = await principal(request)
    body = await read_body(request, EndBody)
    cid = request.match_info["contact_id"]
    if who.can("contacts.cancel"):
        agent = None  # supervisors may end anyone's contact
    elif who.can("agent.work"):
        agent = _agent_id(who)
    else:
        raise ContactdError(ErrorCode.forbidden, "this needs the permission 'agent.work'")
    view = await request.app[ENGINE].end(
        cid, agent_id=agent, reason=body.reason, disposition=body.disposition
    )
    await _audit(request, who, "contact.ended", "contact", cid, after=view)
    return json_model(view)


@api.route(
    "POST",
    "/api/v1/contacts/{contact_id}/wrap-up/complete",
    summary="Finish wrap-up of an ended contact now",
    tag="contacts",
    response=WrapOut,
    permission="agent.work",
    errors=(*AUTH_ERRORS, E.contact_not_found, E.not_your_contact),
)
async def contact_wrap_done(request: web.Request) -> web.Response:
    who = await principal(request, "agent.work")
    cid = request.match_info["contact_id"]
    done = await request.app[ENGINE].complete_wrap(cid, agent_id=_agent_id(who))
    if done:
        await _audit(request, who, "wrap_up.completed", "contact", cid)
    return json_model(WrapOut(done=done))


@api.route(
    "POST",
    "/api/v1/offers/{offer_id}/accept",
    summary="Accept an offer",
    tag="offers",
    response=ContactView,
    permission="agent.work",
    errors=(*AUTH_ERRORS, E.offer_not_found, E.offer_expired, E.not_your_offer),
)
async def offer_accept(request: web.Request) -> web.Response:
    who = await principal(request, "agent.work")
    offer_id = request.match_info["offer_id"]
    view = await request.app[ENGINE].accept(offer_id, _agent_id(who))
    await _audit(request, who, "offer.accepted", "offer", offer_id, after=view)
    return json_model(view)


@api.route(
    "POST",
    "/api/v1/offers/{offer_id}/decline",
    summary="Decline an offer",
    tag="offers",
    response=ContactView,
    permission="agent.work",
    errors=(*AUTH_ERRORS, E.offer_not_found, E.offer_expired, E.not_your_offer),
)
async def offer_decline(request: web.Request) -> web.Response:
    who = await principal(request, "agent.work")
    offer_id = request.match_info["offer_id"]
    view = await request.app[ENGINE].decline(offer_id, _agent_id(who))
    await _audit(request, who, "offer.declined", "offer", offer_id, after=view)
    return json_model(view)


# --- queues ----------------------------------------------------------------------------


@api.route(
    "GET",
    "/api/v1/queues",
    summary="Snapshots of every queue",
    tag="queues",
    response=QueueSnapshot,
    response_list=True,
    permission="queues.view",
    errors=AUTH_ERRORS,
)
async def queue_list(request: web.Request) -> web.Response:
    await principal(request, "queues.view")
    engine = request.app[ENGINE]
    snaps = [await engine.queue_snapshot(q.id) for q in request.app[SETTINGS].queues]
    return json_model(snaps)


@api.route(
    "GET",
    "/api/v1/queues/{queue_id}",
    summary="One queue: waiting, head, agents",
    tag="queues",
    response=QueueSnapshot,
    permission="queues.view",
    errors=(*AUTH_ERRORS, E.unknown_queue),
)
async def queue_get(request: web.Request) -> web.Response:
    await principal(request, "queues.view")
    return json_model(await request.app[ENGINE].queue_snapshot(request.match_info["queue_id"]))
