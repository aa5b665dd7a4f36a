"""The sweeper: expires leases (offers, wrap-ups, heartbeats, designated waits, max waits,
decline exclusions) and forgets old final contacts. It never dispatches on a timer: every
lease it expires runs the same script an agent or customer action would, and that script
dispatches. Several nodes may sweep at once; the scripts re-check each deadline, so a lease
is acted on once. Every action is logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from contactd.errors import ContactdError
from contactd.routing.service import RoutingEngine

log = logging.getLogger(__name__)

_BATCH = 200
_PURGE_EVERY_S = 30.0


class Sweeper:
    def __init__(self, engine: RoutingEngine, interval_s: float) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self._last_purge_ms = 0
        k = engine.keys
        self._leases: list[tuple[str, str, Callable[[str], Awaitable[object]]]] = [
            # lost agents first, so that no expiring offer is handed to a dead agent
            ("heartbeat", k.heartbeats, self._expire_heartbeat),
            ("offer", k.offers, self._expire_offer),
            ("wrap-up", k.wraps, self._expire_wrap),
            ("designated wait", k.fallbacks, self._fallback),
            ("max wait", k.maxwait, self._overflow),
            ("decline exclusion", k.reoffer, self._reoffer),
        ]

    async def _expire_offer(self, cid: str) -> object:
        view = await self.engine.expire_offer(cid)
        if view is not None and view.offers:
            log.info("offer on contact %s expired; contact is %s", cid, view.state)
        return view

    async def _expire_wrap(self, cid: str) -> object:
        done = await self.engine.complete_wrap(cid, expired=True)
        if done:
            log.info("wrap-up after contact %s ended; slot freed", cid)
        return done

    async def _expire_heartbeat(self, agent_id: str) -> object:
        lost = await self.engine.agent_lost(agent_id, "heartbeat_expired", expired=True)
        if lost:
            log.warning("agent %s lost (heartbeat expired); their contacts were requeued", agent_id)
        return lost

    async def _fallback(self, cid: str) -> object:
        fell = await self.engine.fallback(cid)
        if fell:
            log.info("contact %s stopped waiting for its designated agent", cid)
        return fell

    async def _overflow(self, cid: str) -> object:
        moved = await self.engine.overflow(cid)
        if moved:
            log.info("contact %s reached max wait; moved to %s", cid, moved)
        return moved

    async def _reoffer(self, cid: str) -> object:
        return await self.engine.reoffer(cid)

    async def sweep_once(self) -> dict[str, int]:
        """Act on every lease due now; returns how many entries of each kind were handled."""
        now = self.engine.clock.now_ms()
        done: dict[str, int] = {}
        redis = self.engine.redis
        for kind, key, handler in self._leases:
            ids = await redis.zrangebyscore(key, "-inf", now, start=0, num=_BATCH)
            for raw in ids:
                member = raw.decode() if isinstance(raw, bytes) else str(raw)
                try:
                    await handler(member)
                except ContactdError as exc:
                    log.warning("sweeping %s %s: %s", kind, member, exc.message)
                    await redis.zrem(key, member)
            if ids:
                done[kind] = len(ids)
        if now - self._last_purge_ms >= _PURGE_EVERY_S * 1000:
            self._last_purge_ms = now
            retention = int(self.engine.settings.routing.final_retention_s * 1000)
            purged = await self.engine.purge_finals(now - retention)
            if purged:
                done["purged"] = purged
        return done

    async def run(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sweep failed; retrying")
            await asyncio.sleep(self.interval_s)
