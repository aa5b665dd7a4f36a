"""REST surface of the bot: the knowledge base (admin CRUD, audited), trying a question
against it, and the self-service requests the bot recorded."""

from __future__ import annotations

from typing import get_args

from aiohttp import web

from contactd.api.edge import (
    audit_context,
    json_model,
    paging,
    period_params,
    principal,
    read_body,
)
from contactd.api.registry import api
from contactd.channels.bot.models import (
    Faq,
    FaqImport,
    FaqImportOut,
    FaqIn,
    FaqPatch,
    HandleRequest,
    RequestStatus,
    SearchBody,
    SearchOut,
    SelfServiceRequest,
)
from contactd.channels.bot.report import BotSummary, summary
from contactd.errors import ContactdError, ErrorCode
from contactd.keys import BOT, CLOCK, DB

E = ErrorCode
AUTH_ERRORS = (E.unauthenticated, E.token_expired, E.forbidden)
KB = "kb.manage"
FOLLOW_UP = "tickets.handle"  # the after-sales desk follows up what the bot could not finish


def _faq_id(request: web.Request) -> int:
    raw = request.match_info["faq_id"]
    if not raw.isdigit() or len(raw) > 9:
        raise ContactdError(E.faq_not_found, f"no FAQ entry {raw}")
    return int(raw)


@api.route(
    "GET",
    "/api/v1/bot/faqs",
    summary="List knowledge-base entries",
    tag="bot",
    response=Faq,
    response_list=True,
    permission=KB,
    errors=(*AUTH_ERRORS, E.validation_failed),
    query={"q": "string", "tag": "string", "limit": "integer", "offset": "integer"},
)
async def faq_list(request: web.Request) -> web.Response:
    await principal(request, KB)
    limit, offset = paging(request, default=200, most=1000)
    faqs = await request.app[BOT].kb.entries(
        q=request.query.get("q") or None,
        tag=request.query.get("tag") or None,
        limit=limit,
        offset=offset,
    )
    return json_model(faqs)


@api.route(
    "POST",
    "/api/v1/bot/faqs",
    summary="Add a knowledge-base entry",
    tag="bot",
    body=FaqIn,
    response=Faq,
    status=201,
    permission=KB,
    errors=(*AUTH_ERRORS, E.validation_failed),
    example={
        "question": "退款多久到账？",
        "variants": ["退款什么时候到", "钱什么时候退回来"],
        "answer": "退款审核通过后 1-3 个工作日原路退回。",
        "tags": ["退款"],
        "lang": "zh",
        "suggested": True,
    },
)
async def faq_create(request: web.Request) -> web.Response:
    who = await principal(request, KB)
    body = await read_body(request, FaqIn)
    faq = await request.app[BOT].kb.create(body, audit_context(request, who))
    return json_model(faq, status=201)


@api.route(
    "POST",
    "/api/v1/bot/faqs/import",
    summary="Import entries (from another system or an export): new questions are added, "
    "existing ones replaced; all or nothing",
    tag="bot",
    body=FaqImport,
    response=FaqImportOut,
    permission=KB,
    errors=(*AUTH_ERRORS, E.validation_failed, E.payload_too_large),
)
async def faq_import(request: web.Request) -> web.Response:
    who = await principal(request, KB)
    body = await read_body(request, FaqImport)
    created, updated = await request.app[BOT].kb.import_many(
        body.entries, audit_context(request, who)
    )
    unchanged = len(body.entries) - created - updated
    return json_model(FaqImportOut(created=created, updated=updated, unchanged=unchanged))


@api.route(
    "GET",
    "/api/v1/bot/faqs/{faq_id}",
    summary="Read a knowledge-base entry",
    tag="bot",
    response=Faq,
    permission=KB,
    errors=(*AUTH_ERRORS, E.faq_not_found),
)
async def faq_get(request: web.Request) -> web.Response:
    await principal(request, KB)
    return json_model(await request.app[BOT].kb.get(_faq_id(request)))


@api.route(
    "PATCH",
    "/api/v1/bot/faqs/{faq_id}",
    summary="Change a knowledge-base entry (fields left out stay)",
    tag="bot",
    body=FaqPatch,
    response=Faq,
    permission=KB,
    errors=(*AUTH_ERRORS, E.faq_not_found, E.validation_failed),
)
async def faq_update(request: web.Request) -> web.Response:
    who = await principal(request, KB)
    faq_id = _faq_id(request)
    body = await read_body(request, FaqPatch)
    faq = await request.app[BOT].kb.update(faq_id, body, audit_context(request, who))
    return json_model(faq)


@api.route(
    "DELETE",
    "/api/v1/bot/faqs/{faq_id}",
    summary="Delete a knowledge-base entry",
    tag="bot",
    status=204,
    permission=KB,
    errors=(*AUTH_ERRORS, E.faq_not_found),
)
async def faq_delete(request: web.Request) -> web.Response:
    who = await principal(request, KB)
    await request.app[BOT].kb.delete(_faq_id(request), audit_context(request, who))
    return web.Response(status=204)


@api.route(
    "POST",
    "/api/v1/bot/search",
    summary="Try a question: what the bot would answer, and the closest entries",
    tag="bot",
    body=SearchBody,
    response=SearchOut,
    permission=KB,
    errors=(*AUTH_ERRORS, E.validation_failed),
)
async def faq_search(request: web.Request) -> web.Response:
    await principal(request, KB)
    body = await read_body(request, SearchBody)
    return json_model(await request.app[BOT].kb.search(body.text, body.limit))


@api.route(
    "GET",
    "/api/v1/bot/requests",
    summary="Self-service requests the bot recorded (refunds, address changes); staff "
    "with contacts.view, or tickets.handle (the ticket desk's follow-up list)",
    tag="bot",
    response=SelfServiceRequest,
    response_list=True,
    permission="contacts.view",
    errors=(*AUTH_ERRORS, E.validation_failed),
    query={
        "session_id": "string",
        "order_no": "string",
        "kind": "string",
        "status": "string",
        "limit": "integer",
        "offset": "integer",
    },
)
async def request_list(request: web.Request) -> web.Response:
    """``status``: recorded | ticket_pending | ticket_opened | ticket_failed | handled, or
    several separated by commas. ``recorded`` and ``ticket_failed`` wait for a person
    (``details.ticket_error`` says why no ticket was opened)."""
    who = await principal(request)
    if not (who.can("contacts.view") or who.can(FOLLOW_UP)):
        raise ContactdError(E.forbidden, "this needs the permission 'contacts.view'")
    limit, offset = paging(request)
    for status in (request.query.get("status") or "").split(","):
        if status and status not in get_args(RequestStatus):
            raise ContactdError(E.validation_failed, f"unknown status {status!r}")
    q = request.query
    found = await request.app[BOT].requests.search(
        session_id=q.get("session_id") or None,
        order_no=q.get("order_no") or None,
        kind=q.get("kind") or None,
        status=q.get("status") or None,
        limit=limit,
        offset=offset,
    )
    return json_model(found)


@api.route(
    "GET",
    "/api/v1/bot/summary",
    summary="How the bot did: chats it ended itself (containment), hand-overs by reason, "
    "requests recorded",
    tag="bot",
    response=BotSummary,
    permission="contacts.view",
    errors=(*AUTH_ERRORS, E.validation_failed),
    query={"since": "string", "until": "string"},
)
async def bot_summary(request: web.Request) -> web.Response:
    """``since``/``until``: ISO dates or ms; the last 24 hours by default."""
    await principal(request, "contacts.view")
    since, until = period_params(request, request.app[CLOCK].now_ms())
    return json_model(await summary(request.app[DB], since, until))


@api.route(
    "POST",
    "/api/v1/bot/requests/{request_id}/handled",
    summary="Mark a request the bot could not finish (recorded, ticket_failed) as dealt "
    "with by hand: what was done, and the ticket opened for it, if any (audited)",
    tag="bot",
    body=HandleRequest,
    response=SelfServiceRequest,
    permission=FOLLOW_UP,
    errors=(*AUTH_ERRORS, E.validation_failed, E.bot_request_not_found, E.conflict),
    example={"note": "已电话联系客户，改为换货", "ticket_id": "T20261124-000012"},
)
async def request_handled(request: web.Request) -> web.Response:
    who = await principal(request, FOLLOW_UP)
    body = await read_body(request, HandleRequest)
    done = await request.app[BOT].requests.handle(
        request.match_info["request_id"][:64], body, audit_context(request, who)
    )
    return json_model(done)
