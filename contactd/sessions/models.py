"""Service sessions and their messages (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contactd.errors import ContactdError, ErrorCode

SessionState = Literal["bot", "queued", "offered", "active", "ended"]  # bot: the bot answers
SenderType = Literal["customer", "agent", "bot", "system"]
MessageKind = Literal["text", "image", "file", "order_card", "event"]
EndReason = Literal[
    "resolved",
    "customer_left",
    "abandoned_in_queue",
    "transferred",
    "timeout",
    "agent_lost",
    "left_message",
    "agent_ended",
]
CLIENT_MSG_ID = r"^[A-Za-z0-9_.:-]{1,64}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Party(_Model):
    id: str | None = None
    name: str | None = None


class Sender(_Model):
    type: SenderType
    id: str | None = None
    name: str | None = None


class Attachment(_Model):
    id: str
    name: str
    content_type: str
    size: int
    url: str


class Message(_Model):
    id: str
    session_id: str
    seq: int
    client_msg_id: str
    sender: Sender
    kind: MessageKind
    text: str | None = None
    attachment: Attachment | None = None
    order: dict[str, Any] | None = None
    created_at: int


class NewMessage(_Model):
    """A message to store: the log gives it its id, seq and time."""

    session_id: str
    client_msg_id: str = Field(pattern=CLIENT_MSG_ID)
    sender: Sender
    kind: MessageKind
    text: str | None = None
    attachment: Attachment | None = None
    order: dict[str, Any] | None = None


class SessionView(_Model):
    session_id: str
    state: SessionState
    channel: str
    entry_point: str
    queue_id: str
    agent: Party | None = None
    customer: Party | None = None
    order_no: str | None = None
    created_at: int
    accepted_at: int | None = None
    ended_at: int | None = None
    end_reason: str | None = None
    last_seq: int = 0
    position: int | None = None
    estimated_wait_s: int | None = None
    rating: int | None = None


class SessionRecord(_Model):
    """Everything stored about a session (REST detail, reports)."""

    id: str
    contact_id: str
    channel: str
    entry_point: str
    queue_id: str
    state: SessionState
    visitor_id: str | None
    customer_id: str | None
    customer_name: str | None
    customer_phone: str | None
    order_no: str | None
    agent_id: str | None
    agent_name: str | None
    agents: list[str]
    created_at: int
    queued_at: int | None
    offered_at: int | None
    accepted_at: int | None
    first_response_at: int | None
    ended_at: int | None
    end_reason: str | None
    disposition: str | None
    rating: int | None
    rating_comment: str | None
    last_seq: int
    transfers: int
    awaiting_reply_since: int | None
    responses: int
    response_total_ms: int
    meta: dict[str, Any] | None

    def view(self) -> SessionView:
        return SessionView(
            session_id=self.id,
            state=self.state,
            channel=self.channel,
            entry_point=self.entry_point,
            queue_id=self.queue_id,
            agent=Party(id=self.agent_id, name=self.agent_name) if self.agent_id else None,
            customer=Party(id=self.customer_id, name=self.customer_name)
            if self.customer_id or self.customer_name
            else None,
            order_no=self.order_no,
            created_at=self.created_at,
            accepted_at=self.accepted_at,
            ended_at=self.ended_at,
            end_reason=self.end_reason,
            last_seq=self.last_seq,
            rating=self.rating,
        )


class SessionMetrics(_Model):
    wait_ms: int | None = Field(description="created → first accepted offer")
    first_response_ms: int | None = Field(description="accepted → first agent message")
    avg_response_ms: int | None = Field(description="mean customer message → agent reply")
    handle_ms: int | None = Field(description="accepted → ended")


def metrics_of(s: SessionRecord) -> SessionMetrics:
    return SessionMetrics(
        wait_ms=(s.accepted_at - s.created_at) if s.accepted_at else None,
        first_response_ms=(s.first_response_at - s.accepted_at)
        if s.first_response_at and s.accepted_at
        else None,
        avg_response_ms=(s.response_total_ms // s.responses) if s.responses else None,
        handle_ms=(s.ended_at - s.accepted_at) if s.ended_at and s.accepted_at else None,
    )


class SessionDetail(_Model):
    session: SessionRecord
    metrics: SessionMetrics
    messages: list[Message]


@dataclass(frozen=True, slots=True)
class Guard:
    """Who may post to a session: its own visitor (while it is open) or the agent holding
    it (while it is active). The chat service checks it first against a record that may be
    stale; the message log checks it again inside the transaction that stores the message,
    against the row as it is then, so a session ended or moved on another process a moment
    ago refuses the message all the same."""

    visitor_id: str | None = None
    agent_id: str | None = None
    active: bool = False  # anyone else allowed to write (a joined supervisor): while active

    def check(self, record: SessionRecord) -> ContactdError | None:
        if self.active and record.state != "active":
            return ContactdError(ErrorCode.contact_not_active, "this conversation is not active")
        if self.visitor_id is not None:
            if record.visitor_id != self.visitor_id:
                return not_found(record.id)
            if record.state == "ended":
                return ContactdError(ErrorCode.contact_finished, "this conversation has ended")
        if self.agent_id is not None:
            if record.agent_id != self.agent_id:
                return not_found(record.id)
            if record.state != "active":
                return ContactdError(
                    ErrorCode.contact_not_active, "this conversation is not active"
                )
        return None


def not_found(session_id: str) -> ContactdError:
    """The same answer whether a session does not exist or is not yours: no probing."""
    return ContactdError(ErrorCode.not_found, f"no session {session_id}")


def session_of_contact(contact_id: str) -> str:
    """Routing contact ids are the service number, plus ``.<n>`` after the n-th transfer."""
    return contact_id.split(".", 1)[0]
