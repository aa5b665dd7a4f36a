"""Routing domain events, as published on the bus (names: ``noun.past_verb``).

The Lua scripts return these as JSON; they are validated here so that a script and its
consumers can never silently drift apart (unknown fields are refused).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

ContactState = Literal["queued", "offered", "active", "ended", "abandoned", "left_message"]
AgentState = Literal["offline", "available", "away", "wrap_up"]
FINAL_STATES: frozenset[str] = frozenset({"ended", "abandoned", "left_message"})


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    at: int  # ms since the epoch


AnyRoutingEvent = _Event  # the base of every routing event (a bus subscription to all)


class ContactEnqueued(_Event):
    type: Literal["contact.enqueued"]
    contact_id: str
    queue_id: str
    channel: str
    priority: int
    target_agent_id: str | None = None


class OfferCreated(_Event):
    type: Literal["offer.created"]
    offer_id: str
    contact_id: str
    agent_id: str
    queue_id: str
    channel: str
    priority: int
    deadline: int
    waited_ms: int
    attempt: int


class OfferAccepted(_Event):
    type: Literal["offer.accepted"]
    offer_id: str
    contact_id: str
    agent_id: str
    queue_id: str
    channel: str
    waited_ms: int


class OfferDeclined(_Event):
    type: Literal["offer.declined"]
    offer_id: str
    contact_id: str
    agent_id: str
    queue_id: str
    channel: str


class OfferExpired(_Event):
    type: Literal["offer.expired"]
    offer_id: str
    contact_id: str
    agent_id: str
    queue_id: str
    channel: str


class OfferRevoked(_Event):
    type: Literal["offer.revoked"]
    offer_id: str
    contact_id: str
    agent_id: str
    queue_id: str
    reason: str


class ContactRequeued(_Event):
    type: Literal["contact.requeued"]
    contact_id: str
    queue_id: str
    agent_id: str
    reason: str
    at_head: bool
    was: str | None = None


class ContactAbandoned(_Event):
    type: Literal["contact.abandoned"]
    contact_id: str
    queue_id: str
    reason: str
    waited_ms: int
    was: str


class ContactEnded(_Event):
    type: Literal["contact.ended"]
    contact_id: str
    queue_id: str
    agent_id: str
    reason: str
    handle_ms: int
    wrap_up_ms: int
    disposition: str | None = None


class ContactOverflowed(_Event):
    type: Literal["contact.overflowed"]
    contact_id: str
    queue_id: str
    to: str
    waited_ms: int


class ContactMoved(_Event):
    """A supervisor moved a waiting contact to another queue."""

    type: Literal["contact.moved"]
    contact_id: str
    queue_id: str
    to: str
    waited_ms: int


class ContactFellBack(_Event):
    type: Literal["contact.fell_back"]
    contact_id: str
    queue_id: str
    target_agent_id: str


class WrapUpEnded(_Event):
    type: Literal["wrap_up.ended"]
    contact_id: str
    agent_id: str
    expired: bool


class AgentStateChanged(_Event):
    type: Literal["agent.state_changed"]
    agent_id: str
    state: AgentState
    reason: str
    previous: AgentState


class AgentLoggedIn(_Event):
    type: Literal["agent.logged_in"]
    agent_id: str
    queues: list[str]


class AgentLost(_Event):
    type: Literal["agent.lost"]
    agent_id: str
    reason: str


RoutingEvent = Annotated[
    ContactEnqueued
    | OfferCreated
    | OfferAccepted
    | OfferDeclined
    | OfferExpired
    | OfferRevoked
    | ContactRequeued
    | ContactAbandoned
    | ContactEnded
    | ContactOverflowed
    | ContactFellBack
    | ContactMoved
    | WrapUpEnded
    | AgentStateChanged
    | AgentLoggedIn
    | AgentLost,
    Field(discriminator="type"),
]

EVENTS_ADAPTER: TypeAdapter[list[RoutingEvent]] = TypeAdapter(list[RoutingEvent])
