"""Who is connected to this node, and what happens when they drop.

Agents: while at least one of an agent's sockets is on this node, the node keeps their
routing heartbeat alive; when the last one drops, the lease is cut to the disconnect grace
period — if they do not come back (to any node) the sweeper loses them and their chats go
back to the head of their queues.

Customers: a waiting customer who drops keeps their place for ``im.customer_grace_s``;
then the contact is cancelled (abandoned). A lease in Redis, so any node can act on it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from redis.asyncio import Redis

from contactd.clock import Clock
from contactd.errors import ContactdError
from contactd.routing.service import RoutingEngine
from contactd.sessions.service import SessionService
from contactd.settings import Settings
from contactd.storage.keyspace import SiteKeys
from contactd.tasks import every

log = logging.getLogger(__name__)


class AgentPresence:
    def __init__(self, routing: RoutingEngine, settings: Settings) -> None:
        self.routing = routing
        self.settings = settings
        self.sockets: dict[str, set[str]] = defaultdict(set)

    async def _beat(self, agent_id: str, ttl_s: float | None = None) -> None:
        # not signed in to routing (or offline): nothing to keep alive
        with contextlib.suppress(ContactdError):
            await self.routing.heartbeat(agent_id, ttl_s)

    async def connected(self, agent_id: str, sid: str) -> None:
        self.sockets[agent_id].add(sid)
        await self._beat(agent_id)

    async def disconnected(self, agent_id: str, sid: str) -> None:
        sids = self.sockets.get(agent_id)
        if sids is None:
            return
        sids.discard(sid)
        if not sids:
            del self.sockets[agent_id]
            await self._beat(agent_id, self.settings.routing.disconnect_grace_s)
            log.info(
                "agent %s disconnected; %ss to come back",
                agent_id,
                self.settings.routing.disconnect_grace_s,
            )

    async def run(self) -> None:
        period = self.settings.routing.heartbeat_ttl_s / 3
        while True:
            await asyncio.sleep(period)
            for agent_id in list(self.sockets):
                await self._beat(agent_id)


class CustomerPresence:
    def __init__(
        self,
        redis: Redis,
        keys: SiteKeys,
        clock: Clock,
        settings: Settings,
        routing: RoutingEngine,
        sessions: SessionService,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.settings = settings
        self.routing = routing
        self.sessions = sessions

    async def gone(self, session_id: str) -> None:
        deadline = self.clock.now_ms() + int(self.settings.im.customer_grace_s * 1000)
        await self.redis.zadd(self.keys.customer_grace, {session_id: deadline})

    async def back(self, session_id: str) -> None:
        await self.redis.zrem(self.keys.customer_grace, session_id)

    async def sweep_once(self) -> int:
        key = self.keys.customer_grace
        due = await self.redis.zrangebyscore(key, "-inf", self.clock.now_ms(), start=0, num=100)
        n = 0
        for raw in due:
            sid = raw.decode() if isinstance(raw, bytes) else str(raw)
            if not await self.redis.zrem(key, sid):
                continue  # another node took it, or the customer came back
            try:
                record = await self.sessions.get(sid)
                if record.state in ("queued", "offered"):
                    await self.routing.cancel(record.contact_id, "customer_left")
                    log.info("customer of %s did not come back; left the queue", sid)
                    n += 1
            except ContactdError as exc:
                log.warning("customer grace for %s: %s", sid, exc.message)
        return n

    async def run(self) -> None:
        await every(1.0, self.sweep_once, "customer presence sweep")
