"""The HTTP edge: error rendering, request metrics, body parsing, principals."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from contactd.auth.models import AuditContext, Principal
from contactd.errors import ContactdError, ErrorCode
from contactd.keys import AUTH, CHAT, METRICS, VISITORS
from contactd.metrics import child

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

_HTTP_CODES: dict[int, ErrorCode] = {
    400: ErrorCode.bad_request,
    401: ErrorCode.unauthenticated,
    403: ErrorCode.forbidden,
    404: ErrorCode.not_found,
    405: ErrorCode.method_not_allowed,
    413: ErrorCode.payload_too_large,
    415: ErrorCode.unsupported_media_type,
}


def error_response(status: int, code: str, message: str, **details: Any) -> web.Response:
    err: dict[str, Any] = {"code": code, "message": message}
    if details:
        err["details"] = details
    return web.json_response({"error": err}, status=status)


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "problem": e["msg"]}
        for e in exc.errors()
    ]


@web.middleware
async def edge_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every request: an error becomes its JSON answer (``error_answer``), and the request
    is counted and timed by route template. One middleware for both: each is a coroutine
    wrapped around every request."""
    start = time.perf_counter()
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:  # a redirect: aiohttp answers it
            _count(request, exc.status, start)
            raise
        response = error_answer(request, exc)
    except Exception as exc:
        response = error_answer(request, exc)
    except BaseException:  # cancelled (the client went away): counted as unanswered
        _count(request, 500, start)
        raise
    _count(request, response.status, start)
    return response


def error_answer(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The JSON answer to an error a handler raised."""
    match exc:
        case ContactdError():
            return web.json_response(exc.body(), status=exc.status)
        case ValidationError():
            return error_response(
                422,
                ErrorCode.validation_failed,
                "the request is not valid",
                problems=validation_details(exc),
            )
        case web.HTTPException():
            code = _HTTP_CODES.get(exc.status, ErrorCode.bad_request)
            return error_response(exc.status, code, exc.reason or code.value)
    log.exception("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return error_response(500, "internal", "internal error; it has been logged")


def _count(request: web.Request, status: int, start: float) -> None:
    route = request.match_info.route.resource
    template = route.canonical if route is not None else "unmatched"
    metrics = request.app[METRICS]
    child(metrics.http_requests, template, request.method, str(status)).inc()
    child(metrics.http_seconds, template).observe(time.perf_counter() - start)


async def read_body(request: web.Request, model: type[M]) -> M:
    """Parse a JSON body into ``model``: 415 for another type, 413 too big, 400 bad JSON,
    422 for fields that do not fit."""
    if request.content_type != "application/json":
        raise ContactdError(ErrorCode.unsupported_media_type, "send the body as application/json")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise ContactdError(ErrorCode.payload_too_large, "the body is too large") from exc
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ContactdError(ErrorCode.bad_request, f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ContactdError(ErrorCode.bad_request, "the body must be a JSON object")
    return model.model_validate(data)


def json_model(model: BaseModel | list[Any], status: int = 200) -> web.Response:
    if isinstance(model, list):
        text = "[" + ",".join(m.model_dump_json() for m in model) + "]"
    else:
        text = model.model_dump_json()
    return web.Response(text=text, status=status, content_type="application/json")


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ContactdError(
            ErrorCode.unauthenticated, "send Authorization: Bearer <token or API key>"
        )
    return token.strip()


async def principal(request: web.Request, permission: str | None = None) -> Principal:
    """The caller (staff token or API key); with ``permission``, refuse callers without it."""
    who = await request.app[AUTH].authenticate(bearer(request))
    if permission is not None and not who.can(permission):
        raise ContactdError(ErrorCode.forbidden, f"this needs the permission {permission!r}")
    return who


def audit_context(request: web.Request, who: Principal | None) -> AuditContext:
    return AuditContext(
        actor=who, ip=request.remote, request_id=request.headers.get("X-Request-Id")
    )


def paging(request: web.Request, default: int = 50, most: int = 500) -> tuple[int, int]:
    """``limit`` (1..``most``) and ``offset`` (>= 0) from the query string."""
    q = request.query
    try:
        limit = max(1, min(int(q.get("limit", str(default))), most))
        offset = max(0, int(q.get("offset", "0")))
    except ValueError as exc:
        raise ContactdError(
            ErrorCode.validation_failed, "limit and offset must be integers"
        ) from exc
    return limit, offset


def ms_param(value: str | None, field: str) -> int | None:
    """A query-string time: milliseconds since the epoch, or an ISO date/datetime."""
    if not value:
        return None
    try:
        if value.isdigit():
            return int(value)
        return int(datetime.fromisoformat(value).timestamp() * 1000)
    except ValueError as exc:
        raise ContactdError(ErrorCode.validation_failed, f"{field} must be a date or ms") from exc


def visitor_id(request: web.Request) -> str | None:
    """The verified visitor of ``Authorization: Visitor <token>``; None without that header
    (a bad or expired token raises)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Visitor "):
        return None
    return request.app[VISITORS].verify(header[8:].strip())


async def visitor_of(request: web.Request) -> tuple[str, str | None]:
    """The visitor and, through one of their sessions (``?session_id=``), their customer id;
    401 without a visitor token."""
    visitor = visitor_id(request)
    if visitor is None:
        raise ContactdError(
            ErrorCode.unauthenticated, "send Authorization: Visitor <visitor token>"
        )
    sid = request.query.get("session_id")
    if not sid:
        return visitor, None
    record = await request.app[CHAT].customer_session(visitor, sid)
    return visitor, record.customer_id


def period_params(
    request: web.Request, now_ms: int, default_ms: int = 86_400_000
) -> tuple[int, int]:
    """``since``/``until`` query values (ISO dates or ms): by default the last 24 hours."""
    until = ms_param(request.query.get("until"), "until") or now_ms
    since = ms_param(request.query.get("since"), "since") or until - default_ms
    return since, until
