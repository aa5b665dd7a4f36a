"""The one place that turns domain events into socket emits and decides who receives each
(a security boundary: customers only ever get their own session's events; agents only their
own offers and the sessions they hold)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import socketio
from pydantic import BaseModel

from contactd.channels.im import ChatService
from contactd.errors import ContactdError
from contactd.realtime.agent import agent_room
from contactd.realtime.customer import session_room
from contactd.realtime.fanout import FanOut
from contactd.realtime.gateway import dump
from contactd.realtime.supervisor import SupervisorNamespace, watch_room
from contactd.routing import events as rev
from contactd.routing.service import RoutingEngine
from contactd.sessions import events as sev
from contactd.sessions.models import session_of_contact

log = logging.getLogger(__name__)

_QUEUE_MOVES = (
    rev.ContactEnqueued,
    rev.OfferCreated,
    rev.ContactAbandoned,
    rev.ContactRequeued,
    rev.ContactOverflowed,
    rev.ContactFellBack,
    rev.ContactMoved,
    rev.OfferDeclined,
    rev.OfferExpired,
)
_AGENT_CHANGES = (
    rev.AgentStateChanged,
    rev.OfferCreated,
    rev.OfferAccepted,
    rev.OfferDeclined,
    rev.OfferExpired,
    rev.OfferRevoked,
    rev.ContactEnded,
    rev.WrapUpEnded,
    rev.AgentLoggedIn,
)


class SocketListeners:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        chat: ChatService,
        routing: RoutingEngine,
        supervisor: SupervisorNamespace,
    ) -> None:
        self.sio = sio
        self.fanout: FanOut = sio.manager
        self.chat = chat
        self.routing = routing
        self.supervisor = supervisor
        self._dirty_queues: set[str] = set()
        # queue → session → (position, estimated wait) last pushed to its customer
        self._told: dict[str, dict[str, tuple[int, int | None]]] = {}
        self._wake = asyncio.Event()

    async def on_event(self, event: BaseModel) -> None:
        match event:
            case sev.MessageCreated():
                await self._message(event)
            case sev.SessionChanged():
                await self._session(event)
            case sev.OfferPresented():
                await self.sio.emit(
                    "offer",
                    {
                        "offer_id": event.offer_id,
                        "deadline": event.deadline,
                        "session": dump(event.session.view()),
                        "screen_pop": event.screen_pop,
                    },
                    room=agent_room(event.agent_id),
                    namespace="/agent",
                )
            case sev.OfferWithdrawn():
                await self.sio.emit(
                    "offer.revoked",
                    {
                        "offer_id": event.offer_id,
                        "session_id": event.session_id,
                        "reason": event.reason,
                    },
                    room=agent_room(event.agent_id),
                    namespace="/agent",
                )
            case sev.ReplyOverdue():
                alert = {
                    "session_id": event.session_id,
                    "code": "reply_overdue",
                    "waiting_s": event.waiting_s,
                    "agent_id": event.agent_id,
                }
                await self.sio.emit(
                    "alert", alert, room=agent_room(event.agent_id), namespace="/agent"
                )
                await self.supervisor.alert(alert, event.agent_id)
            case sev.CustomerNotice():
                await self.sio.emit(
                    "notice",
                    {"session_id": event.session_id, "code": event.code, "text": event.text},
                    room=session_room(event.session_id),
                    namespace="/customer",
                )
            case _:
                pass
        if isinstance(event, _AGENT_CHANGES):
            await self._agent(event.agent_id)
        if isinstance(event, _QUEUE_MOVES):
            self._dirty_queues.add(event.queue_id)
            self._wake.set()
        if isinstance(event, (rev.ContactEnqueued, *_AGENT_CHANGES, *_QUEUE_MOVES)):
            self.supervisor.changed(event)

    async def _message(self, event: sev.MessageCreated) -> None:
        session_id = event.message.session_id
        targets = [("/customer", session_room(session_id))]
        if event.agent_id:
            targets.append(("/agent", agent_room(event.agent_id)))
        # supervisors who joined the chat (silently or visibly)
        targets.append(("/supervisor", watch_room(session_id)))
        # one encoding of the message for the three rooms
        await self.fanout.emit_to("message", {"message": dump(event.message)}, targets)

    async def _session(self, event: sev.SessionChanged) -> None:
        view = dump(await self.chat.view(event.session))
        await self.sio.emit(
            "session.updated",
            {"session": view},
            room=session_room(event.session.id),
            namespace="/customer",
        )
        agents = {event.session.agent_id, event.previous_agent_id} - {None}
        for agent_id in agents:
            await self.sio.emit(
                "session.updated",
                {"session": view},
                room=agent_room(str(agent_id)),
                namespace="/agent",
            )

    async def _agent(self, agent_id: str) -> None:
        with contextlib.suppress(ContactdError):
            agent = await self.routing.agent(agent_id)
            await self.sio.emit(
                "agent.updated",
                {"agent": dump(agent)},
                room=agent_room(agent_id),
                namespace="/agent",
            )

    async def push_positions(self) -> None:
        """Tell waiting customers their new place whenever their queue moved (batched)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            queues, self._dirty_queues = self._dirty_queues, set()
            for queue_id in queues:
                try:
                    await self._positions(queue_id)
                except Exception:
                    log.exception("position update for %s failed", queue_id)
            await asyncio.sleep(0.3)

    async def _positions(self, queue_id: str) -> None:
        queue = self.chat.settings.queue(queue_id)
        if queue is not None and queue.channel == "voice":
            return  # callers have no socket: the IVR's hold loop tells them (voice)
        ids = await self.routing.redis.zrange(self.routing.keys.waiting(queue_id), 0, 499)
        # only what changed: a newcomer at the back moves nobody, so nobody hears of it
        # (a reconnecting customer gets its place in the session it syncs)
        told, self._told[queue_id] = self._told.get(queue_id, {}), {}
        for pos, raw in enumerate(ids):
            contact_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            if not contact_id.startswith("S"):
                continue
            sid = session_of_contact(contact_id)
            wait = await self.chat.sessions.queue_wait_estimate(queue_id, pos)
            self._told[queue_id][sid] = (pos, wait)
            if told.get(sid) == (pos, wait):
                continue
            await self.sio.emit(
                "queue.position",
                {"session_id": sid, "position": pos, "estimated_wait_s": wait},
                room=session_room(sid),
                namespace="/customer",
            )
