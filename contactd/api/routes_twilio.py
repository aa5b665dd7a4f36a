"""Twilio-compatible voice webhooks: form posts signed with ``X-Twilio-Signature``,
answered with TwiML (see contactd/channels/ivr/twiml.py for the call flow)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping

from aiohttp import web
from twilio.request_validator import RequestValidator

from contactd.api.registry import Handler, api
from contactd.channels.ivr.models import (
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallIncoming,
    CallMenu,
    CallRecorded,
    CallWaiting,
    Instruction,
    IvrEvent,
)
from contactd.channels.ivr.selfservice import texts_for
from contactd.channels.ivr.store import StoredAnswer
from contactd.channels.ivr.twiml import Mode, error_twiml, to_twiml
from contactd.errors import ContactdError, ErrorCode
from contactd.keys import IVR, SETTINGS

E = ErrorCode
XML = "application/xml"
_ENDED = {"completed", "busy", "failed", "no-answer", "canceled"}
Params = Mapping[str, str]
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'
MakeEvent = Callable[[Params, str, web.Request], IvrEvent | None]


def _phone(value: str) -> str:
    return re.sub(r"[^0-9+*#]", "", value)[:32] or "0"


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


async def _handle(request: web.Request, make: MakeEvent, mode: Mode = "call") -> web.Response:
    settings = request.app[SETTINGS]
    token = settings.ivr.twilio_auth_token
    if token is None:
        raise ContactdError(E.ivr_not_configured, "set ivr.twilio_auth_token to accept Twilio")
    form = await request.post()
    params = {k: str(v) for k, v in form.items()}
    base = settings.ivr.public_url
    url = base.rstrip("/") + request.path_qs if base else str(request.url)
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not RequestValidator(token.get_secret_value()).validate(
        url, params, signature
    ):
        raise ContactdError(E.signature_invalid, "X-Twilio-Signature does not match")
    # Twilio repeats I-Twilio-Idempotency-Token on a retry; without it, the request itself
    source = request.headers.get("I-Twilio-Idempotency-Token") or (
        request.path_qs + "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    )
    event_id = "tw-" + hashlib.sha256(source.encode()).hexdigest()[:40]
    event = make(params, event_id, request)
    if event is None:  # a status we do not act on
        return web.Response(text=EMPTY_TWIML, content_type=XML)
    language = settings.ivr.language

    def render(_: IvrEvent, instruction: Instruction) -> StoredAnswer:
        return StoredAnswer(200, XML, to_twiml(instruction, mode))

    def render_error(exc: ContactdError) -> StoredAnswer:
        # the platform needs TwiML; the caller hears an apology rather than silence
        return StoredAnswer(200, XML, error_twiml(texts_for(language).unavailable, language))

    answer, _ = await request.app[IVR].deliver(event, render, render_error, source="twilio")
    return web.Response(text=answer.body, status=answer.status, content_type=answer.content_type)


_ERRORS = (E.signature_invalid, E.ivr_not_configured, E.validation_failed)


def _twilio(path: str, summary: str) -> Callable[[Handler], Handler]:
    return api.route(
        "POST", f"/ivr/twilio/{path}", summary=summary, tag="twilio", auth=False, errors=_ERRORS
    )


@_twilio("voice", "Twilio: incoming call (Voice URL)")
async def twilio_voice(request: web.Request) -> web.Response:
    def make(p: Params, eid: str, req: web.Request) -> IvrEvent:
        return CallIncoming(
            type="call.incoming",
            id=eid,
            call_id=p.get("CallSid", ""),
            caller=_phone(p.get("From", "")),
            dialled=_phone(p.get("To", "")),
            ivr_path=req.query.get("path") or None,
        )

    return await _handle(request, make)


@_twilio("gather", "Twilio: menu input (Gather action)")
async def twilio_gather(request: web.Request) -> web.Response:
    def make(p: Params, eid: str, req: web.Request) -> IvrEvent:
        return CallMenu(
            type="call.menu",
            id=eid,
            call_id=p.get("CallSid", ""),
            menu=req.query.get("menu", "main"),
            digits=p.get("Digits") or None,
            speech=p.get("SpeechResult") or None,
        )

    return await _handle(request, make)


@_twilio("wait", "Twilio: hold loop of a queued caller (Enqueue waitUrl)")
async def twilio_wait(request: web.Request) -> web.Response:
    def make(p: Params, eid: str, req: web.Request) -> IvrEvent:
        return CallWaiting(type="call.waiting", id=eid, call_id=p.get("CallSid", ""))

    return await _handle(request, make, "hold")


@_twilio("queue-result", "Twilio: the caller left the queue (Enqueue action)")
async def twilio_queue_result(request: web.Request) -> web.Response:
    def make(p: Params, eid: str, req: web.Request) -> IvrEvent:
        call_id = p.get("CallSid", "")
        if p.get("QueueResult") == "hangup":
            return CallAbandoned(type="call.abandoned", id=eid, call_id=call_id)
        return CallWaiting(type="call.waiting", id=eid, call_id=call_id)

    return await _handle(request, make)


@_twilio("answered", "Twilio: the agent picked up (Dial noun statusCallback)")
async def twilio_answered(request: web.Request) -> web.Response:
    def make(p: Params, eid: str, req: web.Request) -> IvrEvent:
        # the agent leg's callback names the caller's call as ParentCallSid
        call_id = p.get("ParentCallSid") or p.get("CallSid", "")
        return CallAnswered(type="call.answered", id=eid, call_id=call_id)

    return await _handle(request, make, "callback")


@_twilio("dial-result", "Twilio: the agent call is over (Dial action)")
async def twilio_dial_result(request: web.Request) -> web.Response:
    def make(p: Params, eid: str, req: web.Request) -> IvrEvent:
        duration = _int(p.get("DialCallDuration"))
        return CallEnded(
            type="call.ended", id=eid, call_id=p.get("CallSid", ""), duration_s=duration
        )

    return await _handle(request, make)


@_twilio("status", "Twilio: call status callback")
async def twilio_status(request: web.Request) -> web.Response:
    def make(p: Params, eid: str, req: web.Request) -> IvrEvent | None:
        if p.get("CallStatus") not in _ENDED:
            return None
        duration = _int(p.get("CallDuration"))
        return CallEnded(
            type="call.ended", id=eid, call_id=p.get("CallSid", ""), duration_s=duration
        )

    return await _handle(request, make, "callback")


@_twilio("recorded", "Twilio: a voicemail was recorded (Record action)")
async def twilio_recorded(request: web.Request) -> web.Response:
    def make(p: Params, eid: str, req: web.Request) -> IvrEvent:
        return CallRecorded(
            type="call.recorded",
            id=eid,
            call_id=p.get("CallSid", ""),
            recording_url=p.get("RecordingUrl") or None,
            duration_s=_int(p.get("RecordingDuration")),
        )

    return await _handle(request, make)
