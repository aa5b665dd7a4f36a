"""``/agent``: the agent workspace (see docs/protocol.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contactd.auth.models import Principal
from contactd.auth.service import AuthService
from contactd.channels.im import ChatService, SendMessage, Transfer
from contactd.errors import ContactdError, ErrorCode
from contactd.metrics import Metrics
from contactd.realtime.customer import SessionRef, Sync, Typing, session_room
from contactd.realtime.gateway import Ack, Event, Namespace, dump, ok, refuse
from contactd.realtime.presence import AgentPresence
from contactd.routing.service import RoutingEngine
from contactd.settings import Settings


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Capacity(_In):
    chat: int | None = Field(default=None, ge=0, le=50)
    voice: int | None = Field(default=None, ge=0, le=1)


class AgentLogin(_In):
    queues: list[str] | None = Field(default=None, max_length=200)
    capacity: Capacity = Capacity()
    state: Literal["available", "away"] = "available"
    reason: str = Field(default="", max_length=64)


class AgentState(_In):
    state: Literal["available", "away", "offline"]
    reason: str = Field(default="", max_length=64)


class OfferRef(_In):
    offer_id: str = Field(max_length=80)


class EndSession(_In):
    session_id: str = Field(max_length=32)
    disposition: str | None = Field(default=None, max_length=64)


class ConnectAuth(_In):
    token: str = Field(min_length=1, max_length=600)
    # a page beside the workspace (the ticket desk) that only listens to this staff
    # member's events: it does not keep them present in routing, and sends no events
    passive: bool = False


# who may hold a listening connection: agents, and the case desk's other staff
LISTENERS = ("agent.work", "tickets.handle", "tickets.view")


def agent_room(agent_id: str) -> str:
    return f"agent:{agent_id}"


class AgentNamespace(Namespace):
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        chat: ChatService,
        auth: AuthService,
        routing: RoutingEngine,
        presence: AgentPresence,
    ) -> None:
        super().__init__("/agent", settings, metrics)
        self.chat = chat
        self.auth = auth
        self.routing = routing
        self.presence = presence
        self.events = {
            "agent.login": Event(AgentLogin, self.login),
            "agent.state": Event(AgentState, self.state),
            "offer.accept": Event(OfferRef, self.accept),
            "offer.decline": Event(OfferRef, self.decline),
            "message.send": Event(SendMessage, self.send),
            "typing": Event(Typing, self.typing),
            "sync": Event(Sync, self.sync),
            "session.end": Event(EndSession, self.end),
            "session.transfer": Event(Transfer, self.transfer),
            "wrapup.done": Event(SessionRef, self.wrapup_done),
            "pii.unmask": Event(SessionRef, self.unmask),
        }

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        try:
            creds = ConnectAuth.model_validate(auth or {})
            who = await self.auth.authenticate(creds.token)
        except ValidationError as exc:
            raise refuse(ErrorCode.unauthenticated, "connect with auth: {token}") from exc
        except ContactdError as exc:
            raise refuse(exc.code, exc.message) from exc
        if creds.passive:
            if who.kind != "staff" or not any(who.can(p) for p in LISTENERS):
                raise refuse(ErrorCode.forbidden, "this account has no agent or ticket events")
        elif who.kind != "staff" or not who.can("agent.work"):
            raise refuse(ErrorCode.forbidden, "this account may not work as an agent")
        await self.save_session(sid, {"who": who, "passive": creds.passive})
        await self.enter_room(sid, agent_room(who.name))
        self.metrics.socket_connections.labels("/agent").inc()
        if creds.passive:
            return
        await self.presence.connected(who.name, sid)
        try:
            agent = await self.routing.agent(who.name)
        except ContactdError:
            return
        await self.emit("agent.updated", {"agent": dump(agent)}, to=sid)

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        self.forget(sid)
        self.metrics.socket_connections.labels("/agent").dec()
        state = await self.get_session(sid)
        if not state.get("passive"):
            await self.presence.disconnected(state["who"].name, sid)

    async def _who(self, sid: str) -> Principal:
        """The staff member behind ``sid``; every event handler starts here, and a
        listening (passive) connection is refused."""
        state = await self.get_session(sid)
        if state.get("passive"):
            raise ContactdError(
                ErrorCode.forbidden, "this connection only listens: send from the workspace"
            )
        who: Principal = state["who"]
        return who

    async def login(self, sid: str, req: AgentLogin) -> Ack:
        who = await self._who(sid)
        queues = req.queues if req.queues is not None else [q.id for q in self.settings.queues]
        cap = {k: v for k, v in req.capacity.model_dump().items() if v is not None}
        agent = await self.routing.login(
            who.name, queues=queues, capacity=cap, state=req.state, reason=req.reason
        )
        await self.chat.audit.record(who, "agent.logged_in", "agent", who.name, after=dump(agent))
        return ok(agent=dump(agent))

    async def state(self, sid: str, req: AgentState) -> Ack:
        who = await self._who(sid)
        before = await self.routing.agent(who.name)
        agent = await self.routing.set_state(who.name, req.state, req.reason)
        await self.chat.audit.record(
            who, "agent.state_changed", "agent", who.name, before=dump(before), after=dump(agent)
        )
        return ok(agent=dump(agent))

    async def accept(self, sid: str, req: OfferRef) -> Ack:
        who = await self._who(sid)
        record = await self.chat.accept(who, req.offer_id)
        messages = await self.chat.sessions.messages(record.id)
        return ok(session=dump(record.view()), messages=[dump(m) for m in messages])

    async def decline(self, sid: str, req: OfferRef) -> Ack:
        who = await self._who(sid)
        await self.routing.decline(req.offer_id, who.name)
        return ok()

    async def send(self, sid: str, req: SendMessage) -> Ack:
        who = await self._who(sid)
        return ok(message=dump(await self.chat.agent_send(who, req)))

    async def typing(self, sid: str, req: Typing) -> Ack:
        who = await self._who(sid)
        record = await self.chat.agent_session(who, req.session_id)
        await self.server.emit(
            "typing",
            {
                "session_id": record.id,
                "on": req.on,
                "sender": {"type": "agent", "name": record.agent_name},
            },
            room=session_room(record.id),
            namespace="/customer",
        )
        return ok()

    async def sync(self, sid: str, req: Sync) -> Ack:
        who = await self._who(sid)
        record = await self.chat.agent_session(who, req.session_id, current=False)
        messages = await self.chat.sessions.messages(record.id, req.after_seq)
        return ok(session=dump(record.view()), messages=[dump(m) for m in messages])

    async def end(self, sid: str, req: EndSession) -> Ack:
        who = await self._who(sid)
        record = await self.chat.agent_end(who, req.session_id, req.disposition)
        return ok(session=dump(record.view()))

    async def transfer(self, sid: str, req: Transfer) -> Ack:
        who = await self._who(sid)
        record = await self.chat.transfer(who, req)
        return ok(session=dump(record.view()))

    async def wrapup_done(self, sid: str, req: SessionRef) -> Ack:
        who = await self._who(sid)
        return ok(done=await self.chat.wrapup_done(who, req.session_id))

    async def unmask(self, sid: str, req: SessionRef) -> Ack:
        who = await self._who(sid)
        return ok(phone=await self.chat.unmask_phone(who, req.session_id))
