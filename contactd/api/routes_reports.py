"""Reports per queue and agent over any date range, as JSON or CSV."""

from __future__ import annotations

from aiohttp import web

from contactd.api.edge import json_model, principal
from contactd.api.registry import api
from contactd.errors import ErrorCode
from contactd.keys import MONITOR, SETTINGS
from contactd.monitor.reports import Report, agents_csv, parse_query, queues_csv
from contactd.monitor.scope import scope_of

E = ErrorCode
QUERY = {
    "from": "first local day, YYYY-MM-DD",
    "to": "last local day (inclusive), YYYY-MM-DD",
    "group": "hour | day | total (default day)",
    "format": "json | csv (default json)",
}


async def _report(request: web.Request) -> tuple[Report, str]:
    who = await principal(request, "reports.view")
    query = parse_query(dict(request.query))
    report = await request.app[MONITOR].reports.build(query, scope_of(request.app[SETTINGS], who))
    return report, query.format


def _csv(text: str, name: str, report: Report) -> web.Response:
    filename = f"{name}-{report.first.isoformat()}-{report.last.isoformat()}-{report.group}.csv"
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@api.route(
    "GET",
    "/api/v1/reports/queues",
    summary="Queue report (offered, answered, abandoned, SL, SL2, ASA, AHT, FRT, offers)",
    tag="reports",
    response=Report,
    permission="reports.view",
    query=QUERY,
    errors=(E.unauthenticated, E.token_expired, E.forbidden, E.validation_failed),
)
async def report_queues(request: web.Request) -> web.Response:
    report, fmt = await _report(request)
    if fmt == "csv":
        return _csv(queues_csv(report.queues), "queues", report)
    return json_model(report.model_copy(update={"agents": []}))


@api.route(
    "GET",
    "/api/v1/reports/agents",
    summary="Agent report (offers, handled, AHT, FRT, occupancy, time in state)",
    tag="reports",
    response=Report,
    permission="reports.view",
    query=QUERY,
    errors=(E.unauthenticated, E.token_expired, E.forbidden, E.validation_failed),
)
async def report_agents(request: web.Request) -> web.Response:
    report, fmt = await _report(request)
    if fmt == "csv":
        return _csv(agents_csv(report.agents), "agents", report)
    return json_model(report.model_copy(update={"queues": []}))
