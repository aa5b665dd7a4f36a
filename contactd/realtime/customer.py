"""``/customer``: the chat widget (see docs/protocol.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contactd.auth.visitors import Identity, VisitorAuth
from contactd.channels.im import ChatService, SendMessage, StartChat
from contactd.errors import ContactdError, ErrorCode
from contactd.metrics import Metrics
from contactd.realtime.gateway import Ack, Event, Namespace, dump, ok, refuse
from contactd.realtime.presence import CustomerPresence
from contactd.settings import Settings


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionRef(_In):
    session_id: str = Field(max_length=32)


class Typing(_In):
    session_id: str = Field(max_length=32)
    on: bool


class Sync(_In):
    session_id: str = Field(max_length=32)
    after_seq: int = Field(default=0, ge=0)


class Rating(_In):
    session_id: str = Field(max_length=32)
    score: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=1000)


class ConnectAuth(_In):
    visitor_token: str | None = Field(default=None, max_length=200)
    identity: Identity | None = None


def session_room(session_id: str) -> str:
    return f"session:{session_id}"


class CustomerNamespace(Namespace):
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        chat: ChatService,
        visitors: VisitorAuth,
        presence: CustomerPresence,
    ) -> None:
        super().__init__("/customer", settings, metrics)
        self.chat = chat
        self.visitors = visitors
        self.presence = presence
        self.events = {
            "chat.start": Event(StartChat, self.start),
            "message.send": Event(SendMessage, self.send),
            "typing": Event(Typing, self.typing),
            "sync": Event(Sync, self.sync),
            "chat.end": Event(SessionRef, self.end),
            "rating.submit": Event(Rating, self.rate),
        }

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        try:
            creds = ConnectAuth.model_validate(auth or {})
        except ValidationError as exc:
            raise refuse(ErrorCode.unauthenticated, "bad connect auth") from exc
        identity, issued = None, False
        try:
            if creds.identity is not None:
                identity = self.visitors.verify_identity(creds.identity)
                visitor_id = self.visitors.visitor_of_customer(identity.customer_id)
                token = self.visitors.token_for(visitor_id)
            elif creds.visitor_token:
                visitor_id = self.visitors.verify(creds.visitor_token)
                token = creds.visitor_token
            else:
                visitor_id, token = self.visitors.issue()
                issued = True
        except ContactdError as exc:
            raise refuse(exc.code, exc.message) from exc
        await self.save_session(sid, {"visitor": visitor_id, "identity": identity})
        self.metrics.socket_connections.labels("/customer").inc()
        await self.enter_room(sid, f"visitor:{visitor_id}")
        # a visitor id issued just now cannot have a session yet: no look-up
        record = None if issued else await self.chat.sessions.open_for_visitor(visitor_id)
        session = None
        if record is not None:
            await self.enter_room(sid, session_room(record.id))
            await self.presence.back(record.id)
            session = dump(await self.chat.view(record))
        customer = {"id": identity.customer_id, "name": identity.name} if identity else None
        await self.emit(
            "hello",
            {
                "visitor_token": token,
                "visitor_id": visitor_id,
                "customer": customer,
                "session": session,
            },
            to=sid,
        )

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        self.forget(sid)
        self.metrics.socket_connections.labels("/customer").dec()
        state = await self.get_session(sid)
        record = await self.chat.sessions.open_for_visitor(state["visitor"])
        if record is not None and record.state in ("queued", "offered"):
            await self.presence.gone(record.id)

    async def _visitor(self, sid: str) -> tuple[str, Identity | None]:
        state = await self.get_session(sid)
        return state["visitor"], state["identity"]

    async def start(self, sid: str, req: StartChat) -> Ack:
        visitor, identity = await self._visitor(sid)

        async def join(session_id: str) -> None:
            await self.enter_room(sid, session_room(session_id))

        record = await self.chat.start(visitor, identity, req, on_open=join)
        await self.enter_room(sid, session_room(record.id))  # an already open session
        return ok(session=dump(await self.chat.view(record)))

    async def send(self, sid: str, req: SendMessage) -> Ack:
        visitor, _ = await self._visitor(sid)
        msg = await self.chat.customer_send(visitor, req)
        return ok(message=dump(msg))

    async def typing(self, sid: str, req: Typing) -> Ack:
        visitor, _ = await self._visitor(sid)
        record = await self.chat.customer_session(visitor, req.session_id)
        if record.agent_id:
            await self.server.emit(
                "typing",
                {
                    "session_id": record.id,
                    "on": req.on,
                    "sender": {"type": "customer", "name": record.customer_name},
                },
                room=f"agent:{record.agent_id}",
                namespace="/agent",
            )
        return ok()

    async def sync(self, sid: str, req: Sync) -> Ack:
        visitor, _ = await self._visitor(sid)
        record = await self.chat.customer_session(visitor, req.session_id)
        await self.enter_room(sid, session_room(record.id))
        await self.presence.back(record.id)
        messages = await self.chat.sessions.messages(record.id, req.after_seq)
        return ok(session=dump(await self.chat.view(record)), messages=[dump(m) for m in messages])

    async def end(self, sid: str, req: SessionRef) -> Ack:
        visitor, _ = await self._visitor(sid)
        record = await self.chat.customer_end(visitor, req.session_id)
        return ok(session=dump(record.view()))

    async def rate(self, sid: str, req: Rating) -> Ack:
        visitor, _ = await self._visitor(sid)
        await self.chat.customer_rate(visitor, req.session_id, req.score, req.comment)
        return ok()
