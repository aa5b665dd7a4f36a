"""``/supervisor``: queue and agent snapshots pushed on change, at most once a second."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from contactd.auth.service import AuthService
from contactd.errors import ContactdError, ErrorCode
from contactd.metrics import Metrics
from contactd.realtime.gateway import Namespace, dump, refuse
from contactd.routing.service import RoutingEngine
from contactd.settings import Settings

ROOM = "supervisors"


class SupervisorNamespace(Namespace):
    def __init__(
        self, settings: Settings, metrics: Metrics, auth: AuthService, routing: RoutingEngine
    ) -> None:
        super().__init__("/supervisor", settings, metrics)
        self.auth = auth
        self.routing = routing
        self.dirty = asyncio.Event()

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
        await self.enter_room(sid, ROOM)
        await self.emit("snapshot", await self.snapshot(), to=sid)

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        self.forget(sid)

    def changed(self, event: BaseModel) -> None:
        self.dirty.set()

    async def snapshot(self) -> dict[str, Any]:
        queues = [dump(await self.routing.queue_snapshot(q.id)) for q in self.settings.queues]
        agents = [dump(a) for a in await self.routing.agents()]
        return {"queues": queues, "agents": agents}

    async def run(self) -> None:
        while True:
            await self.dirty.wait()
            self.dirty.clear()
            await self.emit("snapshot", await self.snapshot(), room=ROOM)
            await asyncio.sleep(1.0)
