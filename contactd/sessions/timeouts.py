"""Chat timeouts: a customer who stays silent after the agent spoke gets a warning, then the
chat closes (end reason ``timeout``); a customer left waiting for a reply raises an alert to
the agent and supervisors. Leases in Redis (any node may act), armed by message events."""

from __future__ import annotations

import asyncio
import logging

from pydantic import BaseModel
from redis.asyncio import Redis

from contactd.bus import Bus
from contactd.clock import Clock
from contactd.errors import ContactdError
from contactd.routing.service import RoutingEngine
from contactd.sessions.events import MessageCreated, ReplyOverdue
from contactd.sessions.service import SessionService
from contactd.settings import Settings
from contactd.storage.keyspace import SiteKeys

log = logging.getLogger(__name__)


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

    async def on_event(self, event: BaseModel) -> None:
        if not isinstance(event, MessageCreated):
            return
        im, now, sid = self.settings.im, self.clock.now_ms(), event.message.session_id
        sender = event.message.sender.type
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(self.keys.idle_chats, f"{sid}|warn", f"{sid}|close")
            if sender == "agent":
                pipe.zrem(self.keys.reply_alerts, sid)
                if im.customer_idle_warn_s:
                    pipe.zadd(
                        self.keys.idle_chats,
                        {f"{sid}|warn": now + int(im.customer_idle_warn_s * 1000)},
                    )
            elif sender == "customer" and im.agent_response_alert_s and event.agent_id:
                pipe.zadd(
                    self.keys.reply_alerts,
                    {sid: now + int(im.agent_response_alert_s * 1000)},
                    nx=True,
                )
            await pipe.execute()

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

    async def run(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("chat timeout sweep failed")
