"""Keeps service sessions in step with routing: a bus listener on routing events.

Only events of a session's *current* routing contact move it (after a transfer the old
contact's end is not the session's end)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from pydantic import BaseModel

from contactd.bus import Bus
from contactd.directory.base import Directory
from contactd.routing import events as ev
from contactd.sessions.events import OfferPresented, OfferWithdrawn
from contactd.sessions.models import session_of_contact
from contactd.sessions.screenpop import CaseLookup, build_screen_pop
from contactd.sessions.service import SessionService

log = logging.getLogger(__name__)

NameLookup = Callable[[str], Awaitable[str]]
# the routing events that change a session (the match below)
_MOVES_SESSIONS = (
    ev.OfferCreated,
    ev.OfferAccepted,
    ev.OfferDeclined,
    ev.OfferExpired,
    ev.OfferRevoked,
    ev.ContactRequeued,
    ev.ContactEnded,
    ev.ContactAbandoned,
    ev.ContactOverflowed,
)
_END_REASONS = {"resolved", "customer_left", "timeout", "agent_ended", "transferred"}


class SessionRecorder:
    EVENTS = _MOVES_SESSIONS  # what on_event handles

    def __init__(
        self,
        sessions: SessionService,
        directory: Directory,
        bus: Bus,
        agent_name: NameLookup,
        cases: CaseLookup | None = None,
    ) -> None:
        self.cases = cases
        self.sessions = sessions
        self.directory = directory
        self.bus = bus
        self.agent_name = agent_name

    async def _current(self, contact_id: str) -> str | None:
        """The session id when this contact is its current contact."""
        sid = session_of_contact(contact_id)
        try:
            record = await self.sessions.get(sid)
        except Exception:
            return None
        return sid if record.contact_id == contact_id else None

    async def on_event(self, event: BaseModel) -> None:
        if not isinstance(event, _MOVES_SESSIONS):
            # e.g. contact.enqueued or a chat message: nothing to record, so no session
            # read (checked first: a pydantic model without the attribute raises inside
            # getattr, which cost every chat message several microseconds)
            return
        contact_id = event.contact_id
        if not contact_id.startswith("S"):
            return  # not a chat/voice session (e.g. a contact created over REST)
        sid = await self._current(contact_id)
        if sid is None:
            return
        s = self.sessions
        match event:
            case ev.OfferCreated():
                rec = await s.change(
                    sid, state="offered", offered_at=event.at, _keep_first=("offered_at",)
                )
                if rec is not None:
                    pop = await build_screen_pop(rec, self.directory, s, self.cases)
                    await self.bus.publish(
                        [
                            OfferPresented(
                                agent_id=event.agent_id,
                                offer_id=event.offer_id,
                                deadline=event.deadline,
                                session=rec,
                                screen_pop=pop,
                            )
                        ]
                    )
            case ev.OfferAccepted():
                name = await self.agent_name(event.agent_id)
                rec = await s.change(
                    sid,
                    state="active",
                    agent_id=event.agent_id,
                    agent_name=name,
                    accepted_at=event.at,
                    _keep_first=("accepted_at",),
                    _append_agent=event.agent_id,
                )
                await s.record_dequeue(event.queue_id, event.contact_id)
                if rec is not None:
                    await s.system_message(
                        rec, f"joined.{event.offer_id}", f"{name} 为您服务 / {name} is here to help"
                    )
            case ev.OfferDeclined() | ev.OfferExpired() | ev.OfferRevoked():
                await self.bus.publish(
                    [
                        OfferWithdrawn(
                            agent_id=event.agent_id,
                            offer_id=event.offer_id,
                            session_id=sid,
                            reason=event.type.split(".")[1],
                        )
                    ]
                )
                if not isinstance(event, ev.OfferRevoked):
                    await s.change(sid, state="queued")
            case ev.ContactRequeued(reason="agent_lost"):
                rec = await s.change(sid, state="queued", agent_id=None, agent_name=None)
                if rec is not None and event.was == "active":
                    await s.notify_customer(
                        sid,
                        "agent_reconnecting",
                        "客服连接中断，正在为您转接其他客服 / Reconnecting you to another agent",
                    )
            case ev.ContactEnded() if event.reason != "transferred":
                reason = event.reason if event.reason in _END_REASONS else "resolved"
                await s.change(
                    sid,
                    state="ended",
                    ended_at=event.at,
                    end_reason=reason,
                    disposition=event.disposition,
                    awaiting_reply_since=None,
                )
            case ev.ContactAbandoned():
                await s.change(
                    sid,
                    state="ended",
                    ended_at=event.at,
                    end_reason="abandoned_in_queue",
                    agent_id=None,
                    agent_name=None,
                )
            case ev.ContactOverflowed(to="message"):
                await s.change(sid, state="ended", ended_at=event.at, end_reason="left_message")
            case ev.ContactOverflowed() | ev.ContactMoved():
                await s.change(sid, queue_id=event.to)
            case _:
                pass
