"""REST surface of compensation orders (赔付单): create (with Idempotency-Key for other
systems), list and read, review, batch, payouts, the ledger and the webhook delivery log.
Staff tokens and API keys (scopes = permissions) use the same routes."""

from __future__ import annotations

import json
from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from contactd.api.edge import audit_context, json_model, principal, read_body, visitor_of
from contactd.api.registry import api
from contactd.auth.models import AuditContext, Principal
from contactd.cases.compensation_config import AssetType, SceneConfig
from contactd.cases.compensation_models import (
    BatchBody,
    BatchOut,
    CompensationCreate,
    CompensationEdit,
    CompensationPage,
    CompensationView,
    CustomerNoticeView,
    DeliveryView,
    PayoutView,
    QuoteBody,
    QuoteOut,
    RejectBody,
    ReviewBody,
    Stage,
    Status,
    masked,
)
from contactd.cases.compensation_store import ListFilter
from contactd.cases.idempotency import HEADER as IDEMPOTENCY_HEADER
from contactd.cases.idempotency import REPLAYED, Remember, Replay, request_hash
from contactd.cases.ledger import Balances, JournalLine, Reconciliation
from contactd.errors import ContactdError, ErrorCode
from contactd.keys import AUDIT, COMPENSATION

E = ErrorCode
AUTH_ERRORS = (E.unauthenticated, E.token_expired, E.forbidden)
REVIEW_ERRORS = (
    *AUTH_ERRORS,
    E.compensation_not_found,
    E.invalid_state,
    E.version_conflict,
    E.own_order,
    E.not_your_stage,
    E.validation_failed,
)
CREATE_EXAMPLE = {
    "customer_phone": "13800138000",
    "order_no": "O2026112300001234",
    "items": [{"sku": "SKU-1001", "qty": 1}],
    "scene": "defect",
    "asset_type": "balance",
    "amount": 1500,
    "reason": "杯子有裂纹 the mug arrived cracked",
    "attachments": [{"name": "photo.jpg", "url": "/api/v1/uploads/att_1"}],
}


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListQuery(_Query):
    status: Status | None = None
    stage: Stage | None = None
    scene: str | None = Field(default=None, max_length=48)
    creator: str | None = Field(default=None, max_length=120)
    asset_type: AssetType | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = Field(default=None, max_length=64)
    session_id: str | None = Field(default=None, max_length=32)
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class PayoutQuery(_Query):
    state: str | None = Field(default=None, pattern="^(pending|succeeded|failed)$")
    asset_type: AssetType | None = None
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class PayoutPage(_Query):
    items: list[PayoutView]
    total: int


class DeliveryQuery(_Query):
    subject_id: str | None = Field(default=None, max_length=32)
    limit: int = Field(default=100, ge=1, le=1000)


class ScenesOut(_Query):
    scenes: list[SceneConfig]
    max_amount: int


class AccountOut(_Query):
    balances: Balances
    journal: list[JournalLine]


class HistoryEntry(_Query):
    at: datetime
    action: str
    actor_name: str | None
    actor_type: str
    status: str | None


def _ms(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ContactdError(E.validation_failed, "times need a timezone, e.g. 2026-11-23T08:00Z")
    return int(value.timestamp() * 1000)


async def _ctx(request: web.Request, permission: str | None = None) -> AuditContext:
    return audit_context(request, await principal(request, permission))


def _who(ctx: AuditContext) -> Principal:
    assert ctx.actor is not None
    return ctx.actor


def _out(view: CompensationView, who: Principal | None, status: int = 200) -> web.Response:
    """An order as this caller may see it (the phone masked without ``pii.view``)."""
    return json_model(masked(view, pii=bool(who and who.can("pii.view"))), status=status)


@api.route(
    "POST",
    "/api/v1/compensations",
    summary="Open a compensation order (赔付单)",
    tag="compensation",
    body=CompensationCreate,
    response=CompensationView,
    status=201,
    permission="compensation.create",
    errors=(
        *AUTH_ERRORS,
        E.asset_not_allowed,
        E.idempotency_key_reused,
        E.idempotency_in_progress,
    ),
    example=CREATE_EXAMPLE,
    headers={
        IDEMPOTENCY_HEADER: "your unique id for this order: a retry with the same key and "
        "body returns the first response and creates nothing; another body → 422"
    },
)
async def compensation_create(request: web.Request) -> web.Response:
    ctx = await _ctx(request, "compensation.create")
    who = _who(ctx)
    comp = request.app[COMPENSATION]
    digest = request_hash(request.method, request.path, await request.read())

    async def create(remember: Remember | None) -> CompensationView:
        body = await read_body(request, CompensationCreate)

        async def stored(conn: AsyncConnection, view: CompensationView) -> None:
            assert remember is not None
            shown = masked(view, pii=who.can("pii.view"))
            await remember(conn, 201, json.loads(shown.model_dump_json()))

        return await comp.service.create(body, ctx, on_created=stored if remember else None)

    out = await comp.idempotency.run(who, request.headers.get(IDEMPOTENCY_HEADER), digest, create)
    if isinstance(out, Replay):
        return web.json_response(out.body, status=out.status, headers=REPLAYED)
    return _out(out, who, 201)


@api.route(
    "GET",
    "/api/v1/compensations",
    summary="List compensation orders (filters: status, scene, time, creator...)",
    tag="compensation",
    response=CompensationPage,
    errors=(*AUTH_ERRORS, E.validation_failed),
    query={
        "status": "string",
        "stage": "string",
        "scene": "string",
        "creator": "string",
        "asset_type": "string",
        "since": "string",
        "until": "string",
        "q": "string",
        "session_id": "string",
        "limit": "integer",
        "offset": "integer",
    },
)
async def compensation_list(request: web.Request) -> web.Response:
    who = await principal(request)
    if not (who.can("compensation.view") or who.can("compensation.create")):
        raise ContactdError(E.forbidden, "this needs the permission 'compensation.view'")
    q = ListQuery.model_validate(dict(request.query))
    f = ListFilter(
        status=q.status,
        stage=q.stage,
        scene=q.scene,
        creator=q.creator,
        asset_type=q.asset_type.value if q.asset_type else None,
        since_ms=_ms(q.since),
        until_ms=_ms(q.until),
        query=q.q,
        session_id=q.session_id,
        limit=q.limit,
        offset=q.offset,
    )
    items, total = await request.app[COMPENSATION].service.search(f, who)
    pii = who.can("pii.view")
    return json_model(CompensationPage(items=[masked(i, pii=pii) for i in items], total=total))


@api.route(
    "GET",
    "/api/v1/compensations/{compensation_id}",
    summary="A compensation order and its status",
    tag="compensation",
    response=CompensationView,
    errors=(*AUTH_ERRORS, E.compensation_not_found),
)
async def compensation_get(request: web.Request) -> web.Response:
    who = await principal(request)
    view = await request.app[COMPENSATION].service.get(request.match_info["compensation_id"], who)
    return _out(view, who)


@api.route(
    "GET",
    "/api/v1/compensations/{compensation_id}/history",
    summary="Who did what to the order, when (oldest first)",
    tag="compensation",
    response=HistoryEntry,
    response_list=True,
    errors=(*AUTH_ERRORS, E.compensation_not_found),
)
async def compensation_history(request: web.Request) -> web.Response:
    who = await principal(request)
    order_id = request.match_info["compensation_id"]
    await request.app[COMPENSATION].service.get(order_id, who)  # visibility
    entries = await request.app[AUDIT].query(
        target_type="compensation", target_id=order_id, limit=1000
    )
    out = [
        HistoryEntry(
            at=e.at,
            action=e.action,
            actor_name=e.actor_name,
            actor_type=e.actor_type,
            status=(e.after or {}).get("status"),
        )
        for e in reversed(entries)
    ]
    return json_model(out)


@api.route(
    "PUT",
    "/api/v1/compensations/{compensation_id}",
    summary="Edit a rejected order and submit it for review again (creator only)",
    tag="compensation",
    body=CompensationEdit,
    response=CompensationView,
    permission="compensation.create",
    errors=(*REVIEW_ERRORS, E.asset_not_allowed),
)
async def compensation_resubmit(request: web.Request) -> web.Response:
    ctx = await _ctx(request, "compensation.create")
    body = await read_body(request, CompensationEdit)
    service = request.app[COMPENSATION].service
    return _out(await service.resubmit(request.match_info["compensation_id"], body, ctx), ctx.actor)


@api.route(
    "POST",
    "/api/v1/compensations/{compensation_id}/approve",
    summary="Approve at the current review level (L1 business, L2 finance)",
    tag="compensation",
    body=ReviewBody,
    response=CompensationView,
    permission="compensation.review",
    errors=(*REVIEW_ERRORS, E.over_amount_limit),
    example={"version": 1, "comment": ""},
)
async def compensation_approve(request: web.Request) -> web.Response:
    ctx = await _ctx(request, "compensation.review")
    body = await read_body(request, ReviewBody)
    service = request.app[COMPENSATION].service
    view = await service.approve(request.match_info["compensation_id"], body.version, ctx)
    return _out(view, ctx.actor)


@api.route(
    "POST",
    "/api/v1/compensations/{compensation_id}/reject",
    summary="Reject (the creator may edit and resubmit, or close it)",
    tag="compensation",
    body=RejectBody,
    response=CompensationView,
    permission="compensation.review",
    errors=REVIEW_ERRORS,
    example={"version": 1, "comment": "请补充破损照片 please add a photo"},
)
async def compensation_reject(request: web.Request) -> web.Response:
    ctx = await _ctx(request, "compensation.review")
    body = await read_body(request, RejectBody)
    service = request.app[COMPENSATION].service
    view = await service.reject(
        request.match_info["compensation_id"], body.version, body.comment, ctx
    )
    return _out(view, ctx.actor)


@api.route(
    "POST",
    "/api/v1/compensations/{compensation_id}/close",
    summary="Close a rejected order (or withdraw a pending one)",
    tag="compensation",
    body=ReviewBody,
    response=CompensationView,
    errors=REVIEW_ERRORS,
)
async def compensation_close(request: web.Request) -> web.Response:
    ctx = await _ctx(request)
    body = await read_body(request, ReviewBody)
    service = request.app[COMPENSATION].service
    return _out(
        await service.close(request.match_info["compensation_id"], body.version, ctx), ctx.actor
    )


@api.route(
    "POST",
    "/api/v1/compensations/batch",
    summary="Approve, reject or close many orders; a result per order",
    tag="compensation",
    body=BatchBody,
    response=BatchOut,
    permission="compensation.review",
    errors=AUTH_ERRORS,
    example={"action": "approve", "items": [{"id": "C20261123-0A1B2C3D", "version": 1}]},
)
async def compensation_batch(request: web.Request) -> web.Response:
    ctx = await _ctx(request, "compensation.review")
    body = await read_body(request, BatchBody)
    return json_model(await request.app[COMPENSATION].service.batch(body, ctx))


@api.route(
    "POST",
    "/api/v1/compensations/quote",
    summary="The calculator: suggested amount for a standard defect scene",
    tag="compensation",
    body=QuoteBody,
    response=QuoteOut,
    permission="compensation.create",
    errors=AUTH_ERRORS,
    example={"scene": "defect", "order_no": "O2026112300001234", "items": []},
)
async def compensation_quote(request: web.Request) -> web.Response:
    await principal(request, "compensation.create")
    body = await read_body(request, QuoteBody)
    return json_model(await request.app[COMPENSATION].service.quote(body))


@api.route(
    "GET",
    "/api/v1/compensation-scenes",
    summary="Scenes (two levels) and the assets each may pay",
    tag="compensation",
    response=ScenesOut,
    errors=AUTH_ERRORS,
)
async def compensation_scenes(request: web.Request) -> web.Response:
    who = await principal(request)
    if not (who.can("compensation.view") or who.can("compensation.create")):
        raise ContactdError(E.forbidden, "this needs the permission 'compensation.create'")
    policy, _ = await request.app[COMPENSATION].service.policy()
    return json_model(ScenesOut(scenes=list(policy.scenes), max_amount=policy.max_amount))


# --- payouts, ledger, deliveries (finance) -----------------------------------------------


@api.route(
    "GET",
    "/api/v1/payouts",
    summary="Payouts (finance view): state, attempts, errors",
    tag="payouts",
    response=PayoutPage,
    permission="compensation.pay",
    errors=(*AUTH_ERRORS, E.validation_failed),
    query={"state": "string", "asset_type": "string", "limit": "integer", "offset": "integer"},
)
async def payout_list(request: web.Request) -> web.Response:
    await principal(request, "compensation.pay")
    q = PayoutQuery.model_validate(dict(request.query))
    items, total = await request.app[COMPENSATION].payouts.search(
        state=q.state,
        asset_type=q.asset_type.value if q.asset_type else None,
        limit=q.limit,
        offset=q.offset,
    )
    return json_model(PayoutPage(items=items, total=total))


@api.route(
    "POST",
    "/api/v1/payouts/{payout_id}/retry",
    summary="Retry a failed payout (same payout id: still paid at most once)",
    tag="payouts",
    response=PayoutView,
    permission="compensation.pay",
    errors=(*AUTH_ERRORS, E.payout_not_found, E.invalid_state),
)
async def payout_retry(request: web.Request) -> web.Response:
    ctx = await _ctx(request, "compensation.pay")
    comp = request.app[COMPENSATION]
    row = await comp.payouts.retry(request.match_info["payout_id"])
    await comp.service.payout_requeued(row["compensation_id"], ctx)
    return json_model(await comp.payouts.get(row["id"]))


@api.route(
    "GET",
    "/api/v1/ledger/accounts/{owner}",
    summary="A customer's ledger balances and latest journal lines",
    tag="payouts",
    response=AccountOut,
    permission="compensation.pay",
    errors=AUTH_ERRORS,
)
async def ledger_account(request: web.Request) -> web.Response:
    await principal(request, "compensation.pay")
    ledger = request.app[COMPENSATION].ledger
    owner = request.match_info["owner"][:80]
    return json_model(
        AccountOut(balances=await ledger.balances(owner), journal=await ledger.journal(owner))
    )


@api.route(
    "GET",
    "/api/v1/ledger/reconciliation",
    summary="Reconcile the ledger: balanced transactions, balances = entries, none negative",
    tag="payouts",
    response=Reconciliation,
    permission="compensation.pay",
    errors=AUTH_ERRORS,
)
async def ledger_reconciliation(request: web.Request) -> web.Response:
    await principal(request, "compensation.pay")
    return json_model(await request.app[COMPENSATION].ledger.reconcile())


@api.route(
    "GET",
    "/api/v1/webhook-deliveries",
    summary="The delivery log of outbound webhooks and customer notifications",
    tag="payouts",
    response=DeliveryView,
    response_list=True,
    permission="compensation.pay",
    errors=AUTH_ERRORS,
    query={"subject_id": "string", "limit": "integer"},
)
async def delivery_log(request: web.Request) -> web.Response:
    await principal(request, "compensation.pay")
    q = DeliveryQuery.model_validate(dict(request.query))
    return json_model(await request.app[COMPENSATION].outbox.deliveries(q.subject_id, q.limit))


# --- the customer's widget ----------------------------------------------------------------


@api.route(
    "GET",
    "/api/v1/im/compensations",
    summary="The customer's compensation orders as the widget shows them (已到账 ...)",
    tag="compensation",
    response=CustomerNoticeView,
    response_list=True,
    auth=False,
    errors=(E.unauthenticated, E.not_found, E.validation_failed),
    query={"session_id": "string"},
)
async def widget_compensations(request: web.Request) -> web.Response:
    """``Authorization: Visitor <token>`` and ``session_id``, one of the visitor's chats."""
    if not request.query.get("session_id"):
        raise ContactdError(E.validation_failed, "session_id is required")
    _, customer_id = await visitor_of(request)
    notices = await request.app[COMPENSATION].service.for_customer(
        customer_id, request.query["session_id"]
    )
    return json_model(notices)
