"""Session domain events on the bus; realtime/listeners.py decides who receives them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from contactd.sessions.models import Message, SessionRecord


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionChanged(_Event):
    type: Literal["session.changed"] = "session.changed"
    session: SessionRecord
    previous_agent_id: str | None = None


class MessageCreated(_Event):
    type: Literal["message.created"] = "message.created"
    message: Message
    visitor_id: str | None
    agent_id: str | None


class OfferPresented(_Event):
    type: Literal["offer.presented"] = "offer.presented"
    agent_id: str
    offer_id: str
    deadline: int
    session: SessionRecord
    screen_pop: dict[str, Any]


class OfferWithdrawn(_Event):
    type: Literal["offer.withdrawn"] = "offer.withdrawn"
    agent_id: str
    offer_id: str
    session_id: str
    reason: str


class CustomerNotice(_Event):
    type: Literal["customer.notice"] = "customer.notice"
    session_id: str
    code: str
    text: str


class ReplyOverdue(_Event):
    type: Literal["session.reply_overdue"] = "session.reply_overdue"
    session_id: str
    agent_id: str
    waiting_s: int
