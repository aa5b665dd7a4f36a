"""Routing views and inputs (no I/O)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contactd.routing.events import AgentState, ContactState
from contactd.settings import QueueConfig

ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
ID_RE = re.compile(ID_PATTERN)
OFFER_RE = re.compile(r"^([A-Za-z0-9_.:-]{1,64})~([0-9]{1,6})$")


class _View(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ContactView(_View):
    contact_id: str
    queue_id: str
    state: ContactState
    channel: Literal["chat", "voice"]
    priority: int
    enqueued_at: int
    agent_id: str | None = None
    offer_id: str | None = None
    target_agent_id: str | None = None
    final_reason: str | None = None
    ended_at: int | None = None
    accepted_at: int | None = None
    offers: int = 0
    position: int | None = Field(default=None, description="0-based place in the queue")
    existing: bool = Field(default=False, description="true when a retry found the contact")


class Slot(_View):
    contact_id: str
    state: Literal["offered", "active", "wrap"]
    channel: Literal["chat", "voice"]
    queue_id: str


class AgentView(_View):
    agent_id: str
    state: AgentState
    reason: str = ""
    since: int
    queues: list[str]
    capacity: dict[str, int]
    slots: list[Slot]
    no_answer: int = 0
    draining: bool = False


class WaitingContact(_View):
    contact_id: str
    position: int
    priority: int
    waited_ms: int
    target_agent_id: str | None = None
    entry_point: str | None = None


class QueueSnapshot(_View):
    queue_id: str
    name: str
    channel: Literal["chat", "voice"]
    strategy: str
    max_waiting: int
    waiting: int
    waiting_designated: int
    longest_wait_ms: int
    eligible_agents: int
    head: list[WaitingContact]


def queue_config_for_lua(q: QueueConfig) -> dict[str, object]:
    """The queue fields the scripts read (times in ms)."""

    def ms(s: float | None) -> int | None:
        return None if s is None else int(s * 1000)

    return {
        "id": q.id,
        "channel": q.channel,
        "strategy": q.strategy,
        "fallback_strategy": q.fallback_strategy,
        "fallback_ms": ms(q.fallback_after_s) or None,  # 0 = wait for the agent indefinitely
        "max_waiting": q.max_waiting,
        "offer_ms": ms(q.offer_timeout_s),
        "wrap_ms": ms(q.wrap_up_s),
        "max_wait_ms": ms(q.max_wait_s),
        "overflow_to": q.overflow_to,
        "max_no_answer": q.max_no_answer,
        "reoffer_ms": ms(q.reoffer_after_s),
        "removed": False,
    }


def removed_queue_for_lua(queue_id: str) -> dict[str, object]:
    """A queue no longer in the configuration: nothing is dispatched from it, but what is
    in it can still be drained (cancelled, ended, lost agents cleaned up)."""
    return {
        "id": queue_id,
        "channel": "chat",
        "strategy": "idle",
        "fallback_strategy": "idle",
        "fallback_ms": None,
        "max_waiting": 0,
        "offer_ms": 20000,
        "wrap_ms": 0,
        "max_wait_ms": None,
        "overflow_to": None,
        "max_no_answer": 3,
        "reoffer_ms": 0,
        "removed": True,
    }
