"""REST of the case dashboard (``dashboard.view``)."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from contactd.api.edge import json_model, principal
from contactd.api.registry import api
from contactd.cases.dashboard import DAY_MS, Bucket, Dashboard, DashboardService
from contactd.errors import ContactdError, ErrorCode
from contactd.keys import CLOCK, DB, SETTINGS

E = ErrorCode
MAX_WINDOW_DAYS = 366
LATEST_MS = 4_102_444_800_000  # 2100-01-01


def time_param(request: web.Request, name: str, default: int) -> int:
    """``name`` as ms since the epoch or an ISO 8601 time with a timezone."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if raw.isascii() and raw.isdigit():
        ms = int(raw)
    else:
        try:
            value = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise ContactdError(E.validation_failed, f"{name} is not a time: {raw!r}") from exc
        if value.tzinfo is None:
            raise ContactdError(E.validation_failed, f"{name} needs a timezone, e.g. +08:00")
        ms = int(value.timestamp() * 1000)
    if not 0 <= ms <= LATEST_MS:
        raise ContactdError(E.validation_failed, f"{name} is out of range")
    return ms


@api.route(
    "GET",
    "/api/v1/dashboard/cases",
    summary="Case dashboard: counts, amounts, timings, repeat purchase, customer breakdown",
    tag="dashboard",
    response=Dashboard,
    permission="dashboard.view",
    errors=(E.unauthenticated, E.token_expired, E.forbidden, E.validation_failed),
    query={"since": "string", "until": "string", "bucket": "string"},
)
async def dashboard_cases(request: web.Request) -> web.Response:
    """``since`` / ``until``: ms or ISO 8601 (default: the last 30 days); ``bucket``:
    ``day`` (default) or ``hour``."""
    await principal(request, "dashboard.view")
    service = DashboardService(request.app[DB], request.app[CLOCK], request.app[SETTINGS].timezone)
    since_default, until_default = service.default_window()
    until = time_param(request, "until", until_default)
    since = time_param(request, "since", min(since_default, until - DAY_MS))
    if since >= until:
        raise ContactdError(E.validation_failed, "since must be before until")
    if until - since > MAX_WINDOW_DAYS * DAY_MS:
        raise ContactdError(E.validation_failed, f"at most {MAX_WINDOW_DAYS} days at a time")
    raw_bucket = request.query.get("bucket", "day")
    if raw_bucket not in ("day", "hour"):
        raise ContactdError(E.validation_failed, "bucket is day or hour")
    bucket: Bucket = "day" if raw_bucket == "day" else "hour"
    if bucket == "hour" and until - since > 31 * DAY_MS:
        raise ContactdError(E.validation_failed, "hourly buckets for at most 31 days")
    return json_model(await service.build(since, until, bucket))
