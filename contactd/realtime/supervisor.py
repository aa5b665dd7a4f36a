"""``/supervisor``: the live monitor feed, pushed on change (and at least every few
seconds), never more often than ``monitor.push_interval_s``.

Every supervisor is in the room of their role; each push sends each role room the part of
the snapshot that role may see (monitor.scopes). Rooms fan out through Redis, so a push
made by the node where something changed reaches supervisors on every node — as long as
some node has a supervisor connected (``cd:{s}:mon:watched``): a floor nobody watches pays
nothing for the snapshots."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

from pydantic import BaseModel

from contactd.auth.models import AuditContext, Principal
from contactd.auth.service import AuthService
from contactd.errors import ContactdError, ErrorCode
from contactd.metrics import Metrics
from contactd.monitor.join import JoinPayload, LeavePayload, SayPayload
from contactd.monitor.live import scoped
from contactd.monitor.scope import scope_of_role
from contactd.monitor.service import Monitor
from contactd.realtime.gateway import Ack, Event, Namespace, dump, ok, refuse
from contactd.routing.service import RoutingEngine
from contactd.settings import Settings

log = logging.getLogger(__name__)

ROOM = "supervisors"
_HEARTBEAT_S = 5.0  # waits grow without events: push at least this often
_WATCHED_TTL_S = 15  # a node with supervisors says so at least every heartbeat
_WATCHED_CHECK_S = 0.25  # how stale a node's "nobody watches" may be


def role_room(role: str | None) -> str:
    return f"{ROOM}:{role or '*'}"


def watch_room(session_id: str) -> str:
    return f"watch:{session_id}"


class SupervisorNamespace(Namespace):
    def __init__(
        self, settings: Settings, metrics: Metrics, auth: AuthService, routing: RoutingEngine
    ) -> None:
        super().__init__("/supervisor", settings, metrics)
        self.auth = auth
        self.routing = routing
        self.dirty = asyncio.Event()
        self.monitor: Monitor | None = None
        self._watched_key = routing.keys.monitor_watched
        self._announced = -math.inf  # when this node last said it has watchers
        self._seen: tuple[float, bool] = (-math.inf, False)  # last look at the key
        self.events = {
            "refresh": Event(None, self._refresh),
            "session.join": Event(JoinPayload, self._join),
            "session.leave": Event(LeavePayload, self._leave),
            "session.say": Event(SayPayload, self._say),
        }

    def attach(self, monitor: Monitor) -> None:
        self.monitor = monitor

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        token = (auth or {}).get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str):
            raise refuse(ErrorCode.unauthenticated, "connect with auth: {token}")
        try:
            who = await self.auth.authenticate(token)
        except ContactdError as exc:
            raise refuse(exc.code, exc.message) from exc
        if not who.can("monitor.view"):
            raise refuse(ErrorCode.forbidden, "this needs the permission 'monitor.view'")
        role = who.role if who.kind == "staff" else None
        ip = environ.get("REMOTE_ADDR") if isinstance(environ, dict) else None
        await self.save_session(sid, {"role": role, "who": who, "ip": ip, "joined": {}})
        await self.enter_room(sid, ROOM)
        await self.enter_room(sid, role_room(role))
        await self._announce(force=True)
        await self.emit("snapshot", await self.snapshot(role), to=sid)

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        self.forget(sid)

    def changed(self, event: BaseModel) -> None:
        self.dirty.set()

    def mark_dirty(self) -> None:
        self.dirty.set()

    async def _refresh(self, sid: str, _: Any) -> Ack:
        session = await self.get_session(sid)
        return ok(snapshot=await self.snapshot(session.get("role")))

    async def _ctx(self, sid: str) -> tuple[dict[str, Any], AuditContext]:
        state = await self.get_session(sid)
        who: Principal = state["who"]
        return state, AuditContext(actor=who, ip=state.get("ip"))

    def _watch(self) -> Any:
        if self.monitor is None:
            raise ContactdError(ErrorCode.unavailable, "the monitor is starting; try again")
        return self.monitor.watch

    async def _join(self, sid: str, req: JoinPayload) -> Ack:
        state, ctx = await self._ctx(sid)
        record, messages = await self._watch().join(ctx, req.session_id, req.mode)
        state["joined"][req.session_id] = req.mode
        await self.enter_room(sid, watch_room(req.session_id))
        return ok(session=dump(record), messages=[dump(m) for m in messages], mode=req.mode)

    async def _leave(self, sid: str, req: LeavePayload) -> Ack:
        state, ctx = await self._ctx(sid)
        mode = state["joined"].pop(req.session_id, None)
        if mode is None:
            raise ContactdError(ErrorCode.invalid_state, "you have not joined that session")
        await self.leave_room(sid, watch_room(req.session_id))
        await self._watch().leave(ctx, req.session_id, mode)
        return ok()

    async def _say(self, sid: str, req: SayPayload) -> Ack:
        state, ctx = await self._ctx(sid)
        if state["joined"].get(req.session_id) != "visible":
            raise ContactdError(ErrorCode.invalid_state, "join the session visibly to write")
        return ok(message=dump(await self._watch().say(ctx, req)))

    async def snapshot(self, role: str | None) -> dict[str, Any]:
        if self.monitor is None:  # not wired (a bare namespace in a test): routing only
            queues = [dump(await self.routing.queue_snapshot(q.id)) for q in self.settings.queues]
            return {"queues": queues, "agents": [dump(a) for a in await self.routing.agents()]}
        snap = await self.monitor.live.snapshot()
        return dump(scoped(snap, scope_of_role(self.settings, role)))

    def _roles(self) -> list[str | None]:
        """Every role room a supervisor can be in (None: API keys)."""
        return [r for r, p in self.settings.roles.items() if "monitor.view" in p] + [None]

    async def alert(self, alert: dict[str, Any], agent_id: str) -> None:
        """An alert about an agent's chat, to the supervisors whose scope has the agent."""
        for role in self._roles():
            if scope_of_role(self.settings, role).sees_agent(agent_id):
                await self.emit("alert", alert, room=role_room(role))

    async def push(self) -> None:
        if self.monitor is None:
            await self.emit("snapshot", await self.snapshot(None), room=ROOM)
            return
        snap = await self.monitor.live.snapshot()
        for role in self._roles():
            view = scoped(snap, scope_of_role(self.settings, role))
            await self.emit("snapshot", dump(view), room=role_room(role))

    def _local_watchers(self) -> bool:
        return bool(self.server.manager.rooms.get(self.namespace, {}).get(ROOM))

    async def _announce(self, force: bool = False) -> None:
        """Tell every node that this one has supervisors watching (at most every few
        seconds unless ``force``)."""
        now = time.monotonic()
        if force or now - self._announced >= _HEARTBEAT_S:
            self._announced = now
            await self.routing.redis.set(self._watched_key, b"1", ex=_WATCHED_TTL_S)

    async def watched(self) -> bool:
        """Whether a supervisor on any node watches: this node's rooms, else the shared key
        (looked at no more often than every ``_WATCHED_CHECK_S``)."""
        if self._local_watchers():
            await self._announce()
            return True
        now = time.monotonic()
        at, seen = self._seen
        if now - at >= _WATCHED_CHECK_S:
            seen = bool(await self.routing.redis.exists(self._watched_key))
            self._seen = (now, seen)
        return seen

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.dirty.wait(), _HEARTBEAT_S)
            except TimeoutError:
                if not self._local_watchers():
                    continue  # nobody watching on this node: nodes with changes push
            try:
                watched = await self.watched()
            except Exception:
                log.exception("supervisor feed: cannot tell whether anyone watches")
                watched = True
            if not watched:  # keep the change pending: it is pushed once someone watches
                await asyncio.sleep(_WATCHED_CHECK_S)
                continue
            self.dirty.clear()
            started = time.monotonic()
            try:
                await self.push()
            except Exception:
                log.exception("supervisor push failed")
            # never more than half the time pushing, however big the day gets
            spent = time.monotonic() - started
            await asyncio.sleep(max(self.settings.monitor.push_interval_s, spent))
