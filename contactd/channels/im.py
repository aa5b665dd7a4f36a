"""Chat use cases for customers and agents; the socket namespaces and REST call these."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from contactd.auth.audit import AuditLog
from contactd.auth.models import Principal
from contactd.auth.visitors import Identity
from contactd.channels.uploads import Uploads
from contactd.directory.base import Directory
from contactd.directory.models import Customer
from contactd.errors import ContactdError, ErrorCode
from contactd.routing.service import RoutingEngine
from contactd.sessions.models import (
    CLIENT_MSG_ID,
    Guard,
    Message,
    NewMessage,
    Sender,
    SessionRecord,
    SessionView,
)
from contactd.sessions.models import not_found as _not_found
from contactd.sessions.screenpop import order_card
from contactd.sessions.service import SessionService
from contactd.settings import QUEUE_ID_PATTERN, Settings


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StartChat(_In):
    entry_point: str = Field(default="home", pattern=r"^[a-z0-9_-]{1,64}$")
    queue_id: str | None = Field(default=None, pattern=QUEUE_ID_PATTERN)
    order_no: str | None = Field(default=None, max_length=64)
    question: str | None = Field(default=None, max_length=2000)
    lang: Literal["zh", "en"] | None = None  # the widget's language (for the bot)


class SendMessage(_In):
    session_id: str = Field(max_length=32)
    client_msg_id: str = Field(pattern=CLIENT_MSG_ID)
    kind: Literal["text", "image", "file", "order_card"] = "text"
    text: str | None = Field(default=None, max_length=5000)
    attachment_id: str | None = Field(default=None, max_length=40)
    order_no: str | None = Field(default=None, max_length=64)


class Transfer(_In):
    session_id: str = Field(max_length=32)
    queue_id: str | None = Field(default=None, pattern=QUEUE_ID_PATTERN)
    agent_id: str | None = Field(default=None, max_length=64)
    note: str = Field(default="", max_length=500)


class FrontLine(Protocol):
    """The bot in front of bot-first queues (contactd/channels/bot)."""

    def takes(self, queue_id: str) -> bool: ...

    async def begin(
        self, record: SessionRecord, question: Message | None, lang: str | None
    ) -> None: ...

    async def on_customer_message(self, record: SessionRecord, msg: Message) -> None: ...


class ChatService:
    def __init__(
        self,
        sessions: SessionService,
        routing: RoutingEngine,
        directory: Directory,
        uploads: Uploads,
        audit: AuditLog,
        settings: Settings,
    ) -> None:
        self.sessions = sessions
        self.routing = routing
        self.directory = directory
        self.uploads = uploads
        self.audit = audit
        self.settings = settings
        self.front: FrontLine | None = None  # set by the bot context when it runs

    async def view(self, record: SessionRecord) -> SessionView:
        view = record.view()
        if record.state == "queued":
            pos = await self.routing.position(record.contact_id, record.queue_id)
            if pos is not None:
                wait = await self.sessions.queue_wait_estimate(record.queue_id, pos)
                view = view.model_copy(update={"position": pos, "estimated_wait_s": wait})
        return view

    # customers ------------------------------------------------------------------
    async def start(
        self,
        visitor_id: str,
        identity: Identity | None,
        req: StartChat,
        on_open: Callable[[str], Awaitable[None]] | None = None,
    ) -> SessionRecord:
        """Open a session and queue it. ``on_open(session_id)`` runs before the contact is
        queued, so the caller can subscribe to the session's events without missing any."""
        existing = await self.sessions.open_for_visitor(visitor_id)
        if existing is not None:
            return existing
        queue_id = req.queue_id or self.settings.queue_for_entry(req.entry_point)
        if not self.routing.queue_known(queue_id):
            raise ContactdError(ErrorCode.unknown_queue, f"no queue {queue_id!r}")
        name, phone, priority = await self._who(identity)
        bot_first = self.front is not None and self.front.takes(queue_id)
        record = await self.sessions.open(
            channel="chat",
            entry_point=req.entry_point,
            queue_id=queue_id,
            visitor_id=visitor_id,
            customer_id=identity.customer_id if identity else None,
            customer_name=name,
            customer_phone=phone,
            order_no=req.order_no,
            meta={"question": req.question} if req.question else None,
            state="bot" if bot_first else "queued",
        )
        question = None
        if req.question:
            question = await self.sessions.post(
                NewMessage(
                    session_id=record.id,
                    client_msg_id="question",
                    sender=Sender(type="customer", id=record.customer_id, name=name),
                    kind="text",
                    text=req.question,
                )
            )
        if on_open is not None:
            await on_open(record.id)
        if bot_first and self.front is not None:
            await self.front.begin(record, question, req.lang)
            return await self.sessions.get(record.id)
        try:
            await self._enqueue(record, priority, {"entry": req.entry_point})
        except ContactdError:
            await self.sessions.discard(record.id)  # refused: it never entered the queue
            raise
        return await self.sessions.get(record.id)

    async def _who(self, identity: Identity | None) -> tuple[str | None, str | None, int]:
        """(name, phone, queue priority) of an identified customer."""
        priority, name, phone = 0, None, None
        if identity is not None:
            customer = await self.directory.customer(identity.customer_id)
            if customer is not None:
                name, phone = customer.name, customer.phone
                priority = self._priority(customer)
            name = name or identity.name
            phone = phone or identity.phone
        return name, phone, priority

    def _priority(self, customer: Customer | None) -> int:
        return self.settings.im.vip_priority if customer is not None and customer.vip else 0

    async def _enqueue(self, record: SessionRecord, priority: int, meta: dict[str, Any]) -> None:
        """Queue a new chat; a returning customer goes to their last agent first (sticky)."""
        last = await self._last_agent(record)
        await self.routing.enqueue(
            record.queue_id,
            priority=priority,
            contact_id=record.contact_id,
            target_agent_id=last,
            target_wait_s=self.settings.im.sticky_wait_s if last else None,
            meta={"session": record.id, **meta, **({"sticky": last} if last else {})},
        )

    async def _last_agent(self, record: SessionRecord) -> str | None:
        """The agent who served this customer last (within ``im.sticky_within_s``), when
        they work this chat's queue and are online (available, or in wrap-up): not someone
        on a break or gone for the day, whom the customer would only wait for."""
        within = self.settings.im.sticky_within_s
        if within <= 0:
            return None
        since = self.sessions.clock.now_ms() - round(within * 1000)
        last = await self.sessions.last_agent(
            record.customer_id, record.visitor_id, record.id, since
        )
        if last is None:
            return None
        try:
            agent = await self.routing.agent(last)
        except ContactdError:
            return None
        if agent.state not in ("available", "wrap_up") or record.queue_id not in agent.queues:
            return None
        return last

    # --- bot --------------------------------------------------------------------------
    async def hand_over(self, record: SessionRecord, bot: dict[str, Any]) -> SessionRecord:
        """A bot chat goes to a person: queued in its queue with the customer's priority;
        ``bot`` (why, what the bot recorded) goes to the screen-pop. Refused (a full
        queue): the chat stays with the bot and the error is raised."""
        customer = await self.directory.customer(record.customer_id) if record.customer_id else None
        priority = self._priority(customer)
        after = await self.sessions.change(
            record.id,
            state="queued",
            queued_at=self.sessions.clock.now_ms(),
            meta={**(record.meta or {}), "bot": bot},
        )
        assert after is not None
        try:
            await self._enqueue(after, priority, {"entry": record.entry_point, "bot": True})
        except ContactdError:
            await self.sessions.change(record.id, state="bot", queued_at=None, meta=record.meta)
            raise
        return await self.sessions.get(record.id)

    async def end_with_bot(self, record: SessionRecord, reason: str) -> SessionRecord:
        """End a chat nobody queued (still with the bot)."""
        after = await self.sessions.change(
            record.id, state="ended", ended_at=self.sessions.clock.now_ms(), end_reason=reason
        )
        return after or record

    # ----------------------------------------------------------------------------------
    async def customer_session(self, visitor_id: str, session_id: str) -> SessionRecord:
        try:
            record = await self.sessions.get(session_id)
        except ContactdError as exc:
            raise _not_found(session_id) from exc
        if record.visitor_id != visitor_id:
            raise _not_found(session_id)
        return record

    async def customer_send(self, visitor_id: str, req: SendMessage) -> Message:
        guard = Guard(visitor_id=visitor_id)
        record = await self._guarded(req.session_id, guard)
        sender = Sender(type="customer", id=record.customer_id, name=record.customer_name)
        msg = await self._post(record, sender, req, guard)
        if record.state == "bot" and self.front is not None:
            # the copy may be stale (handed over on another process a moment ago): the bot
            # only answers a session that is still its own
            fresh = await self.sessions.get(record.id)
            if fresh.state == "bot":
                await self.front.on_customer_message(fresh, msg)
        return msg

    async def customer_end(self, visitor_id: str, session_id: str) -> SessionRecord:
        record = await self.customer_session(visitor_id, session_id)
        if record.state == "bot":
            await self.end_with_bot(record, "customer_left")
        elif record.state != "ended":
            await self.routing.cancel(record.contact_id, "customer_left")
        return await self.sessions.get(session_id)

    async def customer_rate(
        self, visitor_id: str, session_id: str, score: int, comment: str | None
    ) -> SessionRecord:
        await self.customer_session(visitor_id, session_id)
        return await self.sessions.rate(session_id, score, comment)

    # agents ---------------------------------------------------------------------
    async def agent_session(
        self, who: Principal, session_id: str, *, current: bool = True
    ) -> SessionRecord:
        try:
            record = await self.sessions.get(session_id)
        except ContactdError as exc:
            raise _not_found(session_id) from exc
        if record.agent_id == who.name:
            return record
        if not current and (who.name in record.agents or who.can("contacts.view")):
            return record
        raise _not_found(session_id)

    async def accept(self, who: Principal, offer_id: str) -> SessionRecord:
        contact = await self.routing.accept(offer_id, who.name)
        return await self.sessions.get(contact.contact_id.split(".", 1)[0])

    async def agent_send(self, who: Principal, req: SendMessage) -> Message:
        guard = Guard(agent_id=who.name)
        record = await self._guarded(req.session_id, guard)
        sender = Sender(type="agent", id=who.name, name=record.agent_name or who.name)
        return await self._post(record, sender, req, guard)

    async def agent_end(
        self, who: Principal, session_id: str, disposition: str | None
    ) -> SessionRecord:
        record = await self.agent_session(who, session_id)
        await self.routing.end(
            record.contact_id, agent_id=who.name, reason="resolved", disposition=disposition
        )
        return await self.sessions.get(session_id)

    async def wrapup_done(self, who: Principal, session_id: str) -> bool:
        record = await self.agent_session(who, session_id, current=False)
        return await self.routing.complete_wrap(record.contact_id, agent_id=who.name)

    async def transfer(self, who: Principal, req: Transfer) -> SessionRecord:
        if (req.queue_id is None) == (req.agent_id is None):
            raise ContactdError(
                ErrorCode.validation_failed, "give exactly one of queue_id, agent_id"
            )
        record = await self.agent_session(who, req.session_id)
        if record.state != "active":
            raise ContactdError(ErrorCode.contact_not_active, "only an active chat can be moved")
        if record.channel == "voice":  # the caller is bridged to this agent by the IVR
            raise ContactdError(ErrorCode.invalid_state, "a call is moved in the phone system")
        if req.agent_id == who.name:
            raise ContactdError(ErrorCode.validation_failed, "that is you")
        queue_id = req.queue_id or record.queue_id
        q = self.settings.queue(queue_id)
        if q is None:
            raise ContactdError(ErrorCode.unknown_queue, f"no queue {queue_id!r}")
        snap = await self.routing.queue_snapshot(queue_id, head=0)
        if snap.waiting >= q.max_waiting:
            raise ContactdError(ErrorCode.queue_full, f"queue {queue_id} is full")
        n = record.transfers + 1
        new_contact = f"{record.id}.{n}"
        meta = {**(record.meta or {}), "transfer_note": req.note, "transferred_by": who.name}
        await self.sessions.change(
            record.id,
            contact_id=new_contact,
            queue_id=queue_id,
            transfers=n,
            state="queued",
            agent_id=None,
            agent_name=None,
            meta=meta,
        )
        await self.routing.end(record.contact_id, agent_id=who.name, reason="transferred")
        await self.routing.enqueue(
            queue_id,
            priority=9,
            contact_id=new_contact,
            target_agent_id=req.agent_id,
            meta={"session": record.id, "transfer": n},
        )
        await self.audit.record(
            who,
            "session.transferred",
            "session",
            record.id,
            before={"agent_id": who.name, "queue_id": record.queue_id},
            after={"agent_id": req.agent_id, "queue_id": queue_id, "note": req.note},
        )
        after = await self.sessions.get(record.id)
        await self.sessions.system_message(
            after, f"transfer.{n}", "正在为您转接 / Transferring you to a colleague"
        )
        return after

    async def unmask_phone(self, who: Principal, session_id: str) -> str | None:
        if not who.can("pii.view"):
            raise ContactdError(ErrorCode.forbidden, "this needs the permission 'pii.view'")
        record = await self.agent_session(who, session_id, current=False)
        phone = record.customer_phone
        if record.customer_id:
            customer = await self.directory.customer(record.customer_id)
            phone = customer.phone if customer else phone
        await self.audit.record(
            who,
            "pii.unmasked",
            "session",
            session_id,
            after={"field": "phone", "customer_id": record.customer_id},
        )
        return phone

    # shared ---------------------------------------------------------------------
    async def _guarded(self, session_id: str, guard: Guard) -> SessionRecord:
        """The session, when ``guard`` lets its sender post to it. Checked against the copy
        this process last saw (no database read per message) and, when that refuses, against
        a fresh read (it may have been accepted or moved on another process). A stale copy
        that allows it is harmless: the message log checks the guard again when storing."""
        try:
            record = await self.sessions.recent(session_id)
            if guard.check(record) is None:
                return record
            record = await self.sessions.get(session_id)
        except ContactdError as exc:
            raise _not_found(session_id) from exc
        refused = guard.check(record)
        if refused is not None:
            raise refused
        return record

    async def _post(
        self, record: SessionRecord, sender: Sender, req: SendMessage, guard: Guard
    ) -> Message:
        attachment, order = None, None
        if req.kind == "text":
            if not req.text or not req.text.strip():
                raise ContactdError(ErrorCode.validation_failed, "a text message needs text")
            if len(req.text) > self.settings.im.max_text_chars:
                raise ContactdError(ErrorCode.payload_too_large, "the message is too long")
        elif req.kind in ("image", "file"):
            if not req.attachment_id:
                raise ContactdError(ErrorCode.validation_failed, "upload the file first")
            attachment = await self.uploads.attachment(req.attachment_id, record.id)
            if req.kind == "image" and not attachment.content_type.startswith("image/"):
                raise ContactdError(ErrorCode.validation_failed, "that file is not an image")
        else:
            order = await self._order(record, req.order_no)
        msg = NewMessage(
            session_id=record.id,
            client_msg_id=req.client_msg_id,
            sender=sender,
            kind=req.kind,
            text=req.text,
            attachment=attachment,
            order=order,
        )
        return await self.sessions.post(msg, guard=guard)

    async def _order(self, record: SessionRecord, order_no: str | None) -> dict[str, Any]:
        if not order_no:
            raise ContactdError(ErrorCode.validation_failed, "an order card needs order_no")
        found = await self.directory.order(order_no)
        if found is None or (record.customer_id and found.customer_id != record.customer_id):
            raise ContactdError(ErrorCode.not_found, f"no order {order_no}")
        return order_card(found)
