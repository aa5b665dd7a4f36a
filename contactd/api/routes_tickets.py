"""REST of after-sales tickets: staff (workspace), other systems (API keys with the
``tickets.create`` / ``tickets.view`` / ``tickets.handle`` scopes) and the customer's widget
(``Authorization: Visitor <token>``).

Access, in one place (``_readable``): ``tickets.view`` sees every ticket; otherwise a
caller sees the tickets it holds and, with ``tickets.claim``, those waiting in a pool.
Anything else answers 404, exactly like a ticket that does not exist (no IDOR).
"""

from __future__ import annotations

import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from contactd.api.edge import json_model, principal, read_body, visitor_of
from contactd.api.registry import api
from contactd.auth.models import Principal
from contactd.cases.idempotency import HEADER as IDEMPOTENCY_HEADER
from contactd.cases.idempotency import REPLAYED, Remember, Replay, request_hash
from contactd.cases.tickets_models import (
    Action,
    Actor,
    CustomerTicket,
    Lang,
    PoolSummary,
    TicketDetail,
    TicketDraft,
    TicketPrefill,
    TicketView,
    actor_of,
)
from contactd.errors import ContactdError, ErrorCode
from contactd.keys import AUTH, CHAT, TICKETS
from contactd.sessions.models import SessionRecord

E = ErrorCode
B = TypeVar("B", bound=BaseModel)
AUTH_ERRORS = (E.unauthenticated, E.token_expired, E.forbidden)
TAG = "tickets"
EXAMPLE = {
    "type": "partial_refund",
    "order_no": "O2026111900000003",
    "items": [{"sku": "SKU10004", "qty": 1}],
    "amount": 1500,
    "reason": "部分损坏 one item arrived damaged",
    "priority": 2,
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActionBody(_Body):
    action: Action
    note: str | None = Field(default=None, max_length=1000)
    version: int | None = Field(default=None, ge=1, description="refuse if the ticket moved on")


class NoteBody(_Body):
    text: str = Field(min_length=1, max_length=1000)


class AgentBody(_Body):
    agent_id: str = Field(min_length=1, max_length=64, description="the staff username")
    note: str | None = Field(default=None, max_length=1000)


class DispatchBody(_Body):
    queue_id: str = Field(min_length=1, max_length=64)
    note: str | None = Field(default=None, max_length=1000)


class PriorityBody(_Body):
    priority: int = Field(ge=0, le=9)


class TicketList(_Body):
    items: list[TicketView]


class PoolList(_Body):
    pools: list[PoolSummary]


class CustomerTicketList(_Body):
    items: list[CustomerTicket]


async def _actor(request: web.Request, who: Principal) -> Actor:
    if who.kind != "staff":
        return actor_of(who)
    try:
        user = await request.app[AUTH].get_user_by_username(who.name)
    except ContactdError:
        return actor_of(who)
    return actor_of(who, user.display_name)


def _readable(who: Principal, t: TicketView) -> bool:
    if who.can("tickets.view"):
        return True
    if who.kind == "staff" and t.owner_id == who.name:
        return True
    return t.owner_id is None and not t.final and who.can("tickets.claim")


async def _ticket(request: web.Request, who: Principal) -> TicketView:
    t = await request.app[TICKETS].get(request.match_info["ticket_id"])
    if not _readable(who, t):
        raise ContactdError(E.ticket_not_found, "no such ticket")
    return t


async def _with_ticket(
    request: web.Request, permission: str, body_model: type[B]
) -> tuple[Principal, Actor, TicketView, B]:
    """The caller (with ``permission``), as an actor, the ticket they may see, the body."""
    who = await principal(request, permission)
    body = await read_body(request, body_model)
    return who, await _actor(request, who), await _ticket(request, who), body


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ContactdError(E.validation_failed, f"{name} must be an integer") from exc
    if not low <= value <= high:
        raise ContactdError(E.validation_failed, f"{name} must be between {low} and {high}")
    return value


async def _session(request: web.Request, who: Principal, sid: str) -> SessionRecord:
    chat = request.app[CHAT]
    if who.kind == "staff":
        return await chat.agent_session(who, sid, current=False)
    return await chat.sessions.get(sid)


@api.route(
    "POST",
    "/api/v1/tickets",
    summary="Open an after-sales ticket (from a chat, or another system)",
    tag=TAG,
    body=TicketDraft,
    response=TicketDetail,
    status=201,
    permission="tickets.create",
    errors=(
        *AUTH_ERRORS,
        E.validation_failed,
        E.ticket_order_mismatch,
        E.unknown_queue,
        E.conflict,
        E.not_found,
        E.idempotency_key_reused,
        E.idempotency_in_progress,
    ),
    example=EXAMPLE,
    headers={
        IDEMPOTENCY_HEADER: "your unique id for this ticket: a retry with the same key and "
        "body returns the first response and opens nothing; another body → 422; while the "
        "first is still running → 409"
    },
)
async def ticket_create(request: web.Request) -> web.Response:
    """With ``session_id`` the ticket is linked to the chat and takes its customer, order
    and queue unless given. Items and amount are checked against the directory order.
    New tickets go to the queue's to-be-claimed pool (or straight on when a fast-review
    or lightning-refund rule approves them). With an ``Idempotency-Key`` a retry opens
    nothing new (see compensation orders: the same rules)."""
    who = await principal(request, "tickets.create")
    tickets = request.app[TICKETS]
    digest = request_hash(request.method, request.path, await request.read())

    async def create(remember: Remember | None) -> TicketDetail:
        draft = await read_body(request, TicketDraft)
        session = await _session(request, who, draft.session_id) if draft.session_id else None

        async def stored(conn: AsyncConnection, detail: TicketDetail) -> None:
            assert remember is not None
            await remember(conn, 201, json.loads(detail.model_dump_json()))

        actor = await _actor(request, who)
        return await tickets.create(actor, draft, session, on_created=stored if remember else None)

    out = await tickets.idempotency.run(
        who, request.headers.get(IDEMPOTENCY_HEADER), digest, create
    )
    if isinstance(out, Replay):
        return web.json_response(out.body, status=out.status, headers=REPLAYED)
    return json_model(out, status=201)


@api.route(
    "GET",
    "/api/v1/tickets",
    summary="Search tickets (all of them with tickets.view; else your own)",
    tag=TAG,
    response=TicketList,
    errors=(*AUTH_ERRORS, E.validation_failed),
    query={
        "queue_id": "string",
        "owner_id": "string",
        "state": "string",
        "type": "string",
        "customer_id": "string",
        "order_no": "string",
        "session_id": "string",
        "open": "boolean",
        "limit": "integer",
        "offset": "integer",
    },
)
async def ticket_search(request: web.Request) -> web.Response:
    who = await principal(request)
    q = request.query
    owner = q.get("owner_id")
    if not who.can("tickets.view"):
        if not (who.kind == "staff" and who.can("tickets.handle")):
            raise ContactdError(E.forbidden, "this needs the permission 'tickets.view'")
        owner = who.name  # only one's own
    items = await request.app[TICKETS].search(
        queue_id=q.get("queue_id"),
        owner_id=owner,
        state=q.get("state"),
        type_=q.get("type"),
        customer_id=q.get("customer_id"),
        order_no=q.get("order_no"),
        session_id=q.get("session_id"),
        open_only=q.get("open") in ("1", "true"),
        limit=_int(request, "limit", 100, 1, 500),
        offset=_int(request, "offset", 0, 0, 1_000_000),
    )
    return json_model(TicketList(items=items))


@api.route(
    "GET",
    "/api/v1/tickets/prefill",
    summary="Start a ticket from a chat: its customer, the order and recent orders",
    tag=TAG,
    response=TicketPrefill,
    permission="tickets.create",
    errors=(*AUTH_ERRORS, E.not_found, E.validation_failed),
    query={"session_id": "string"},
)
async def ticket_prefill(request: web.Request) -> web.Response:
    """Only for a chat the caller handles (or handled)."""
    who = await principal(request, "tickets.create")
    sid = request.query.get("session_id")
    if not sid:
        raise ContactdError(E.validation_failed, "session_id is required")
    session = await _session(request, who, sid)
    return json_model(await request.app[TICKETS].prefill(session))


@api.route(
    "GET",
    "/api/v1/tickets/mine",
    summary="My queue: the open tickets I hold, most urgent first",
    tag=TAG,
    response=TicketList,
    permission="tickets.handle",
    errors=AUTH_ERRORS,
)
async def ticket_mine(request: web.Request) -> web.Response:
    who = await principal(request, "tickets.handle")
    items = await request.app[TICKETS].search(owner_id=who.name, open_only=True, limit=500)
    return json_model(TicketList(items=items))


def _can_see_pools(who: Principal) -> None:
    if not (who.can("tickets.claim") or who.can("tickets.view")):
        raise ContactdError(E.forbidden, "this needs the permission 'tickets.claim'")


@api.route(
    "GET",
    "/api/v1/tickets/pools",
    summary="The to-be-claimed pools: count, oldest age and urgent count per queue",
    tag=TAG,
    response=PoolList,
    errors=AUTH_ERRORS,
)
async def ticket_pools(request: web.Request) -> web.Response:
    who = await principal(request)
    _can_see_pools(who)
    return json_model(PoolList(pools=await request.app[TICKETS].pools()))


@api.route(
    "GET",
    "/api/v1/tickets/pools/{queue_id}",
    summary="The tickets waiting in one pool, most urgent and oldest first",
    tag=TAG,
    response=TicketList,
    errors=(*AUTH_ERRORS, E.unknown_queue, E.validation_failed),
    query={"limit": "integer"},
)
async def ticket_pool(request: web.Request) -> web.Response:
    who = await principal(request)
    _can_see_pools(who)
    items = await request.app[TICKETS].search(
        queue_id=request.match_info["queue_id"],
        pool=True,
        limit=_int(request, "limit", 200, 1, 500),
    )
    return json_model(TicketList(items=items))


@api.route(
    "GET",
    "/api/v1/tickets/stalled",
    summary="Open tickets without progress for longer than tickets.stall_after_s",
    tag=TAG,
    response=TicketList,
    permission="tickets.view",
    errors=AUTH_ERRORS,
)
async def ticket_stalled(request: web.Request) -> web.Response:
    await principal(request, "tickets.view")
    items = await request.app[TICKETS].search(open_only=True, limit=500)
    return json_model(TicketList(items=[t for t in items if t.stalled]))


@api.route(
    "GET",
    "/api/v1/tickets/{ticket_id}",
    summary="A ticket with its full timeline (every step: who, when, what)",
    tag=TAG,
    response=TicketDetail,
    errors=(*AUTH_ERRORS, E.ticket_not_found),
)
async def ticket_get(request: web.Request) -> web.Response:
    who = await principal(request)
    t = await _ticket(request, who)
    return json_model(await request.app[TICKETS].detail(t.id))


@api.route(
    "POST",
    "/api/v1/tickets/{ticket_id}/claim",
    summary="Claim a ticket from its pool into my queue",
    tag=TAG,
    response=TicketView,
    permission="tickets.claim",
    errors=(*AUTH_ERRORS, E.ticket_not_found, E.ticket_already_claimed, E.ticket_closed),
)
async def ticket_claim(request: web.Request) -> web.Response:
    """Any pool ticket (the pools are visible to claimers); one already claimed, also in a
    race, answers ``ticket_already_claimed``."""
    who = await principal(request, "tickets.claim")
    if who.kind != "staff":
        raise ContactdError(E.forbidden, "only staff claim tickets")
    actor = await _actor(request, who)
    return json_model(await request.app[TICKETS].claim(actor, request.match_info["ticket_id"]))


@api.route(
    "POST",
    "/api/v1/tickets/{ticket_id}/actions",
    summary="Move the ticket on (approve, reject, ship, complete_refund, ...)",
    tag=TAG,
    body=ActionBody,
    response=TicketView,
    permission="tickets.handle",
    errors=(
        *AUTH_ERRORS,
        E.ticket_not_found,
        E.ticket_not_owner,
        E.ticket_invalid_transition,
        E.ticket_closed,
        E.ticket_changed,
        E.validation_failed,
    ),
    example={"action": "approve", "note": "核实无误", "version": 1},
)
async def ticket_act(request: web.Request) -> web.Response:
    """Only the ticket's owner (or a system with the tickets.handle scope) may act; the
    action must be one of the ticket's ``actions``."""
    _who, actor, t, body = await _with_ticket(request, "tickets.handle", ActionBody)
    view = await request.app[TICKETS].act(actor, t.id, body.action, body.note, body.version)
    return json_model(view)


@api.route(
    "POST",
    "/api/v1/tickets/{ticket_id}/notes",
    summary="Add a note to the ticket's timeline",
    tag=TAG,
    body=NoteBody,
    response=TicketView,
    permission="tickets.handle",
    errors=(*AUTH_ERRORS, E.ticket_not_found, E.ticket_not_owner, E.ticket_closed),
)
async def ticket_note(request: web.Request) -> web.Response:
    _who, actor, t, body = await _with_ticket(request, "tickets.handle", NoteBody)
    return json_model(await request.app[TICKETS].note(actor, t.id, body.text))


@api.route(
    "POST",
    "/api/v1/tickets/{ticket_id}/assign",
    summary="Give the ticket to a colleague (from the pool or its owner)",
    tag=TAG,
    body=AgentBody,
    response=TicketView,
    permission="tickets.assign",
    errors=(*AUTH_ERRORS, E.ticket_not_found, E.agent_not_found, E.ticket_closed, E.conflict),
)
async def ticket_assign(request: web.Request) -> web.Response:
    _who, actor, t, body = await _with_ticket(request, "tickets.assign", AgentBody)
    return json_model(await request.app[TICKETS].assign(actor, t.id, body.agent_id, body.note))


@api.route(
    "POST",
    "/api/v1/tickets/{ticket_id}/transfer",
    summary="Hand my ticket on to a colleague (anyone's, with tickets.assign)",
    tag=TAG,
    body=AgentBody,
    response=TicketView,
    permission="tickets.transfer",
    errors=(
        *AUTH_ERRORS,
        E.ticket_not_found,
        E.ticket_not_owner,
        E.agent_not_found,
        E.ticket_closed,
        E.conflict,
    ),
)
async def ticket_transfer(request: web.Request) -> web.Response:
    who, actor, t, body = await _with_ticket(request, "tickets.transfer", AgentBody)
    any_owner = who.can("tickets.assign")
    view = await request.app[TICKETS].transfer(
        actor, t.id, body.agent_id, body.note, any_owner=any_owner
    )
    return json_model(view)


@api.route(
    "POST",
    "/api/v1/tickets/{ticket_id}/dispatch",
    summary="Put the ticket (back) in a queue's pool",
    tag=TAG,
    body=DispatchBody,
    response=TicketView,
    permission="tickets.dispatch",
    errors=(*AUTH_ERRORS, E.ticket_not_found, E.unknown_queue, E.ticket_closed, E.conflict),
)
async def ticket_dispatch(request: web.Request) -> web.Response:
    _who, actor, t, body = await _with_ticket(request, "tickets.dispatch", DispatchBody)
    return json_model(await request.app[TICKETS].dispatch(actor, t.id, body.queue_id, body.note))


@api.route(
    "PUT",
    "/api/v1/tickets/{ticket_id}/priority",
    summary="Change a ticket's priority (its owner, or anyone with tickets.assign)",
    tag=TAG,
    body=PriorityBody,
    response=TicketView,
    errors=(*AUTH_ERRORS, E.ticket_not_found, E.ticket_not_owner, E.ticket_closed),
)
async def ticket_priority(request: web.Request) -> web.Response:
    who = await principal(request)
    if not (who.can("tickets.handle") or who.can("tickets.assign")):
        raise ContactdError(E.forbidden, "this needs the permission 'tickets.handle'")
    body = await read_body(request, PriorityBody)
    t = await _ticket(request, who)
    view = await request.app[TICKETS].set_priority(
        await _actor(request, who), t.id, body.priority, any_owner=who.can("tickets.assign")
    )
    return json_model(view)


# --- the customer's widget ----------------------------------------------------------------


def _lang(request: web.Request) -> Lang:
    return "en" if request.query.get("lang") == "en" else "zh"


@api.route(
    "GET",
    "/api/v1/im/tickets",
    summary="The customer's tickets with their simple status (widget)",
    tag="chat",
    response=CustomerTicketList,
    auth=False,
    errors=(E.unauthenticated, E.not_found),
    query={"session_id": "string", "lang": "string"},
)
async def customer_tickets(request: web.Request) -> web.Response:
    """``Authorization: Visitor <token>``; with ``session_id`` (one of the visitor's
    sessions) also the tickets of the signed-in customer from any earlier visit."""
    visitor, customer = await visitor_of(request)
    items = await request.app[TICKETS].for_customer(customer, visitor, _lang(request))
    return json_model(CustomerTicketList(items=items))


@api.route(
    "POST",
    "/api/v1/im/tickets/{ticket_id}/urge",
    summary="催单: urge a pending ticket (throttled; raises its priority)",
    tag="chat",
    response=CustomerTicket,
    auth=False,
    errors=(E.unauthenticated, E.ticket_not_found, E.ticket_closed, E.ticket_urge_throttled),
    query={"session_id": "string", "lang": "string"},
)
async def customer_urge(request: web.Request) -> web.Response:
    visitor, customer = await visitor_of(request)
    tid = request.match_info["ticket_id"]
    view = await request.app[TICKETS].urge(visitor, customer, tid, _lang(request))
    return json_model(view)
