"""The live view: routing state now (Redis) plus the windowed metrics (persisted events,
through the same definitions as the reports), cut down to what a supervisor may see."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.clock import Clock
from contactd.monitor.definitions import AgentStats, QueueStats, Window, compute, rules_of
from contactd.monitor.scope import Scope, team_of
from contactd.monitor.store import LOOKBACK_MS, EventCache, MonitorRepository
from contactd.monitor.windows import LIVE_WINDOWS, LiveWindow, live_windows
from contactd.routing.models import AgentView
from contactd.routing.service import RoutingEngine
from contactd.settings import Settings
from contactd.storage.tables import service_sessions

_WAITING_LIST = 100


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WaitingItem(_Model):
    contact_id: str
    session_id: str | None
    queue_id: str
    position: int
    priority: int
    waited_ms: int
    entry_point: str | None
    target_agent_id: str | None
    customer_name: str | None = None


class QueueLive(_Model):
    queue_id: str
    name: str
    channel: str
    waiting: int
    longest_wait_ms: int
    eligible_agents: int
    waiting_list: list[WaitingItem]
    stats: dict[LiveWindow, QueueStats]
    alerts: list[str]


class AgentLive(_Model):
    agent_id: str
    team: str | None
    state: str
    reason: str
    since: int
    time_in_state_ms: int
    draining: bool
    queues: list[str]
    capacity: dict[str, int]
    offered: int
    active: int
    wrap: int
    stats: dict[LiveWindow, AgentStats]


class SessionLive(_Model):
    contact_id: str
    session_id: str | None
    queue_id: str
    agent_id: str
    channel: str
    customer_name: str | None
    entry_point: str | None
    accepted_at: int | None


class MonitorSnapshot(_Model):
    at: int
    windows: dict[LiveWindow, tuple[int, int]]
    queues: list[QueueLive]
    agents: list[AgentLive]
    sessions: list[SessionLive]


class LiveMonitor:
    def __init__(
        self, settings: Settings, clock: Clock, routing: RoutingEngine, db: AsyncEngine
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.routing = routing
        self.db = db
        self.tz = ZoneInfo(settings.timezone)
        self.rules = rules_of(settings)
        self.cache = EventCache(MonitorRepository(db))

    async def stats(self, now: int) -> tuple[dict[LiveWindow, Window], dict[LiveWindow, Any]]:
        windows = live_windows(now, self.tz)
        since = windows["today"].start - LOOKBACK_MS  # fixed for the day: the cache tops up
        rows = list(await self.cache.rows(since, now))
        rows += await self.cache.repo.first_responses(windows["today"].start, now + 1)
        out = compute(rows, [windows[name] for name in LIVE_WINDOWS], self.rules, now)
        return windows, dict(zip(LIVE_WINDOWS, out, strict=True))

    async def snapshot(self) -> MonitorSnapshot:
        now = self.clock.now_ms()
        windows, stats = await self.stats(now)
        agents = await self.routing.agents()
        queues_raw = [
            await self.routing.queue_snapshot(q.id, head=_WAITING_LIST)
            for q in self.settings.queues
        ]
        active = [(a, s) for a in agents for s in a.slots if s.state == "active"]
        info = await self._sessions(
            [w.contact_id for q in queues_raw for w in q.head] + [s.contact_id for _, s in active]
        )
        queues = []
        for q in queues_raw:
            waiting_list = [
                WaitingItem(
                    contact_id=w.contact_id,
                    session_id=info.get(w.contact_id, {}).get("id"),
                    queue_id=q.queue_id,
                    position=w.position,
                    priority=w.priority,
                    waited_ms=w.waited_ms,
                    entry_point=w.entry_point or info.get(w.contact_id, {}).get("entry_point"),
                    target_agent_id=w.target_agent_id,
                    customer_name=info.get(w.contact_id, {}).get("customer_name"),
                )
                for w in q.head
            ]
            qstats = {n: stats[n].queues.get(q.queue_id, QueueStats()) for n in LIVE_WINDOWS}
            queues.append(
                QueueLive(
                    queue_id=q.queue_id,
                    name=q.name,
                    channel=q.channel,
                    waiting=q.waiting,
                    longest_wait_ms=q.longest_wait_ms,
                    eligible_agents=q.eligible_agents,
                    waiting_list=waiting_list,
                    stats=qstats,
                    alerts=self._alerts(q.queue_id, q.longest_wait_ms, qstats["15m"]),
                )
            )
        return MonitorSnapshot(
            at=now,
            windows={n: (w.start, w.end) for n, w in windows.items()},
            queues=queues,
            agents=[self._agent(a, now, stats) for a in sorted(agents, key=lambda a: a.agent_id)],
            sessions=[
                SessionLive(
                    contact_id=s.contact_id,
                    session_id=info.get(s.contact_id, {}).get("id"),
                    queue_id=s.queue_id,
                    agent_id=a.agent_id,
                    channel=s.channel,
                    customer_name=info.get(s.contact_id, {}).get("customer_name"),
                    entry_point=info.get(s.contact_id, {}).get("entry_point"),
                    accepted_at=info.get(s.contact_id, {}).get("accepted_at"),
                )
                for a, s in active
            ],
        )

    def _agent(self, a: AgentView, now: int, stats: dict[LiveWindow, Any]) -> AgentLive:
        counts = {
            st: sum(1 for s in a.slots if s.state == st) for st in ("offered", "active", "wrap")
        }
        return AgentLive(
            agent_id=a.agent_id,
            team=team_of(self.settings, a.agent_id),
            state=a.state,
            reason=a.reason,
            since=a.since,
            time_in_state_ms=max(0, now - a.since),
            draining=a.draining,
            queues=list(a.queues),
            capacity=dict(a.capacity),
            **counts,
            stats={n: stats[n].agents.get(a.agent_id, AgentStats()) for n in LIVE_WINDOWS},
        )

    def _alerts(self, queue_id: str, longest_ms: int, recent: QueueStats) -> list[str]:
        line = self.settings.monitor.alert_for(queue_id)
        alerts = []
        if longest_ms > line.longest_wait_s * 1000:
            alerts.append("longest_wait")
        if recent.service_level is not None and recent.service_level < line.service_level:
            alerts.append("service_level")
        return alerts

    async def _sessions(self, contact_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not contact_ids:
            return {}
        s = service_sessions
        async with self.db.connect() as conn:
            res = await conn.execute(
                sa.select(
                    s.c.id, s.c.contact_id, s.c.customer_name, s.c.entry_point, s.c.accepted_at
                ).where(s.c.contact_id.in_(contact_ids))
            )
            return {r.contact_id: dict(r._mapping) for r in res}


def scoped(snap: MonitorSnapshot, scope: Scope) -> MonitorSnapshot:
    """What one supervisor may see of the snapshot."""
    if scope.queues is None and scope.agents is None:
        return snap
    return snap.model_copy(
        update={
            "queues": [q for q in snap.queues if scope.sees_queue(q.queue_id)],
            "agents": [a for a in snap.agents if scope.sees_agent(a.agent_id)],
            "sessions": [
                s
                for s in snap.sessions
                if scope.sees_queue(s.queue_id) and scope.sees_agent(s.agent_id)
            ],
        }
    )
