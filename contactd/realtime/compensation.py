"""Compensation events to sockets, and who receives each (beside listeners.py: the same
security boundary).

* ``/review`` (staff with ``compensation.view`` or ``.create``): every order change to
  viewers; "to review" to the roles reviewing its current level; the creator's own
  orders to the creator.
* ``/agent``: the creator's own orders (the agent workspace shows their progress).
* ``/customer``: only the customer-facing notice ("已到账"), only to the order's session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import socketio
from pydantic import BaseModel

from contactd.auth.service import AuthService
from contactd.bus import Bus
from contactd.cases.compensation_events import CompensationChanged, CustomerNotified
from contactd.cases.compensation_models import masked
from contactd.errors import ContactdError, ErrorCode
from contactd.metrics import Metrics
from contactd.realtime.agent import agent_room
from contactd.realtime.customer import session_room
from contactd.realtime.gateway import Namespace, dump, refuse
from contactd.settings import Settings

NAMESPACE = "/review"
VIEWERS = "viewers"


def staff_room(username: str) -> str:
    return f"staff:{username}"


def role_room(role: str) -> str:
    return f"role:{role}"


class ReviewNamespace(Namespace):
    def __init__(self, settings: Settings, metrics: Metrics, auth: AuthService) -> None:
        super().__init__(NAMESPACE, settings, metrics)
        self.auth = auth

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        token = (auth or {}).get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str):
            raise refuse(ErrorCode.unauthenticated, "connect with auth: {token}")
        try:
            who = await self.auth.authenticate(token)
        except ContactdError as exc:
            raise refuse(exc.code, exc.message) from exc
        if who.kind != "staff" or not (
            who.can("compensation.view") or who.can("compensation.create")
        ):
            raise refuse(ErrorCode.forbidden, "this needs the permission 'compensation.view'")
        await self.enter_room(sid, staff_room(who.name))
        if who.can("compensation.view"):
            await self.enter_room(sid, VIEWERS)
        if who.can("compensation.review") and who.role:
            await self.enter_room(sid, role_room(who.role))

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        self.forget(sid)


class CompensationListeners:
    EVENTS = (CompensationChanged, CustomerNotified)  # what on_event handles

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio

    async def on_event(self, event: BaseModel) -> None:
        match event:
            case CompensationChanged():
                await self._changed(event)
            case CustomerNotified():
                await self.sio.emit(
                    "compensation.updated",
                    {"session_id": event.session_id, "compensation": dump(event.notice)},
                    room=session_room(event.session_id),
                    namespace="/customer",
                )
            case _:
                pass

    async def _changed(self, event: CompensationChanged) -> None:
        # staff screens: the phone masked, as in every customer panel
        payload = {"topic": event.topic, "compensation": dump(masked(event.order, pii=False))}
        await self.sio.emit("compensation.updated", payload, room=VIEWERS, namespace=NAMESPACE)
        if event.creator_username:
            await self.sio.emit(
                "compensation.updated",
                payload,
                room=staff_room(event.creator_username),
                namespace=NAMESPACE,
            )
            await self.sio.emit(
                "compensation.updated",
                payload,
                room=agent_room(event.creator_username),
                namespace="/agent",
            )
        for role in event.reviewer_roles:
            await self.sio.emit(
                "compensation.to_review", payload, room=role_room(role), namespace=NAMESPACE
            )


def install(
    sio: socketio.AsyncServer, settings: Settings, metrics: Metrics, auth: AuthService, bus: Bus
) -> Callable[[], None]:
    """Register ``/review`` and the listeners; returns the unsubscribe."""
    sio.register_namespace(ReviewNamespace(settings, metrics, auth))
    return bus.subscribe(CompensationListeners(sio).on_event, *CompensationListeners.EVENTS)
