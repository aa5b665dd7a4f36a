"""Audit export for admins (``audit.view``): the filtered log as CSV, every entry with its
before/after snapshots. The export itself is audited. (Reading page by page as JSON is
``GET /api/v1/audit``.)"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from aiohttp import web

from contactd.api.edge import audit_context, principal
from contactd.api.registry import api
from contactd.api.routes_dashboard import time_param
from contactd.auth.models import AuditEntry
from contactd.errors import ContactdError, ErrorCode
from contactd.keys import AUDIT, CLOCK

E = ErrorCode
PAGE = 1000
MAX_ROWS = 200_000
COLUMNS = (
    "id",
    "at",
    "actor_type",
    "actor_id",
    "actor_name",
    "action",
    "target_type",
    "target_id",
    "before",
    "after",
    "ip",
    "request_id",
)


def _row(e: AuditEntry) -> list[str]:
    def js(value: object) -> str:
        return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)

    return [
        str(e.id),
        e.at.isoformat(),
        e.actor_type,
        e.actor_id or "",
        e.actor_name or "",
        e.action,
        e.target_type,
        e.target_id,
        js(e.before),
        js(e.after),
        e.ip or "",
        e.request_id or "",
    ]


@api.route(
    "GET",
    "/api/v1/audit/export",
    summary="Export the audit log as CSV (filters as for /api/v1/audit, plus a time range)",
    tag="admin",
    permission="audit.view",
    errors=(E.unauthenticated, E.token_expired, E.forbidden, E.validation_failed),
    query={
        "actor_id": "string",
        "target_type": "string",
        "target_id": "string",
        "action": "string",
        "since": "string",
        "until": "string",
    },
)
async def audit_export(request: web.Request) -> web.StreamResponse:
    """UTF-8 CSV with a BOM (so spreadsheet programs read Chinese right), newest first;
    ``since`` inclusive, ``until`` exclusive (ms or ISO 8601 with a timezone)."""
    who = await principal(request, "audit.view")
    q = request.query
    # a fixed end, so entries written while the export runs do not shift its pages
    until = time_param(request, "until", request.app[CLOCK].now_ms() + 1)
    since = time_param(request, "since", 0)
    if since >= until:
        raise ContactdError(E.validation_failed, "since must be before until")
    log = request.app[AUDIT]
    equal = {k: q[k] for k in ("actor_id", "target_type", "target_id", "action") if q.get(k)}
    ctx = audit_context(request, who)
    await log.record(
        who,
        "audit.exported",
        "audit",
        "export",
        after={**equal, "since": since, "until": until},
        ip=ctx.ip,
        request_id=ctx.request_id,
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="audit-{stamp}.csv"',
        }
    )
    await response.prepare(request)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    await response.write(("\ufeff" + buf.getvalue()).encode())
    offset = 0
    while offset < MAX_ROWS:
        entries = await log.query(
            actor_id=equal.get("actor_id"),
            target_type=equal.get("target_type"),
            target_id=equal.get("target_id"),
            action=equal.get("action"),
            since=datetime.fromtimestamp(since / 1000, tz=UTC),
            until=datetime.fromtimestamp(until / 1000, tz=UTC),
            limit=PAGE,
            offset=offset,
        )
        if not entries:
            break
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerows(_row(e) for e in entries)
        await response.write(buf.getvalue().encode())
        offset += len(entries)
    await response.write_eof()
    return response
