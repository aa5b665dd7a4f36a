"""Reports per queue and per agent, by hour, day or the whole range, over any dates (in the
configured timezone); computed from persisted events with the live view's definitions."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contactd.clock import Clock
from contactd.errors import ContactdError, ErrorCode
from contactd.monitor.definitions import AGENT_STATES, AgentStats, QueueStats, compute, rules_of
from contactd.monitor.scope import Scope
from contactd.monitor.store import MonitorRepository
from contactd.monitor.windows import Grouping, label, report_buckets
from contactd.settings import Settings

MAX_DAYS = 366
MAX_HOUR_DAYS = 31


class ReportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    first: date = Field(alias="from")
    last: date = Field(alias="to")
    group: Grouping = "day"
    format: Literal["json", "csv"] = "json"

    @model_validator(mode="after")
    def _range(self) -> ReportQuery:
        days = (self.last - self.first).days + 1
        if days < 1:
            raise ValueError("'to' must not be before 'from'")
        if days > MAX_DAYS:
            raise ValueError(f"at most {MAX_DAYS} days per report")
        if self.group == "hour" and days > MAX_HOUR_DAYS:
            raise ValueError(f"hourly reports cover at most {MAX_HOUR_DAYS} days")
        return self


class QueueReportRow(QueueStats):
    period: str
    start: int
    queue_id: str


class AgentReportRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    period: str
    start: int
    agent_id: str
    stats: AgentStats


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    first: date
    last: date
    group: Grouping
    timezone: str
    queues: list[QueueReportRow]
    agents: list[AgentReportRow]


class Reports:
    def __init__(self, settings: Settings, clock: Clock, repo: MonitorRepository) -> None:
        self.settings = settings
        self.clock = clock
        self.repo = repo
        self.tz = ZoneInfo(settings.timezone)

    async def build(self, q: ReportQuery, scope: Scope) -> Report:
        buckets = report_buckets(q.first, q.last, self.tz, q.group)
        rows = await self.repo.rows(buckets[0].start, buckets[-1].end)
        out = compute(rows, buckets, rules_of(self.settings), self.clock.now_ms())
        queues, agents = [], []
        for b in out:
            period = label(b.start, self.tz, q.group)
            if q.group == "total":
                period = f"{q.first.isoformat()}..{q.last.isoformat()}"
            for qc in self.settings.queues:
                if scope.sees_queue(qc.id):
                    stats = b.queues.get(qc.id, QueueStats())
                    queues.append(
                        QueueReportRow(
                            period=period, start=b.start, queue_id=qc.id, **stats.model_dump()
                        )
                    )
            for aid, st in b.agents.items():
                if scope.sees_agent(aid):
                    agents.append(
                        AgentReportRow(period=period, start=b.start, agent_id=aid, stats=st)
                    )
        return Report(
            first=q.first,
            last=q.last,
            group=q.group,
            timezone=self.settings.timezone,
            queues=queues,
            agents=agents,
        )


def parse_query(params: dict[str, str]) -> ReportQuery:
    try:
        return ReportQuery.model_validate(params)
    except ValueError as exc:
        raise ContactdError(ErrorCode.validation_failed, f"bad report query: {exc}") from exc


def queues_csv(rows: list[QueueReportRow]) -> str:
    cols = list(QueueReportRow.model_fields)
    order = ["period", "queue_id", *[c for c in cols if c not in ("period", "queue_id", "start")]]
    return _csv(order, [r.model_dump() for r in rows])


def agents_csv(rows: list[AgentReportRow]) -> str:
    stat_cols = [c for c in AgentStats.model_fields if c != "time_in_state_ms"]
    order = ["period", "agent_id", *stat_cols, *[f"{s}_ms" for s in AGENT_STATES]]
    flat = []
    for r in rows:
        d: dict[str, Any] = {"period": r.period, "agent_id": r.agent_id, **r.stats.model_dump()}
        for s in AGENT_STATES:
            d[f"{s}_ms"] = r.stats.time_in_state_ms.get(s, 0)
        flat.append(d)
    return _csv(order, flat)


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if r.get(c) is None else _cell(r.get(c)) for c in columns])
    return buf.getvalue()


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    text = str(v)
    # a spreadsheet would run a cell starting like a formula
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _number(text) else text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
