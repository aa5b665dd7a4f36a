"""The generic IVR webhook (signed JSON; see docs/protocol.md "IVR webhooks") and the
callback requests callers left."""

from __future__ import annotations

import json

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from contactd import fastjson
from contactd.api.edge import (
    error_response,
    json_model,
    paging,
    period_params,
    principal,
    validation_details,
)
from contactd.api.registry import api
from contactd.channels.ivr.models import (
    Callback,
    CallSummary,
    Instruction,
    IvrAnswer,
    IvrEvent,
    IvrWebhook,
)
from contactd.channels.ivr.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from contactd.channels.ivr.store import StoredAnswer
from contactd.errors import ContactdError, ErrorCode
from contactd.keys import AUDIT, CLOCK, IVR, SETTINGS

E = ErrorCode
AUTH_ERRORS = (E.unauthenticated, E.token_expired, E.forbidden)
REPEATED_HEADER = "X-Contactd-Repeated"


def _json_answer(event: IvrEvent, instruction: Instruction) -> StoredAnswer:
    """An ``IvrAnswer``'s JSON, written around the instruction's own (building the answer
    model checks the instruction against the union of instructions again, per webhook)."""
    event_id, call_id = fastjson.dumps(event.id), fastjson.dumps(event.call_id)
    body = f'{{"event_id":{event_id},"call_id":{call_id},"instruction":'
    body += instruction.model_dump_json() + "}"
    return StoredAnswer(200, "application/json", body)


def _json_error(exc: ContactdError) -> StoredAnswer:
    return StoredAnswer(exc.status, "application/json", json.dumps(exc.body()))


def _respond(answer: StoredAnswer, repeated: bool) -> web.Response:
    resp = web.Response(text=answer.body, status=answer.status, content_type=answer.content_type)
    if repeated:
        resp.headers[REPEATED_HEADER] = "1"
    return resp


@api.route(
    "POST",
    "/ivr/v1/events",
    summary="An IVR event (signed); the answer is the next instruction for the call",
    tag="ivr",
    body=IvrWebhook,
    response=IvrAnswer,
    auth=False,
    errors=(
        E.signature_invalid,
        E.signature_stale,
        E.replayed,
        E.event_conflict,
        E.unknown_call,
        E.ivr_not_configured,
        E.payload_too_large,
    ),
    example={
        "id": "evt_0001",
        "type": "call.incoming",
        "call_id": "CA1f2e3d",
        "caller": "+8613812341234",
        "dialled": "4008001234",
        "ivr_path": "main",
    },
)
async def ivr_event(request: web.Request) -> web.Response:
    """Signed with HMAC-SHA256 over ``<X-Contactd-Timestamp>.<body>`` in
    ``X-Contactd-Signature: v1=<hex>``. A retried event (same ``id``) has one effect and gets
    the same answer (with ``X-Contactd-Repeated: 1``)."""
    ivr = request.app[IVR]
    cfg = request.app[SETTINGS].ivr
    if not cfg.secrets:
        raise ContactdError(E.ivr_not_configured, "set ivr.secrets to accept IVR webhooks")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise ContactdError(E.payload_too_large, "the body is too large") from exc
    nonce = verify(
        [s.get_secret_value() for s in cfg.secrets],
        request.headers.get(TIMESTAMP_HEADER),
        request.headers.get(SIGNATURE_HEADER),
        raw,
        request.app[CLOCK].now_ms(),
        cfg.tolerance_s,
    )
    if request.content_type != "application/json":
        raise ContactdError(E.unsupported_media_type, "send the body as application/json")
    try:
        event = IvrWebhook.model_validate_json(raw).root
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise ContactdError(E.bad_request, "the body is not valid JSON") from exc
        return error_response(
            422, E.validation_failed, "the event is not valid", problems=validation_details(exc)
        )
    answer, repeated = await ivr.deliver(
        event, _json_answer, _json_error, nonce=nonce, nonce_ttl_s=2 * cfg.tolerance_s
    )
    return _respond(answer, repeated)


class CallbackPage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Callback]


@api.route(
    "GET",
    "/api/v1/ivr/callbacks",
    summary="Callback requests (voicemails) callers left, newest first",
    tag="ivr",
    response=CallbackPage,
    permission="contacts.view",
    errors=(*AUTH_ERRORS, E.validation_failed),
    query={"state": "string", "limit": "integer", "offset": "integer"},
)
async def list_callbacks(request: web.Request) -> web.Response:
    await principal(request, "contacts.view")
    state = request.query.get("state") or None
    if state not in (None, "open", "done"):
        raise ContactdError(E.validation_failed, "state is open or done")
    limit, offset = paging(request)
    items = await request.app[IVR].service.repo.callbacks(state, limit, offset)
    return json_model(CallbackPage(items=items))


@api.route(
    "POST",
    "/api/v1/ivr/callbacks/{callback_id}/done",
    summary="Mark a callback request done (the customer was called back)",
    tag="ivr",
    response=Callback,
    permission="contacts.view",
    errors=(*AUTH_ERRORS, E.not_found),
)
async def callback_done(request: web.Request) -> web.Response:
    who = await principal(request, "contacts.view")
    raw_id = request.match_info["callback_id"]
    if not raw_id.isdigit():
        raise ContactdError(E.not_found, f"no callback request {raw_id}")
    repo = request.app[IVR].service.repo
    done = await repo.close_callback(int(raw_id))
    if done is None:
        raise ContactdError(E.not_found, f"no callback request {raw_id}")
    await request.app[AUDIT].record(
        who,
        "ivr.callback_done",
        "ivr_callback",
        raw_id,
        after={"state": done.state, "call_id": done.call_id},
        ip=request.remote,
        request_id=request.headers.get("X-Request-Id"),
    )
    return json_model(done)


@api.route(
    "GET",
    "/api/v1/ivr/summary",
    summary="Finished calls of a period by outcome, and the self-service rate",
    tag="ivr",
    response=CallSummary,
    permission="contacts.view",
    errors=(*AUTH_ERRORS, E.validation_failed),
    query={"since": "string", "until": "string"},
)
async def call_summary(request: web.Request) -> web.Response:
    """``since``/``until``: ISO dates or ms; the last 24 hours by default."""
    await principal(request, "contacts.view")
    now = request.app[CLOCK].now_ms()
    since, until = period_params(request, now)
    counts = await request.app[IVR].service.repo.outcomes(since, until)
    total = sum(counts.values())
    return json_model(
        CallSummary(
            since=since,
            until=until,
            calls=total,
            self_service=counts.get("self_service", 0),
            agent=counts.get("agent", 0),
            abandoned=counts.get("abandoned", 0),
            voicemail=counts.get("voicemail", 0),
            self_service_rate=round(counts.get("self_service", 0) / total, 4) if total else None,
        )
    )
