"""Chat timeouts: a customer who stays silent after the agent spoke gets a warning, then the
chat closes (end reason ``timeout``); a customer left waiting for a reply raises an alert to
the agent and supervisors. Leases in Redis (any node may act), armed by message events:
the messages stored since the last arming are armed together, in order, with at most four
commands in one round trip of the auto-pipeline (however many arrived meanwhile)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pydantic import BaseModel
from redis.asyncio import Redis

from contactd.bus import Bus
from contactd.clock import Clock
from contactd.errors import ContactdError
from contactd.routing.service import RoutingEngine
from contactd.sessions.events import MessageCreated, ReplyOverdue
from contactd.sessions.service import SessionService
from contactd.settings import Settings
from contactd.storage.autopipe import auto_pipeline
from contactd.storage.keyspace import SiteKeys
from contactd.tasks import every

log = logging.getLogger(__name__)
_RETRY_S = 0.5


def _scored(members: dict[str, int]) -> list[Any]:
    """``ZADD``'s arguments for ``members`` (member → score): score, member, …"""
    return [x for member, score in members.items() for x in (score, member)]


class Seen(NamedTuple):
    session_id: str
    sender: str
    at: int
    agent_id: str | None


@dataclass
class Leases:
    seen: set[str] = field(default_factory=set)  # sessions: drop their idle warning/close
    answered: set[str] = field(default_factory=set)  # sessions: drop their reply alert
    warn_at: dict[str, int] = field(default_factory=dict)  # idle_chats members to set
    alert_at: dict[str, int] = field(default_factory=dict)  # reply_alerts to add (NX)

    @property
    def unidle(self) -> list[str]:
        return [f"{sid}|{stage}" for sid in self.seen for stage in ("warn", "close")]


def fold_leases(seen: list[Seen], settings: Settings) -> Leases:
    """What a run of messages, in order, leaves of each session's leases — the same as
    applying them one by one: every message cancels the idle warning/close; an agent's
    message answers the customer (no reply alert) and starts the idle warning; a customer's
    message to an agent starts a reply alert unless one is already running (NX)."""
    im = settings.im
    out = Leases()
    for sid, sender, at, agent_id in seen:
        out.seen.add(sid)
        out.warn_at.pop(f"{sid}|warn", None)
        if sender == "agent":
            out.answered.add(sid)
            out.alert_at.pop(sid, None)
            if im.customer_idle_warn_s:
                out.warn_at[f"{sid}|warn"] = at + int(im.customer_idle_warn_s * 1000)
        elif sender == "customer" and im.agent_response_alert_s and agent_id:
            out.alert_at.setdefault(sid, at + int(im.agent_response_alert_s * 1000))
    return out


class ChatTimeouts:
    def __init__(
        self,
        redis: Redis,
        keys: SiteKeys,
        clock: Clock,
        settings: Settings,
        sessions: SessionService,
        routing: RoutingEngine,
        bus: Bus,
    ) -> None:
        self.redis, self.keys, self.clock, self.settings = redis, keys, clock, settings
        self.sessions, self.routing, self.bus = sessions, routing, bus
        self._seen: list[Seen] = []
        self._arm = asyncio.Event()

    async def on_event(self, event: BaseModel) -> None:
        if isinstance(event, MessageCreated):
            m = event.message
            self._seen.append(
                Seen(m.session_id, m.sender.type, self.clock.now_ms(), event.agent_id)
            )
            self._arm.set()

    async def arm_pending(self) -> None:
        """Arm (and disarm) the leases for every message seen since the last call: at most
        four commands in one round trip, however many messages and sessions."""
        seen, self._seen = self._seen, []
        if not seen:
            return
        leases = fold_leases(seen, self.settings)
        keys = self.keys
        commands: list[tuple[Any, ...]] = [("ZREM", keys.idle_chats, *leases.unidle)]
        if leases.answered:
            commands.append(("ZREM", keys.reply_alerts, *leases.answered))
        if leases.warn_at:
            commands.append(("ZADD", keys.idle_chats, *_scored(leases.warn_at)))
        if leases.alert_at:
            commands.append(("ZADD", keys.reply_alerts, "NX", *_scored(leases.alert_at)))
        try:
            # through the auto-pipeline: no pipeline object, pool checkout and reply
            # callbacks per arming (half the client's CPU of redis-py's pipeline), and the
            # round trip is shared with whatever else is on its way to Redis
            await auto_pipeline(self.redis).many(commands)
        except Exception:
            self._seen[:0] = seen  # keep them, in order, for the next try
            raise

    async def _arm_forever(self) -> None:
        while True:
            await self._arm.wait()
            self._arm.clear()
            try:
                await self.arm_pending()
            except Exception:
                log.exception("arming chat timeouts failed; retrying")
                await asyncio.sleep(_RETRY_S)
                self._arm.set()

    async def sweep_once(self) -> int:
        now, acted = self.clock.now_ms(), 0
        for member in await self._due(self.keys.idle_chats, now):
            sid, _, stage = member.partition("|")
            acted += await self._idle(sid, stage)
        for sid in await self._due(self.keys.reply_alerts, now):
            acted += await self._overdue(sid, now)
        return acted

    async def _due(self, key: str, now: int) -> list[str]:
        out = []
        for raw in await self.redis.zrangebyscore(key, "-inf", now, start=0, num=100):
            member = raw.decode() if isinstance(raw, bytes) else str(raw)
            if await self.redis.zrem(key, member):  # this node owns it
                out.append(member)
        return out

    async def _idle(self, sid: str, stage: str) -> int:
        im = self.settings.im
        try:
            record = await self.sessions.get(sid)
        except ContactdError:
            return 0
        if record.state != "active":
            return 0
        if stage == "warn":
            await self.sessions.notify_customer(
                sid,
                "idle_warning",
                "您还在吗？长时间未回复，会话将自动结束 / Still there? "
                "This chat will close if we do not hear from you.",
            )
            left = max(im.customer_idle_close_s - im.customer_idle_warn_s, 1.0)
            await self.redis.zadd(
                self.keys.idle_chats, {f"{sid}|close": self.clock.now_ms() + int(left * 1000)}
            )
            return 1
        try:
            await self.routing.end(record.contact_id, agent_id=None, reason="timeout")
            log.info("chat %s closed: the customer stayed silent", sid)
        except ContactdError as exc:
            log.info("idle close of %s: %s", sid, exc.message)
        return 1

    async def _overdue(self, sid: str, now: int) -> int:
        try:
            record = await self.sessions.get(sid)
        except ContactdError:
            return 0
        if record.state != "active" or record.awaiting_reply_since is None or not record.agent_id:
            return 0
        waiting = (now - record.awaiting_reply_since) // 1000
        await self.bus.publish(
            [ReplyOverdue(session_id=sid, agent_id=record.agent_id, waiting_s=int(waiting))]
        )
        return 1

    async def _sweep_forever(self) -> None:
        await every(1.0, self.sweep_once, "chat timeout sweep")

    async def run(self) -> None:
        try:
            await asyncio.gather(self._arm_forever(), self._sweep_forever())
        finally:  # stopping: arm what was seen last
            with contextlib.suppress(Exception):
                await self.arm_pending()
